"""The relu_gate_training experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "relu_gate_training"
pytestmark = pytest.mark.experiment


def _claims(payload):
    return {c["id"]: c for c in payload["claims"]}


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: noisy labels reach a floor, the mini-batch update's work
    does not grow with D, half the step size is far behind, a 4x attack breaks the bound, a
    constant-product attack does not grow."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_rates_beat_their_bounds_and_neuro_tron_is_ahead_of_sgd(quick_run):
    payload, _ = quick_run
    claims = _claims(payload)
    for law in ("gaussian", "uniform_cube", "two_cluster_mixture"):
        claim = claims[f"geometric_rate_{law}"]
        assert claim["interval"][1] < claim["at_most"] < 0
    geometric = payload["metrics"]["geometric"]
    for law, m in geometric.items():  # SGD's error is larger at the compared step, every law
        step = m["compare_step"]
        assert m["log10_mean"]["sgd"][step] > m["log10_mean"]["neuro_tron"][step], law


def test_unknown_distribution_is_refused():
    assert_config_refused(EXPERIMENT, {"geometric.distributions": ("gaussian", "cauchy")},
                          "geometric.distributions[1]='cauchy'; allowed: ")
