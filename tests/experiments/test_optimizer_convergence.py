"""The optimizer-convergence experiment's quick preset, end to end.

One claim fails at the quick budget and is kept failing (a measured result, not a bug):
De et al. report that Adam with beta1 = 0.99 beats a tuned NAG on autoencoders; here NAG's
tuned training loss is lower (Adam / NAG = 1.05) while Adam's test loss is lower.
"""


import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "optimizer_convergence"
pytestmark = pytest.mark.experiment
EXPECTED_TO_FAIL = {"adam099_beats_nag_train"}


def test_verdicts_are_the_recorded_ones(quick_run):
    payload, _ = quick_run
    verdicts = {c["id"]: c["holds"] for c in payload["claims"]}
    assert verdicts == {k: k not in EXPECTED_TO_FAIL for k in verdicts}, verdicts


def test_no_verdict_differs_from_the_expected_one(quick_run):
    assert_every_claim_holds(quick_run[0])


def test_tuned_rates_are_inside_their_grids(quick_run):
    """A best rate on the edge of its grid would mean the tuning was clipped."""
    payload, _ = quick_run
    for name, res in payload["metrics"]["autoencoder"].items():
        assert res["rates"][0] < res["best_rate"] < res["rates"][-1], (name, res["best_rate"])


def test_adam_regret_matches_the_limit_of_the_worst_point(quick_run):
    payload, _ = quick_run
    m = payload["metrics"]["reddi"]
    assert abs(m["final_avg_regret"]["adam"] - m["regret_limit"]) < 0.05
