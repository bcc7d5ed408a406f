"""The regularisation experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "regularisation"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    """Dropout and L2 hold; early stopping's reduction is within 2 standard errors (a negative
    result, pinned here so that the spec is revisited if it starts to hold)."""
    payload, _ = quick_run
    assert_every_claim_holds(payload)
    verdicts = {c["id"]: c["holds"] for c in payload["claims"]}
    assert verdicts == {"early_stopping_shrinks_gap": False, "dropout_shrinks_gap": True,
                        "l2_shrinks_gap": True}


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each regularised gap is judged against the plain gap less 2 standard errors (at least
    the floor), so the plain gap itself, recorded as the baseline, fails every bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    floor = payload["config"]["regularisation"]["std_error_floor"]
    plain = payload["metrics"]["regularisation"]["gap"]["plain"]
    for claim in payload["claims"]:
        assert claim["baseline"] == plain
        assert claim["at_most"] <= plain - 2 * floor
