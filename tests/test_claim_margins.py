"""The inside factor of a claim and the check that a far-inside claim says why and can fail."""

import math

import pytest

from dl_theory.claim_margins import inside_factor, unexplained_margins
from dl_theory.experiment import ClaimSpec, Measured, judge_claims


@pytest.mark.parametrize("value, at_least, at_most, factor", [
    (0.01, None, 1.0, 100.0),           # error 100x below its ceiling
    (5.0, 1.0, None, 5.0),              # ratio 5x above its floor
    (2.0, None, 1.0, 0.5),              # a failing claim is inside by less than 1
    (-1.0, None, -0.5, 2.0),            # slope <= -0.5 measured -1: magnitudes
    (-0.75, -2.3, None, 2.3 / 0.75),    # slope >= -2.3 measured -0.75
    (0.0, None, 1e-9, math.inf),        # exactly zero against a rounding tolerance
    (0.01, -0.25, None, math.inf),      # across zero on the passing side
    (-0.01, 0.25, None, 0.0),           # across zero on the failing side
    (1.04, 0.8, 1.2, 1.2 / 1.04),       # a range: the nearer wall
    (0.002, -0.1, 0.1, 50.0),           # "approximately zero": |bound| / |value|
])
def test_inside_factor(value, at_least, at_most, factor):
    assert inside_factor(value, at_least, at_most) == pytest.approx(factor)


@pytest.mark.parametrize("value, at_least, at_most", [
    (-0.3, None, 0.0), (0.0, 0.0, 0.0), (math.nan, None, 1.0), (math.inf, 1.0, None)])
def test_sign_bounds_and_non_finite_values_have_no_factor(value, at_least, at_most):
    assert inside_factor(value, at_least, at_most) is None


def _records(value, **measured_kwargs):
    spec = ClaimSpec("c", "error below the bound", "here", at_most=1.0)
    (claim,) = judge_claims((spec,), None, {"c": Measured(value, **measured_kwargs)})
    return [claim.to_json()]


def test_judged_claims_record_their_numeric_bound():
    (record,) = _records(0.5, at_most=0.7)  # a tolerance measured in the run overrides
    assert (record["at_least"], record["at_most"]) == (None, 0.7)


def test_far_inside_claim_needs_a_reason_and_a_failing_baseline():
    far = _records(1e-3, baseline=0.9, baseline_name="a passing baseline")
    (problem,) = unexplained_margins(far, {"c": ""})
    assert "1e+03x inside" in problem and "no margin_why" in problem and "passes" in problem
    without_baseline = _records(1e-3)
    (problem,) = unexplained_margins(without_baseline, {"c": "exact arithmetic"})
    assert "no recorded baseline" in problem and "margin_why" not in problem
    explained = _records(1e-3, baseline=2.0, baseline_name="constant predictor")
    assert unexplained_margins(explained, {"c": "exact arithmetic"}) == []


def test_claims_within_the_limit_need_nothing():
    assert unexplained_margins(_records(0.02), {"c": ""}) == []  # 50x inside
    assert unexplained_margins(_records(0.002), {"c": ""}, limit=1000) == []
