"""Rate fits and bootstrap intervals."""

import numpy as np
import pytest

from dl_theory.uncertainty import (
    binomial_difference_se,
    bootstrap_mean,
    fit_loglog_slope,
    wilson_interval,
)


def test_exact_power_law_gives_exact_slope_and_degenerate_interval():
    x = np.array([2.0, 4.0, 8.0, 16.0])
    est = fit_loglog_slope(x, np.stack([3.0 * x**-1.5, 3.0 * x**-1.5]))
    assert est.value == pytest.approx(-1.5, abs=1e-12)
    assert est.lo == pytest.approx(-1.5, abs=1e-12) and est.hi == pytest.approx(-1.5, abs=1e-12)
    # Seeds that differ by a constant factor: the geometric mean keeps the exponent exact,
    # while the runs' spread (independent at each x) widens the interval.
    spread = fit_loglog_slope(x, np.stack([3.0 * x**-1.5, 5.0 * x**-1.5]))
    assert spread.value == pytest.approx(-1.5, abs=1e-12) and spread.lo < -1.5 < spread.hi


def test_interval_covers_true_slope_under_seed_noise():
    rng = np.random.default_rng(0)
    x = np.array([2.0, 4.0, 8.0, 16.0, 32.0])
    y = x[None] ** -1.0 * np.exp(0.2 * rng.standard_normal((5, 5)))
    est = fit_loglog_slope(x, y)
    assert est.lo < -1.0 < est.hi
    assert est.hi - est.lo < 0.5


def test_single_replicate_uses_residual_bootstrap():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    y = x**-2.0 * np.exp(0.05 * np.array([1, -1, 1, -1, 1, -1]))
    est = fit_loglog_slope(x, y)
    assert est.lo <= est.value <= est.hi
    assert est.lo < -1.9 and est.hi > -2.1 and est.hi - est.lo < 0.2


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="positive"):
        fit_loglog_slope([1.0, 2.0], [[1.0, -1.0]])
    with pytest.raises(ValueError, match="shape"):
        fit_loglog_slope([1.0, 2.0, 3.0], [[1.0, 2.0]])


def test_bootstrap_mean_interval_contains_mean():
    est = bootstrap_mean([1.0, 2.0, 3.0, 4.0])
    assert est.value == 2.5 and est.lo < 2.5 < est.hi


def test_standard_error_of_a_mean_and_nan_without_a_spread():
    from dl_theory.uncertainty import standard_error

    assert np.isclose(standard_error([1.0, 3.0]), 1.0)  # s = sqrt(2), / sqrt(2)
    assert np.isnan(standard_error([2.0]))


def test_wilson_interval_matches_hand_values():
    """0 of 10: [0, z^2 / (n + z^2)] = [0, 0.2775]; 5 of 10: 0.5 +- 0.2634 (Wilson 1927)."""
    zero = wilson_interval(0, 10)
    assert (zero.value, zero.lo) == (0.0, 0.0)
    assert zero.hi == pytest.approx(1.96 ** 2 / (10 + 1.96 ** 2), rel=1e-12)
    half = wilson_interval(5, 10)
    assert (half.lo, half.hi) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    with pytest.raises(ValueError, match="successes=11"):
        wilson_interval(11, 10)


def test_semilog_slope_of_an_exact_geometric_decay_is_its_log_rate():
    from dl_theory.uncertainty import fit_semilog_slope

    t = np.arange(20.0)
    est = fit_semilog_slope(t, np.stack([2.0 * 0.8**t, 2.0 * 0.8**t]))
    assert abs(est.value - np.log(0.8)) < 1e-12 and abs(est.hi - est.lo) < 1e-12
    spread = fit_semilog_slope(t, np.stack([2.0 * 0.8**t, 2.0 * 0.7**t]))
    assert spread.lo < (np.log(0.8) + np.log(0.7)) / 2 < spread.hi


def test_binomial_difference_se_by_hand():
    """p = 0.5 over 200 trials each: sqrt(2 * 0.25 / 200) = 0.05; p = 0 or 1 has none."""
    assert binomial_difference_se(0.5, 200) == pytest.approx(0.05)
    assert binomial_difference_se(1.0, 200) == 0.0
