"""The weight-tied ReLU autoencoder's gradient, its Monte Carlo moments, support recovery and
distances (Rangamani et al. 2018), against hand computations and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.data.sparse_coding import sparse_coding_batch, two_ortho_dictionary
from dl_theory.models.tied_autoencoder import squared_loss
from dl_theory.theory.sparse_coding import (
    closed_form_gradient,
    columnwise_distance,
    expected_gradient_norm,
    rows_at_distance,
    support_recovery,
    theorem_bias,
)


def test_gradient_of_a_one_unit_autoencoder_by_hand():
    """W = 2, y = 1, eps = 0.5: r = 1.5, y_hat = 3, e = 2; L = 2 and
    dL/dW = r e + W e y = 3 + 4 = 7."""
    w, y = jnp.array([[2.0]]), jnp.array([[1.0]])
    assert float(squared_loss(w, y, 0.5)) == pytest.approx(2.0)
    assert float(closed_form_gradient(w, y, 0.5)[0, 0]) == pytest.approx(7.0)
    assert float(jax.grad(squared_loss)(w, y, 0.5)[0, 0]) == pytest.approx(7.0)


def test_closed_form_gradient_equals_jax_grad_and_finite_differences():
    with jax.enable_x64(True):
        a = jnp.asarray(two_ortho_dictionary(4))
        _, y = sparse_coding_batch(jax.random.key(0), a, 6, 2, 1.0, 2.0)
        w = rows_at_distance(jax.random.key(1), a, 0.4)
        bias = 0.2
        closed = closed_form_gradient(w, y, bias)
        np.testing.assert_allclose(closed, jax.grad(squared_loss)(w, y, bias), atol=1e-12)
        step = 1e-6
        for i, j in [(0, 0), (3, 2), (7, 1)]:
            bump = jnp.zeros_like(w).at[i, j].set(step)
            numeric = (squared_loss(w + bump, y, bias) - squared_loss(w - bump, y, bias)) / (
                2 * step)
            assert float(closed[i, j]) == pytest.approx(float(numeric), abs=1e-7)


def test_expected_gradient_norm_matches_the_per_sample_computation():
    """The debiased squared norms (full and tangent) equal the formula evaluated on explicit
    per-sample gradients."""
    with jax.enable_x64(True):
        a = jnp.asarray(two_ortho_dictionary(4))
        _, y = sparse_coding_batch(jax.random.key(2), a, 9, 2, 1.0, 2.0)
        w = rows_at_distance(jax.random.key(3), a, 0.3)
        bias = 0.1
        stats = expected_gradient_norm(w, [y[:4], y[4:]], bias)
        per = np.stack([np.asarray(closed_form_gradient(w, y[s:s + 1], bias))
                        for s in range(9)])
        unit = np.asarray(w) / np.linalg.norm(np.asarray(w), axis=1, keepdims=True)
        tangent = per - np.sum(per * unit, axis=2, keepdims=True) * unit
        for name, g in (("full", per), ("tangent", tangent)):
            mean = g.mean(0)
            trace = np.sum((g - mean) ** 2) / 8
            assert stats[name]["squared"] == pytest.approx(np.sum(mean**2) - trace / 9,
                                                           rel=1e-9)
            assert stats[name]["noise"] == pytest.approx(np.sqrt(trace / 9), rel=1e-9)


def test_identical_samples_have_no_noise_and_debiasing_changes_nothing():
    with jax.enable_x64(True):
        a = jnp.asarray(two_ortho_dictionary(4))
        _, y = sparse_coding_batch(jax.random.key(4), a, 1, 2, 1.0, 2.0)
        w = rows_at_distance(jax.random.key(5), a, 0.5)
        stats = expected_gradient_norm(w, [jnp.tile(y, (5, 1))], 0.1)["full"]
        assert stats["noise"] == pytest.approx(0.0, abs=1e-12)
        assert stats["norm"] == pytest.approx(float(jnp.linalg.norm(
            closed_form_gradient(w, y, 0.1))), rel=1e-12)


def test_rows_at_distance_are_unit_and_exactly_that_far():
    a = two_ortho_dictionary(8)
    w = rows_at_distance(jax.random.key(6), jnp.asarray(a), 0.7)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(w), axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(columnwise_distance(w, a), 0.7, atol=1e-6)
    np.testing.assert_allclose(columnwise_distance(2.0 * w, a, normalise=True), 0.7, atol=1e-6)


def test_support_is_recovered_at_the_dictionary_in_the_certain_regime():
    """n = 64: mu/sqrt(n) = 1/8; k = 2 values in [1, 2]: a support unit gets >= 1 - 2/8 and an
    off-support one <= 2 * 2/8, both on their side of eps = 2 * 1.5 * 2/8 = 0.75."""
    a = jnp.asarray(two_ortho_dictionary(64), jnp.float32)
    codes, y = sparse_coding_batch(jax.random.key(7), a, 300, 2, 1.0, 2.0)
    bias = theorem_bias(2, 1.5, 0.0, 1 / 8)
    assert bias == pytest.approx(0.75)
    exact, wrong = support_recovery(a.T, codes, y, bias)
    assert bool(jnp.all(exact)) and int(jnp.sum(wrong)) == 0
    exact_zero_bias, _ = support_recovery(a.T, codes, y, 0.0)
    assert float(jnp.mean(exact_zero_bias)) < 0.05
