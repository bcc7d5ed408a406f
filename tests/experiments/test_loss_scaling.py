"""The loss-scaling experiment: its quick preset end to end, and fast checks of its premises."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds, set_dotted

from dl_theory import experiment
from dl_theory.data.batching import minibatches
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit
from dl_theory.train.precision import get_policy
from dl_theory.train.precision_comparison import multiplied_loss, scaled_optimizer
from dl_theory.train.state import create_train_state

EXPERIMENT = "loss_scaling"
ls = experiment.load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: loss-scaled float16 barely underflows, float16 underflows
    where bfloat16 does not, and float16 with and without loss scaling swap places against
    float32's tolerance."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_float16_underflow_is_what_float32_magnitudes_predict(quick_run):
    """Zeros in float16 are the float32 values <= 2^-25, up to rounding along the backward
    pass; loss scaling by 2^15 removes most of them."""
    fractions = {k: np.asarray(v) for k, v in
                 quick_run[0]["metrics"]["small_gradients"]["underflow_fraction"].items()}
    for kind in ("activation", "parameter"):
        np.testing.assert_allclose(fractions[f"{kind}_fp16"], fractions[f"{kind}_predicted"],
                                   atol=0.03)
        assert (fractions[f"{kind}_fp16_loss_scaled"] < 0.2 * fractions[f"{kind}_fp16"]).all()


def _train_small_mlp(precision, multiplier, steps=15):
    """A small MLP trained with the loss multiplied by `multiplier` (Adam eps likewise)."""
    policy = get_policy(precision)
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 5))
    data = {"x": x, "y": (x[:, 0] > 0).astype(jnp.int32)}
    opt = optimizer_config(name="adam", learning_rate=1e-2, kwargs={"eps": 1e-8})
    if multiplier != 1.0:
        opt = scaled_optimizer(opt, multiplier)
    model = MLP(widths=(8,), out_dim=2, **policy.model_dtypes())
    state = create_train_state(model, build_optimizer(opt), x[:2], 0)
    state, history = fit(state, data, minibatches(16), loss=multiplied_loss(multiplier),
                         steps=steps, policy=policy, verbose=False)
    return state.params, history["loss"] / multiplier


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_power_of_two_loss_multiplier_is_invisible_in_float32_and_bfloat16(precision):
    """The premise of the small-gradient task: with Adam's eps scaled too, a power-of-two
    multiplier leaves float32 and bfloat16 training bit for bit unchanged."""
    params, losses = _train_small_mlp(precision, 1.0)
    scaled_params, scaled_losses = _train_small_mlp(precision, 2.0**-13)
    np.testing.assert_array_equal(losses, scaled_losses)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(scaled_params)):
        np.testing.assert_array_equal(a, b)


def test_float16_is_not_blind_to_the_multiplier():
    params, _ = _train_small_mlp("float16", 1.0)
    scaled_params, _ = _train_small_mlp("float16", 2.0**-13)
    assert any(not np.array_equal(a, b)
               for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(scaled_params)))


def test_scaled_optimizer_scales_eps_and_rejects_scale_dependent_optimizers():
    opt = optimizer_config(name="adam", kwargs={"eps": 1e-8})
    assert scaled_optimizer(opt, 0.5).kwargs["eps"] == 0.5e-8
    assert opt.kwargs["eps"] == 1e-8  # the original is left alone
    with pytest.raises(ValueError, match="optimizer.name='sgd'"):
        scaled_optimizer(optimizer_config(name="sgd"), 0.5)


def test_bad_loss_multiplier_is_refused_before_training():
    config = ls.get_config("quick")
    config.small_gradients.loss_multiplier = 1e-4
    with pytest.raises(ValueError, match="loss_multiplier=0.0001; need a power of two"):
        ls.compute_small_gradients(config, log=None)


@pytest.mark.parametrize("override, expected", [({}, "float16"),
                                                ({"precision": "bfloat16"}, "bfloat16"),
                                                ({"small_gradients.precision": "bfloat16"},
                                                 "bfloat16")])
def test_top_level_precision_sets_the_part_unless_overridden(override, expected):
    config = set_dotted(ls.get_config("quick"), override)
    model, x, _ = ls.example_model(config)
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    assert out.dtype == jnp.dtype(expected)
