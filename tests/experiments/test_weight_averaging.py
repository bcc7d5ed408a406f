"""The weight-averaging experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "weight_averaging"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the randomly moved iterate, the last iterate's flatness,
    the last iterate's own gain from recomputed statistics and the SWA weights with running
    statistics do not satisfy its bound."""
    assert_every_claim_has_a_failing_baseline(quick_run[0])


def test_recomputing_statistics_helps_the_swa_weights_more_than_the_last_iterate(quick_run):
    swa = quick_run[0]["metrics"]["swa"]
    assert swa["bn_stale_ratio"] > swa["bn_iterate_stale_ratio"] > 1.0
