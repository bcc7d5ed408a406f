"""The proximal_sparsity experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "proximal_sparsity"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: its recorded baseline (D dropped, subgradient training,
    the constant predictor) does not satisfy the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_prox_nets_have_exact_zeros_and_the_subgradient_net_has_none(quick_run):
    payload, _ = quick_run
    sparse = next(c for c in payload["claims"] if c["id"] == "prox_nets_are_sparse")
    assert sparse["measured"] >= 0.5 and sparse["baseline"] == 0.0


@pytest.mark.parametrize("key, value, fragment", [
    ("mnist1d.reference_strength", 0.5, "mnist1d.reference_strength=0.5; allowed: one of"),
    ("mnist1d.optimizer.prox.kind", "l3", "mnist1d.optimizer.prox.kind='l3'; known:"),
    ("mnist1d.target_sparsity", 1.5, "mnist1d.target_sparsity=1.5"),
])
def test_bad_config_is_one_line_naming_the_key(key, value, fragment):
    assert_config_refused(EXPERIMENT, {key: value}, fragment)
