"""The depth-separation experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "depth_separation"
pytestmark = pytest.mark.experiment


def _claims(run):
    return {c["id"]: c for c in run[0]["claims"]}


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_every_claim_records_a_baseline_its_bound_rejects(quick_run):
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_construction_pieces_double_with_each_layer(quick_run):
    metrics = quick_run[0]["metrics"]["construction"]
    assert metrics["construction_pieces"] == [2**k for k in metrics["construction_ks"]]
    assert metrics["shallower_construction_pieces"] == [
        2 ** (k - 1) for k in metrics["construction_ks"] if k > 1]


def test_zigzag_nets_exceed_the_one_layer_bound_by_half_their_width(quick_run):
    """m**2 pieces over the 1-layer bound 2m: m / 2 for each width m of random_nets.widths."""
    metrics = quick_run[0]["metrics"]["nets"]
    widths = quick_run[0]["config"]["random_nets"]["widths"]
    assert metrics["zigzag_depth2_over_depth1_bound"] == [w / 2 for w in widths]


def test_least_squares_fit_learns_the_teeth_and_is_exact_with_one_kink_per_breakpoint(quick_run):
    """Its L1 error falls at every added unit, from the constant's 1/4 to 0 at 2**k units."""
    metrics = quick_run[0]["metrics"]["nets"]
    errors = metrics["lstsq_l1"]
    assert metrics["lstsq_units"][-1] == 2 ** quick_run[0]["config"]["k"]
    assert errors[0] == pytest.approx(0.25, abs=2e-3)
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6


def test_every_bound_claim_is_failed_by_its_baseline(quick_run):
    """The deep construction fails each shallow bound (error 0), the constant predictor fails
    the learning claim, and the least-squares net with 2k units misclassifies many points."""
    claims = _claims(quick_run)
    for claim_id in ("shallow_nets_above_l1_bound", "shallow_classification_above_bound",
                     "small_shallow_nets_err_one_sixth",
                     "construction_classifies_alternating_points", "trained_deep_nets_learn",
                     "trained_deep_nets_miss_construction"):
        assert claims[claim_id]["baseline_holds"] is False, claim_id
    assert claims["construction_classifies_alternating_points"]["baseline"] > 0.3
    assert claims["trained_deep_nets_miss_construction"]["baseline"] < 0.25


def test_classification_bound_is_nearly_attained(quick_run):
    """The least-squares shallow nets come within a few points of the run-counting bound, and
    every small shallow net is far above Telgarsky's 1/6."""
    claims = _claims(quick_run)
    assert 1.0 <= claims["shallow_classification_above_bound"]["measured"] < 1.1
    assert claims["small_shallow_nets_err_one_sixth"]["measured"] > 0.4


def test_deep_nets_learn_small_k_and_not_k6(quick_run):
    """Seed-mean L1 of deep nets: far below the constant's 1/4 at k = 3, near it at k = 6;
    the learned k are the small ones."""
    metrics = quick_run[0]["metrics"]["nets"]
    mean = {k: sum(v) / len(v) for k, v in zip(metrics["deep_ks"], metrics["deep_l1"])}
    assert mean[3] < 0.125 and mean[6] > 0.2
    assert 3 in metrics["deep_learned_ks"] and 6 not in metrics["deep_learned_ks"]
    assert _claims(quick_run)["trained_deep_nets_miss_construction"]["measured"] >= 2.0
