"""MNIST-1D: generated offline, package defaults, deterministic, shuffled = fixed permutation."""

import socket

import numpy as np
import pytest

from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN, load_mnist1d, position_permutation


@pytest.fixture(scope="module")
def default_data():
    return load_mnist1d()


def test_default_split_shapes_dtypes_and_class_balance(default_data):
    train, test = default_data["train"], default_data["test"]
    assert train["x"].shape == (4000, SEQ_LEN) and test["x"].shape == (1000, SEQ_LEN)
    assert train["y"].shape == (4000,) and test["y"].shape == (1000,)
    assert train["x"].dtype == np.float32 and train["y"].dtype == np.int32
    y = np.concatenate([train["y"], test["y"]])
    assert y.min() == 0 and y.max() == NUM_CLASSES - 1
    np.testing.assert_array_equal(np.bincount(y), np.full(NUM_CLASSES, 500))


def test_whole_set_is_standardised(default_data):
    x = np.concatenate([default_data["train"]["x"], default_data["test"]["x"]]).astype(np.float64)
    assert abs(x.mean()) < 1e-6
    assert x.std() == pytest.approx(1.0, abs=1e-6)


def test_seed_42_matches_golden_values(default_data):
    # Golden numbers from mnist1d 0.0.2.post1 (numpy's legacy RandomState stream is frozen).
    # If the package changes its generator, regenerate them and say so in the commit.
    np.testing.assert_array_equal(
        default_data["train"]["y"][:12], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9]
    )
    np.testing.assert_array_equal(default_data["test"]["y"][:5], [2, 6, 3, 9, 4])
    np.testing.assert_allclose(
        default_data["train"]["x"][0, :3], [-0.33200568, -0.47191036, -0.7786971], atol=1e-5
    )


def test_other_seed_gives_other_data(default_data):
    other = load_mnist1d(seed=0)
    assert not np.array_equal(other["train"]["y"], default_data["train"]["y"])
    assert np.abs(other["train"]["x"] - default_data["train"]["x"]).max() > 0.5


def test_shuffled_is_one_fixed_permutation_of_positions(default_data):
    shuffled = load_mnist1d(shuffled=True)
    perm = position_permutation(0)
    assert sorted(perm.tolist()) == list(range(SEQ_LEN))
    assert (perm != np.arange(SEQ_LEN)).sum() > SEQ_LEN // 2
    for split in ("train", "test"):
        original, moved = default_data[split], shuffled[split]
        np.testing.assert_array_equal(moved["x"], original["x"][:, perm])
        np.testing.assert_array_equal(np.sort(moved["x"], axis=1), np.sort(original["x"], axis=1))
        np.testing.assert_array_equal(moved["y"], original["y"])
    assert not np.array_equal(shuffled["train"]["x"], default_data["train"]["x"])
    assert not np.array_equal(position_permutation(1), perm)


def test_callers_get_copies_not_the_cache():
    first = load_mnist1d()
    first["train"]["x"][0, 0] = 1e6
    first["train"]["y"][0] = 99
    fresh = load_mnist1d()
    assert fresh["train"]["x"][0, 0] != 1e6 and fresh["train"]["y"][0] == 2


def test_global_numpy_and_python_rng_streams_are_left_alone():
    import random

    np.random.seed(123)
    random.seed(123)
    expected = (np.random.rand(), random.random())
    np.random.seed(123)
    random.seed(123)
    load_mnist1d(seed=11, num_samples=100)  # a seed no other test caches, so it generates
    assert (np.random.rand(), random.random()) == expected


def test_generation_touches_no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("MNIST-1D tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    data = load_mnist1d(seed=12, num_samples=100)
    assert data["train"]["x"].shape == (80, SEQ_LEN) and data["test"]["x"].shape == (20, SEQ_LEN)


@pytest.mark.parametrize("num_samples", [0, 5, 105])
def test_num_samples_not_a_positive_multiple_of_ten_is_refused(num_samples):
    with pytest.raises(ValueError, match=f"num_samples={num_samples}"):
        load_mnist1d(num_samples=num_samples)
