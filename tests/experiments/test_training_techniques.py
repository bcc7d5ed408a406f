"""The training-techniques experiment's quick preset, end to end."""


import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "training_techniques"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_gd_slowdown_is_about_the_ratio_of_rates(quick_run):
    """Steps to tolerance scale like 1 / lr once the slowest mode dominates: the slowdown
    from lr = 1/L to 0.01 * 2/L is near 50 (not merely > 1)."""
    step = quick_run[0]["metrics"]["step_size"]
    assert 40 <= step["slowdown"] <= 60


def test_minibatch_variance_matches_trace_over_b_at_every_size(quick_run):
    batch = quick_run[0]["metrics"]["minibatch"]
    for b, exact, measured in zip(batch["batch_sizes"], batch["exact"], zip(*batch["variance"])):
        assert exact == pytest.approx(batch["exact"][0] / b)
        assert sum(measured) / len(measured) == pytest.approx(exact, rel=0.1)


def test_accumulation_error_is_far_below_a_real_batch_size_change(quick_run):
    accum = quick_run[0]["metrics"]["accumulation"]
    assert accum["max_abs_diff"] < 1e-3 * accum["small_batch_max_abs_diff"]
