"""metrics.jsonl: one JSON object per evaluation, appended as training goes, and the same
numbers as TensorBoard event files beside it (tensorboardX, no TensorFlow), so that
`tensorboard --logdir runs/` shows every run while it trains."""

from __future__ import annotations

import json
import pathlib
import re
import threading
from typing import Any

import jax
import numpy as np
import tensorboardX

# Per-member curves beyond this many members would drown TensorBoard's tag list.
_MAX_MEMBER_CURVES = 16
# What TensorBoard allows in a tag; tensorboardX replaces anything else itself, but logs a
# line per scalar when it does ("Summary name ... is illegal"), thousands per run.
_NOT_IN_TAG = re.compile(r"[^A-Za-z0-9_.\-/]")


def plain(value: Any) -> Any:
    """`value` with arrays and numpy scalars turned into lists and Python numbers, recursively
    (dicts, lists, tuples), as json.dumps needs."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):
        return np.asarray(value).tolist()
    return value


class MetricsLog:
    """Appends records to `path` (created with its parent directory on first write). In a
    multi-process run only process 0 writes, as only it owns the run directory. Jobs on
    several threads may share one log (`dl_theory.train.concurrent_jobs`): a record is
    written whole, and the event file is opened once."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self._events = None
        self._lock = threading.Lock()

    @classmethod
    def in_workdir(cls, workdir: str | pathlib.Path) -> MetricsLog:
        return cls(pathlib.Path(workdir) / "metrics.jsonl")

    def write(self, record: dict[str, Any]) -> None:
        if jax.process_index() != 0:
            return
        line = json.dumps(plain(record)) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(line)
            if "step" in record:
                self._write_events(record)

    def _write_events(self, record: dict[str, Any]) -> None:
        """Every measured entry (a float or an array) as a scalar tagged `label/key`: the mean
        over the members of a grid, and one curve per member. Strings and Python ints (labels,
        tags such as width 8 -> width_8) name the curve; characters TensorBoard does not allow
        in a tag (spaces, '=') become '_'."""
        if self._events is None:
            self._events = tensorboardX.SummaryWriter(str(self.path.parent), flush_secs=5)
        names = [str(v) if k == "label" else f"{k}_{v}" for k, v in record.items()
                 if k != "step" and not _is_measured(v)]
        prefix = _NOT_IN_TAG.sub("_", "/".join(dict.fromkeys(names)) or "run")
        step = int(record["step"])
        for key, value in record.items():
            if key == "step" or not _is_measured(value):
                continue
            values = np.asarray(value, dtype=np.float64).ravel()
            self._events.add_scalar(f"{prefix}/{key}", float(values.mean()), step)
            if 1 < values.size <= _MAX_MEMBER_CURVES:
                for i, member in enumerate(values):
                    self._events.add_scalar(f"{prefix}/{key}/member{i}", float(member), step)
        self._events.flush()

    def close(self) -> None:
        """Flushes and closes the event file (metrics.jsonl is closed after every record)."""
        with self._lock:
            if self._events is not None:
                self._events.close()
                self._events = None


def _is_measured(value: Any) -> bool:
    """Floats and numeric arrays are measurements; ints, bools and strings are tags."""
    if isinstance(value, float):
        return True
    return hasattr(value, "dtype") and np.issubdtype(value.dtype, np.number) or (
        isinstance(value, list | tuple) and all(isinstance(v, float) for v in value))
