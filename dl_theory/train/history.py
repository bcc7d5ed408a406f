"""The training history that `fit` returns: per-step metrics and per-evaluation metrics.

Kept as lists of numpy arrays while training (one entry per chunk), saved into checkpoints
as JSON, and concatenated at the end. The JSON form records each metric's dtype, so a run
resumed from a checkpoint returns the same dtypes (float32 stays float32) as an
uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PER_STEP = ("loss", "grad_norm", "learning_rate", "loss_scale", "grads_finite")


class History:
    """Per-step metrics ([..., steps]) and evaluations ([..., E]) of one run or grid."""

    def __init__(self):
        self._per_step: dict[str, list[np.ndarray]] = {}
        self._evals: dict[str, list[np.ndarray]] = {}
        self.eval_steps: list[int] = []

    def add_steps(self, metrics: dict[str, Any]) -> None:
        """Appends one chunk's per-step metrics (each [..., n])."""
        for key in PER_STEP:
            if key in metrics:
                self._per_step.setdefault(key, []).append(np.asarray(metrics[key]))

    def initial_loss(self) -> np.ndarray:
        """The first recorded training loss ([] or [G]); needs at least one chunk added."""
        return self._per_step["loss"][0][..., 0]

    def add_evaluation(self, step: int, metrics: dict[str, Any]) -> None:
        """Appends the evaluation `metrics` (names without the "eval_" prefix) at `step`."""
        self.eval_steps.append(step)
        for name, value in metrics.items():
            self._evals.setdefault(name, []).append(np.asarray(value))

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable form, with dtypes; inverse of `from_json`."""
        def pack(lists):
            return {k: {"dtype": str(vs[0].dtype), "values": [v.tolist() for v in vs]}
                    for k, vs in lists.items()}
        return {"per_step": pack(self._per_step), "evals": pack(self._evals),
                "eval_steps": list(self.eval_steps)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        history = cls()
        for target, packed in ((history._per_step, data["per_step"]),
                               (history._evals, data["evals"])):
            for key, entry in packed.items():
                target[key] = [np.asarray(v, dtype=entry["dtype"]) for v in entry["values"]]
        history.eval_steps = [int(s) for s in data["eval_steps"]]
        return history

    def result(self) -> dict[str, np.ndarray]:
        """"loss", "grad_norm", ... [..., steps]; "eval_step" [E]; "eval_<name>" [..., E]."""
        out = {k: np.concatenate(vs, axis=-1) for k, vs in self._per_step.items()}
        out["eval_step"] = np.asarray(self.eval_steps)
        out.update({f"eval_{k}": np.stack(vs, axis=-1) for k, vs in self._evals.items()})
        return out
