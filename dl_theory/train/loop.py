"""The host loop of `fit` / `fit_grid`, and the one options object both take.

    while steps remain and no hook said stop:
        metrics = runner.advance(chunk)            # one compiled chunk (a lax.scan of steps)
        history.add(metrics); evaluate on eval_data
        for hook in hooks: hook(ChunkEnd(...))     # NaN check, early stop, log, print, save

Everything that is not training (see `dl_theory.train.hooks`) is a hook; everything that
is training is in the compiled chunk (`dl_theory.train.chunk`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dl_theory.data.batching import Batch
from dl_theory.train import hooks as hooks_lib
from dl_theory.train import interceptors
from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.chunk import Evaluation
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.history import History
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.precision import Policy

GRID_STRATEGIES = ("vmap", "sequential")


def _check_positive_int(name: str, value) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; must be a positive integer")


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """Everything `fit` / `fit_grid` take besides state, data, sampler and loss (their
    docstrings describe each field). `workers`: how many grid members' programs the
    "sequential" strategy runs at once (default: `runners.default_workers`)."""

    steps: int
    eval_every: int | None = None
    eval_metrics: Mapping[str, Callable] | None = None
    accumulate_steps: int = 1
    early_stopping: EarlyStopping | None = None
    checkpointer: Checkpointer | None = None
    checkpoint_every: int | None = None
    policy: Policy | None = None
    log: MetricsLog | None = None
    tags: Mapping[str, Any] | None = None
    label: str = "fit"
    allow_nonfinite: bool = False
    verbose: bool = True
    data_axis: int | None = None
    strategy: str | None = None
    workers: int | None = None
    grad_norm: bool = False

    @property
    def chunk_steps(self) -> int:
        return self.steps if self.eval_every is None else self.eval_every

    def validate(self, grid: bool, has_eval_data: bool) -> None:
        """A one-line error naming the bad option, before anything is compiled."""
        _check_positive_int("steps", self.steps)
        _check_positive_int("eval_every", self.chunk_steps)
        _check_positive_int("accumulate_steps", self.accumulate_steps)
        if self.workers is not None:
            _check_positive_int("workers", self.workers)
        every = self.checkpoint_every or self.chunk_steps
        if every % self.chunk_steps:
            raise ValueError(f"checkpoint_every={every} must be a multiple of "
                             f"eval_every={self.chunk_steps}")
        if grid and self.strategy not in GRID_STRATEGIES:
            raise ValueError(f"strategy={self.strategy!r}; known: {list(GRID_STRATEGIES)}")
        if self.early_stopping is not None and (grid or not has_eval_data):
            raise ValueError("early stopping needs a single model (fit, not fit_grid) and "
                             "eval_data")

    def evaluation(self, loss) -> Evaluation:
        return Evaluation(loss, tuple((self.eval_metrics or {}).items()), self.policy,
                          interceptors.active())


def default_hooks(options: FitOptions) -> tuple[list[Callable], hooks_lib.StopEarly | None,
                                                hooks_lib.SaveCheckpoints | None]:
    """The hooks that `options` asks for, in the order they must run (NaN check before
    anything is written; early stopping before the checkpoint that records it)."""
    hooks: list[Callable] = []
    if not options.allow_nonfinite:
        hooks.append(hooks_lib.RaiseOnDivergence(options.label))
    stop_early = (None if options.early_stopping is None
                  else hooks_lib.StopEarly(options.early_stopping))
    if stop_early is not None:
        hooks.append(stop_early)
    if options.log is not None:
        hooks.append(hooks_lib.WriteMetrics(options.log))
    if options.verbose:
        hooks.append(hooks_lib.PrintProgress(options.label))
    save = None
    if options.checkpointer is not None:
        save = hooks_lib.SaveCheckpoints(options.checkpointer,
                                         options.checkpoint_every or options.chunk_steps,
                                         stop_early)
        hooks.append(save)
    return hooks, stop_early, save


def run_loop(runner, options: FitOptions, eval_data: Batch | None, evaluation: Evaluation,
             hooks: list[Callable], history: History, first_step: int, done: int) -> None:
    """Advances `runner` chunk by chunk from `first_step + done` to `first_step + steps`,
    recording into `history` and calling `hooks` after each chunk."""
    end_step = first_step + options.steps
    stopped = False
    while done < options.steps and not stopped:
        num_steps = min(options.chunk_steps, options.steps - done)
        metrics = runner.advance(num_steps)
        start_step, done = first_step + done, done + num_steps
        history.add_steps(metrics)
        record = {"label": options.label, **(options.tags or {}), "step": first_step + done,
                  "train_loss": np.asarray(metrics["loss"]).mean(axis=-1)}
        evals = {} if eval_data is None else runner.evaluate(eval_data, evaluation)
        history.add_evaluation(first_step + done, evals)
        record.update({f"eval_{k}": np.asarray(v) for k, v in evals.items()})
        end = hooks_lib.ChunkEnd(first_step=first_step, start_step=start_step,
                                 step=first_step + done, end_step=end_step, metrics=metrics,
                                 record=record, runner=runner, history=history)
        for hook in hooks:
            hook(end)
        stopped = end.stop
