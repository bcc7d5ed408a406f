"""The gradient-clipping experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "gradient_clipping"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: clipped SGD does not diverge, the untrained net is worse
    than the constant predictor, the unclipped update exceeds lr * c."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
