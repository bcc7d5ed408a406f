"""The 8x8 handwritten digits that scikit-learn ships (UCI "Optical Recognition of Handwritten
Digits", Alpaydin & Kaynak 1998): 1797 images, 10 classes, pixel counts 0..16.

The file lives inside the scikit-learn package (a dependency), so nothing is downloaded.
"""

import numpy as np

NUM_CLASSES = 10
_MAX_PIXEL = 16.0  # each pixel counts set bits in a 4x4 block of a 32x32 bitmap


def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_load_digits  # slow import: here

    bunch = sklearn_load_digits()
    return bunch.data, bunch.target


def load_digits(
    seed: int = 0, test_fraction: float = 0.2, as_images: bool = False
) -> dict[str, dict[str, np.ndarray]]:
    """8x8 digits split at random into `{"train": {"x", "y"}, "test": {"x", "y"}}`.

    x = pixels / 16, float32 in [0, 1], shape [N, 64] (or [N, 8, 8, 1], NHWC, with
    `as_images=True`); y: shape [N] int32 in [0, 10). The test split holds
    `round(test_fraction * 1797)` examples picked by `np.random.default_rng(seed)`; the same
    seed gives the same split. Source: Alpaydin & Kaynak 1998, via scikit-learn.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction}; must lie strictly between 0 and 1")
    pixels, labels = _raw_digits()
    x = (pixels / _MAX_PIXEL).astype(np.float32)
    if as_images:
        x = x.reshape(-1, 8, 8, 1)
    y = labels.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    num_test = int(round(test_fraction * len(y)))
    if num_test in (0, len(y)):
        raise ValueError(
            f"test_fraction={test_fraction} leaves {num_test} of {len(y)} examples for test;"
            " both splits must be non-empty"
        )
    test, train = order[:num_test], order[num_test:]
    return {"train": {"x": x[train], "y": y[train]}, "test": {"x": x[test], "y": y[test]}}
