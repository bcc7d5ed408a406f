"""Closed forms of dl_theory.theory.quadratic against brute force."""

import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory.quadratic import (
    gd_loss_curve,
    linear_regression_noise_scale,
    minibatch_gradient_variance,
    preconditioned_proximal_gradient,
    preconditioned_step_size,
)


def test_gd_loss_curve_equals_gradient_descent_run_by_hand():
    rng = np.random.default_rng(0)
    eig, w0 = np.array([1.0, 0.3, 0.01]), rng.normal(size=3)
    w, losses = w0.copy(), []
    for _ in range(6):
        losses.append(0.5 * np.sum(eig * w ** 2))
        w = w - 0.7 * eig * w
    np.testing.assert_allclose(gd_loss_curve(eig, w0, 0.7, 5), losses, rtol=1e-12)


@pytest.mark.parametrize("factor, diverges", [(0.9, False), (1.1, True)])
def test_gd_is_stable_iff_lr_below_two_over_lambda_max(factor, diverges):
    eig = np.array([2.0, 0.5])
    curve = gd_loss_curve(eig, np.ones(2), factor * 2.0 / eig.max(), 200)
    assert bool(curve[-1] > curve[0]) == diverges


def test_preconditioned_step_is_one_over_the_scaled_hessians_top_eigenvalue():
    """With D = diag(H) a diagonal H scales to the identity (step 1); without D the step is
    1 / lambda_max(H)."""
    h = np.diag([100.0, 1.0])
    assert preconditioned_step_size(h, np.diag(h)) == pytest.approx(1.0)
    assert preconditioned_step_size(h, np.ones(2)) == pytest.approx(0.01)


def test_preconditioned_proximal_gradient_solves_a_diagonal_lasso_in_one_step():
    """For diagonal H and D = diag(H), eta = 1: w1 = soft-threshold(b / h, lambda / h), the
    lasso's exact minimiser, and the iterates stay there (sup distance 0 from step 1)."""
    h, b, lam = np.array([4.0, 1.0, 2.0]), np.array([8.0, 0.5, -3.0]), 1.0

    def soft(u, tau):
        return jnp.sign(u) * jnp.maximum(jnp.abs(u) - tau, 0.0)

    exact = np.sign(b / h) * np.maximum(np.abs(b / h) - lam / h, 0.0)  # [1.75, 0, -1]
    w, dist = preconditioned_proximal_gradient(np.diag(h), b, soft, h, lam / h, 1.0, 5, exact)
    np.testing.assert_allclose(w, exact, atol=1e-6)
    assert dist.shape == (5,) and float(np.max(dist)) < 1e-6
    _, undamped = preconditioned_proximal_gradient(np.diag(h), b, soft, np.ones(3), lam, 0.25,
                                                   5, exact)
    assert float(undamped[0]) > 0.1  # without D the small-curvature coordinates lag


def test_minibatch_variance_is_trace_over_b_by_enumeration():
    """All 3^2 ordered batches of size 2 drawn with replacement from 3 gradients."""
    g = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    mean = g.mean(0)
    brute = np.mean([np.sum(((g[i] + g[j]) / 2 - mean) ** 2) for i in range(3) for j in range(3)])
    assert minibatch_gradient_variance(g, 2) == pytest.approx(brute)
    assert minibatch_gradient_variance(g, 1) == pytest.approx(2 * brute)


def test_linear_regression_noise_scale_matches_monte_carlo():
    rng = np.random.default_rng(1)
    d, n, sigma = 3, 400_000, 0.5
    delta = np.array([1.0, -1.0, 0.5])
    x = rng.normal(size=(n, d))
    g = 2.0 * (x @ delta - sigma * rng.normal(size=n))[:, None] * x
    mc = minibatch_gradient_variance(g, 1) / np.sum(g.mean(0) ** 2)
    closed = linear_regression_noise_scale(d, float(delta @ delta), sigma ** 2)
    assert mc == pytest.approx(closed, rel=0.03)


@pytest.mark.parametrize("args", [(0, 1.0, 1.0), (2, 0.0, 1.0), (2, 1.0, -1.0)])
def test_noise_scale_rejects_bad_input(args):
    with pytest.raises(ValueError):
        linear_regression_noise_scale(*args)
