"""MNIST-1D (Greydanus 2020, "Scaling down deep learning", arXiv:2011.14439).

Ten 1-D templates of length 12, padded, dilated, scaled, translated, noised, sheared and
resampled to 40 points by the `mnist1d` package's procedural generator (`make_dataset`), with
the package's default arguments (5000 examples, 80/20 split: 4000 train, 1000 test). The data
are generated here, never downloaded: the package's `get_dataset` would fetch a pickle from the
internet, so it is not used. The spatially shuffled variant applies one fixed permutation of the
40 positions to train and test alike; it removes spatial structure while keeping every value,
so a model with a spatial prior (a CNN) should lose its edge over an MLP (the paper's
shuffled-MNIST-1D experiment).
"""

import functools
import random

import numpy as np

SEQ_LEN = 40  # the package's `final_seq_length`
NUM_CLASSES = 10


def _import_make_dataset():
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:
        raise ImportError(
            "MNIST-1D needs the `mnist1d` package (it needs numpy, scipy, matplotlib):"
            " pip install mnist1d"
        ) from err
    return get_dataset_args, make_dataset


@functools.lru_cache(maxsize=8)
def _generate(seed: int, num_samples: int) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) from the package generator; the arrays are read-only."""
    get_dataset_args, make_dataset = _import_make_dataset()
    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    # make_dataset seeds numpy's and Python's global generators; put back the caller's streams.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = (
        data["x"].astype(np.float32),
        data["y"].astype(np.int32),
        data["x_test"].astype(np.float32),
        data["y_test"].astype(np.int32),
    )
    for a in arrays:
        a.flags.writeable = False
    return arrays


def position_permutation(permutation_seed: int = 0) -> np.ndarray:
    """The fixed permutation of the 40 positions used by the shuffled variant; shape [40] int32.

    Drawn by `np.random.default_rng(permutation_seed).permutation(40)`: shuffled
    `x_NxL = x_NxL_original[:, perm_L]` for train and test alike (Greydanus 2020).
    """
    return np.random.default_rng(permutation_seed).permutation(SEQ_LEN).astype(np.int32)


def load_mnist1d(
    seed: int = 42,
    num_samples: int = 5000,
    shuffled: bool = False,
    permutation_seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """MNIST-1D train and test splits: `{"train": {"x", "y"}, "test": {"x", "y"}}`.

    x: shape [N, 40] float32, centred and scaled to unit standard deviation over train and test
    together (as the package does); y: shape [N] int32 in [0, 10), `num_samples / 10` examples of
    each class in train and test together. The defaults (seed 42, 5000 samples) are the package's
    `get_dataset_args()`, giving 4000 train and 1000 test examples. With `shuffled=True` every
    row is permuted by `position_permutation(permutation_seed)`. Generation (~1 s) runs once per
    process per (seed, num_samples); each call returns fresh copies. Source: Greydanus 2020.
    """
    if num_samples < NUM_CLASSES or num_samples % NUM_CLASSES:
        raise ValueError(
            f"num_samples={num_samples}; must be a positive multiple of {NUM_CLASSES} (one"
            " equal share per class)"
        )
    x_train, y_train, x_test, y_test = _generate(int(seed), int(num_samples))
    perm = position_permutation(permutation_seed) if shuffled else np.arange(SEQ_LEN)
    # Fancy indexing copies x, so callers never hold the cached (read-only) arrays.
    return {
        "train": {"x": x_train[:, perm], "y": y_train.copy()},
        "test": {"x": x_test[:, perm], "y": y_test.copy()},
    }
