"""The width-limits experiment's quick preset, end to end, and its target."""

import jax.numpy as jnp
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory import experiment

EXPERIMENT = "width_limits"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_each_width_is_the_other_claims_control(quick_run):
    """The width-2 floor is rejected by the width-3 nets and vice versa; the best width-2 sup
    error does not fall with depth."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    claims = {c["id"]: c for c in payload["claims"]}
    grid = payload["metrics"]["grid"]
    assert claims["narrow_nets_above_floor"]["baseline"] == min(grid["best_sup_error"]["3"])
    assert claims["wide_nets_break_floor"]["baseline"] == grid["best_sup_error"]["2"][-1]


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
