"""The test suite's wall time at two commits, on the tests both have, back to back.

A suite that gains tests cannot be timed against its old self as a whole, and on a shared
VM the same run timed an hour apart differs by 15-20 %. So this script checks out both
commits (git worktrees under --workdir), collects each one's test node ids, keeps the ids
both have, and runs exactly those at each commit, one after the other (--rounds alternates
them), each in its own process with a cold persistent compilation cache. It prints the wall
times, their ratio, a table per test file from `--durations=0`, and a table per experiment's
quick preset: its own wall time, `wall_s` of the results.json it wrote under the run's
--basetemp (since the presets run in a background worker beside the other tests, a test
module's setup time says how long it waited, not how long its preset took).

The same test can do more work at the later commit (a claim that gained a baseline, say);
the per-file table shows where.

  python benchmarks/suite_ab.py --before=7527f5c                   # the whole suite, ~40 min
  python benchmarks/suite_ab.py --before=7527f5c --paths=tests/train/test_losses.py  # a look
"""

from __future__ import annotations

import collections
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parent.parent
_BEFORE = flags.DEFINE_string("before", None, "The earlier commit.", required=True)
_AFTER = flags.DEFINE_string("after", "HEAD", "The later commit.")
_PATHS = flags.DEFINE_list("paths", ["tests"], "What pytest collects at both commits.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Before-then-after pairs, alternating.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where the checkouts and logs go (default: a "
                               "fresh temporary directory, removed at the end).")
_DURATION = re.compile(r"^\s*([\d.]+)s (setup|call|teardown)\s+(.+?)\s*$", re.M)
_RUN_IDS = "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"


def _checkout(rev: str, where: pathlib.Path) -> pathlib.Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(where),
                    rev], check=True, capture_output=True)
    return where


def _env(checkout: pathlib.Path) -> dict:
    """The checkout's own code first; its conftest's cache directory (inside the checkout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    return {**env, "PYTHONPATH": str(checkout)}


def _collect(checkout: pathlib.Path, paths: list[str]) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *paths], cwd=checkout, env=_env(checkout),
                         capture_output=True, text=True)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    if not ids:
        raise RuntimeError(f"no tests collected at {checkout}:\n{out.stdout[-2000:]}")
    return ids


def _run(checkout: pathlib.Path, ids: list[str], log: pathlib.Path) -> float:
    """Runs `ids` at `checkout` with a cold compilation cache, its tmp_path directories under
    `log` without its suffix; wall seconds."""
    shutil.rmtree(checkout / ".jax_cache", ignore_errors=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run([sys.executable, "-c", _RUN_IDS, "-p", "no:cacheprovider",
                        "--durations=0", f"--basetemp={log.with_suffix('')}", *ids],
                       cwd=checkout, env=_env(checkout), stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - start


def _per_file(log: pathlib.Path) -> collections.Counter:
    """Summed durations per test file."""
    files = collections.Counter()
    for seconds, _, node in _DURATION.findall(log.read_text(errors="replace")):
        files[node.split("::")[0]] += float(seconds)
    return files


def _presets(log: pathlib.Path, checkout: pathlib.Path) -> dict[str, float]:
    """Experiment name -> wall_s of the quick preset its test module read (the results.json
    in <basetemp>/<name>0, the directory `tmp_path_factory.mktemp(name)` makes)."""
    walls = {}
    for results in sorted(log.with_suffix("").glob("*0/results.json")):
        name = results.parent.name[:-1]
        if (checkout / "experiments" / f"{name}.py").exists():
            walls[name] = json.loads(results.read_text()).get("wall_s", 0.0)
    return walls


def _table(title: str, before: dict, after: dict, minimum: float = 0.0) -> None:
    print(f"\n| {title} | before, s | after, s | after/before |\n|---|---|---|---|")
    for key in sorted(before, key=lambda k: -before[k]):
        if before[key] + after.get(key, 0.0) >= minimum and before[key] > 0:
            print(f"| {key} | {before[key]:.1f} | {after.get(key, 0.0):.1f} | "
                  f"{after.get(key, 0.0) / before[key]:.2f} |")


def main(argv):
    del argv
    base = pathlib.Path(_WORKDIR.value or tempfile.mkdtemp(prefix="suite_ab-"))
    revs = {"before": _BEFORE.value, "after": _AFTER.value}
    checkouts = {}
    try:
        for k, rev in revs.items():
            checkouts[k] = _checkout(rev, base / k)
        collected = {k: _collect(c, _PATHS.value) for k, c in checkouts.items()}
        ids = sorted(set(collected["before"]) & set(collected["after"]))
        print(f"{len(ids)} tests at both commits ({len(collected['before'])} at "
              f"{revs['before']}, {len(collected['after'])} at {revs['after']}); load "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        walls = collections.defaultdict(list)
        for r in range(_ROUNDS.value):
            for k in ("before", "after"):
                log = base / f"{k}-{r}.log"
                walls[k].append(_run(checkouts[k], ids, log))
                summary = re.findall(r"^=+ (.*) =+$", log.read_text(errors="replace"), re.M)
                print(f"round {r} {k:6s} {walls[k][-1]:7.1f} s  {summary[-1:]}  (log {log})",
                      flush=True)
        before, after = sum(walls["before"]), sum(walls["after"])
        print(f"\nwall, summed over {_ROUNDS.value} round(s): before {before:.0f} s, after "
              f"{after:.0f} s, after/before {after / before:.2f}")
        logs = {k: base / f"{k}-0.log" for k in revs}
        _table("quick preset, its results.json wall_s (round 0)",
               *(_presets(logs[k], checkouts[k]) for k in ("before", "after")))
        _table("test file (round 0)", *(_per_file(logs[k]) for k in ("before", "after")),
               minimum=5.0)
    finally:
        for checkout in checkouts.values():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(checkout)], capture_output=True)
        if not _WORKDIR.value:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
