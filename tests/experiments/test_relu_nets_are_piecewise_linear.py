"""The relu_nets_are_piecewise_linear experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "relu_nets_are_piecewise_linear"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the net one layer shallower or one unit fewer, the lattice
    net, the textbook net, the sawtooth, the constant predictor, Adam started next to the
    optimum and the 2^D subsets all miss their claims' bounds."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_counts_are_the_theorems_exactly(quick_run):
    """Depth equals ceil(log2(n + 1)) + 1 (not just below it), the 1-D net has exactly p units
    and p counted pieces, one unit fewer loses exactly one piece."""
    payload, _ = quick_run
    rep = payload["metrics"]["representation"]
    assert rep["depth"] == rep["theorem_depth"]
    one_d = rep["one_d"]
    assert one_d["size"] == one_d["pieces"] == one_d["counted_pieces"]
    assert one_d["dropped_pieces"] == [p - 1 for p in one_d["pieces"]]
    assert one_d["naive_size"] == [p + 1 for p in one_d["pieces"]]


def test_exact_erm_is_at_or_below_every_adam_restart(quick_run):
    payload, _ = quick_run
    erm = payload["metrics"]["erm"]
    for optimum, losses, scale in zip(erm["erm_loss"], erm["adam_losses"], erm["scale"]):
        assert min(losses) >= optimum - 1e-9 * scale


def test_bad_pieces_are_refused():
    assert_config_refused(EXPERIMENT, {"representation.pieces": (2, 5)},
                          "representation.pieces=(2, 5); allowed: integers >= 3")
    assert_config_refused(EXPERIMENT, {"erm.input_dim": 4}, "erm.input_dim=4; allowed: 1, 2 or 3")
