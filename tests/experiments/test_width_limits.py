"""The width-limits experiment's quick preset, end to end, and its target."""

import jax.numpy as jnp
import pytest
from harness import assert_every_claim_holds

from dl_theory import experiment

EXPERIMENT = "width_limits"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_narrow_nets_never_beat_the_floor_at_any_depth(quick_run):
    payload, _ = quick_run
    grid = payload["metrics"]["grid"]
    assert min(grid["best_sup_error"]["2"]) >= payload["config"]["floor"]
    assert grid["best_net"]["2"]["sup_error"] == grid["floor_measured"]


def test_radial_bump_values_and_support():
    module = experiment.load_experiment(EXPERIMENT)
    x = jnp.array([[0.0, 0.0], [0.3, 0.0], [0.0, -0.6], [0.5, 0.5]])
    assert module.radial_bump(x, 0.6)[:, 0].tolist() == pytest.approx([1.0, 0.75, 0.0, 0.0])


def test_bump_support_must_fit_inside_the_domain():
    module = experiment.load_experiment(EXPERIMENT)
    config = module.get_config("quick")
    config.radius = 1.2
    with pytest.raises(ValueError, match="radius=1.2"):
        module.compute_grid(config, log=None)
