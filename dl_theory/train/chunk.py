"""The compiled programs of the fit loop: a chunk of training steps, and an evaluation.

A chunk runs `num_steps` steps as one `lax.scan` whose body draws its batch on the device
(`sample(data, fold_in(data_key, step))`), so Python sees one dispatch per chunk, not one per
step. Every program here is a module-level `jax.jit` whose static arguments are the things
that shape the program (`Chunk`: loss, sampler, precision policy, accumulation, active Flax
interceptors; the number of steps) and whose array arguments are the state, the data and the
keys. JAX's own cache then keys each compiled program on exactly what determines it: the
static arguments (by equality), the pytree structure of the state (which holds the model,
compared by value via `ModuleApply`, and the optimizer chain, by identity: `build_optimizer`
returns one per config), and the shapes, dtypes and shardings of the arrays. A second `fit`
with an equal model, optimizer, loss, sampler and shapes therefore compiles nothing; anything
compared by identity (a lambda loss, a closure sampler) at worst misses the cache, never
collides.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from dl_theory.data.batching import Batch, Sampler
from dl_theory.train import interceptors
from dl_theory.train.losses import Loss
from dl_theory.train.precision import Policy
from dl_theory.train.state import TrainState
from dl_theory.train.step import make_eval_step, make_train_step


@dataclasses.dataclass(frozen=True)
class Chunk:
    """What a training chunk computes besides its arrays: hashable, a static jit argument."""

    loss: Loss
    sampler: Sampler
    policy: Policy | None = None
    accumulate_steps: int = 1
    interceptors: tuple[Callable, ...] = ()  # dl_theory.train.interceptors.active()
    # The global gradient norm of every step: one more reduction over all parameters per
    # step, which costs ~0.15 s of compilation per program (measured); recorded on request.
    grad_norm: bool = False


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What an evaluation computes: the loss and extra metrics as (name, fn) pairs."""

    loss: Loss
    metrics: tuple[tuple[str, Callable], ...] = ()
    policy: Policy | None = None
    interceptors: tuple[Callable, ...] = ()


def _micro_batch(sample_batch: Sampler, accumulate_steps: int) -> Callable:
    """(data, data_key, step) -> the batch of micro-step `step`.

    Without accumulation: sample_batch(data, fold_in(key, step)). With k micro-steps per
    update, the large batch of update step // k is drawn and its slice step % k returned,
    with the large batch's mean micro-batch weight as "normalizer" (see
    `dl_theory.train.step.micro_batch_share`).
    """
    if accumulate_steps == 1:
        return lambda data, key, step: sample_batch(data, jax.random.fold_in(key, step))

    def sample(data, key, step):
        large = sample_batch(data, jax.random.fold_in(key, step // accumulate_steps))
        size = large["y"].shape[0]
        if size % accumulate_steps:
            raise ValueError(f"batch of {size} examples is not divisible into "
                             f"accumulate_steps={accumulate_steps} micro-batches")
        micro = size // accumulate_steps
        start = (step % accumulate_steps) * micro
        batch = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, micro), large)
        weight = large.get("weight")
        total = size if weight is None else jnp.sum(weight.astype(jnp.float32))
        return {**batch, "normalizer": total / accumulate_steps}

    return sample


def _scan_steps(state: TrainState, data: Batch, data_key: jax.Array, chunk: Chunk,
                num_steps: int):
    train_step = make_train_step(chunk.loss, chunk.policy, chunk.grad_norm)
    draw_batch = _micro_batch(chunk.sampler, chunk.accumulate_steps)

    def body(state, _):
        return train_step(state, draw_batch(data, data_key, state.step))

    with interceptors.installed(chunk.interceptors):
        return jax.lax.scan(body, state, None, length=num_steps)


@functools.partial(jax.jit, static_argnames=("chunk", "num_steps"))
def train_chunk(state: TrainState, data: Batch, data_key: jax.Array, *, chunk: Chunk,
                num_steps: int) -> tuple[TrainState, dict[str, jax.Array]]:
    """`num_steps` steps of one model; per-step metrics of shape [num_steps]."""
    return _scan_steps(state, data, data_key, chunk, num_steps)


@functools.partial(jax.jit, static_argnames=("chunk", "num_steps", "data_axis"))
def train_chunk_vmapped(states: TrainState, data: Batch, data_keys: jax.Array, *,
                        chunk: Chunk, num_steps: int, data_axis: int | None):
    """`train_chunk` of G stacked members as one program (batched matmuls); data shared
    (data_axis=None) or stacked per member (0); metrics [G, num_steps]."""
    run = functools.partial(_scan_steps, chunk=chunk, num_steps=num_steps)
    return jax.vmap(run, in_axes=(0, data_axis, 0))(states, data, data_keys)


def _eval_step(evaluation: Evaluation):
    step = make_eval_step(evaluation.loss, dict(evaluation.metrics), evaluation.policy)

    def eval_step(state, batch):
        with interceptors.installed(evaluation.interceptors):
            return step(state, batch)

    return eval_step


@functools.partial(jax.jit, static_argnames=("evaluation",))
def evaluate(state: TrainState, batch: Batch, *, evaluation: Evaluation) -> dict[str, Any]:
    """Evaluation metrics of one model on `batch`."""
    return _eval_step(evaluation)(state, batch)


@functools.partial(jax.jit, static_argnames=("evaluation",))
def evaluate_stacked(states: TrainState, batch: Batch, *,
                     evaluation: Evaluation) -> dict[str, Any]:
    """Evaluation metrics [G] of G stacked members on one shared `batch`."""
    return jax.vmap(_eval_step(evaluation), in_axes=(0, None))(states, batch)


@functools.partial(jax.jit, static_argnames=("evaluation",))
def evaluate_members(members: list[TrainState], batch: Batch, *,
                     evaluation: Evaluation) -> dict[str, Any]:
    """`evaluate_stacked` of G separate member states: the stacking happens inside the
    program, so the members need not be stacked on the host to be evaluated together."""
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
    return jax.vmap(_eval_step(evaluation), in_axes=(0, None))(stacked, batch)
