"""The fit loop's side jobs, one hook each: NaN detection, early stopping, metrics.jsonl,
progress lines and checkpoints (the shape of clu's periodic actions and nanodo's train loop).

After every chunk the loop builds a `ChunkEnd` and calls each hook on it in order; a hook
may raise (a non-finite loss), set `stop` (early stopping) or write something. The loop
itself only trains, evaluates and keeps the history.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.history import History
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.user_errors import UserError


class NonFiniteLossError(UserError, FloatingPointError):
    """Raised when the training loss diverges (NaN, infinite, or over DIVERGENCE_FACTOR times
    its initial value); names the step (and member). A `UserError`: the settings (learning
    rate, clipping) made the run diverge, and launch.py reports it in one line."""


# A loss this many times its initial value (or 1, if that is smaller) counts as diverged:
# no training that converges passes through it (a catapult or an edge-of-stability spike
# is 10-1000x), while a learning rate far too large (Adam at 1e6) settles around 1e9x with
# finite but meaningless losses.
DIVERGENCE_FACTOR = 1e6


@dataclasses.dataclass
class ChunkEnd:
    """What the host loop knows when a chunk has run: the run started at `first_step`, this
    chunk at `start_step`, it reached `step` of `end_step`; `record` holds label, tags,
    "step", "train_loss" (the chunk's mean) and "eval_<metric>"; `metrics` the per-step ones."""

    first_step: int
    start_step: int
    step: int
    end_step: int
    metrics: Mapping[str, np.ndarray]
    record: dict[str, Any]
    runner: Any
    history: History
    stop: bool = False

    @property
    def final(self) -> bool:
        return self.stop or self.step == self.end_step


def first_divergent(losses: np.ndarray, first_step: int,
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


@dataclasses.dataclass
class RaiseOnDivergence:
    """Raises `NonFiniteLossError` naming the first step (and grid member) whose training
    loss is NaN, infinite, or over DIVERGENCE_FACTOR times the run's initial loss."""

    label: str

    def __call__(self, end: ChunkEnd) -> None:
        bad = first_divergent(np.asarray(end.metrics["loss"]), end.start_step,
                              end.history.initial_loss())
        if bad is None:
            return
        member, step, value = bad
        where = f" in grid member {member}" if member is not None else ""
        what = ("became non-finite" if not np.isfinite(value) else
                f"diverged to {value:.3g} (over {DIVERGENCE_FACTOR:.0e} times its initial value)")
        raise NonFiniteLossError(f"{self.label}: loss {what} at step {step}{where} "
                                 f"(lower the learning rate, clip gradients, or pass "
                                 f"allow_nonfinite=True if divergence is the point)")


@dataclasses.dataclass
class StopEarly:
    """Feeds the monitored metric to `early_stopping`, keeps the best state seen, and stops
    the loop when patience runs out."""

    early_stopping: EarlyStopping
    best_state: Any = None

    def __call__(self, end: ChunkEnd) -> None:
        improved, stop = self.early_stopping.update(
            float(end.record[self.early_stopping.monitor]), end.step)
        if improved:
            self.best_state = end.runner.state
        end.stop = end.stop or stop

    def final_state(self, state):
        """The best state seen if `restore_best`, else `state`."""
        return self.best_state if self.early_stopping.restore_best else state


@dataclasses.dataclass
class WriteMetrics:
    """Appends each evaluation's record to metrics.jsonl."""

    log: MetricsLog

    def __call__(self, end: ChunkEnd) -> None:
        self.log.write(end.record)


def _summary(values: np.ndarray) -> str:
    if values.ndim == 0:
        return f"{float(values):.4g}"
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "nan"
    return f"median {np.median(finite):.4g} (min {finite.min():.4g}, max {finite.max():.4g})"


@dataclasses.dataclass
class PrintProgress:
    """One line per evaluation: step, training loss, eval metrics, seconds since start."""

    label: str
    start: float = dataclasses.field(default_factory=time.perf_counter)

    def __call__(self, end: ChunkEnd) -> None:
        evals = "".join(f" {k} {_summary(np.asarray(v))}" for k, v in end.record.items()
                        if k.startswith("eval_"))
        print(f"[{self.label}] step {end.step}/{end.end_step} train_loss "
              f"{_summary(np.asarray(end.record['train_loss']))}{evals} "
              f"({time.perf_counter() - self.start:.1f} s)" + (" early stop" if end.stop else ""),
              flush=True)


@dataclasses.dataclass
class SaveCheckpoints:
    """Saves the state (and the early-stopping best state), the history and the early
    stopping's counters every `every` steps and at the end; `resume` restores them."""

    checkpointer: Checkpointer
    every: int
    stop_early: StopEarly | None = None

    def _tree(self, state) -> dict[str, Any]:
        if self.stop_early is None:
            return {"train": state}
        best = state if self.stop_early.best_state is None else self.stop_early.best_state
        return {"train": state, "best": best}

    def resume(self, state, label: str, verbose: bool) -> tuple[Any, History | None]:
        """(state, history) of the newest checkpoint, or (state, None) if there is none."""
        restored = self.checkpointer.restore_latest(self._tree(state))
        if restored is None:
            return state, None
        tree, extra = restored
        if self.stop_early is not None:
            self.stop_early.best_state = tree["best"]
            self.stop_early.early_stopping = EarlyStopping.from_json(extra["early_stopping"])
        if verbose:
            print(f"[{label}] resumed from checkpoint at step {int(extra['step'])}", flush=True)
        return tree["train"], History.from_json(extra["history"])

    def __call__(self, end: ChunkEnd) -> None:
        if (end.step - end.first_step) % self.every and not end.final:
            return
        extra = {"step": end.step, "history": end.history.to_json()}
        if self.stop_early is not None:
            extra["early_stopping"] = self.stop_early.early_stopping.to_json()
        scalars = {k: float(np.mean(v)) for k, v in end.record.items()
                   if k.startswith(("eval_", "train_"))}
        self.checkpointer.save(end.step, self._tree(end.runner.state), extra, scalars)
