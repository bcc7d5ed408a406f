"""Running an experiment's parts (protocol v2): cache, resume, progress, judging.

Each part's measurements go to `workdir/parts/<name>/measurements.json` the moment the part
completes, together with

  config_hash   sha256 of the part's own config: the top-level keys its `Part.reads` names
                (e.g. its section plus shared keys such as seeds and precision);
  code_version  sha256 of the experiment file, the private experiment modules it may share
                (`experiments/_*.py`) and every `dl_theory/**/*.py` source; the git commit is
                recorded beside it but does not decide (a commit that changes no source keeps
                the cache).

A rerun into the same workdir skips a part whose two hashes are unchanged; `rerun=True`
forces it. The part's evaluations (metrics.jsonl and TensorBoard events) live in the same
directory, written while it trains.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import time
import types
from typing import Any

import ml_collections

from dl_theory import experiment, receipt
from dl_theory.report import write_atomic
from dl_theory.train.metrics_log import MetricsLog, plain

PARTS_DIR = "parts"
_PACKAGE_DIR = pathlib.Path(__file__).resolve().parent


def code_version(module: types.ModuleType) -> str:
    """sha256 (16 hex digits) of the experiment's file, `experiments/_*.py` and the package."""
    experiment_file = pathlib.Path(module.__file__).resolve()
    files = [experiment_file, *sorted(experiment_file.parent.glob("_*.py")),
             *sorted(_PACKAGE_DIR.rglob("*.py"))]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def part_config(config: ml_collections.ConfigDict, part: experiment.Part):
    """The config a part sees: only the top-level keys it `reads` (locked, so a typo fails),
    with `precision` replaced by the part's own `PART.precision` when that is set."""
    missing = [key for key in part.reads if key not in config]
    if missing:
        raise KeyError(f"part {part.name!r} reads {missing}, which the config does not have")
    subset = ml_collections.ConfigDict({key: config[key] for key in part.reads})
    override = experiment.precision_override(config, part.name)
    if override is not None and "precision" in part.reads:
        subset.precision = override
    subset.lock()
    return subset


def part_hash(config: ml_collections.ConfigDict, part: experiment.Part) -> str:
    """sha256 (16 hex digits) of the part's own config, canonical JSON."""
    return receipt.config_hash(part_config(config, part).to_json_best_effort(sort_keys=True))


def _read_record(path: pathlib.Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _remaining_estimate(done_s: list[float], previous_s: list[float | None]) -> str:
    """Seconds left: each remaining part's time in the previous run, or the mean so far."""
    guesses = [p if p is not None else (sum(done_s) / len(done_s) if done_s else None)
               for p in previous_s]
    if any(g is None for g in guesses):
        return "no estimate yet"
    return f"~{sum(guesses):.0f} s left (estimate)"


def run_parts(module: types.ModuleType, config: ml_collections.ConfigDict,
              workdir: str | pathlib.Path, *, selected: list[str] | None = None,
              rerun: bool = False) -> dict[str, dict[str, Any]]:
    """Runs (or takes from the cache) the parts of `module` and returns name -> record
    (measurements, config_hash, code_version, git, wall_s, skipped). Parts not `selected`
    are taken from a valid cache or left out; `rerun` recomputes every selected part."""
    names = [part.name for part in module.PARTS]
    unknown = sorted(set(selected or ()) - set(names))
    if unknown:
        raise ValueError(f"--parts: unknown {unknown}; {pathlib.Path(module.__file__).stem} "
                         f"has parts {names}")
    version = code_version(module)
    git = receipt.git_commit()
    start = time.perf_counter()
    records, done_s = {}, []
    todo = [p for p in module.PARTS if selected is None or p.name in selected]
    for part in module.PARTS:
        directory = pathlib.Path(workdir) / PARTS_DIR / part.name
        cached = _read_record(directory / "measurements.json")
        key = {"config_hash": part_hash(config, part), "code_version": version}
        valid = cached is not None and all(cached.get(k) == v for k, v in key.items())
        if part not in todo or (valid and not rerun):
            if valid:
                records[part.name] = {**cached, "skipped": True}
                print(f"[parts] {part.name}: unchanged config and code, measurements from "
                      f"{directory}", flush=True)
            continue
        index = todo.index(part) + 1
        previous = [(_read_record(pathlib.Path(workdir) / PARTS_DIR / p.name /
                                  "measurements.json") or {}).get("wall_s") for p in todo[index:]]
        took = f"; it took {cached['wall_s']:.1f} s last time" if cached else ""
        print(f"[parts] {index}/{len(todo)} {part.name}: started "
              f"({time.perf_counter() - start:.1f} s elapsed{took})", flush=True)
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        part_start = time.perf_counter()
        log = MetricsLog(directory / "metrics.jsonl")
        try:
            # Plain lists and numbers even on the first run, so that the judge sees exactly
            # what a rerun reads back from the cache.
            measurements = plain(part.compute(part_config(config, part), log))
        finally:
            log.close()
        record = {**key, "git": git, "wall_s": round(time.perf_counter() - part_start, 3),
                  "measurements": measurements}
        # NaN/inf stay as Python's NaN tokens in this cache, so the judge reads back the
        # value it would have seen; results.json (what readers parse) replaces them by null.
        write_atomic(directory / "measurements.json", json.dumps(record, indent=1) + "\n")
        records[part.name] = {**record, "skipped": False}
        done_s.append(record["wall_s"])
        print(f"[parts] {index}/{len(todo)} {part.name}: done in {record['wall_s']:.1f} s "
              f"({time.perf_counter() - start:.1f} s elapsed; "
              f"{_remaining_estimate(done_s, previous)})", flush=True)
    return records


def judge_parts(module: types.ModuleType, config: ml_collections.ConfigDict,
                records: dict[str, dict[str, Any]]) -> list[experiment.Claim]:
    """The claims of every part in `records`, judged from its measurements; when every part
    is present, the judged ids must be exactly the declared ones."""
    values: dict[str, Any] = {}
    for part in module.PARTS:
        if part.name not in records:
            continue
        judged = part.judge(config, records[part.name]["measurements"])
        repeated = sorted(set(judged) & set(values))
        if repeated:
            raise ValueError(f"part {part.name!r} judges {repeated}, already judged")
        values.update(judged)
    if len(records) == len(module.PARTS):
        experiment.validate_claim_ids(module, list(values))
    return experiment.judge_claims(module.CLAIMS, config, values)


def payload_from_parts(module: types.ModuleType, config: ml_collections.ConfigDict,
                       workdir: str | pathlib.Path, output_dir: str | pathlib.Path,
                       preset: str, *,
                       selected: list[str] | None = None, rerun: bool = False
                       ) -> dict[str, Any]:
    """Runs the parts, judges the claims, draws the figures (when every part is present) and
    returns the results.json payload (parts cached under `workdir`, figures drawn into
    `output_dir`): metrics are {part: measurements}, `parts` records
    each part's hashes, time and whether it was skipped, `missing_parts` what was left out."""
    start = time.perf_counter()
    records = run_parts(module, config, workdir, selected=selected, rerun=rerun)
    claims = judge_parts(module, config, records)
    measurements = {name: record["measurements"] for name, record in records.items()}
    missing = [p.name for p in module.PARTS if p.name not in records]
    figures = []
    if not missing and hasattr(module, "figures"):
        figures = list(module.figures(config, measurements, str(output_dir)))
    config_json = config.to_json_best_effort(sort_keys=True)
    return {
        "experiment": pathlib.Path(module.__file__).stem,
        "preset": preset,
        "config": json.loads(config_json),
        "claims": [c.to_json() for c in claims],
        "metrics": measurements,
        "parts": {name: {k: v for k, v in record.items() if k != "measurements"}
                  for name, record in records.items()},
        "missing_parts": missing,
        "figures": figures,
        "env": receipt.environment_receipt(
            config_json, precision=experiment.precisions(json.loads(config_json)),
            seeds=config.get("seeds")),
        "wall_s": round(time.perf_counter() - start, 3),
    }
