"""The training core: learning, NaN detection, seed-grid equivalence, logging, retracing."""

import json

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dl_theory.data import batching
from dl_theory.models.mlp import MLP, Perceptron
from dl_theory.optim import build_optimizer
from dl_theory.train import fit as fit_lib
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import create_train_state, create_train_states, set_hyperparams
from dl_theory.train.step import make_train_step

W_TRUE = jnp.array([[1.5], [-2.0], [0.5]])


def linear_data(n=256, seed=0):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 3))
    return {"x": x, "y": x @ W_TRUE + 0.25}


def sgd(lr=0.1):
    return build_optimizer(ml_collections.ConfigDict(dict(name="sgd", learning_rate=lr)))


def test_perceptron_learns_a_linear_target():
    data = linear_data()
    state = create_train_state(Perceptron(), sgd(0.1), data["x"][:1], seed=0)
    state, history = fit_lib.fit(state, data, batching.minibatches(32), loss=mean_squared_error,
                                 steps=400, eval_data=data, eval_every=200, verbose=False)
    kernel = state.params["Dense_0"]["kernel"]
    np.testing.assert_allclose(kernel, W_TRUE, atol=1e-3)
    assert float(state.params["Dense_0"]["bias"][0]) == pytest.approx(0.25, abs=1e-3)
    assert history["eval_loss"][-1] < 1e-6
    assert history["loss"].shape == (400,) and int(state.step) == 400
    np.testing.assert_allclose(history["learning_rate"], 0.1)


def test_diverging_loss_names_the_first_step_past_the_divergence_factor():
    data = linear_data()
    state = create_train_state(MLP(widths=(16,)), sgd(50.0), data["x"][:1], seed=0)
    _, history = fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error,
                             steps=200, eval_every=50, verbose=False, allow_nonfinite=True)
    losses = history["loss"]
    limit = fit_lib.DIVERGENCE_FACTOR * max(abs(float(losses[0])), 1.0)
    with np.errstate(invalid="ignore"):
        first = int(np.argmax(~np.isfinite(losses) | (np.abs(losses) > limit)))
    assert 0 < first < 200 and np.all(np.abs(losses[:first]) <= limit)
    with pytest.raises(fit_lib.NonFiniteLossError,
                       match=rf"loss (became non-finite|diverged to .*) at step {first}\b"):
        fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error, steps=200,
                    eval_every=50, verbose=False)


def test_allow_nonfinite_lets_diverging_grid_members_run():
    data = linear_data()
    states = create_train_states(Perceptron(), sgd(0.1), data["x"][:1], [0, 1])
    states = set_hyperparams(states, learning_rate=[0.1, 50.0])
    _, history = fit_lib.fit_grid(states, data, batching.full_batch(), loss=mean_squared_error,
                                  steps=100, data_seeds=[0, 0], allow_nonfinite=True,
                                  verbose=False)
    assert np.isfinite(history["loss"][0]).all() and not np.isfinite(history["loss"][1, -1])


@pytest.mark.parametrize("strategy", fit_lib.GRID_STRATEGIES)
def test_grid_equals_each_seed_trained_alone(strategy):
    data = linear_data()
    model, tx, seeds = MLP(widths=(8,), activation="tanh"), sgd(0.05), [3, 7, 11]
    states = create_train_states(model, tx, data["x"][:1], seeds)
    grid, grid_history = fit_lib.fit_grid(
        states, data, batching.minibatches(16), loss=mean_squared_error, steps=60,
        data_seeds=seeds, eval_data=data, eval_every=20, strategy=strategy, verbose=False)
    for g, seed in enumerate(seeds):
        alone, history = fit_lib.fit(
            create_train_state(model, tx, data["x"][:1], seed), data, batching.minibatches(16),
            loss=mean_squared_error, steps=60, data_seed=seed, eval_data=data, eval_every=20,
            verbose=False)
        member = jax.tree.map(lambda a: a[g], grid.params)
        chex.assert_trees_all_close(member, alone.params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grid_history["eval_loss"][g], history["eval_loss"], rtol=1e-5)


def test_hyperparameter_grid_equals_separate_learning_rates():
    data = linear_data()
    states = create_train_states(Perceptron(), sgd(0.1), data["x"][:1], [0, 0])
    states = set_hyperparams(states, learning_rate=[0.01, 0.2])
    grid, _ = fit_lib.fit_grid(states, data, batching.full_batch(), loss=mean_squared_error,
                               steps=30, data_seeds=[0, 0], verbose=False)
    for g, lr in enumerate([0.01, 0.2]):
        alone, _ = fit_lib.fit(create_train_state(Perceptron(), sgd(lr), data["x"][:1], 0), data,
                               batching.full_batch(), loss=mean_squared_error, steps=30,
                               verbose=False)
        chex.assert_trees_all_close(jax.tree.map(lambda a: a[g], grid.params), alone.params,
                                    rtol=1e-5, atol=1e-6)


def test_metrics_log_gets_one_record_per_evaluation(tmp_path):
    data = linear_data()
    state = create_train_state(Perceptron(), sgd(), data["x"][:1], seed=0)
    log = MetricsLog.in_workdir(tmp_path)
    fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error, steps=30,
                eval_data=data, eval_every=10, log=log, tags={"width": 1}, verbose=False)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(r["width"] == 1 and "eval_loss" in r for r in records)


def test_train_step_compiles_once():
    data = linear_data()
    state = create_train_state(MLP(widths=(4,)), sgd(), data["x"][:1], seed=0)
    step = jax.jit(chex.assert_max_traces(make_train_step(mean_squared_error), n=1))
    sample = batching.minibatches(8)
    for i in range(5):
        state, _ = step(state, sample(data, jax.random.PRNGKey(i)))
    assert int(state.step) == 5


def test_bad_arguments_are_named_before_compilation():
    data = linear_data()
    state = create_train_state(Perceptron(), sgd(), data["x"][:1], seed=0)
    with pytest.raises(ValueError, match="steps=0"):
        fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error, steps=0)
    with pytest.raises(ValueError, match="batch_size=0"):
        batching.minibatches(0)
    with pytest.raises(ValueError, match="strategy='pmap'"):
        fit_lib.fit_grid(create_train_states(Perceptron(), sgd(), data["x"][:1], [0]), data,
                         batching.full_batch(), loss=mean_squared_error, steps=1,
                         data_seeds=[0], strategy="pmap")


def test_gradient_norm_is_recorded_on_request_without_changing_training():
    """grad_norm=True adds each step's global gradient norm (here of a linear model under full
    batch MSE, checked against the gradient computed by hand) and leaves the run's bits."""
    data = linear_data(n=64)
    runs = {}
    for grad_norm in (False, True):
        state = create_train_state(Perceptron(), sgd(0.05), data["x"][:1], seed=0)
        runs[grad_norm] = fit_lib.fit(state, data, batching.full_batch(),
                                      loss=mean_squared_error, steps=5, verbose=False,
                                      grad_norm=grad_norm)
    (plain_state, plain), (state, history) = runs[False], runs[True]
    assert "grad_norm" not in plain and history["grad_norm"].shape == (5,)
    np.testing.assert_array_equal(history["loss"], plain["loss"])
    chex.assert_trees_all_equal(state.params, plain_state.params)
    first = create_train_state(Perceptron(), sgd(0.05), data["x"][:1], seed=0).params
    kernel, bias = first["Dense_0"]["kernel"], first["Dense_0"]["bias"]
    residual = data["x"] @ kernel + bias[None, :] - data["y"]  # d/dpred of mean((pred - y)^2)
    by_hand = jnp.sqrt(jnp.sum((2 * data["x"].T @ residual / 64) ** 2)
                       + jnp.sum((2 * residual.mean(axis=0)) ** 2))
    np.testing.assert_allclose(history["grad_norm"][0], by_hand, rtol=1e-5)
