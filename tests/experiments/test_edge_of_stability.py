"""The edge-of-stability experiment's quick preset, end to end, and its statistics helper."""

import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment

EXPERIMENT = "edge_of_stability"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the edge runs after sharpening, the late sharpness
    against the other step size's 2/eta, the small step's monotone loss and the short-horizon
    loss ratio do not satisfy its bound."""
    assert_every_claim_has_a_failing_baseline(quick_run[0])


@pytest.mark.experiment
def test_small_step_loss_falls_monotonically(quick_run):
    """Below the edge, GD is a descent method: the loss never rises between measurements."""
    m = quick_run[0]["metrics"]["gradient_descent"]
    small = np.asarray(m["loss_every_measurement"][-1])
    assert np.all(np.diff(small) < 0)


def test_edge_statistics_on_a_constructed_run():
    module = load_experiment(EXPERIMENT)
    eta = 0.1  # 2/eta = 20
    sharpness = np.array([10.0, 15.0, 19.5, 20.5, 19.8, 20.2, 20.4, 20.0])
    loss = np.array([1.0, 0.9, 0.8, 0.7, 0.75, 0.6, 0.65, 0.5, 0.55, 0.4, 0.45, 0.3, 0.35,
                     0.25, 0.3, 0.2])
    stats = module.edge_statistics(loss, sharpness, eta, measure_every=2, onset_fraction=0.95)
    assert stats["initial_ratio"] == pytest.approx(0.5)
    assert stats["onset_step"] == 4  # measurement 2 (19.5 >= 19) at step 2 * 2
    # From the onset: ratios [0.975, 1.025, 0.99, 1.01, 1.02, 1.0]; second half -> median 1.01.
    assert stats["late_ratio"] == pytest.approx(1.01)
    # After step 4 the 11 differences alternate up/down, starting down: 5 rises.
    assert stats["increase_fraction"] == pytest.approx(5 / 11)
    # Mean of the last measure_every = 2 losses (0.3, 0.2) over the loss at step 4 (0.75).
    assert stats["end_to_onset"] == pytest.approx(0.25 / 0.75)
    never = module.edge_statistics(loss, sharpness / 4, eta, 2, 0.95)
    assert never["onset_step"] is None and np.isnan(never["late_ratio"])
