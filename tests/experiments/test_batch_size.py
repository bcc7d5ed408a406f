"""The batch-size experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "batch_size"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: repeated-example batches, the without-replacement formula,
    one micro-batch, the label-noise-only noise scale do not satisfy its bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_minibatch_variance_matches_trace_over_b_at_every_size(quick_run):
    batch = quick_run[0]["metrics"]["minibatch"]
    for b, exact, measured in zip(batch["batch_sizes"], batch["exact"], zip(*batch["variance"])):
        assert exact == pytest.approx(batch["exact"][0] / b)
        assert sum(measured) / len(measured) == pytest.approx(exact, rel=0.1)


def test_accumulation_error_is_far_below_a_real_batch_size_change(quick_run):
    accum = quick_run[0]["metrics"]["accumulation"]
    assert accum["max_abs_diff"] < 1e-3 * accum["small_batch_max_abs_diff"]
