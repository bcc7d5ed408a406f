"""The half-precision experiment: its quick preset end to end, its tolerance and its
precision key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds, set_dotted

from dl_theory import experiment
from dl_theory.train.precision_comparison import agreement_tolerance

EXPERIMENT = "half_precision"
hp = experiment.load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the float32 nets at their first evaluation fall outside
    the agreement tolerance, the chop toward zero exceeds 2^-8."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_parts_compare_float32_with_the_precision_under_test(quick_run):
    metrics = quick_run[0]["metrics"]
    assert metrics["mlp"]["precisions"] == ["float32", "bfloat16"]
    assert metrics["transformer"]["precisions"] == ["float32", "bfloat16"]
    assert metrics["rounding"]["bound"] == 2.0**-8


def test_agreement_tolerance_is_z_standard_errors_of_a_difference_of_means():
    # s = sqrt(5/3) for [1, 2, 3, 4]; 3 * s * sqrt(2/4)
    assert agreement_tolerance(np.array([1.0, 2.0, 3.0, 4.0]), 3.0) == pytest.approx(
        3.0 * np.sqrt(5.0 / 3.0) * np.sqrt(0.5))
    with pytest.raises(ValueError, match="S >= 2"):
        agreement_tolerance(np.array([1.0]), 3.0)


@pytest.mark.parametrize("override, expected", [({}, "bfloat16"),
                                                ({"precision": "float16"}, "float16"),
                                                ({"transformer.precision": "float32"},
                                                 "float32")])
def test_top_level_precision_sets_the_model_unless_a_part_overrides_it(override, expected):
    config = set_dotted(hp.get_config("quick"), override)
    model, x, _ = hp.example_model(config)
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    assert out.dtype == jnp.dtype(expected)


def test_a_single_seed_is_refused_before_training():
    config = hp.get_config("quick")
    config.seeds = 1
    with pytest.raises(ValueError, match="seeds=1"):
        hp.compute_mlp(config, log=None)


@pytest.mark.experiment
def test_agreement_tolerances_reject_an_under_trained_float32_net(quick_run):
    """The agreement claims can fail: float32 at its first evaluation is farther from float32
    at the end than the tolerance allows."""
    payload, _ = quick_run
    for claim_id in ("bf16_matches_fp32_mlp", "bf16_matches_fp32_transformer"):
        claim = next(c for c in payload["claims"] if c["id"] == claim_id)
        assert claim["baseline"] > claim["at_most"] and claim["baseline_holds"] is False, claim
