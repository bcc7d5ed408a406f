"""The run directory's lifecycle: lock, status, staging, kill -9 and resume, event files."""

import json
import os
import pathlib
import signal
import struct
import subprocess
import sys
import time

import pytest
from tensorboardX.proto import event_pb2
from tiny_parts import write_tiny_experiment

from dl_theory import run_directory
from dl_theory.train.metrics_log import MetricsLog

ROOT = pathlib.Path(__file__).resolve().parent.parent


def launch(*args, wait=True):
    command = [sys.executable, str(ROOT / "launch.py"), *args]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _measured_mean(path: pathlib.Path) -> float | None:
    try:
        return json.loads(path.read_text())["measurements"]["mean"]
    except (OSError, ValueError):
        return None


def _wait_for(path: pathlib.Path, process: subprocess.Popen, mean: float = 1.5,
              timeout_s: float = 120.0) -> None:
    """Polls until the part measurements at `path` hold `mean`; fails with the process's
    stderr if it ends first or time runs out."""
    deadline = time.monotonic() + timeout_s
    while _measured_mean(path) != mean:
        if process.poll() is not None:
            raise AssertionError(f"run ended before {path} appeared: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.05)


@pytest.fixture
def tiny(tmp_path):
    (tmp_path / "exp").mkdir()
    return write_tiny_experiment(tmp_path / "exp")


def _claims(workdir):
    return json.loads((workdir / "results.json").read_text())["claims"]


def test_second_launch_into_a_busy_workdir_exits_naming_the_holder(tiny, tmp_path):
    gate, workdir = tmp_path / "gate", tmp_path / "run"
    first = launch(f"--config={tiny}", f"--workdir={workdir}", f"--config.wait_for={gate}",
                   wait=False)
    try:
        _wait_for(workdir / "parts" / "a" / "measurements.json", first)
        second = launch(f"--config={tiny}", f"--workdir={workdir}")
        assert second.returncode != 0
        # (JAX may log its backend search first; the error itself is one line.)
        errors = [line for line in second.stderr.splitlines() if "launch.py: error" in line]
        assert len(errors) == 1 and "Traceback" not in second.stderr, second.stderr
        assert f"pid {first.pid} on host" in errors[0] and "since" in errors[0]
        assert run_directory.read_status(workdir) == "running"
    finally:
        gate.touch()
        first.communicate(timeout=120)
    assert first.returncode == 0
    assert run_directory.read_status(workdir) == "complete"


def test_kill_between_parts_then_rerun_skips_finished_parts_and_matches(tiny, tmp_path):
    reference = launch(f"--config={tiny}", f"--workdir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr
    workdir, gate = tmp_path / "run", tmp_path / "gate"
    complete = launch(f"--config={tiny}", f"--workdir={workdir}", "--config.a=(0.5, 1.0)")
    assert complete.returncode == 0, complete.stderr
    killed = launch(f"--config={tiny}", f"--workdir={workdir}", f"--config.wait_for={gate}",
                    wait=False)
    # Part a's new measurements are on disk, part b waits for the gate: kill between parts.
    _wait_for(workdir / "parts" / "a" / "measurements.json", killed)
    os.kill(killed.pid, signal.SIGKILL)
    killed.communicate()
    assert run_directory.read_status(workdir) == "running"
    # The previous complete run is intact at the top; the killed one sits in running/ only.
    assert json.loads((workdir / "config.json").read_text())["a"] == [0.5, 1.0]
    assert (workdir / "running" / "config.json").is_file()
    gate.touch()
    rerun = launch(f"--config={tiny}", f"--workdir={workdir}", f"--config.wait_for={gate}")
    assert rerun.returncode == 0, rerun.stderr
    assert "a: unchanged config and code" in rerun.stdout
    # b never finished; c's config is unchanged since the complete run, so its cache holds.
    assert "b: started" in rerun.stdout and "c: unchanged" in rerun.stdout, rerun.stdout
    parts = json.loads((workdir / "results.json").read_text())["parts"]
    assert {name: p["skipped"] for name, p in parts.items()} == {"a": True, "b": False,
                                                                 "c": True}
    assert _claims(workdir) == _claims(tmp_path / "reference")
    assert json.loads((workdir / "previous" / "config.json").read_text())["a"] == [0.5, 1.0]
    assert not (workdir / "running").exists()
    assert run_directory.read_status(workdir) == "complete"


def test_failed_run_writes_its_traceback_and_keeps_the_complete_results(tiny, tmp_path):
    assert launch(f"--config={tiny}", f"--workdir={tmp_path}").returncode == 0
    before = (tmp_path / "results.json").read_text()
    failed = launch(f"--config={tiny}", f"--workdir={tmp_path}", "--config.fail_in=c",
                    "--config.a=(0.0,)")
    assert failed.returncode != 0
    status = (tmp_path / "status").read_text()
    assert status.startswith("failed\n") and "part c fails on purpose" in status
    assert "Traceback" in status
    assert (tmp_path / "results.json").read_text() == before
    assert json.loads((tmp_path / "config.json").read_text())["fail_in"] == ""


def test_strict_fails_only_on_a_surprise(tiny, tmp_path):
    expected = launch(f"--config={tiny}", f"--workdir={tmp_path / 'a'}", "--strict")
    assert expected.returncode == 0, expected.stderr  # c_is_negative fails, as expected
    assert "no (expected)" in expected.stdout
    surprise = launch(f"--config={tiny}", f"--workdir={tmp_path / 'b'}", "--strict",
                      "--config.c=(-2.0, -1.0)")
    assert surprise.returncode == 1


def test_list_shows_parts_bounds_and_expected_negative_results():
    out = launch("--list")
    assert out.returncode == 0, out.stderr
    assert "parts: cybenko, barron" in out.stdout
    assert "widest_net_is_accurate  <= cybenko.max_rel_error" in out.stdout


def test_default_workdirs_of_launches_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = {run_directory.default_workdir("x", "quick") for _ in range(20)}
    assert len(names) == 20 and all(path.is_dir() for path in names)


def _events(directory: pathlib.Path) -> list[event_pb2.Event]:
    """Parses TFRecord framing (length, crc, payload, crc) of every event file."""
    events = []
    for path in directory.glob("events.out.tfevents.*"):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            events.append(event_pb2.Event.FromString(data[offset + 12:offset + 12 + length]))
            offset += 12 + length + 4
    return events


def test_metrics_are_written_as_tensorboard_events_beside_metrics_jsonl(tmp_path):
    log = MetricsLog.in_workdir(tmp_path)
    for step, loss in ((10, [1.0, 3.0]), (20, [0.5, 1.5])):
        log.write({"label": "fit", "width": 8, "step": step, "eval_loss": loss})
    log.close()
    scalars = {(value.tag, event.step): value.simple_value for event in _events(tmp_path)
               for value in event.summary.value}
    assert scalars == {("fit/width_8/eval_loss", 10): 2.0, ("fit/width_8/eval_loss", 20): 1.0,
                       ("fit/width_8/eval_loss/member0", 10): 1.0,
                       ("fit/width_8/eval_loss/member1", 10): 3.0,
                       ("fit/width_8/eval_loss/member0", 20): 0.5,
                       ("fit/width_8/eval_loss/member1", 20): 1.5}
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2


def test_labels_tensorboard_does_not_allow_become_legal_tags(tmp_path):
    log = MetricsLog.in_workdir(tmp_path)
    log.write({"label": "1-D width=32", "step": 5, "eval_loss": 0.25})
    log.close()
    tags = {value.tag for event in _events(tmp_path) for value in event.summary.value}
    assert tags == {"1-D_width_32/eval_loss"}


def test_parts_and_rerun_flags_reach_the_run(tiny, tmp_path):
    subset = launch(f"--config={tiny}", f"--workdir={tmp_path}", "--parts=b,c")
    assert subset.returncode == 0, subset.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["missing_parts"] == ["a"]
    assert [c["id"] for c in results["claims"]] == ["b_mean_large", "c_within_spread",
                                                    "c_is_negative"]
    forced = launch(f"--config={tiny}", f"--workdir={tmp_path}", "--rerun")
    assert forced.returncode == 0, forced.stderr
    parts = json.loads((tmp_path / "results.json").read_text())["parts"]
    assert [p["skipped"] for p in parts.values()] == [False, False, False]
