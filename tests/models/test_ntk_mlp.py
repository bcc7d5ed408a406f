"""Tests for dl_theory/models/ntk_mlp.py: the forward pass equals its formula, and the read-out
multiplier sets the kernel's width scaling (O(1) under ntk, O(1/n) under mean_field)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models.ntk_mlp import NTKMLP, learning_rate_scale, readout_multiplier
from dl_theory.theory import ntk

X = jax.random.normal(jax.random.key(0), (5, 3))


def test_forward_pass_equals_formula():
    model = NTKMLP(widths=(7, 4), out_dim=2, activation="tanh", output_scale=3.0,
                   bias_scale=0.5)
    p = model.init(jax.random.key(1), X)["params"]
    h = jnp.tanh(X @ p["hidden_0_kernel"] / np.sqrt(3) + 0.5 * p["hidden_0_bias"][None])
    h = jnp.tanh(h @ p["hidden_1_kernel"] / np.sqrt(7) + 0.5 * p["hidden_1_bias"][None])
    expected = 3.0 / np.sqrt(4) * h @ p["readout_kernel"]
    np.testing.assert_allclose(model.apply({"params": p}, X), expected, rtol=1e-5, atol=1e-6)
    assert "readout_bias" not in p


def test_parameters_are_standard_normal():
    p = NTKMLP(widths=(512,)).init(jax.random.key(2), X)["params"]
    w = np.asarray(p["hidden_0_kernel"])
    assert w.shape == (3, 512)
    assert abs(w.mean()) < 0.05 and abs(w.std() - 1.0) < 0.05


def test_mean_field_output_is_ntk_output_over_sqrt_width():
    width = 64
    ntk_model = NTKMLP(widths=(width,), param_scaling="ntk")
    mf_model = NTKMLP(widths=(width,), param_scaling="mean_field")
    p = ntk_model.init(jax.random.key(3), X)["params"]
    np.testing.assert_allclose(mf_model.apply({"params": p}, X) * np.sqrt(width),
                               ntk_model.apply({"params": p}, X), rtol=1e-5)


def _mean_diagonal_kernel(scaling: str, width: int) -> float:
    """mean_x Theta(x, x), averaged over 4 initialisations."""
    model = NTKMLP(widths=(width,), param_scaling=scaling)

    def apply_fn(q, x):
        return model.apply({"params": q}, x)[:, 0]

    values = [jnp.mean(jnp.diag(ntk.empirical_ntk(
        apply_fn, model.init(jax.random.key(seed), X)["params"], X))) for seed in range(4)]
    return float(np.mean(values))


def test_kernel_is_width_independent_under_ntk_and_shrinks_as_one_over_width_under_mf():
    small, large = 256, 4096
    ntk_ratio = _mean_diagonal_kernel("ntk", large) / _mean_diagonal_kernel("ntk", small)
    mf_ratio = _mean_diagonal_kernel("mean_field", large) / _mean_diagonal_kernel(
        "mean_field", small)
    # Theta = (1/n) sum_i (...) is a sample mean over n units: ~12% fluctuation per draw at
    # n = 256, ~6% for the mean of 4 draws; the wrong scaling would be off by a factor 16.
    assert abs(ntk_ratio - 1.0) < 0.15
    assert abs(mf_ratio * large / small - 1.0) < 0.15


def test_multipliers_and_learning_rate_scale():
    assert readout_multiplier("ntk", 16) == 0.25
    assert readout_multiplier("mean_field", 16) == 1 / 16
    assert learning_rate_scale("ntk", 16) == 1.0
    assert learning_rate_scale("mean_field", 16) == 16.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=(4,), param_scaling="mup"), "param_scaling='mup'"),
    (dict(widths=()), "at least one hidden layer"),
    (dict(widths=(4,), output_scale=0.0), "output_scale=0.0"),
    (dict(widths=(4,), activation="swish"), "activation='swish'"),
])
def test_bad_configuration_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NTKMLP(**kwargs)
