"""The implicit_training experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "implicit_training"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: its recorded baseline (a short unrolled gradient, the
    other gradient's memory, an untrained model) does not satisfy the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_memory_of_unrolled_backprop_grows_and_implicit_stays(quick_run):
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    assert claims["implicit_memory_constant"]["measured"] == 1.0
    assert claims["implicit_memory_constant"]["baseline"] > 2.0


@pytest.mark.parametrize("key, value", [("mnist1d.kappa", 1.5), ("gradients.kappa", 0.0)])
def test_kappa_outside_the_contraction_regime_is_refused(key, value):
    assert_config_refused(EXPERIMENT, {key: value}, f"{key}={value}; allowed: numbers in")
