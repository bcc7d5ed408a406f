"""The learning-rates experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "learning_rates"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: GD across 2/L, the 1/lr step count, the rotated problem,
    Adagrad's start and the range test's stopping rate do not satisfy its bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_gd_slowdown_is_about_the_ratio_of_rates(quick_run):
    """Steps to tolerance scale like 1 / lr once the slowest mode dominates: the slowdown
    from lr = 1/L to 0.01 * 2/L is near 50 (not merely > 1)."""
    step = quick_run[0]["metrics"]["step_size"]
    assert 40 <= step["slowdown"] <= 60
