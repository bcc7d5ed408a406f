"""Synthetic targets: exact Barron constants, determinism, scales."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.data import synthetic


@pytest.mark.parametrize("dim", [1, 2, 8, 32])
def test_barron_constant_is_the_frequency_in_every_dimension(dim):
    target = synthetic.barron_ridge(dim, frequency=3.0)
    assert target.info["barron_constant"] == pytest.approx(3.0, rel=1e-6)
    batch = target.sample(jax.random.PRNGKey(0), 100)
    assert batch["x"].shape == (100, dim) and batch["y"].shape == (100, 1)
    assert float(jnp.abs(batch["x"]).max()) <= 1.0
    # |f| <= sum |a_k| = 1
    assert float(jnp.abs(batch["y"]).max()) <= 1.0 + 1e-6


def test_split_is_deterministic_and_train_differs_from_test():
    target = synthetic.smooth_1d("runge")
    (a_train, a_test), (b_train, _) = target.split(50, 20, seed=3), target.split(50, 20, seed=3)
    np.testing.assert_array_equal(a_train["x"], b_train["x"])
    assert not np.allclose(a_train["x"][:20], a_test["x"])


def test_smooth_targets_match_their_formulas():
    x = jnp.linspace(-1, 1, 11)[:, None]
    np.testing.assert_allclose(synthetic.smooth_1d("runge").fn(x), 1 / (1 + 25 * x**2), rtol=1e-6)
    np.testing.assert_allclose(synthetic.smooth_1d("abs").fn(x), jnp.abs(x))


def test_teacher_output_has_unit_scale():
    target = synthetic.teacher_network(8, width=32, depth=3)
    y = target.sample(jax.random.PRNGKey(5), 20000)["y"]
    assert float(jnp.std(y)) == pytest.approx(1.0, abs=0.05)


def test_fresh_sampler_draws_new_points_every_key():
    sample = synthetic.smooth_1d("sine").sampler(8)
    a, b = sample(None, jax.random.PRNGKey(0)), sample(None, jax.random.PRNGKey(1))
    assert a["x"].shape == (8, 1) and not np.allclose(a["x"], b["x"])


def test_unknown_target_is_named():
    with pytest.raises(ValueError, match="known"):
        synthetic.smooth_1d("weierstrass")


def test_badly_scaled_sparse_regression_is_deterministic_and_ill_conditioned():
    """Same seed, same arrays; the Hessian's condition number grows with the scales' spread."""
    x, y = synthetic.badly_scaled_sparse_regression(200, 10, 3, 2.0, seed=0)
    x2, y2 = synthetic.badly_scaled_sparse_regression(200, 10, 3, 2.0, seed=0)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.shape == (200, 10) and y.shape == (200,) and x.dtype == np.float64
    flat, _ = synthetic.badly_scaled_sparse_regression(200, 10, 3, 0.0, seed=0)
    assert np.linalg.cond(x.T @ x) > 100 * np.linalg.cond(flat.T @ flat)
