"""Early stopping on an evaluated metric (Prechelt 1998, "Early stopping — but when?")."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class EarlyStopping:
    """Stops when `monitor` has not improved by more than `min_delta` for `patience`
    evaluations in a row; `restore_best` makes `fit` return the best state seen.

    The running fields (best, best_step, wait, stopped_step) are saved in checkpoints so
    that a resumed run stops where an uninterrupted one would.
    """

    monitor: str = "eval_loss"
    mode: str = "min"
    patience: int = 5
    min_delta: float = 0.0
    restore_best: bool = True
    best: float = math.nan
    best_step: int = -1
    wait: int = 0
    stopped_step: int | None = None

    def __post_init__(self):
        if self.mode not in ("min", "max"):
            raise ValueError(f"early stopping mode={self.mode!r}; known: ['max', 'min']")
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError(f"early stopping patience={self.patience} (>= 1), "
                             f"min_delta={self.min_delta} (>= 0)")

    def _improves(self, value: float) -> bool:
        if math.isnan(self.best):
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, value: float, step: int) -> tuple[bool, bool]:
        """Records the metric at `step`; returns (improved, should_stop)."""
        improved = math.isfinite(value) and self._improves(value)
        if improved:
            self.best, self.best_step, self.wait = float(value), step, 0
        else:
            self.wait += 1
        if self.wait >= self.patience and self.stopped_step is None:
            self.stopped_step = step
        return improved, self.stopped_step is not None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EarlyStopping:
        return cls(**data)
