"""The fit loop: many steps per compiled call, evaluation, metrics.jsonl, NaN detection,
gradient accumulation, early stopping, and checkpoints that a restarted run resumes from.

`fit` trains one model; `fit_grid` trains a stack of models (seeds, and hyper-parameters
whose shapes agree) as one XLA program. Both run `eval_every` steps per call as a
`lax.scan` whose body draws its batch on the device, so Python sees one dispatch per
evaluation, not one per step.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, Sampler
from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.losses import Loss
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.parallel import make_mesh, replicate, shard_grid, shard_sampler
from dl_theory.train.precision import Policy
from dl_theory.train.state import TrainState
from dl_theory.train.step import MetricFn, make_eval_step, make_train_step
from dl_theory.user_errors import UserError

GRID_STRATEGIES = ("vmap", "sequential")
_PER_STEP = ("loss", "grad_norm", "learning_rate", "loss_scale", "grads_finite")


class NonFiniteLossError(UserError, FloatingPointError):
    """Raised when the training loss becomes NaN or infinite; names the step (and member).

    A `UserError`: the settings (learning rate, clipping) made the run diverge, and launch.py
    reports it in one line."""


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


def _scan_steps(train_step, draw_batch, num_steps: int):
    """(state, data, data_key) -> (state, per-step metrics) for `num_steps` steps."""

    def run(state: TrainState, data: Batch, data_key: jax.Array):
        def body(state, _):
            return train_step(state, draw_batch(data, data_key, state.step))

        return jax.lax.scan(body, state, None, length=num_steps)

    return run


def _over_grid(fn: Callable, strategy: str, data_axis: int | None) -> Callable:
    """Lifts fn(state, data, key) to stacked states and keys [G, ...].

    "vmap": one compiled program steps all members together (batched matmuls).
    "sequential": one compiled program per member, called G times per chunk (each call runs
    a whole chunk of steps, so this is G dispatches per evaluation, not per step); on a CPU
    it beats vmap once a member's matmuls are large enough to use the cores by themselves
    (benchmarks/sweep.py measures both).
    """
    if strategy == "vmap":
        return jax.jit(jax.vmap(fn, in_axes=(0, data_axis, 0)))
    single = jax.jit(fn)

    def sequential(states, data, keys):
        outs = []
        for g in range(keys.shape[0]):
            member = jax.tree.map(lambda a: a[g], states)
            member_data = data if data_axis is None else jax.tree.map(lambda a: a[g], data)
            outs.append(single(member, member_data, keys[g]))
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

    return sequential


# A loss this many times its initial value (or 1, if that is smaller) counts as diverged:
# no training that converges passes through it (a catapult or an edge-of-stability spike
# is 10-1000x), while a learning rate far too large (Adam at 1e6) settles around 1e9x with
# finite but meaningless losses.
DIVERGENCE_FACTOR = 1e6


def _first_divergent(losses: np.ndarray, first_step: int,
                     initial: np.ndarray) -> tuple[int | None, int, float] | None:
    """(member or None, step, loss) of the first loss in losses [n] or [G, n] that is not
    finite or exceeds DIVERGENCE_FACTOR * max(|initial|, 1) (initial: [] or [G])."""
    limit = DIVERGENCE_FACTOR * np.maximum(np.abs(initial), 1.0)[..., None]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(losses) | (np.abs(losses) > limit)
    if not bad.any():
        return None
    if losses.ndim == 1:
        index = int(np.argmax(bad))
        return None, first_step + index, float(losses[index])
    steps = np.where(bad.any(axis=1), np.argmax(bad, axis=1), losses.shape[1])
    member = int(np.argmin(steps))
    return member, first_step + int(steps[member]), float(losses[member, steps[member]])


def _summary(values: np.ndarray) -> str:
    if values.ndim == 0:
        return f"{float(values):.4g}"
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "nan"
    return f"median {np.median(finite):.4g} (min {finite.min():.4g}, max {finite.max():.4g})"


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; must be a positive integer")


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


def _train(state, data, sample_batch, *, loss, steps, eval_data, eval_every, eval_metrics,
           data_keys, log, tags, label, allow_nonfinite, verbose, grid, strategy, data_axis,
           accumulate_steps, early_stopping, checkpointer, checkpoint_every, policy):
    _check_positive_int("steps", steps)
    eval_every = steps if eval_every is None else eval_every
    _check_positive_int("eval_every", eval_every)
    _check_positive_int("accumulate_steps", accumulate_steps)
    checkpoint_every = checkpoint_every or eval_every
    if checkpoint_every % eval_every:
        raise ValueError(f"checkpoint_every={checkpoint_every} must be a multiple of "
                         f"eval_every={eval_every}")
    if grid and strategy not in GRID_STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; known: {list(GRID_STRATEGIES)}")
    if early_stopping is not None and (grid or eval_data is None):
        raise ValueError("early stopping needs a single model (fit, not fit_grid) and eval_data")
    if accumulate_steps > 1 and "batch_stats" in state.model_state:
        warnings.warn(f"{label}: with accumulate_steps={accumulate_steps}, batch-norm statistics "
                      "are computed per micro-batch, not over the accumulated batch", stacklevel=3)

    if jax.device_count() > 1:
        state, data, eval_data, sample_batch = _distribute(state, data, eval_data, sample_batch,
                                                           grid, data_axis, strategy)
    train_step = make_train_step(loss, policy)
    draw_batch = _micro_batch(sample_batch, accumulate_steps)
    eval_step = make_eval_step(loss, eval_metrics, policy)
    if grid:
        eval_step = jax.vmap(eval_step, in_axes=(0, None))
    eval_step = jax.jit(eval_step)
    compiled: dict[int, Callable] = {}

    def chunk_fn(num_steps: int) -> Callable:
        if num_steps not in compiled:
            fn = _scan_steps(train_step, draw_batch, num_steps)
            compiled[num_steps] = _over_grid(fn, strategy, data_axis) if grid else jax.jit(fn)
        return compiled[num_steps]

    history: dict[str, list] = {"eval_step": []}
    best_state = state
    # Steps are counted from the state passed in, so calling fit again continues training;
    # a checkpoint restored below may already be part of the way.
    first_step = int(np.asarray(state.step).reshape(-1)[0])

    def saved_tree(current):
        return {"train": current, "best": best_state} if early_stopping else {"train": current}

    if checkpointer is not None:
        restored = checkpointer.restore_latest(saved_tree(state))
        if restored is not None:
            tree, extra = restored
            state = tree["train"]
            best_state = tree.get("best", state)
            # JSON lists come back as float64 / int64: restore each entry's saved dtype so
            # that a resumed run's history equals an uninterrupted one, dtypes included.
            dtypes = extra.get("history_dtypes", {})
            history = {k: [np.asarray(v, dtype=dtypes.get(k)) for v in vs]
                       if k != "eval_step" else list(vs)
                       for k, vs in extra["history"].items()}
            if early_stopping is not None:
                early_stopping = EarlyStopping.from_json(extra["early_stopping"])
            if verbose:
                print(f"[{label}] resumed from checkpoint at step {int(extra['step'])}",
                      flush=True)

    done = int(np.asarray(state.step).reshape(-1)[0]) - first_step
    start = time.perf_counter()
    stop = early_stopping is not None and early_stopping.stopped_step is not None
    while done < steps and not stop:
        num_steps = min(eval_every, steps - done)
        state, metrics = chunk_fn(num_steps)(state, data, data_keys)
        losses = np.asarray(metrics["loss"])
        initial = (history["loss"][0] if history.get("loss") else losses)[..., 0]
        bad = _first_divergent(losses, first_step + done, initial)
        if bad is not None and not allow_nonfinite:
            member, step, value = bad
            where = f" in grid member {member}" if member is not None else ""
            what = ("became non-finite" if not np.isfinite(value) else
                    f"diverged to {value:.3g} (over {DIVERGENCE_FACTOR:.0e} times its initial "
                    "value)")
            raise NonFiniteLossError(f"{label}: loss {what} at step {step}{where} "
                                     f"(lower the learning rate, clip gradients, or pass "
                                     f"allow_nonfinite=True if divergence is the point)")
        for key in _PER_STEP:
            if key in metrics:
                history.setdefault(key, []).append(np.asarray(metrics[key]))
        done += num_steps
        record = {"label": label, **(tags or {}), "step": first_step + done,
                  "train_loss": losses.mean(axis=-1)}
        if eval_data is not None:
            for name, value in eval_step(state, eval_data).items():
                history.setdefault(f"eval_{name}", []).append(np.asarray(value))
                record[f"eval_{name}"] = np.asarray(value)
        history["eval_step"].append(first_step + done)
        if early_stopping is not None:
            improved, stop = early_stopping.update(float(record[early_stopping.monitor]),
                                                   first_step + done)
            if improved:
                best_state = state
        if log is not None:
            log.write(record)
        if verbose:
            evals = "".join(f" {k} {_summary(np.asarray(v))}" for k, v in record.items()
                            if k.startswith("eval_"))
            elapsed = time.perf_counter() - start
            print(f"[{label}] step {first_step + done}/{first_step + steps} "
                  f"train_loss {_summary(record['train_loss'])}{evals} ({elapsed:.1f} s)"
                  + (" early stop" if stop else ""), flush=True)
        if checkpointer is not None and (done % checkpoint_every == 0 or done == steps or stop):
            extra = {"step": first_step + done,
                     "history": {k: [np.asarray(v).tolist() for v in vs]
                                 for k, vs in history.items()},
                     "history_dtypes": {k: str(np.asarray(vs[0]).dtype)
                                        for k, vs in history.items()
                                        if k != "eval_step" and vs}}
            if early_stopping is not None:
                extra["early_stopping"] = early_stopping.to_json()
            scalars = {k: float(np.mean(v)) for k, v in record.items()
                       if k.startswith(("eval_", "train_"))}
            checkpointer.save(first_step + done, saved_tree(state), extra, scalars)

    if early_stopping is not None and early_stopping.restore_best:
        state = best_state
    out = {k: np.concatenate(history[k], axis=-1) for k in _PER_STEP if history.get(k)}
    out["eval_step"] = np.asarray(history["eval_step"])
    out.update({k: np.stack(v, axis=-1) for k, v in history.items()
                if k.startswith("eval_") and k != "eval_step"})
    if early_stopping is not None:
        out["best_step"] = early_stopping.best_step
        out["stopped_step"] = early_stopping.stopped_step
    return state, out


def fit(state: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss, steps: int,
        eval_data: Batch | None = None, eval_every: int | None = None,
        eval_metrics: Mapping[str, MetricFn] | None = None, data_seed: int = 0,
        accumulate_steps: int = 1, early_stopping: EarlyStopping | None = None,
        checkpointer: Checkpointer | None = None, checkpoint_every: int | None = None,
        policy: Policy | None = None, log: MetricsLog | None = None,
        tags: Mapping[str, Any] | None = None,
        label: str = "fit", allow_nonfinite: bool = False, verbose: bool = True):
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
    With several devices visible the step runs data-parallel (jit + NamedSharding): the
    batch is split over the devices, and the result equals the 1-device run to float
    tolerance.

    history: "loss", "grad_norm" (and "learning_rate" if injected) per step, shape [steps];
    "eval_step" [E]; "eval_loss" and "eval_<metric>" per evaluation, shape [E].
    """
    data_key = jax.random.PRNGKey(data_seed)
    return _train(state, data, sample_batch, loss=loss, steps=steps, eval_data=eval_data,
                  eval_every=eval_every, eval_metrics=eval_metrics, data_keys=data_key, log=log,
                  tags=tags, label=label, allow_nonfinite=allow_nonfinite, verbose=verbose,
                  grid=False, strategy=None, data_axis=None, accumulate_steps=accumulate_steps,
                  early_stopping=early_stopping, checkpointer=checkpointer,
                  checkpoint_every=checkpoint_every, policy=policy)


def fit_grid(states: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss,
             steps: int, data_seeds, eval_data: Batch | None = None,
             eval_every: int | None = None, eval_metrics: Mapping[str, MetricFn] | None = None,
             data_axis: int | None = None, strategy: str | None = None,
             accumulate_steps: int = 1,
             checkpointer: Checkpointer | None = None, checkpoint_every: int | None = None,
             policy: Policy | None = None, log: MetricsLog | None = None,
        tags: Mapping[str, Any] | None = None,
             label: str = "grid", allow_nonfinite: bool = False, verbose: bool = True):
    """Trains G stacked models (see `create_train_states`) as one XLA program.

    Member g draws its batches from key(data_seeds[g]) exactly as `fit` with
    data_seed=data_seeds[g] would, so each member ends with what training it alone gives (to
    float tolerance). `data` is shared (data_axis=None) or stacked per member (data_axis=0).
    `strategy`: "vmap" batches the members' steps into one program; "sequential" runs one
    compiled chunk per member (G dispatches per evaluation). Default: "vmap" when several
    devices are visible (the members are then spread over them), else "sequential", which
    `benchmarks/sweep.py` measured faster on a 2-core CPU (vmapped matmuls of G members
    run slower there than G separate ones once a member is larger than a few dozen units).
    History arrays gain a leading member axis [G, ...]. With `allow_nonfinite`, diverged
    members carry NaN losses and the others train on.
    """
    if strategy is None:
        strategy = "vmap" if jax.device_count() > 1 else "sequential"
    data_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(data_seeds))
    num_members = jax.tree.leaves(states.params)[0].shape[0]
    if data_keys.shape[0] != num_members:
        raise ValueError(f"{len(data_seeds)} data_seeds for {num_members} grid members")
    return _train(states, data, sample_batch, loss=loss, steps=steps, eval_data=eval_data,
                  eval_every=eval_every, eval_metrics=eval_metrics, data_keys=data_keys,
                  log=log, tags=tags, label=label, allow_nonfinite=allow_nonfinite,
                  verbose=verbose, grid=True, strategy=strategy, data_axis=data_axis,
                  accumulate_steps=accumulate_steps, early_stopping=None,
                  checkpointer=checkpointer, checkpoint_every=checkpoint_every, policy=policy)
