"""The advantage-of-depth experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "advantage_of_depth"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_square_error_is_exactly_dyadic(quick_run):
    metrics = quick_run[0]["metrics"]["constructions"]
    for m, error in zip(metrics["square_depths"], metrics["square_sup_error"]):
        assert error == 2.0 ** (-2 * m - 2)
    # 12m - 2 parameters: a width-3 layer per unit of depth.
    assert metrics["square_params"] == [12 * m - 2 for m in metrics["square_depths"]]


def test_far_inside_claims_record_baselines_that_fail(quick_run):
    """The exact closed form rejects an off-by-one exponent (relative error 3); at the smallest
    depth the best shallow net beats the construction (ratio 1/8)."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    closed = claims["square_error_closed_form"]
    assert closed["baseline"] == 3.0 and closed["baseline_holds"] is False
    equal = claims["deep_beats_any_shallow_at_equal_parameters"]
    assert equal["baseline"] == pytest.approx(0.125) and equal["baseline_holds"] is False
