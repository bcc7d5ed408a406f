"""A training step splits the state's key only for a model that draws from it (dropout): the
dropout model's steps are those of a step that always splits, and a deterministic model's
step holds no random-number code and keeps its key, with the same losses."""

import chex
import jax
import jax.numpy as jnp
import ml_collections

from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import create_train_state
from dl_theory.train.step import make_train_step


def _data():
    x = jnp.linspace(-1.0, 1.0, 24, dtype=jnp.float32).reshape(8, 3)
    return {"x": x, "y": jnp.sin(x).sum(axis=1, keepdims=True)}


def _always_split_step(state, batch):
    """The step as it was before keys were split on demand: split, then draw dropout."""
    rng, dropout_rng = jax.random.split(state.rng)

    def objective(params):
        pred = state.apply_fn({"params": params}, batch["x"], train=True,
                              rngs={"dropout": dropout_rng})
        return mean_squared_error(pred, batch["y"], None)

    value, grads = jax.value_and_grad(objective)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         rng=rng), value


def _run(step, state, batch, num_steps=3):
    losses = []
    for _ in range(num_steps):
        state, out = step(state, batch)
        losses.append(out["loss"] if isinstance(out, dict) else out)
    return state, jnp.stack(losses)


def _state(dropout_rate):
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.1)))
    return create_train_state(MLP(widths=(16,), dropout_rate=dropout_rate), tx,
                              _data()["x"][:1], seed=4)


def _step_and_reference(dropout_rate):
    """(initial state, state after 3 steps, the always-splitting step's state, the step's
    jaxpr as text); the two runs' losses and parameters are checked equal here."""
    state, batch = _state(dropout_rate), _data()
    new, losses = _run(jax.jit(make_train_step(mean_squared_error)), state, batch)
    reference, reference_losses = _run(jax.jit(_always_split_step), state, batch)
    chex.assert_trees_all_equal(losses, reference_losses)
    chex.assert_trees_all_equal(new.params, reference.params)
    jaxpr = str(jax.make_jaxpr(make_train_step(mean_squared_error))(state, batch))
    return state, new, reference, jaxpr


def test_a_dropout_model_draws_as_a_step_that_always_splits():
    _, new, reference, jaxpr = _step_and_reference(0.5)
    chex.assert_trees_all_equal(new.rng, reference.rng)
    assert "random_split" in jaxpr


def test_a_deterministic_model_keeps_its_key_and_compiles_no_random_code():
    state, new, _, jaxpr = _step_and_reference(0.0)
    chex.assert_trees_all_equal(new.rng, state.rng)
    assert "random_split" not in jaxpr and "random_bits" not in jaxpr
