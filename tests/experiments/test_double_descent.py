"""The double-descent experiment's quick preset, end to end."""

import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "double_descent"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the other theorem's closed form, ridge's flat risk, the
    damping ratio far from the peak and the training-error curve all miss the bounds."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_closed_form_tolerances_reject_the_other_theorem_by_a_wide_margin(quick_run):
    """Near the peak Thm 1 and Thm 5 differ several-fold, so each measured curve misses the
    other theorem's by far more than its tolerance; far from the peak ridge barely helps."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    config = payload["config"]["linear"]
    assert claims["ridgeless_matches_hastie"]["baseline"] > 3 * config["max_rel_deviation"]
    assert claims["ridge_matches_closed_form"]["baseline"] > 3 * config["ridge_max_rel_deviation"]
    assert 0.9 < claims["ridge_damps_peak"]["baseline"] < 1.1


def test_tolerance_is_justified_by_finite_size_gap_and_monte_carlo_error(quick_run):
    """The stated tolerance must exceed, at every gamma it covers, the finite-n gap of the
    asymptotic formula plus 2 Monte-Carlo standard errors (both relative)."""
    payload, _ = quick_run
    m = payload["metrics"]["linear"]
    away = np.asarray(m["away_from_singularity"])
    allowance = (np.asarray(m["finite_n_rel_gap"]) + 2 * np.asarray(m["ridgeless_rel_std_error"]))
    assert allowance[away].max() < payload["config"]["linear"]["max_rel_deviation"]


def test_measured_risk_is_below_null_risk_far_from_the_peak(quick_run):
    """For gamma >= 2 the min-norm risk is below the null risk r^2 (the zero estimator)."""
    payload, _ = quick_run
    m = payload["metrics"]["linear"]
    signal = payload["config"]["linear"]["signal"]
    for g, r in zip(m["gamma"], m["ridgeless_mean"]):
        if g >= 2:
            assert r < signal, (g, r)


def test_peaks_are_resolved_in_standard_errors_and_their_baselines_have_none(quick_run):
    """Min-norm risk: both gammas nearest 1 beat every other by > 2 s.e. (ridge: no peak).
    MLP: the test-error peak within one doubling of the interpolation width beats every width
    outside by > 2 s.e. of ~0.0065 (4,500 test points); the training error has no such peak."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    linear, mlp = claims["ridgeless_peaks_at_interpolation"], claims["mlp_peak_near_interpolation"]
    assert linear["measured"] > 5 and linear["baseline"] < 0 and not linear["baseline_holds"]
    assert mlp["measured"] >= 2 and mlp["baseline"] < 0 and not mlp["baseline_holds"]
    m = payload["metrics"]["mlp"]
    assert m["num_test"] == 4500 and max(m["test_std_error"]) < 0.012
    assert (m["interpolation_width"], m["peak_width"]) == (64, 128)
    fall = claims["mlp_error_falls_beyond_peak"]
    assert fall["baseline"] == 0.0 and fall["baseline_holds"] is False
