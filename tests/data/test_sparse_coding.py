"""The sparse-coding data of Rangamani et al. 2018: dictionary, support and value statistics."""

import jax
import numpy as np
import pytest

from dl_theory.data.sparse_coding import (
    coherence,
    gaussian_dictionary,
    sparse_codes,
    sparse_coding_batch,
    two_ortho_dictionary,
)


def test_two_ortho_dictionary_has_unit_columns_and_coherence_one_over_sqrt_n():
    a = two_ortho_dictionary(16)
    assert a.shape == (16, 32)
    np.testing.assert_allclose(np.linalg.norm(a, axis=0), 1.0, atol=1e-12)
    assert coherence(a) == pytest.approx(0.25, abs=1e-12)


def test_two_ortho_dictionary_refuses_a_size_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="n=12; the Sylvester-Hadamard basis needs a power"):
        two_ortho_dictionary(12)


def test_gaussian_dictionary_has_unit_columns():
    a = gaussian_dictionary(jax.random.key(0), 8, 20)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(a), axis=0), 1.0, atol=1e-6)


def test_every_code_has_exactly_k_nonzeros_in_the_value_range():
    codes = np.asarray(sparse_codes(jax.random.key(1), 500, 40, 3, 1.0, 2.0))
    assert np.all(np.sum(codes > 0, axis=1) == 3)
    values = codes[codes > 0]
    assert values.min() >= 1.0 and values.max() <= 2.0
    # Mean of uniform [1, 2] values: 1.5, within 5 standard errors (sd 1/sqrt(12)).
    assert abs(values.mean() - 1.5) < 5 * (1 / np.sqrt(12)) / np.sqrt(values.size)


def test_support_is_uniform_over_units_and_pairs():
    """P(i in S) = k / h and P(i, j in S) = k (k - 1) / (h (h - 1)), within 5 binomial s.e."""
    num, h, k = 20_000, 10, 3
    support = np.asarray(sparse_codes(jax.random.key(2), num, h, k, 1.0, 2.0)) > 0
    q = k / h
    assert np.all(np.abs(support.mean(0) - q) < 5 * np.sqrt(q * (1 - q) / num))
    pairs = (support.T.astype(float) @ support) / num
    q2 = k * (k - 1) / (h * (h - 1))
    off_diagonal = pairs[~np.eye(h, dtype=bool)]
    assert np.all(np.abs(off_diagonal - q2) < 5 * np.sqrt(q2 * (1 - q2) / num))


def test_batch_is_deterministic_and_y_is_the_dictionary_times_the_code():
    a = two_ortho_dictionary(8)
    x1, y1 = sparse_coding_batch(jax.random.key(3), a, 7, 2, 1.0, 2.0)
    x2, y2 = sparse_coding_batch(jax.random.key(3), a, 7, 2, 1.0, 2.0)
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    np.testing.assert_allclose(np.asarray(y1), np.asarray(x1) @ a.T, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="support size k=0 must be in"):
        sparse_codes(jax.random.key(0), 2, 5, 0, 1.0, 2.0)
