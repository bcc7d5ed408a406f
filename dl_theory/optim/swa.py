"""Stochastic Weight Averaging (Izmailov et al. 2018, "Averaging weights leads to wider optima
and better generalization", Alg. 1) as an optax transformation.

`swa(start_step, frequency)` goes last in a chain: it passes the updates through unchanged
and folds the new parameters theta + u into a running mean after update `start_step` and
every `frequency` updates after it. `swa_schedule` gives the SWA learning rate: constant, or
cyclic from learning_rate down to min_learning_rate over each averaging cycle (eq. 2).
Batch-norm statistics for the averaged weights are recomputed by
`dl_theory.train.batch_stats.recompute_batch_stats` (it runs forward passes, so it lives in
train/).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class SWAState(NamedTuple):
    count: jax.Array  # [] updates seen
    num_averaged: jax.Array  # [] snapshots folded into the average
    average: Any  # running mean of the parameters, float32, like params


def swa(start_step: int, frequency: int = 1) -> optax.GradientTransformation:
    """Running average of the parameters after each of updates start_step,
    start_step + frequency, ...; the updates themselves are unchanged."""
    if start_step < 1 or frequency < 1:
        raise ValueError(f"swa start_step={start_step}, frequency={frequency}; both must be >= 1")

    def init_fn(params):
        zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), params)
        return SWAState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32), zeros)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("swa needs params in update(grads, state, params)")
        count = state.count + 1
        take = (count >= start_step) & ((count - start_step) % frequency == 0)
        weight = jnp.where(take, 1.0 / (state.num_averaged + 1).astype(jnp.float32), 0.0)
        new_params = optax.apply_updates(params, updates)
        average = jax.tree.map(lambda a, p: a + weight * (p.astype(jnp.float32) - a),
                               state.average, new_params)
        return updates, SWAState(count, state.num_averaged + take.astype(jnp.int32), average)

    return optax.GradientTransformation(init_fn, update_fn)


def swa_schedule(learning_rate: float, frequency: int,
                 min_learning_rate: float | None = None) -> optax.Schedule:
    """Constant `learning_rate`, or with `min_learning_rate` the cyclic rate of Izmailov et al.
    eq. 2: alpha(i) = (1 - t(i)) alpha_1 + t(i) alpha_2, t(i) = (mod(i - 1, c) + 1) / c, where i
    counts updates since SWA started (from 1) and c = frequency."""
    if min_learning_rate is None:
        return optax.constant_schedule(learning_rate)

    def schedule(step):
        t = (jnp.mod(step, frequency) + 1) / frequency
        return (1 - t) * learning_rate + t * min_learning_rate

    return schedule


def _swa_states(opt_state) -> list[SWAState]:
    leaves = jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, SWAState))
    return [leaf for leaf in leaves if isinstance(leaf, SWAState)]


def swa_state(opt_state) -> SWAState:
    """The SWAState inside an optimizer state; a clear error if SWA is not in the chain."""
    states = _swa_states(opt_state)
    if len(states) != 1:
        raise ValueError(f"expected one SWA link in the optimizer, found {len(states)}; "
                         "set optimizer.swa.start_step to enable SWA")
    return states[0]


def averaged_params(opt_state, like_params):
    """The SWA average, cast to the dtypes of `like_params`; an error before any snapshot."""
    state = swa_state(opt_state)
    if int(state.num_averaged) == 0:
        raise ValueError(f"SWA has averaged no snapshot yet (updates seen: {int(state.count)})")
    return jax.tree.map(lambda a, p: a.astype(p.dtype), state.average, like_params)
