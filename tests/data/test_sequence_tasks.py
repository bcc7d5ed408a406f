"""Delayed recall: the signal opens the sequence, noise alphabets, uniformity, the sampler."""

import jax
import numpy as np
import pytest

from dl_theory.data.sequence_tasks import delayed_recall, delayed_recall_sampler


def test_target_is_the_first_token_and_shapes_dtypes():
    batch = delayed_recall(jax.random.key(0), batch_size=64, seq_len=9, num_symbols=3,
                           vocab_size=5)
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    assert x.shape == (64, 9) and y.shape == (64,)
    assert x.dtype == np.int32 and y.dtype == np.int32
    np.testing.assert_array_equal(x[:, 0], y)
    assert y.min() >= 0 and y.max() < 3 and x.min() >= 0 and x.max() < 5


@pytest.mark.parametrize("distinct, low", [(False, 0), (True, 4)])
def test_noise_is_uniform_over_its_alphabet(distinct, low):
    batch = delayed_recall(jax.random.key(1), batch_size=4000, seq_len=11, num_symbols=4,
                           vocab_size=8, distinct_noise=distinct)
    noise = np.asarray(batch["x"])[:, 1:].ravel()
    counts = np.bincount(noise, minlength=8)
    assert counts[:low].sum() == 0
    expected = noise.size / (8 - low)
    # 40,000 draws per alphabet: the binomial standard deviation is < 1% of each count.
    np.testing.assert_allclose(counts[low:], expected, rtol=0.05)
    signal_counts = np.bincount(np.asarray(batch["y"]), minlength=4)
    np.testing.assert_allclose(signal_counts, 1000, rtol=0.1)


def test_signal_is_independent_of_the_noise():
    """Chance is 1/K: given a noise token, y is still uniform, so noise predicts nothing."""
    batch = delayed_recall(jax.random.key(2), batch_size=20000, seq_len=3, num_symbols=2,
                           vocab_size=2)
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    for token in (0, 1):
        assert abs(y[x[:, 1] == token].mean() - 0.5) < 0.02


def test_no_delay_and_sampler_protocol():
    batch = delayed_recall(jax.random.key(3), batch_size=5, seq_len=1)
    np.testing.assert_array_equal(np.asarray(batch["x"])[:, 0], np.asarray(batch["y"]))
    sample = delayed_recall_sampler(seq_len=6, batch_size=7, num_symbols=2, vocab_size=3)
    drawn = jax.jit(sample)(None, jax.random.key(4))
    direct = delayed_recall(jax.random.key(4), 7, 6, 2, 3)
    np.testing.assert_array_equal(np.asarray(drawn["x"]), np.asarray(direct["x"]))
    assert not np.array_equal(np.asarray(sample(None, jax.random.key(5))["x"]),
                              np.asarray(drawn["x"]))


@pytest.mark.parametrize("kwargs, message", [
    (dict(seq_len=0), "seq_len=0"),
    (dict(num_symbols=5, vocab_size=4), "vocab_size=4"),
    (dict(num_symbols=4, vocab_size=4, distinct_noise=True), "vocab_size >= 5"),
    (dict(batch_size=2.0), "batch_size=2.0"),
])
def test_bad_arguments_are_refused(kwargs, message):
    args = dict(seq_len=4, batch_size=3, num_symbols=4, vocab_size=8) | kwargs
    with pytest.raises(ValueError, match=message):
        delayed_recall_sampler(**args)
