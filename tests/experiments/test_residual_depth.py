"""The residual-depth experiment's quick preset, end to end, and its gradient measurement."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import (
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
    assert_run_directory_is_complete,
)

from dl_theory import experiment

EXPERIMENT = "residual_depth"
MODULE = experiment.load_experiment(EXPERIMENT)


def _data(n=64, d=40):
    x = jax.random.normal(jax.random.PRNGKey(0), (n, d))
    return {"x": x, "y": jnp.arange(n) % 10}


def test_gradient_norm_equals_brute_force_for_one_seed():
    config = MODULE.get_config("quick")
    model = MODULE.build_model(config, "plain", 3)
    data = _data()
    params = model.init(jax.random.PRNGKey(5), data["x"][:2])["params"]
    eps, base = 1e-2, params["embed"]["kernel"]

    def loss(kernel):
        p = {**params, "embed": {**params["embed"], "kernel": kernel}}
        logits = model.apply({"params": p}, data["x"])
        return jnp.mean(jax.nn.logsumexp(logits, -1)
                        - jnp.take_along_axis(logits, data["y"][:, None], -1)[:, 0])

    # Central differences along the gradient direction give the norm: d/dt L(W + t g/|g|).
    g = jax.grad(loss)(base)
    unit = g / jnp.linalg.norm(g)
    slope = (loss(base + eps * unit) - loss(base - eps * unit)) / (2 * eps)
    measured = MODULE.first_layer_gradient_norms(model, data, [5])[0]
    np.testing.assert_allclose(measured, float(slope), rtol=1e-2)


def test_plain_gradient_halves_in_square_per_relu_layer():
    """He et al. 2015, Eq. 14 at width 256: ten extra plain layers scale the squared norm by
    about 2**-10 (finite-width correction ~ exp(-10 * 5/(2n)) ~ 0.9)."""
    config = MODULE.get_config("quick")
    config.width = 256
    data, seeds = _data(256), list(range(6))
    shallow, deep = (MODULE.first_layer_gradient_norms(
        MODULE.build_model(config, "plain", depth), data, seeds) for depth in (2, 12))
    ratio = np.exp(2 * (np.log(deep).mean() - np.log(shallow).mean()))
    assert 0.5 * 2.0 ** -10 < ratio < 2.0 * 2.0 ** -10, ratio


def test_unknown_variant_is_rejected():
    with pytest.raises(ValueError, match="known"):
        MODULE.build_model(MODULE.get_config("quick"), "highway", 4)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: its control (the residual net's slope and ratio for the
    plain claims, the plain net's max/min and ratio for the residual ones) misses the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, workdir = quick_run
    assert_every_claim_holds(payload)
    assert_run_directory_is_complete(payload, workdir)


@pytest.mark.experiment
def test_deep_plain_net_stays_at_chance(quick_run):
    payload, _ = quick_run
    losses = payload["metrics"]["training"]["final_train_loss"]["plain"]
    assert all(abs(row[-1] - np.log(10)) < 0.05 for row in losses)
