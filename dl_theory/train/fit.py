"""The fit loop: many steps per compiled call, evaluation, metrics.jsonl, NaN detection.

`fit` trains one model; `fit_grid` trains a stack of models (seeds, and hyper-parameters
whose shapes agree) as one XLA program. Both run `eval_every` steps per call as a
`lax.scan` whose body draws its batch on the device, so Python sees one dispatch per
evaluation, not one per step.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, Sampler
from dl_theory.train.losses import Loss
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import TrainState
from dl_theory.train.step import MetricFn, make_eval_step, make_train_step

GRID_STRATEGIES = ("vmap", "map")


class NonFiniteLossError(FloatingPointError):
    """Raised when the training loss becomes NaN or infinite; names the step (and member)."""


def _scan_steps(train_step, sample_batch: Sampler, num_steps: int):
    """(state, data, data_key) -> (state, per-step metrics) for `num_steps` steps."""

    def run(state: TrainState, data: Batch, data_key: jax.Array):
        def body(state, _):
            batch = sample_batch(data, jax.random.fold_in(data_key, state.step))
            return train_step(state, batch)

        return jax.lax.scan(body, state, None, length=num_steps)

    return run


def _over_grid(fn: Callable, strategy: str, data_axis: int | None) -> Callable:
    """Lifts fn(state, data, key) to stacked states and keys, as one program."""
    if strategy == "vmap":
        return jax.vmap(fn, in_axes=(0, data_axis, 0))

    def mapped(states, data, keys):
        if data_axis is None:
            return jax.lax.map(lambda sk: fn(sk[0], data, sk[1]), (states, keys))
        return jax.lax.map(lambda sdk: fn(*sdk), (states, data, keys))

    return mapped


def _first_nonfinite(losses: np.ndarray, first_step: int) -> tuple[int | None, int] | None:
    """(member or None, step) of the first non-finite loss in losses [n] or [G, n]."""
    bad = ~np.isfinite(losses)
    if not bad.any():
        return None
    if losses.ndim == 1:
        return None, first_step + int(np.argmax(bad))
    steps = np.where(bad.any(axis=1), np.argmax(bad, axis=1), losses.shape[1])
    member = int(np.argmin(steps))
    return member, first_step + int(steps[member])


def _summary(values: np.ndarray) -> str:
    if values.ndim == 0:
        return f"{float(values):.4g}"
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "nan"
    return f"median {np.median(finite):.4g} (min {finite.min():.4g}, max {finite.max():.4g})"


def _train(state, data, sample_batch, *, loss, steps, eval_data, eval_every, eval_metrics,
           data_keys, log, tags, label, allow_nonfinite, verbose, grid, strategy, data_axis):
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r}; must be a positive integer")
    eval_every = steps if eval_every is None else eval_every
    if not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every={eval_every!r}; must be a positive integer or None")
    if grid and strategy not in GRID_STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; known: {list(GRID_STRATEGIES)}")

    train_step = make_train_step(loss)
    eval_step = make_eval_step(loss, eval_metrics)
    if grid:
        eval_step = jax.vmap(eval_step, in_axes=(0, None))
    eval_step = jax.jit(eval_step)
    compiled: dict[int, Callable] = {}

    def chunk_fn(num_steps: int) -> Callable:
        if num_steps not in compiled:
            fn = _scan_steps(train_step, sample_batch, num_steps)
            compiled[num_steps] = jax.jit(_over_grid(fn, strategy, data_axis) if grid else fn)
        return compiled[num_steps]

    history: dict[str, Any] = {"loss": [], "grad_norm": [], "eval_step": []}
    start, done = time.perf_counter(), 0
    while done < steps:
        num_steps = min(eval_every, steps - done)
        state, metrics = chunk_fn(num_steps)(state, data, data_keys)
        losses = np.asarray(metrics["loss"])
        bad = _first_nonfinite(losses, done)
        if bad is not None and not allow_nonfinite:
            member, step = bad
            where = f" in grid member {member}" if member is not None else ""
            raise NonFiniteLossError(f"{label}: loss became non-finite at step {step}{where} "
                                     f"(lower the learning rate, clip gradients, or pass "
                                     f"allow_nonfinite=True if divergence is the point)")
        history["loss"].append(losses)
        history["grad_norm"].append(np.asarray(metrics["grad_norm"]))
        if "learning_rate" in metrics:
            history.setdefault("learning_rate", []).append(np.asarray(metrics["learning_rate"]))
        done += num_steps
        record = {"label": label, **(tags or {}), "step": done,
                  "train_loss": losses.mean(axis=-1)}
        if eval_data is not None:
            for name, value in eval_step(state, eval_data).items():
                history.setdefault(f"eval_{name}", []).append(np.asarray(value))
                record[f"eval_{name}"] = np.asarray(value)
        history["eval_step"].append(done)
        if log is not None:
            log.write(record)
        if verbose:
            evals = "".join(f" {k} {_summary(np.asarray(v))}" for k, v in record.items()
                            if k.startswith("eval_"))
            print(f"[{label}] step {done}/{steps} train_loss {_summary(record['train_loss'])}"
                  f"{evals} ({time.perf_counter() - start:.1f} s)", flush=True)

    axis = -1
    out = {k: np.concatenate(v, axis=axis) for k, v in history.items()
           if k in ("loss", "grad_norm", "learning_rate")}
    out["eval_step"] = np.asarray(history["eval_step"])
    out.update({k: np.stack(v, axis=-1) for k, v in history.items() if k.startswith("eval_")
                and k != "eval_step"})
    return state, out


def fit(state: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss, steps: int,
        eval_data: Batch | None = None, eval_every: int | None = None,
        eval_metrics: Mapping[str, MetricFn] | None = None, data_seed: int = 0,
        log: MetricsLog | None = None, tags: Mapping[str, Any] | None = None,
        label: str = "fit", allow_nonfinite: bool = False, verbose: bool = True):
    """Trains `state` for `steps` steps of `loss`; returns (state, history).

    Each compiled call runs `eval_every` steps (a `lax.scan`), drawing batch t from
    `sample_batch(data, fold_in(key(data_seed), t))`; then `eval_data` is evaluated, a record
    is appended to `log` and a progress line printed. A non-finite training loss raises
    `NonFiniteLossError` naming the step, unless `allow_nonfinite`.

    history: "loss", "grad_norm" (and "learning_rate" if injected) per step, shape [steps];
    "eval_step" [E]; "eval_loss" and "eval_<metric>" per evaluation, shape [E].
    """
    data_key = jax.random.PRNGKey(data_seed)
    return _train(state, data, sample_batch, loss=loss, steps=steps, eval_data=eval_data,
                  eval_every=eval_every, eval_metrics=eval_metrics, data_keys=data_key, log=log,
                  tags=tags, label=label, allow_nonfinite=allow_nonfinite, verbose=verbose,
                  grid=False, strategy="vmap", data_axis=None)


def fit_grid(states: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss,
             steps: int, data_seeds, eval_data: Batch | None = None,
             eval_every: int | None = None, eval_metrics: Mapping[str, MetricFn] | None = None,
             data_axis: int | None = None, strategy: str = "vmap",
             log: MetricsLog | None = None, tags: Mapping[str, Any] | None = None,
             label: str = "grid", allow_nonfinite: bool = False, verbose: bool = True):
    """Trains G stacked models (see `create_train_states`) as one XLA program.

    Member g draws its batches from key(data_seeds[g]) exactly as `fit` with
    data_seed=data_seeds[g] would, so each member ends with what training it alone gives (to
    float tolerance). `data` is shared (data_axis=None) or stacked per member (data_axis=0).
    `strategy`: "vmap" batches the members' steps together; "map" runs them one after the
    other inside the program (`lax.map`); `benchmarks/sweep.py` measures which is faster.
    History arrays gain a leading member axis [G, ...]. With `allow_nonfinite`, diverged
    members carry NaN losses and the others train on.
    """
    data_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(data_seeds))
    num_members = jax.tree.leaves(states.params)[0].shape[0]
    if data_keys.shape[0] != num_members:
        raise ValueError(f"{len(data_seeds)} data_seeds for {num_members} grid members")
    return _train(states, data, sample_batch, loss=loss, steps=steps, eval_data=eval_data,
                  eval_every=eval_every, eval_metrics=eval_metrics, data_keys=data_keys,
                  log=log, tags=tags, label=label, allow_nonfinite=allow_nonfinite,
                  verbose=verbose, grid=True, strategy=strategy, data_axis=data_axis)
