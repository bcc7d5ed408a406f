"""The weight-averaging experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "weight_averaging"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_controls_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim with a control could have failed: the randomly moved iterate, the last
    iterate's flatness, the SWA weights with running statistics. The batch-norm statistics
    claim has none that its bound rejects (the module docstring says why)."""
    claims = {c["id"]: c for c in quick_run[0]["claims"]}
    controlled = {i for i, c in claims.items() if c["baseline"] is not None}
    assert controlled == set(claims) - {"swa_bn_needs_recomputed_stats"}
    for claim_id in controlled:
        assert claims[claim_id]["baseline_holds"] is False, claims[claim_id]


def test_recomputing_statistics_helps_the_swa_weights_more_than_the_last_iterate(quick_run):
    swa = quick_run[0]["metrics"]["swa"]
    assert swa["bn_stale_ratio"] > swa["bn_iterate_stale_ratio"] > 1.0
