"""Quick presets run ahead of the tests that read them, on the cores the test process leaves idle.

A session that selects experiment tests needs each selected experiment's quick preset once
(the `quick_results` fixture). Run one after another in the test process, they leave a second
core mostly idle: XLA spreads a program over both cores only part of the time (the suite
averaged ~1.4 busy cores of 2). So the session starts background worker processes (one per
usable core beyond the first, at most `MAX_WORKERS`; the environment variable
`DL_THEORY_PRESET_WORKERS` overrides, and 0 runs every preset in the test process). conftest
orders the tests that read presets after all the others; the workers take presets from the end
of the order in which those tests will ask for them, while the test process runs the other
tests and then takes presets from the front itself. Both sides make the same call,
`harness.run_quick_preset`, into a workdir made for the preset, so a preset's results do not
depend on where it ran. A preset that fails in a worker fails the tests that read it, with the
worker's traceback.

`python tests/quick_presets.py` is the worker: it reads one JSON job a line on stdin,
{"name", "workdir"}, and answers on the file descriptor given as its argument with
{"name", "error"} (error: the traceback, or null) once the run directory is complete. The
presets' own output goes to the worker's log file.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import threading
import traceback

import harness
import pytest

from dl_theory.train.concurrent_jobs import usable_cores

MAX_WORKERS = 3  # each worker holds an experiment's programs and arrays: a few GB
WORKERS_VARIABLE = "DL_THEORY_PRESET_WORKERS"


def background_workers(presets: int) -> int:
    """How many worker processes a session needing `presets` quick presets starts."""
    if WORKERS_VARIABLE in os.environ:
        text = os.environ[WORKERS_VARIABLE]
        if not text.isdigit():
            raise ValueError(f"{WORKERS_VARIABLE}={text!r}: expected a whole number of "
                             "worker processes (0 runs every preset in the test process)")
        wanted = int(text)
    else:
        wanted = min(usable_cores() - 1, MAX_WORKERS)
    return max(0, min(wanted, presets - 1))


def preset_names(items) -> list[str]:
    """The experiments whose quick presets `items` read, in the order the tests ask for them.
    A test reads one through the `quick_run` fixture (its module's EXPERIMENT) or by calling
    `quick_results(name)` with `name` its parameter."""
    names = []
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "quick_run" in fixtures:
            name = item.module.EXPERIMENT
        elif "quick_results" in fixtures and hasattr(item, "callspec"):
            name = item.callspec.params.get("name")
        else:
            continue
        if name is not None and name not in names:
            names.append(name)
    return names


class _Worker:
    """One worker process and the pipe its answers come back on."""

    def __init__(self, log: pathlib.Path):
        self.log = log
        answers, answer_end = os.pipe()
        with open(log, "w") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, __file__, str(answer_end)], stdin=subprocess.PIPE,
                stdout=log_file, stderr=subprocess.STDOUT, text=True, pass_fds=(answer_end,))
        os.close(answer_end)
        self.answers = os.fdopen(answers)

    def run(self, name: str, workdir: pathlib.Path) -> str | None:
        """Runs one preset; returns None, or the traceback (or the reason the worker died)."""
        try:
            self.process.stdin.write(json.dumps({"name": name, "workdir": str(workdir)}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # the worker is gone: the empty answer below says so
        line = self.answers.readline()
        if not line:
            status = self.process.wait()
            tail = self.log.read_text()[-3000:]
            return f"the worker process ended with status {status}; its log ends:\n{tail}"
        return json.loads(line)["error"]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        """Ends the worker (idle: its stdin closes) and releases its pipes."""
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.close()
        self.process.wait()
        self.answers.close()


class QuickPresets:
    """The session's quick presets: `get(name)` returns (results.json payload, workdir),
    running the preset in the test process unless a worker has it done or under way."""

    def __init__(self, names: list[str], tmp_path_factory, workers: int):
        self._tmp_path_factory = tmp_path_factory
        self._workdirs = {name: tmp_path_factory.mktemp(name) for name in names}
        self._pending = list(names)  # the test process takes from the front, workers the back
        self._running: set[str] = set()
        # name -> None (complete) or its traceback, for presets a worker has finished
        self._worker_outcomes: dict[str, str | None] = {}
        self._results: dict[str, tuple[dict, pathlib.Path]] = {}
        self._changed = threading.Condition()
        self._stopping = False
        logs = tmp_path_factory.mktemp("quick-preset-workers") if workers else None
        self._workers = [_Worker(logs / f"worker{i}.log") for i in range(workers)]
        self._threads = [threading.Thread(target=self._feed, args=(w,), daemon=True)
                         for w in self._workers]
        for thread in self._threads:
            thread.start()

    def get(self, name: str) -> tuple[dict, pathlib.Path]:
        """(results.json payload, workdir) of `name`'s quick preset: read from the workdir
        when a worker completed it (after waiting while one runs it), run here otherwise.
        A preset that failed in a worker fails the caller with the worker's traceback."""
        if name in self._results:
            return self._results[name]
        with self._changed:
            if name in self._pending:
                self._pending.remove(name)
            elif name in self._running:
                self._changed.wait_for(lambda: name in self._worker_outcomes)
            here = name not in self._worker_outcomes
        if name not in self._workdirs:  # a name no selected test was seen to read
            self._workdirs[name] = self._tmp_path_factory.mktemp(name)
        workdir = self._workdirs[name]
        if here:
            payload = harness.run_quick_preset(name, workdir)
        elif self._worker_outcomes[name] is not None:
            pytest.fail(f"the quick preset of {name} failed in a background worker "
                        f"(workdir {workdir}):\n{self._worker_outcomes[name]}", pytrace=False)
        else:
            payload = json.loads((workdir / "results.json").read_text())
        self._results[name] = payload, workdir
        return self._results[name]

    def close(self) -> None:
        """Stops the workers, abandoning any preset under way."""
        with self._changed:
            self._stopping = True
        for worker in self._workers:
            worker.kill()
        for thread in self._threads:
            thread.join()

    def _feed(self, worker: _Worker) -> None:
        """Gives `worker` presets from the back of the queue until none is left (or the
        session ends, or the worker dies), then ends it."""
        try:
            while True:
                with self._changed:
                    if self._stopping or not self._pending:
                        break
                    name = self._pending.pop()
                    self._running.add(name)
                try:
                    error = worker.run(name, self._workdirs[name])
                except Exception:  # a garbled answer: this worker's answers can't be trusted
                    worker.kill()
                    error = traceback.format_exc()
                with self._changed:
                    self._running.discard(name)
                    self._worker_outcomes[name] = error
                    self._changed.notify_all()
                if worker.process.poll() is not None:
                    break
        finally:
            worker.stop()


def _serve(answer_fd: int) -> None:
    harness.make_jax_strict()
    with os.fdopen(answer_fd, "w") as answers:
        for line in sys.stdin:
            job = json.loads(line)
            try:
                harness.run_quick_preset(job["name"], pathlib.Path(job["workdir"]))
                error = None
            except Exception:
                error = traceback.format_exc()
            answers.write(json.dumps({"name": job["name"], "error": error}) + "\n")
            answers.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
