"""The Barron-rate experiment's quick preset, end to end."""

import numpy as np
import pytest
from harness import assert_config_refused, assert_every_claim_holds

EXPERIMENT = "barron_rate"
pytestmark = pytest.mark.experiment


def test_every_verdict_is_the_expected_one(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_rate_is_shallower_than_one_over_n_and_the_partition_fails_worse(quick_run):
    claim = {c["id"]: c for c in quick_run[0]["claims"]}["barron_rate_every_dimension"]
    assert not claim["holds"]
    assert -1.0 < claim["interval"][0] and claim["interval"][1] < -0.4
    assert claim["baseline_holds"] is False and claim["baseline"] > claim["measured"]


def test_budget_test_separates_optimisation_from_approximation(quick_run):
    """Halving the steps barely moves the narrowest net's error and at least doubles the
    widest net's, in every d; the first optimisation-limited width is reported."""
    rate = quick_run[0]["metrics"]["rate"]
    for d in rate["test_mse"]:
        ratio = (np.mean(rate["test_mse_half_budget"][d], 0) / np.mean(rate["test_mse"][d], 0))
        assert ratio[0] < 1.1 and ratio[-1] > 2.0, (d, ratio)
        assert rate["first_optimisation_limited_width"][d] == rate["widths"][1]
    claim = {c["id"]: c for c in quick_run[0]["claims"]}["widest_error_is_optimisation_error"]
    assert claim["holds"] and claim["baseline_holds"] is False


def test_partition_is_cursed_and_the_nets_fail_its_bound(quick_run):
    claim = {c["id"]: c for c in quick_run[0]["claims"]}["partition_rate_cursed"]
    assert claim["holds"] and claim["interval"][0] > -0.05
    assert claim["baseline_holds"] is False and claim["baseline"] < -0.5


def test_rate_stops_holding_past_width_64_at_d4_and_never_holds_at_d32(quick_run):
    """Local slopes between consecutive widths: about -1 up to width 64 at d = 4, then
    flattening; shallower than -1 throughout at d = 32."""
    local = quick_run[0]["metrics"]["rate"]["local_slopes"]
    assert local["4"][0] < -0.9 and local["4"][1] < -0.9 and local["4"][-1] > -0.6
    assert all(s > -0.95 for s in local["32"])


def test_barron_bound_is_vacuous_at_every_trained_width_on_dense_targets(quick_run):
    """n* = (2 C_f)^2 / Var f exceeds the widest net in every d (hence the bound's value is
    tested in universal_approximation); C_f grows with d while Var f does not."""
    rate = quick_run[0]["metrics"]["rate"]
    assert min(rate["n_star"].values()) > 4 * max(rate["widths"])
    constants = [rate["barron_constant"][str(d)] for d in rate["dims"]]
    assert constants == sorted(constants)



@pytest.mark.parametrize("key, value, message", [
    ("converged_ratio", 1.0, "rate.converged_ratio=1.0; allowed: numbers > 1"),
    ("ridge_scale", -1.0, "rate.ridge_scale=-1.0"),
])
def test_bad_rate_config_is_named_before_training(key, value, message):
    assert_config_refused(EXPERIMENT, {f"rate.{key}": value}, message)
