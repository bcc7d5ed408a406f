"""The user's own data from a `.npz` file (numpy.savez), checked before any model sees it."""

import os

import numpy as np


def load_npz(path: str | os.PathLike, x_key: str = "x", y_key: str = "y") -> dict[str, np.ndarray]:
    """`{"x": x, "y": y}` from the arrays stored under `x_key` and `y_key` in a .npz file.

    x: shape [N, ...] with at least 2 dimensions (examples by features); y: shape [N, ...] with
    at least 1 (labels [N] or targets [N, K]); the leading N must agree. Dtypes are kept as
    stored. Pickled (object) arrays are refused, since unpickling can run arbitrary code.
    Raises FileNotFoundError (no such file), KeyError (a key is absent; names the keys present),
    ValueError (wrong ndim or mismatched N, naming both shapes; or a .npy, not a .npz, file).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no .npz file at {path!r}")
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(
            f"{path!r} holds one array of shape {archive.shape}, not an .npz archive; save one"
            f" with np.savez(path, {x_key}=x, {y_key}=y)"
        )
    with archive:
        present = sorted(archive.files)
        for key in (x_key, y_key):
            if key not in present:
                raise KeyError(f"{path!r} has no array {key!r}; keys present: {present}")
        x, y = archive[x_key], archive[y_key]
    if x.ndim < 2 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{path!r}: {x_key} has shape {x.shape} and {y_key} has shape {y.shape}; need"
            f" {x_key} [N, ...] with ndim >= 2 and {y_key} [N, ...] with ndim >= 1, same N"
        )
    return {"x": x, "y": y}
