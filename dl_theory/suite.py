"""Running the whole suite: every experiment (or a subset) one after another, in one process.

    runs/suite/
      suite.json        per experiment: state (complete / failed), wall time of its last
                        computed run (what the progress estimate reads), traceback if it failed
      NAME/             the experiment's run directory (dl_theory.run_directory)
      index.html report.md   the page over all of them (dl_theory.report_page)

An experiment whose run directory is complete for the same preset, with every part's config
hash and code version unchanged, is skipped; anything else goes through
`run_directory.run`, whose part cache resumes a killed run after its last finished part. A
crash is recorded (its traceback in suite.json and the run directory's status) and the suite
goes on with the next experiment.
"""

from __future__ import annotations

import json
import pathlib
import time
import traceback
from typing import Any

from dl_theory import experiment, parts, report, run_directory
from dl_theory.train import program_memory

SUITE_FILE = "suite.json"


def read_suite_record(suite_dir: str | pathlib.Path) -> dict[str, Any]:
    """suite.json of `suite_dir` ({"experiments": {name: record}}), empty if there is none."""
    try:
        return json.loads((pathlib.Path(suite_dir) / SUITE_FILE).read_text())
    except (OSError, ValueError):
        return {"experiments": {}}


def _write_suite_record(suite_dir: pathlib.Path, record: dict[str, Any]) -> None:
    report.write_atomic(suite_dir / SUITE_FILE, json.dumps(record, indent=1, sort_keys=True)
                        + "\n")


def select_experiments(only: list[str] | None) -> list[str]:
    """Every experiment's name in order, or the `only` subset (names or paths to experiment
    files, in the given order); an unknown one is a ValueError naming it and the known ones."""
    if not only:
        return list(experiment.available_experiments())
    unknown = []
    for name in only:
        try:
            experiment.resolve_experiment_path(name)
        except FileNotFoundError:
            unknown.append(name)
    if unknown:
        raise ValueError(f"--only: unknown experiments {unknown}; known: "
                         f"{list(experiment.available_experiments())}")
    return list(only)


def is_up_to_date(module, config, workdir: pathlib.Path, preset: str) -> bool:
    """True when `workdir` holds a complete run of `module` for `preset` in which every part
    was computed with the current config hash and code version (nothing left to do)."""
    if run_directory.read_status(workdir) != "complete":
        return False
    try:
        results = json.loads((workdir / "results.json").read_text())
    except (OSError, ValueError):
        return False
    if results.get("preset") != preset or results.get("missing_parts"):
        return False
    version = parts.code_version(module)
    recorded = results.get("parts", {})
    return all(recorded.get(part.name, {}).get("config_hash") == parts.part_hash(config, part)
               and recorded.get(part.name, {}).get("code_version") == version
               for part in module.PARTS)


def _estimate(names: list[str], previous: dict[str, Any], done_s: list[float]) -> str:
    """Seconds left: each remaining experiment's last wall time, or the mean so far."""
    mean = sum(done_s) / len(done_s) if done_s else None
    guesses = [previous.get(name, {}).get("wall_s", mean) for name in names]
    if not names:
        return "nothing left"
    if any(guess is None for guess in guesses):
        return "no estimate yet"
    return f"~{sum(guesses):.0f} s left (estimate from the last run's times)"


def _run_one(name: str, preset: str, workdir: pathlib.Path, rerun: bool) -> dict[str, Any]:
    """Runs (or skips) one experiment (a name or a file); its suite record. Exceptions
    propagate."""
    module = experiment.load_experiment(name)
    config = module.get_config(preset)
    if not rerun and is_up_to_date(module, config, workdir, preset):
        return {"state": "complete", "skipped": True}
    start = time.perf_counter()
    payload = run_directory.run(module, config, workdir, preset, rerun=rerun)
    return {"state": "complete", "skipped": False,
            "wall_s": round(time.perf_counter() - start, 3),
            "claims_hold": sum(c["holds"] for c in payload["claims"]),
            "claims": len(payload["claims"]), "surprises": report.surprises(payload)}


def run_suite(suite_dir: str | pathlib.Path, preset: str = "quick",
              only: list[str] | None = None, rerun: bool = False) -> dict[str, Any]:
    """Runs the experiments `only` names (names or files; all when None) one after another
    into `suite_dir/NAME/` (NAME the file's stem) with a progress line each, records every
    outcome in suite.json and returns that record. A crash in one
    experiment is recorded as failed (with its traceback) and the next one starts;
    KeyboardInterrupt stops the suite (a rerun resumes it)."""
    suite_dir = pathlib.Path(suite_dir)
    suite_dir.mkdir(parents=True, exist_ok=True)
    sources = {pathlib.Path(name).stem: name for name in select_experiments(only)}
    names = list(sources)
    record = read_suite_record(suite_dir)
    previous = dict(record["experiments"])
    record["preset"] = preset
    start, done_s = time.perf_counter(), []
    for index, name in enumerate(names, start=1):
        last = previous.get(name, {}).get("wall_s")
        took = f"; it took {last:.0f} s last time" if last is not None else ""
        print(f"[suite] {index}/{len(names)} {name}: started ({time.perf_counter() - start:.0f}"
              f" s elapsed{took}; {_estimate(names[index - 1:], previous, done_s)})",
              flush=True)
        try:
            outcome = _run_one(sources[name], preset, suite_dir / name, rerun)
        except Exception as error:  # any crash is recorded; the suite goes on
            outcome = {"state": "failed", "wall_s": last,
                       "traceback": "".join(traceback.format_exception(error))}
            print(f"[suite] {index}/{len(names)} {name}: FAILED: "
                  f"{type(error).__name__}: {error}", flush=True)
        finally:
            # The next experiment shares no program with this one; dropping them all keeps
            # the process far from vm.max_map_count (see dl_theory.train.program_memory).
            program_memory.release()
        if outcome.get("skipped"):
            outcome["wall_s"] = last
            print(f"[suite] {index}/{len(names)} {name}: complete for this config and code, "
                  "skipped", flush=True)
        elif outcome["state"] == "complete":
            done_s.append(outcome["wall_s"])
            print(f"[suite] {index}/{len(names)} {name}: done in {outcome['wall_s']:.0f} s, "
                  f"{outcome['claims_hold']}/{outcome['claims']} claims hold, "
                  f"{len(outcome['surprises'])} surprises", flush=True)
        record["experiments"][name] = outcome
        _write_suite_record(suite_dir, record)
    record["wall_s"] = round(time.perf_counter() - start, 3)
    _write_suite_record(suite_dir, record)
    return record
