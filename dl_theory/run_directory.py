"""The run directory's lifecycle: lock, status, staging, promotion.

    runs/ua/
      .outputs    the names of the complete run's files above (what the next promotion moves)
      .lock       held (flock) by the run using the directory; names its pid, host, start
      status      first line running | failed | complete; then pid/host/time, or the traceback
      config.json results.json report.md metrics.jsonl *.png   the last COMPLETE run
      running/    the run in progress: its config.json, figures, report; promoted when complete
      previous/   the complete run that the last promotion replaced
      parts/NAME/ each part's measurements.json, metrics.jsonl and TensorBoard events (kept
                  across runs, which is what a rerun resumes from)

So a killed or failed run never leaves a fresh config beside old figures, nor deletes the
previous complete results: those move to previous/ only when the new run has completed. The
lock is an flock, released by the kernel when its holder dies (kill -9 included), so no stale
lock needs cleaning.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import shutil
import socket
import tempfile
import traceback
import types
from typing import Any

from dl_theory import config_checks, parts, report
from dl_theory.user_errors import WorkdirError

LOCK_FILE = ".lock"
STATUS_FILE = "status"
RUNNING_DIR = "running"
PREVIOUS_DIR = "previous"
OUTPUTS_FILE = ".outputs"
# A run directory written before .outputs existed: its files by name (figures are listed in
# its results.json). Anything else in a workdir is the user's and is never moved.
_LEGACY_OUTPUTS = ("config.json", "results.json", "report.md", "metrics.jsonl")


class WorkdirBusyError(WorkdirError):
    """Another live process holds the workdir's lock."""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def default_workdir(name: str, preset: str) -> pathlib.Path:
    """runs/NAME-PRESET-TIME-PID, created here: microseconds and the pid (and mkdir failing
    on an existing name) keep two launches, even in the same second, apart."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        path = pathlib.Path("runs") / f"{name}-{preset}-{stamp}-{os.getpid()}{suffix}"
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free default workdir name under runs/ for {name}-{preset}")


@contextlib.contextmanager
def locked(workdir: str | pathlib.Path):
    """Holds `workdir/.lock` for the block; WorkdirBusyError (one line naming the holder's
    pid, host and start time) if another process holds it."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            raise WorkdirBusyError(f"workdir {workdir} is in use by {holder}; wait for it to "
                                   "finish or choose another --workdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on host {socket.gethostname()} since {_now()}\n")
        handle.flush()
        yield


def write_status(workdir: str | pathlib.Path, state: str, detail: str = "") -> None:
    """`status`: the state on the first line, then who and when, then `detail`."""
    text = f"{state}\npid {os.getpid()} on host {socket.gethostname()} at {_now()}\n"
    report.write_atomic(pathlib.Path(workdir) / STATUS_FILE, text + detail)


def read_status(workdir: str | pathlib.Path) -> str | None:
    """The first line of `status` (running / failed / complete), or None if there is none."""
    try:
        return (pathlib.Path(workdir) / STATUS_FILE).read_text().split("\n", 1)[0]
    except FileNotFoundError:
        return None


def _complete_run_outputs(workdir: pathlib.Path) -> list[pathlib.Path]:
    """The files of the complete run at the top of `workdir` (from .outputs, or by name)."""
    try:
        names = json.loads((workdir / OUTPUTS_FILE).read_text())
    except (OSError, ValueError):
        names = list(_LEGACY_OUTPUTS) + [p.name for p in workdir.glob("events.out.tfevents.*")]
        try:
            names += json.loads((workdir / "results.json").read_text()).get("figures", [])
        except (OSError, ValueError):
            pass
    return [workdir / name for name in names if (workdir / name).exists()]


def _promote(workdir: pathlib.Path, staging: pathlib.Path) -> None:
    """The last complete run's outputs -> previous/; the staged run's outputs -> workdir."""
    outputs = _complete_run_outputs(workdir)
    previous = workdir / PREVIOUS_DIR
    shutil.rmtree(previous, ignore_errors=True)
    if outputs:
        previous.mkdir()
        for path in outputs:
            path.rename(previous / path.name)
    staged = sorted(p.name for p in staging.iterdir())
    for name in staged:
        (staging / name).rename(workdir / name)
    staging.rmdir()
    report.write_atomic(workdir / OUTPUTS_FILE, json.dumps(staged) + "\n")


def _concatenate_part_metrics(workdir: pathlib.Path, module, staging: pathlib.Path) -> None:
    """metrics.jsonl of the run: every part's evaluations, in part order."""
    lines = []
    for part in module.PARTS:
        path = workdir / parts.PARTS_DIR / part.name / "metrics.jsonl"
        if path.is_file():
            lines.append(path.read_text())
    if lines:
        report.write_atomic(staging / "metrics.jsonl", "".join(lines))


def run(module: types.ModuleType, config, workdir: str | pathlib.Path, preset: str, *,
        selected_parts: list[str] | None = None, rerun: bool = False,
        writer: bool = True) -> dict[str, Any]:
    """Runs an experiment into `workdir` (locked, with status, staged, promoted when
    complete) and returns its results.json payload. `selected_parts` / `rerun` are
    `--parts` / `--rerun`. A process that is not the `writer` of a multi-process run computes
    in a private temporary directory (discarded) and recomputes every part, so that all
    processes run the same programs and only process 0 writes."""
    # Checked here as well as in launch.py: a run started from Python (a notebook, the tests)
    # gets the same one-line ConfigError before anything compiles.
    config_checks.validate_experiment_config(module, config, preset)
    if not writer:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = pathlib.Path(scratch)
            return _compute(module, config, scratch, scratch, preset, selected_parts,
                            rerun=True)
    workdir = pathlib.Path(workdir)
    with locked(workdir):
        write_status(workdir, "running")
        staging = workdir / RUNNING_DIR
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        report.write_atomic(staging / "config.json",
                            config.to_json_best_effort(indent=2, sort_keys=True))
        try:
            payload = _compute(module, config, workdir, staging, preset, selected_parts, rerun)
            report.write_report(payload, staging)
            _promote(workdir, staging)
        except BaseException as error:
            write_status(workdir, "failed", "".join(traceback.format_exception(error)))
            raise
        held = sum(c["holds"] for c in payload["claims"])
        write_status(workdir, "complete", json.dumps(
            {"claims_hold": f"{held}/{len(payload['claims'])}",
             "missing_parts": payload.get("missing_parts", [])}) + "\n")
    return payload


def _compute(module, config, workdir, staging, preset, selected_parts, rerun):
    payload = parts.payload_from_parts(module, config, workdir, staging, preset,
                                       selected=selected_parts, rerun=rerun)
    if staging.is_dir():
        _concatenate_part_metrics(workdir, module, staging)
    return payload
