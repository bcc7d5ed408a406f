"""The advantage-of-depth experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "advantage_of_depth"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_every_claim_records_a_baseline_its_bound_rejects(quick_run):
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


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


def test_controls_are_the_nearest_wrong_variants(quick_run):
    """One composition short, a construction misses the next depth's bound by the bound's
    factor 4 (products; monomials by their slack 4 x 0.55); the best shallow net with as many
    parameters gains far less than 2 bits per unit of depth; deep constructions with as many
    ReLUs as a shallow net beat its optimum (by 2 at 15 ReLUs) and fall much faster in them."""
    claims = {c["id"]: c for c in quick_run[0]["claims"]}
    assert claims["product_error_within_bound"]["baseline"] == 4.0
    assert claims["monomial_error_within_bound"]["baseline"] == pytest.approx(
        4 * claims["monomial_error_within_bound"]["measured"], rel=0.02)
    for name in ("square", "product", "monomial"):
        assert -1.1 < claims[f"{name}_error_exponential_in_depth"]["baseline"] < -0.5, name
    assert claims["shallow_above_pl_optimum"]["baseline"] == 0.5
    assert claims["shallow_error_polynomial_in_width"]["baseline"] < -3.0
