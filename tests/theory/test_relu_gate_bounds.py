"""The ReLU-gate bounds: the symmetry identities they rest on (exact on a symmetrised sample),
closed forms for Gaussian moments, and the poisoning recursion's limits."""

import math

import numpy as np

from dl_theory.theory import relu_gate_bounds as bounds

GAUSSIAN_10 = bounds.InputMoments(lambda_min=1.0, lambda_max=1.0, gamma=12.0, second_moment=10.0)


def _relu(z):
    return np.maximum(z, 0.0)


def test_symmetry_identities_hold_exactly_on_a_symmetrised_sample():
    rng = np.random.default_rng(0)
    half = rng.standard_t(df=5, size=(500, 6)) * rng.uniform(0.5, 2.0, size=6)  # not Gaussian
    x = np.concatenate([half, -half])  # the empirical law is symmetric about 0
    w, w_star = rng.normal(size=6), rng.normal(size=6)
    delta, sigma = w - w_star, x.T @ x / len(x)
    g = (_relu(x @ w) - _relu(x @ w_star))[:, None] * x
    np.testing.assert_allclose(g.mean(axis=0), sigma @ delta / 2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g.mean(axis=0) @ delta, delta @ sigma @ delta / 2, rtol=1e-12)


def test_monte_carlo_moments_of_a_gaussian_match_the_closed_form():
    x = np.random.default_rng(1).normal(size=(200_000, 10))
    mom = bounds.input_moments(x)
    # lambda(E[x x^T]) = 1 and E[|x|^2 x x^T] = (d + 2) I for N(0, I_d); the extreme sample
    # eigenvalues of 2e5 draws sit within ~2 sqrt(d / n) = 1.4 % of 1.
    assert 0.97 < mom.lambda_min <= mom.lambda_max < 1.03
    assert abs(mom.gamma - 12.0) < 0.6 and abs(mom.second_moment - 10.0) < 0.05


def test_contraction_factor_and_best_step_by_hand():
    # a2 = (1 - 1/16) / 4 + 12 / 16 = 0.984375; eta* = 1 / (2 a2); rho* = 1 - 1 / (4 a2).
    a2 = 0.984375
    assert math.isclose(bounds.best_step_size(16, GAUSSIAN_10), 1 / (2 * a2))
    assert math.isclose(bounds.contraction_factor(0.5, 16, GAUSSIAN_10), 1 - 0.5 + 0.25 * a2)
    eta = bounds.best_step_size(16, GAUSSIAN_10)
    assert math.isclose(bounds.log_error_slope_bound(eta, 16, GAUSSIAN_10),
                        0.5 * math.log(1 - 1 / (4 * a2)))


def test_unpoisoned_bound_is_the_geometric_one():
    rho = bounds.contraction_factor(0.3, 16, GAUSSIAN_10)
    bound = bounds.poisoned_mean_square_bound(0.3, 16, GAUSSIAN_10, 0.0, 0.0, 2.0, 50)
    np.testing.assert_allclose(bound, 2.0 * rho ** np.arange(51), rtol=1e-12)


def test_poisoned_radius_tends_to_two_beta_theta_kappa_over_lambda_for_small_steps():
    eta, beta, theta = 1e-4, 0.2, 0.5
    bound = bounds.poisoned_mean_square_bound(eta, 16, GAUSSIAN_10, beta, theta, 0.0, 400_000)
    assert math.isclose(math.sqrt(bound[-1]), 2 * beta * theta, rel_tol=0.02)
    bigger = bounds.poisoned_mean_square_bound(eta, 16, GAUSSIAN_10, 2 * beta, theta, 0.0,
                                               400_000)
    assert bigger[-1] > bound[-1]
