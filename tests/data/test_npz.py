"""load_npz: arrays round-trip, and each kind of bad file gets an error that names the problem."""

import numpy as np
import pytest

from dl_theory.data.npz import load_npz


def test_round_trip_with_default_and_custom_keys(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y, features=x * 2, labels=y + 1)
    data = load_npz(tmp_path / "d.npz")
    np.testing.assert_array_equal(data["x"], x)
    np.testing.assert_array_equal(data["y"], y)
    assert data["x"].dtype == np.float32 and data["y"].dtype == np.int64
    custom = load_npz(str(tmp_path / "d.npz"), x_key="features", y_key="labels")
    np.testing.assert_array_equal(custom["x"], x * 2)
    np.testing.assert_array_equal(custom["y"], y + 1)


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "absent.npz"
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_npz(path)


def test_missing_key_names_it_and_the_keys_present(tmp_path):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(KeyError, match=r"'x'.*\['inputs', 'y'\]"):
        load_npz(tmp_path / "d.npz")
    with pytest.raises(KeyError, match=r"'targets'.*\['inputs', 'y'\]"):
        load_npz(tmp_path / "d.npz", x_key="inputs", y_key="targets")


@pytest.mark.parametrize(
    "x_shape, y_shape",
    [((5, 3), (4,)), ((5,), (5,)), ((5, 3), ()), ((2, 8, 8), (3, 10))],
)
def test_bad_shapes_name_both_shapes(tmp_path, x_shape, y_shape):
    np.savez(tmp_path / "d.npz", x=np.zeros(x_shape), y=np.zeros(y_shape))
    with pytest.raises(ValueError) as info:
        load_npz(tmp_path / "d.npz")
    assert str(x_shape) in str(info.value) and str(y_shape) in str(info.value)


def test_images_and_one_hot_targets_are_accepted(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 8, 8, 1)), y=np.eye(3))
    data = load_npz(tmp_path / "d.npz")
    assert data["x"].shape == (3, 8, 8, 1) and data["y"].shape == (3, 3)


def test_single_array_npy_and_pickled_objects_are_refused(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"\(4, 2\).*not an \.npz archive"):
        load_npz(tmp_path / "one.npy")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(tmp_path / "obj.npz")
