"""The implicit_models experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "implicit_models"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: its recorded baseline (a dense A, L - 1 steps, a norm above
    kappa, random-sign A, the unscaled norm, the well-posed equation) does not satisfy the
    bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_kappa_outside_the_contraction_regime_is_refused():
    assert_config_refused(EXPERIMENT, {"contraction.kappas": (0.5, 1.5)},
                          "contraction.kappas=(0.5, 1.5); allowed: numbers in (0, 1)")
