"""Closed forms of dl_theory.theory.quadratic against brute force."""

import numpy as np
import pytest

from dl_theory.theory.quadratic import (
    first_step_below,
    gd_loss_curve,
    linear_regression_noise_scale,
    minibatch_gradient_variance,
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


def test_first_step_below():
    assert first_step_below([4.0, 2.0, 1.0, 0.5], 1.0) == 2
    assert first_step_below([4.0, 2.0], 1.0) is None


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
