"""Orbax checkpoints of a training run: the last K, plus the best by a metric.

A checkpoint holds the whole `TrainState` (step, params, optimizer state with any SWA
average, model state, RNG) and a JSON side-car with the loop's own state (history so far,
early-stopping state). Orbax writes each checkpoint into a temporary directory and renames
it only once complete, and `latest_step` lists only finalised checkpoints, so a process
killed while saving leaves the previous checkpoint as the latest: a half-written one is
never restored as if whole. A checkpoint damaged after the fact (a disk error, a copy cut
short) is skipped on restore: `restore_latest` falls back to the newest one that restores,
says which it skipped, and deletes them, so training continues from there.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp

from dl_theory.user_errors import UserError


class NoRestorableCheckpointError(UserError, RuntimeError):
    """Checkpoints exist but none of them restores."""


class Checkpointer:
    """Saves to `directory/latest` (keeps `keep`) and, with `best_metric`, to
    `directory/best` (keeps the single best by that metric, `best_mode` "min" or "max")."""

    def __init__(self, directory: str | pathlib.Path, *, keep: int = 3,
                 best_metric: str | None = None, best_mode: str = "min"):
        if keep < 1:
            raise ValueError(f"keep={keep}; must be >= 1")
        if best_mode not in ("min", "max"):
            raise ValueError(f"best_mode={best_mode!r}; known: ['max', 'min']")
        self.directory = pathlib.Path(directory).resolve()
        self.best_metric = best_metric
        self._latest = ocp.CheckpointManager(
            self.directory / "latest", options=ocp.CheckpointManagerOptions(max_to_keep=keep))
        self._best = None
        if best_metric is not None:
            self._best = ocp.CheckpointManager(
                self.directory / "best", options=ocp.CheckpointManagerOptions(
                    max_to_keep=1, best_fn=lambda metrics: metrics[best_metric],
                    best_mode=best_mode))

    @staticmethod
    def _args(state, extra) -> ocp.args.Composite:
        return ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  extra=ocp.args.JsonSave(extra))

    def save(self, step: int, state, extra: dict[str, Any],
             metrics: dict[str, float] | None = None) -> None:
        """Saves `state` and the JSON-serialisable `extra` at `step` (blocking until done)."""
        self._latest.save(step, args=self._args(state, extra), force=True)
        if self._best is not None:
            if not metrics or self.best_metric not in metrics:
                raise ValueError(f"best_metric={self.best_metric!r} missing from metrics "
                                 f"{sorted(metrics or {})}")
            self._best.save(step, args=self._args(state, extra),
                            metrics={k: float(v) for k, v in metrics.items()}, force=True)
        self.wait()

    def wait(self) -> None:
        self._latest.wait_until_finished()
        if self._best is not None:
            self._best.wait_until_finished()

    def latest_step(self) -> int | None:
        """The newest finalised checkpoint's step, or None."""
        return self._latest.latest_step()

    def _restore(self, manager, step, like_state):
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like_state)
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()))
        return restored.state, restored.extra

    def restore_latest(self, like_state) -> tuple[Any, dict] | None:
        """(state, extra) of the newest checkpoint that restores, shaped like `like_state`;
        None if there is none.

        A checkpoint that fails to restore (damaged files) is reported on stderr, skipped
        and deleted (it would otherwise stay the "latest" and block later saves at its
        step); if none restores, `NoRestorableCheckpointError` names each one's error.
        """
        failures = []
        for step in sorted(self._latest.all_steps(), reverse=True):
            try:
                restored = self._restore(self._latest, step, like_state)
            except Exception as error:  # noqa: BLE001 (orbax/tensorstore raise many kinds)
                failures.append((step, f"{type(error).__name__}: {' '.join(str(error).split())}"))
                continue
            for bad_step, reason in failures:
                print(f"checkpoint: step {bad_step} in {self.directory / 'latest'} does not "
                      f"restore ({reason[:300]}); deleted it and resumed from step {step}",
                      file=sys.stderr, flush=True)
                self._latest.delete(bad_step)
            return restored
        if failures:
            details = "; ".join(f"step {s}: {r[:200]}" for s, r in failures)
            raise NoRestorableCheckpointError(
                f"no checkpoint in {self.directory / 'latest'} restores ({details}); delete "
                "that directory to start afresh, or pass a state shaped like the saved one")
        return None

    def restore_best(self, like_state) -> tuple[Any, dict]:
        """(state, extra) of the best checkpoint by `best_metric`."""
        if self._best is None or self._best.best_step() is None:
            raise FileNotFoundError(f"no best checkpoint under {self.directory / 'best'}")
        return self._restore(self._best, self._best.best_step(), like_state)

    def close(self) -> None:
        self._latest.close()
        if self._best is not None:
            self._best.close()
