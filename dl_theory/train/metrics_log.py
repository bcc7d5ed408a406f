"""metrics.jsonl: one JSON object per evaluation, appended as training goes."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import numpy as np


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return np.asarray(value).tolist()
    return value


class MetricsLog:
    """Appends records to `path` (created with its parent directory on first write). In a
    multi-process run only process 0 writes, as only it owns the run directory."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)

    @classmethod
    def in_workdir(cls, workdir: str | pathlib.Path) -> MetricsLog:
        return cls(pathlib.Path(workdir) / "metrics.jsonl")

    def write(self, record: dict[str, Any]) -> None:
        if jax.process_index() != 0:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(_plain(record)) + "\n")
