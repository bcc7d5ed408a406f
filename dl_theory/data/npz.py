"""The user's own data from a `.npz` file (numpy.savez), checked before any model sees it."""

import os

import numpy as np

from dl_theory.user_errors import DataError, DataFileNotFoundError, DataKeyError


def _check_values(path: str, key: str, array: np.ndarray) -> None:
    """Numbers only (bool, integer or floating point), all finite."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{path!r}: {key} has dtype {array.dtype}; allowed: numbers (bool, "
                        f"integer or floating point); convert it, e.g. {key}.astype(np.float32)")
    if np.issubdtype(array.dtype, np.inexact):
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(f"{path!r}: {key} has {int(bad.sum())} non-finite values (NaN or "
                            f"inf), the first at index {first}; allowed: finite numbers; drop "
                            "or impute those rows")


def load_npz(path: str | os.PathLike, x_key: str = "x", y_key: str = "y") -> dict[str, np.ndarray]:
    """`{"x": x, "y": y}` from the arrays stored under `x_key` and `y_key` in a .npz file.

    x: shape [N, ...] with at least 2 dimensions (examples by features); y: shape [N, ...] with
    at least 1 (labels [N] or targets [N, K]); the leading N must agree and be >= 1; values
    must be finite numbers. Dtypes are kept as stored. Pickled (object) arrays are refused,
    since unpickling can run arbitrary code. Raises (all `dl_theory.user_errors.UserError`)
    DataFileNotFoundError (no such file), DataKeyError (a key is absent; names the keys
    present), DataError (wrong ndim or mismatched N, naming both shapes; no examples;
    non-numeric or non-finite values; a .npy, not a .npz, file; pickled arrays).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataFileNotFoundError(f"no .npz file at {path!r}")
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path!r} holds one array of shape {archive.shape}, not an .npz archive; save one"
            f" with np.savez(path, {x_key}=x, {y_key}=y)"
        )
    with archive:
        present = sorted(archive.files)
        for key in (x_key, y_key):
            if key not in present:
                raise DataKeyError(f"{path!r} has no array {key!r}; keys present: {present}")
        try:
            x, y = archive[x_key], archive[y_key]
        except ValueError as error:  # an object array: numpy refuses it without allow_pickle
            raise DataError(f"{path!r}: {error}; save numeric arrays") from error
    if x.ndim < 2 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise DataError(
            f"{path!r}: {x_key} has shape {x.shape} and {y_key} has shape {y.shape}; need"
            f" {x_key} [N, ...] with ndim >= 2 and {y_key} [N, ...] with ndim >= 1, same N"
        )
    if x.shape[0] == 0:
        raise DataError(f"{path!r}: {x_key} has shape {x.shape}, no examples; need N >= 1")
    _check_values(path, x_key, x)
    _check_values(path, y_key, y)
    return {"x": x, "y": y}
