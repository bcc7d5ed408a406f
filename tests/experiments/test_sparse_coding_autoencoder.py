"""The sparse_coding_autoencoder experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "sparse_coding_autoencoder"
pytestmark = pytest.mark.experiment


def _claim(payload, claim_id):
    return next(c for c in payload["claims"] if c["id"] == claim_id)


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: eps = 0, the rate inside the regime, W at far/2, the
    tangential gradient at far, training from a random W."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_recovery_is_certain_inside_the_regime_and_absent_without_bias(quick_run):
    """At p = 0.2 (k = 4, h = 1024) a1 > (2 m1 + a2) k mu/sqrt(n): recovery is certain, not
    just likely; with eps = 0 off-support units fire and no sample is exact; a random W fires
    nothing, so it never recovers a support either."""
    payload, _ = quick_run
    recovery = payload["metrics"]["recovery"]
    assert _claim(payload, "support_recovered_in_regime")["measured"] == 1.0
    assert recovery["rate_zero_bias"] <= 0.01 and recovery["rate_random"] == 0.0
    rates = recovery["rate"]
    assert rates[0] == 1.0 and rates[-1] == 0.0
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # recovery falls with sparsity


def test_training_from_a_random_w_barely_moves_and_from_near_a_star_converges(quick_run):
    """A random unit-row W stays about sqrt(2) from A* (its units seldom fire); from distance
    0.5 the row directions approach A*'s columns while the rows grow above unit norm (the
    bias shrinks the code, and longer rows make up for it)."""
    payload, _ = quick_run
    training = payload["metrics"]["training"]
    assert training["random_final"] / training["random_initial"] > 0.99
    assert training["random_initial"] == pytest.approx(2**0.5, abs=0.02)
    assert training["initial"] == pytest.approx(0.5, abs=1e-5)
    assert training["row_norm"] > 1.0


@pytest.mark.parametrize("key, value, fragment", [
    ("recovery.n", 96, "recovery.n=96; allowed: powers of two >= 2"),
    ("gradient.p", 1.5, "gradient.p=1.5; allowed: sparsity exponents in (0, 1)"),
    ("gradient.far", 2.5, "gradient.far=2.5; allowed: column-wise distances in (0, 2]"),
    ("recovery.p", 0.33, "recovery.p=0.33; known:"),
])
def test_bad_config_is_refused_before_running(key, value, fragment):
    assert_config_refused(EXPERIMENT, {key: value}, fragment)
