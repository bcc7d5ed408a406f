"""Tests for dl_theory/theory/ridgeless.py: closed forms against Monte-Carlo and exact limits."""

import numpy as np
import pytest

from dl_theory.theory import ridgeless

SIGNAL, NOISE = 1.0, 0.25


@pytest.mark.parametrize("gamma", [0.5, 2.0, 4.0])
def test_ridgeless_formula_matches_monte_carlo(gamma):
    n = 100
    risks = ridgeless.least_squares_risk_samples(n, int(gamma * n), [0.0], SIGNAL, NOISE,
                                                 trials=150, seed=3)[0]
    std_error = risks.std() / np.sqrt(risks.size)
    theory = float(ridgeless.ridgeless_risk(gamma, SIGNAL, NOISE))
    finite = ridgeless.ridgeless_risk_finite(n, int(gamma * n), SIGNAL, NOISE)
    # 4 standard errors of Monte-Carlo noise plus the finite-n gap of the asymptotic formula.
    assert abs(risks.mean() - theory) < 4 * std_error + abs(finite - theory)
    assert abs(finite - theory) < 0.03 * theory


@pytest.mark.parametrize("gamma, lam", [(0.5, 0.2), (1.0, 0.1), (2.5, 0.5)])
def test_ridge_formula_matches_monte_carlo(gamma, lam):
    risks = ridgeless.least_squares_risk_samples(150, int(gamma * 150), [lam], SIGNAL, NOISE,
                                                 trials=100, seed=4)[0]
    theory = float(ridgeless.ridge_risk(gamma, lam, SIGNAL, NOISE))
    # Ridge risks concentrate: the O(1/n) finite-size bias is a few percent at n = 150.
    assert abs(risks.mean() - theory) < 0.05 * theory


def test_stieltjes_transform_matches_marchenko_pastur_eigenvalues():
    x = np.random.default_rng(0).standard_normal((400, 800))
    eig = np.linalg.eigvalsh(x.T @ x / 400)  # gamma = 2: half the eigenvalues are ~0
    m, dm = ridgeless.marchenko_pastur_stieltjes(2.0, 0.3)
    np.testing.assert_allclose(m, np.mean(1 / (eig + 0.3)), rtol=0.01)
    np.testing.assert_allclose(dm, np.mean(1 / (eig + 0.3) ** 2), rtol=0.02)


def test_penalties_share_draws_and_ridge_lowers_risk_at_the_peak():
    risks = ridgeless.least_squares_risk_samples(60, 63, [0.0, 0.05, 0.5], SIGNAL, NOISE,
                                                 trials=40, seed=5)
    assert risks.shape == (3, 40)
    # Same X and y: near p = n every draw's min-norm fit is worse than its ridge fits.
    assert np.all(risks[0] > risks[1])


def test_ridge_tends_to_ridgeless_and_optimal_penalty_minimises():
    gamma = np.array([0.3, 0.8, 1.5, 5.0])
    np.testing.assert_allclose(ridgeless.ridge_risk(gamma, 1e-8, SIGNAL, NOISE),
                               ridgeless.ridgeless_risk(gamma, SIGNAL, NOISE), rtol=1e-5)
    for g in gamma:
        best = ridgeless.optimal_ridge_penalty(g, SIGNAL, NOISE)
        lams = best * np.array([0.5, 0.9, 1.0, 1.1, 2.0])
        assert np.argmin(ridgeless.ridge_risk(g, lams, SIGNAL, NOISE)) == 2


def test_ridgeless_closed_form_values_and_peak():
    np.testing.assert_allclose(ridgeless.ridgeless_risk(np.array([0.5, 2.0]), 1.0, 1.0),
                               [1.0, 1.5])  # 0.5/0.5; 1 - 1/2 + 1/1
    assert np.isinf(ridgeless.ridgeless_risk(1.0, 1.0, 1.0))
    assert ridgeless.ridgeless_risk_finite(100, 50, 1.0, 1.0) == pytest.approx(50 / 49)


@pytest.mark.parametrize("call", [
    lambda: ridgeless.ridgeless_risk(-1.0, 1.0, 1.0),
    lambda: ridgeless.ridge_risk(2.0, 0.0, 1.0, 1.0),
    lambda: ridgeless.least_squares_risk_samples(10, 10, [0.1, 0.0], 1.0, 1.0, trials=2),
    lambda: ridgeless.least_squares_risk_samples(10, 20, [-0.1], 1.0, 1.0, trials=2),
])
def test_bad_input_raises(call):
    with pytest.raises(ValueError):
        call()
