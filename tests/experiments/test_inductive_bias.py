"""The inductive-bias experiment's quick preset, end to end, and its exact-equivariance tools."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_run_directory_is_complete

from dl_theory import experiment
from dl_theory.data.mnist1d import SEQ_LEN, position_permutation
from dl_theory.models.mnist1d_architectures import architecture_inputs

EXPERIMENT = "inductive_bias"
MODULE = experiment.load_experiment(EXPERIMENT)
PERM = position_permutation(0)
X = jax.random.normal(jax.random.PRNGKey(0), (16, SEQ_LEN))


def _apply(name, params, x):
    model = MODULE.build_model(name, MODULE.get_config("quick"))
    return model.apply({"params": params}, architecture_inputs(name, np.asarray(x)))


def _init(name, seed=0):
    model = MODULE.build_model(name, MODULE.get_config("quick"))
    x = architecture_inputs(name, np.asarray(X[:2]))
    return model.init(jax.random.PRNGKey(seed), x)["params"]


@pytest.mark.parametrize("name", ["logreg", "mlp", "transformer"])
def test_aligned_first_layer_computes_the_same_function_on_shuffled_inputs(name):
    params = _init(name)
    aligned = MODULE.ARCHITECTURES[name].align(params, PERM)
    original = _apply(name, params, X)
    np.testing.assert_allclose(_apply(name, aligned, X[:, PERM]), original, atol=1e-5)
    # Without alignment the shuffled input gives another function: the test can fail.
    assert float(jnp.max(jnp.abs(_apply(name, params, X[:, PERM]) - original))) > 1e-2


@pytest.mark.parametrize("name", ["mlp", "transformer"])
def test_aligned_twins_stay_equal_through_adam_steps(name):
    """Adam is coordinatewise, so it commutes with the permutation: after 20 steps the twins
    still compute the same logits (to float rounding)."""
    y = jnp.arange(16) % 10
    tx = optax.adam(1e-2)

    def train(params, x):
        state = tx.init(params)
        for _ in range(20):
            grads = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(
                _apply(name, p, x), y).mean())(params)
            updates, state = tx.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return params

    params = _init(name)
    twin = train(MODULE.ARCHITECTURES[name].align(params, PERM), X[:, PERM])
    np.testing.assert_allclose(_apply(name, twin, X[:, PERM]), _apply(name, train(params, X), X),
                               atol=1e-4)


def test_unknown_model_name_is_rejected():
    with pytest.raises(ValueError, match="known"):
        MODULE.build_model("lstm9", MODULE.get_config("quick"))


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert all(c["holds"] for c in payload["claims"]), payload["claims"]


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the CNN's lead on shuffled data, the invariant models'
    drop, the local models' shift and the unaligned twins each miss the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_twins_agree_to_rounding_and_the_unaligned_twin_fails_both_claims(quick_run):
    """One step: aligned twins within 1e-4 (relative) of the original, the unaligned twin at
    order 1. Trained: the aligned twin's drift is comparable with a one-ulp twin's, the
    unaligned twin's is not."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    one_step = claims["aligned_twins_agree_after_one_step"]
    assert one_step["measured"] <= 1e-4 and one_step["baseline"] > 1e-2, one_step
    trained = claims["aligned_twins_diverge_like_rounding"]
    assert trained["measured"] <= 3.0 and trained["baseline_holds"] is False, trained
    twins = payload["metrics"]["architectures"]["twins"]
    assert set(twins) == {"logreg", "mlp", "transformer"}


@pytest.mark.experiment
def test_invariance_claim_can_fail(quick_run):
    """The CNN and GRU, measured by the invariance claim's own statistic, exceed its
    tolerance several times over: the claim is not one that any model passes."""
    payload, _ = quick_run
    metrics = payload["metrics"]["architectures"]
    config = payload["config"]
    tolerance = MODULE.invariance_tolerance(ml_collections.ConfigDict(config),
                                            metrics["invariant_seed_std"])
    claim = next(c for c in payload["claims"] if c["id"] == "invariant_models_unchanged")
    assert claim["expected"] == f"<= {tolerance:.4g}"  # the judge used this tolerance
    # The stated noise estimate is a floor: two seeds' own spread never narrows the test.
    floor = config["invariance_z"] * config["invariance_seed_std"] * (2 / config["seeds"]) ** 0.5
    assert tolerance >= floor * (1 - 1e-9)
    for name, shift in metrics["local_shuffled_minus_original"].items():
        assert abs(shift) > 2 * tolerance, (name, shift, tolerance)


@pytest.mark.experiment
def test_run_directory_and_table(quick_run):
    payload, workdir = quick_run
    assert_run_directory_is_complete(payload, workdir)
    table = payload["metrics"]["architectures"]["table"]
    # The quick preset trains the models its claims need; the paper preset adds RCNN, hybrid.
    assert set(table) == set(MODULE.INVARIANT + MODULE.LOCAL)
    assert set(MODULE.get_config("paper").models) == set(MODULE.ARCHITECTURES)
    logreg = table["logreg"]
    # Convex logistic regression: the aligned twin lands on the original accuracy exactly.
    assert logreg["aligned"] == logreg["original"]
    for row in table.values():
        assert row["params"] > 0 and all(0.1 <= a <= 1.0 for a in row["original"])
