"""`fit` trains one model, `fit_grid` a stack of models (seeds, and hyper-parameters whose
shapes agree): each a compiled chunk of `eval_every` steps (`dl_theory.train.chunk`) driven
by a small host loop (`dl_theory.train.loop`) whose side jobs are hooks
(`dl_theory.train.hooks`), over a runner that holds the state as its strategy needs
(`dl_theory.train.runners`). Compiled programs are reused across calls with an equal model,
optimizer, loss, sampler and shapes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, Sampler
from dl_theory.train import interceptors, program_memory, runners
from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.chunk import Chunk
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.history import History
from dl_theory.train.hooks import DIVERGENCE_FACTOR, NonFiniteLossError
from dl_theory.train.loop import GRID_STRATEGIES, FitOptions, default_hooks, run_loop
from dl_theory.train.losses import Loss
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.parallel import make_mesh, replicate, shard_grid, shard_sampler
from dl_theory.train.precision import Policy
from dl_theory.train.state import TrainState
from dl_theory.train.step import MetricFn

__all__ = ["DIVERGENCE_FACTOR", "GRID_STRATEGIES", "FitOptions", "NonFiniteLossError", "fit",
           "fit_grid", "train"]


def _distribute(state, data, eval_data, sample_batch, grid: bool, data_axis, strategy):
    """With more than one device visible: data-parallel for one model (state and data
    replicated, each batch split over the "data" axis), member-parallel for a vmapped grid
    whose member count divides the devices (else replicated). Same computation either way."""
    mesh = make_mesh()
    if grid and strategy == "vmap":
        members = jax.tree.leaves(state.params)[0].shape[0]
        if members % mesh.size == 0:
            state = shard_grid(state, mesh)
            if data is not None and data_axis == 0:
                data = shard_grid(data, mesh)
        else:
            state = replicate(state, mesh)
    elif grid:
        state = replicate(state, mesh)
    else:
        state = replicate(state, mesh)
        sample_batch = shard_sampler(sample_batch, mesh)
    if data is not None and not (grid and strategy == "vmap" and data_axis == 0):
        data = replicate(data, mesh)
    if eval_data is not None:
        eval_data = replicate(eval_data, mesh)
    return state, data, eval_data, sample_batch


_member_keys = jax.jit(jax.vmap(jax.random.PRNGKey))


def _runner(state, data, data_keys, sampler, loss, options: FitOptions, grid: bool):
    chunk = Chunk(loss, sampler, options.policy, options.accumulate_steps, interceptors.active(),
                  options.grad_norm)
    if not grid:
        return runners.SingleModel(state, data, data_keys, chunk)
    if options.strategy == "vmap":
        return runners.VmappedGrid(state, data, data_keys, chunk, options.data_axis)
    return runners.ConcurrentMembers(state, data, data_keys, chunk, options.data_axis,
                                     options.workers)


def train(state: TrainState, data: Batch, sampler: Sampler, data_keys: jax.Array, *,
          loss: Loss, options: FitOptions, eval_data: Batch | None = None,
          grid: bool = False):
    """The common body of `fit` (data_keys: one key) and `fit_grid` (data_keys [G]):
    validate, place on devices, resume from a checkpoint, run the loop; (state, history)."""
    options.validate(grid, eval_data is not None)
    program_memory.release_if_crowded()
    if options.accumulate_steps > 1 and "batch_stats" in state.model_state:
        warnings.warn(f"{options.label}: with accumulate_steps={options.accumulate_steps}, "
                      "batch-norm statistics are computed per micro-batch, not over the "
                      "accumulated batch", stacklevel=3)
    if jax.device_count() > 1:
        state, data, eval_data, sampler = _distribute(state, data, eval_data, sampler, grid,
                                                      options.data_axis, options.strategy)
    hooks, stop_early, save = default_hooks(options)
    # Steps are counted from the state passed in, so calling fit again continues training;
    # a checkpoint restored below may already be part of the way.
    first_step = int(np.asarray(state.step).reshape(-1)[0])
    history = None
    if save is not None:
        state, history = save.resume(state, options.label, options.verbose)
    history = history or History()
    if stop_early is not None and stop_early.best_state is None:
        stop_early.best_state = state
    done = int(np.asarray(state.step).reshape(-1)[0]) - first_step
    runner = _runner(state, data, data_keys, sampler, loss, options, grid)
    if stop_early is None or stop_early.early_stopping.stopped_step is None:
        run_loop(runner, options, eval_data, options.evaluation(loss), hooks, history,
                 first_step, done)
    state = runner.state
    out = history.result()
    if stop_early is not None:
        state = stop_early.final_state(state)
        out["best_step"] = stop_early.early_stopping.best_step
        out["stopped_step"] = stop_early.early_stopping.stopped_step
    return state, out


def fit(state: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss, steps: int,
        eval_data: Batch | None = None, eval_every: int | None = None,
        eval_metrics: Mapping[str, MetricFn] | None = None, data_seed: int = 0,
        accumulate_steps: int = 1, early_stopping: EarlyStopping | None = None,
        checkpointer: Checkpointer | None = None, checkpoint_every: int | None = None,
        policy: Policy | None = None, log: MetricsLog | None = None,
        tags: Mapping[str, Any] | None = None,
        label: str = "fit", allow_nonfinite: bool = False, verbose: bool = True,
        grad_norm: bool = False):
    """Trains `state` for `steps` steps; returns (state, history).

    Each compiled call runs `eval_every` steps (a `lax.scan`), drawing batch t from
    `sample_batch(data, fold_in(key(data_seed), t))`; then `eval_data` is evaluated, a record
    is appended to `log` and a progress line printed. A training loss that is not finite, or
    over DIVERGENCE_FACTOR times its initial value, raises `NonFiniteLossError` naming the
    step, unless `allow_nonfinite`.

    accumulate_steps: k micro-steps per optimizer update (build the optimizer with the same
      `accumulate_steps`); `sample_batch` then draws the large batch, split into k slices.
    early_stopping: an `EarlyStopping` on an eval metric; stops, and restores the best state.
    checkpointer: saves every `checkpoint_every` steps (default: every evaluation) and at the
      end; if it already holds a checkpoint, training resumes from it, and ends with exactly
      the state an uninterrupted run reaches (the data order depends on (seed, step) only).
    policy: a precision policy (`dl_theory.train.precision.get_policy`); build the model with
      `policy.model_dtypes()` and, for float16, the state with `make_loss_scale(policy)`.
    grad_norm: also record each step's global gradient norm (history "grad_norm"); off by
      default, as it costs compilation and time in every step.
    With several devices visible the step runs data-parallel (jit + NamedSharding): the
    batch is split over the devices, and the result equals the 1-device run to float
    tolerance.

    history: "loss" (with `grad_norm`, also "grad_norm"; "learning_rate" if injected) per
    step, shape [steps];
    "eval_step" [E]; "eval_loss" and "eval_<metric>" per evaluation, shape [E].
    """
    options = FitOptions(
        steps=steps, eval_every=eval_every, eval_metrics=eval_metrics,
        accumulate_steps=accumulate_steps, early_stopping=early_stopping,
        checkpointer=checkpointer, checkpoint_every=checkpoint_every, policy=policy, log=log,
        tags=tags, label=label, allow_nonfinite=allow_nonfinite, verbose=verbose,
        grad_norm=grad_norm)
    return train(state, data, sample_batch, jax.random.PRNGKey(data_seed), loss=loss,
                 options=options, eval_data=eval_data)


def fit_grid(states: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss,
             steps: int, data_seeds, eval_data: Batch | None = None,
             eval_every: int | None = None, eval_metrics: Mapping[str, MetricFn] | None = None,
             data_axis: int | None = None, strategy: str | None = None,
             accumulate_steps: int = 1,
             checkpointer: Checkpointer | None = None, checkpoint_every: int | None = None,
             policy: Policy | None = None, log: MetricsLog | None = None,
             tags: Mapping[str, Any] | None = None, label: str = "grid",
             allow_nonfinite: bool = False, verbose: bool = True, workers: int | None = None,
             grad_norm: bool = False):
    """Trains G stacked models (see `create_train_states`) as one XLA program.

    Member g draws its batches from key(data_seeds[g]) exactly as `fit` with
    data_seed=data_seeds[g] would, so each member ends with what training it alone gives (to
    float tolerance). `data` is shared (data_axis=None) or stacked per member (data_axis=0).
    `strategy`: "vmap" batches the members' steps into one program; "sequential" runs one
    compiled chunk per member, `workers` members at a time (default: one per core when a
    member is too small to use the cores by itself, see `runners.default_workers`; the
    results are bit-identical to running each member alone). Default: "vmap" when several
    devices are visible (the members are then spread over them), else "sequential", which
    `benchmarks/sweep.py` measured faster on a 2-core CPU (vmapped matmuls of G members
    run slower there than G separate ones once a member is larger than a few dozen units).
    History arrays gain a leading member axis [G, ...]. With `allow_nonfinite`, diverged
    members carry NaN losses and the others train on.
    """
    if strategy is None:
        strategy = "vmap" if jax.device_count() > 1 else "sequential"
    data_keys = _member_keys(jnp.asarray(data_seeds))
    num_members = jax.tree.leaves(states.params)[0].shape[0]
    if data_keys.shape[0] != num_members:
        raise ValueError(f"{len(data_seeds)} data_seeds for {num_members} grid members")
    options = FitOptions(
        steps=steps, eval_every=eval_every, eval_metrics=eval_metrics,
        accumulate_steps=accumulate_steps, checkpointer=checkpointer,
        checkpoint_every=checkpoint_every, policy=policy, log=log, tags=tags, label=label,
        allow_nonfinite=allow_nonfinite, verbose=verbose, data_axis=data_axis,
        strategy=strategy, workers=workers, grad_norm=grad_norm)
    return train(states, data, sample_batch, data_keys, loss=loss, options=options,
                 eval_data=eval_data, grid=True)
