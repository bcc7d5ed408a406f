"""TrainState: everything a training step changes, in one pytree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from dl_theory.optim.build import current_hyperparam, set_hyperparam


@struct.dataclass
class TrainState:
    """Step counter, parameters, optimizer state, model state and RNG of one model.

    `model_state` holds the non-parameter variable collections (e.g. {"batch_stats": ...}),
    empty for stateless models; `loss_scale` is None except under float16. `apply_fn` and `tx`
    are static: stacking the states of many
    seeds along a leading axis (see `dl_theory.train.grid`) stacks only the arrays.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: Any
    rng: jax.Array
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    loss_scale: Any = None  # flax DynamicScale under float16 (dl_theory.train.precision)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, x_example,
                       seed, loss_scale: Any = None) -> TrainState:
    """Initialises `model` on `x_example` (a batch of inputs) from an integer `seed`.

    The seed may be a traced integer, so `jax.vmap(lambda s: create_train_state(..., s))`
    initialises a whole seed grid in one call.
    """
    key = jax.random.PRNGKey(seed)
    params_key, dropout_key, rng = jax.random.split(key, 3)
    variables = model.init({"params": params_key, "dropout": dropout_key}, x_example, train=False)
    variables = dict(variables)
    params = variables.pop("params")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      model_state=variables, rng=rng, apply_fn=model.apply, tx=tx,
                      loss_scale=loss_scale)


def create_train_states(model: nn.Module, tx: optax.GradientTransformation, x_example,
                        seeds, loss_scale: Any = None) -> TrainState:
    """The states of `len(seeds)` models stacked along a leading axis, for `fit_grid`."""
    seeds = jnp.asarray(seeds, dtype=jnp.int32)
    if seeds.ndim != 1 or seeds.size == 0:
        raise ValueError(f"seeds must be a non-empty 1-D sequence; got shape {seeds.shape}")
    return jax.vmap(lambda s: create_train_state(model, tx, x_example, s, loss_scale))(seeds)


def set_hyperparams(states: TrainState, **values) -> TrainState:
    """Gives each grid member its own numeric hyper-parameter (e.g. learning_rate=[G] values).

    Needs an optimizer with the hyper-parameter injected (`build_optimizer` injects
    learning_rate and weight_decay) and a constant (not scheduled) value for it: a schedule
    would overwrite it at the next update.
    """
    for name, value in values.items():
        current = current_hyperparam(states.opt_state, name)
        if current is None:
            raise ValueError(f"hyper-parameter {name!r} is not injected in the optimizer state")
        value = jnp.asarray(value, dtype=current.dtype)
        if value.shape != current.shape:
            raise ValueError(f"{name}: need shape {current.shape} (one per member), "
                             f"got {value.shape}")
        values[name] = value
    return states.replace(opt_state=set_hyperparam(states.opt_state, **values))
