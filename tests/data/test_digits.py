"""8x8 digits from scikit-learn: shapes, ranges, a seeded split, and the missing-extra message."""


import numpy as np
import pytest

from dl_theory.data.digits import NUM_CLASSES, load_digits


def test_split_sizes_shapes_and_ranges():
    data = load_digits(seed=0, test_fraction=0.2)
    train, test = data["train"], data["test"]
    assert train["x"].shape == (1438, 64) and test["x"].shape == (359, 64)
    assert train["x"].dtype == np.float32 and train["y"].dtype == np.int32
    x = np.concatenate([train["x"], test["x"]])
    assert x.min() == 0.0 and x.max() == 1.0
    # Pixels are counts 0..16 divided by 16: every value is a multiple of 1/16.
    np.testing.assert_array_equal(x * 16, np.round(x * 16))
    y = np.concatenate([train["y"], test["y"]])
    assert set(np.unique(y).tolist()) == set(range(NUM_CLASSES))
    # The scikit-learn copy of the UCI set has 178 zeros and 182 ones.
    assert np.bincount(y)[:2].tolist() == [178, 182]


def test_split_is_a_partition_fixed_by_the_seed():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    for split in ("train", "test"):
        np.testing.assert_array_equal(a[split]["x"], b[split]["x"])
        np.testing.assert_array_equal(a[split]["y"], b[split]["y"])
    assert not np.array_equal(a["test"]["x"], c["test"]["x"])
    # Both seeds split the same 1797 images: equal multisets of rows.
    def rows(data):
        return sorted(r.tobytes() for r in np.concatenate([data["train"]["x"], data["test"]["x"]]))

    assert len(rows(a)) == 1797 and rows(a) == rows(c)


def test_images_are_the_flat_rows_reshaped():
    flat, images = load_digits(seed=1), load_digits(seed=1, as_images=True)
    assert images["train"]["x"].shape == (1438, 8, 8, 1)
    np.testing.assert_array_equal(images["train"]["x"].reshape(-1, 64), flat["train"]["x"])


@pytest.mark.parametrize("test_fraction", [0.0, 1.0, 1e-4])
def test_bad_test_fraction_is_refused(test_fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=test_fraction)
