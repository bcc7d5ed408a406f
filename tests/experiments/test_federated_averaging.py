"""The federated_averaging experiment's quick preset, end to end."""

import numpy as np
import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "federated_averaging"
pytestmark = pytest.mark.experiment


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: w_opt is not FedAvg's fixed point, heterogeneous Hessians
    are biased, the shared Hessian's bias does not grow, FedAvg keeps its bias, mu = 0 does not
    shrink it, IID seeds do not differ by 10%, one client per round is far slower."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_closed_form_bias_is_zero_at_one_step_and_increasing_in_e(quick_run):
    payload, _ = quick_run
    quadratic = payload["metrics"]["quadratic"]
    closed = np.asarray(quadratic["heterogeneous"]["closed_bias"])
    assert closed[0] < 1e-12 and np.all(np.diff(closed) > 1e-6)
    np.testing.assert_allclose(quadratic["heterogeneous"]["sim_bias"], closed, atol=1e-12)
    assert max(quadratic["heterogeneous"]["contraction"]) < 1


def test_fedavg_beats_fedsgd_on_iid_clients(quick_run):
    """Negative as to the paper's 10x, but FedAvg is still ahead on IID clients."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    assert claims["fedavg_far_fewer_rounds_iid"]["measured"] > 1


def test_unstable_local_step_is_refused():
    assert_config_refused(EXPERIMENT, {"quadratic.learning_rate": 1.0},
                          "quadratic.learning_rate=1.0; allowed: ")
