"""The experiment protocol: claims, results, and loading and running experiment modules.

An experiment is a module in `experiments/` with

    CLAIMS: tuple[ClaimSpec, ...]        # what it tests, known before anything runs
    def get_config(preset="quick") -> ml_collections.ConfigDict
    def run(config, workdir) -> Result

`run` measures numbers and turns each into a `Claim` with `check`, which computes `holds` from
the measured value and the stated bound, so that no verdict is ever written by hand.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import pathlib
import sys
import time
import types
from typing import Any

import ml_collections

from dl_theory import config_checks, receipt
from dl_theory.uncertainty import Estimate
from dl_theory.user_errors import ExperimentFileError

EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "experiments"


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A falsifiable sentence an experiment tests: its id, the sentence and its source."""

    id: str
    statement: str
    source: str


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim with its measured number and verdict; build it with `check`, never by hand.

    `interval` is the confidence interval of `measured` when it is an estimate (a fitted rate).
    """

    id: str
    statement: str
    source: str
    measured: float
    expected: str
    holds: bool
    interval: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    """What `run` returns: claims, JSON-serialisable metrics, and figure file names."""

    claims: list[Claim]
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[str] = dataclasses.field(default_factory=list)


def _describe_bound(at_least, at_most) -> str:
    if at_least is not None and at_most is not None:
        return f"in [{at_least:.4g}, {at_most:.4g}]"
    if at_least is not None:
        return f">= {at_least:.4g}"
    return f"<= {at_most:.4g}"


def check(
    spec: ClaimSpec,
    measured: float | Estimate,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    unit: str = "",
) -> Claim:
    """The claim `spec` judged on `measured` against a bound.

    For a plain number, `holds` is `at_least <= measured <= at_most` (either side optional).
    For an `Estimate` the whole confidence interval must satisfy the bound: the claim holds
    only if the data leave no reasonable doubt, not just if the point estimate lands inside.
    A non-finite measurement never holds.
    """
    if at_least is None and at_most is None:
        raise ValueError(f"claim {spec.id!r}: give at_least, at_most or both")
    if at_least is not None and at_most is not None and at_least > at_most:
        raise ValueError(f"claim {spec.id!r}: empty bound at_least={at_least} > at_most={at_most}")
    if isinstance(measured, Estimate):
        value, interval = measured.value, (measured.lo, measured.hi)
        low, high = measured.lo, measured.hi
    else:
        value, interval = float(measured), None
        low = high = value
    finite = all(math.isfinite(v) for v in (value, low, high))
    holds = (finite and (at_least is None or low >= at_least)
             and (at_most is None or high <= at_most))
    expected = _describe_bound(at_least, at_most) + (f" {unit}" if unit else "")
    if interval is not None:
        expected += " (whole 95% interval)"
    return Claim(spec.id, spec.statement, spec.source, value, expected, bool(holds), interval)


def config_from_presets(presets: dict[str, dict], preset: str):
    """The ConfigDict of `presets[preset]`; a clear error naming the known presets."""
    if preset not in presets:
        raise ValueError(f"preset={preset!r}; known presets: {sorted(presets)}")
    return ml_collections.ConfigDict(presets[preset])


def resolve_experiment_path(name_or_path: str) -> pathlib.Path:
    """`experiments/foo.py`, `foo.py` or `foo` -> the experiment file; a clear error otherwise."""
    candidates = [pathlib.Path(name_or_path)]
    stem = pathlib.Path(name_or_path).name
    stem = stem if stem.endswith(".py") else stem + ".py"
    candidates.append(EXPERIMENTS_DIR / stem)
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"experiment {name_or_path!r} not found; known: {sorted(available_experiments())}")


def available_experiments() -> dict[str, pathlib.Path]:
    """Experiment name -> file, for every module in `experiments/` (private `_x.py` excluded)."""
    return {p.stem: p for p in sorted(EXPERIMENTS_DIR.glob("*.py")) if not p.stem.startswith("_")}


def load_experiment(name_or_path: str) -> types.ModuleType:
    """Imports an experiment module from its file and checks that it follows the protocol."""
    path = resolve_experiment_path(name_or_path)
    spec = importlib.util.spec_from_file_location(f"dl_theory_experiments.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as a normal import is: dataclasses (and so Flax modules)
    # defined in the experiment resolve their annotations through sys.modules.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise ExperimentFileError(f"{error.filename}:{error.lineno}: syntax error in the "
                                  f"experiment file: {error.msg}; fix the file") from error
    missing = [a for a in ("CLAIMS", "get_config", "run") if not hasattr(module, a)]
    if missing:
        raise AttributeError(f"experiment {path} lacks {missing}; an experiment defines CLAIMS, "
                             "get_config(preset) and run(config, workdir)")
    return module


def summary_line(module: types.ModuleType) -> str:
    """The first paragraph of an experiment's docstring, on one line."""
    first_paragraph = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first_paragraph.split())


def validate_result(module: types.ModuleType, result: Result) -> None:
    """The claims a run returns are exactly the ones its module declares, each once."""
    declared = [c.id for c in module.CLAIMS]
    returned = [c.id for c in result.claims]
    if sorted(declared) != sorted(returned):
        raise ValueError(f"{module.__name__}: run returned claims {returned}, declared {declared}")


def _precisions(config: dict, prefix: str = "") -> str:
    """Every `precision` key of a config ("bfloat16", or "mlp.precision=bfloat16, ..." when
    parts differ); "float32" when the experiment has none."""
    found = {}

    def walk(node, path):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{path}{key}.")
            elif key.endswith("precision") and isinstance(value, str):
                found[f"{path}{key}"] = value

    walk(config, prefix)
    if not found:
        return "float32"
    if list(found) == ["precision"]:
        return found["precision"]
    return ", ".join(f"{k}={v}" for k, v in sorted(found.items()))


def run_experiment(module: types.ModuleType, config, workdir: str | pathlib.Path,
                   preset: str) -> dict[str, Any]:
    """Runs `module.run(config, workdir)` and returns the results.json payload.

    The payload holds experiment, preset, config, claims, metrics, figures, env (the
    reproducibility receipt of `dl_theory.receipt`) and wall_s. Nothing is written here; see
    `dl_theory.report` for the run directory. Every config value is checked first
    (`dl_theory.config_checks`): a bad one raises `ConfigError` before anything compiles.
    """
    config_checks.validate_experiment_config(module, config, preset)
    start = time.perf_counter()
    result = module.run(config, str(workdir))
    wall_s = time.perf_counter() - start
    validate_result(module, result)
    config_json = config.to_json_best_effort(sort_keys=True)
    return {
        "experiment": pathlib.Path(module.__file__).stem,
        "preset": preset,
        "config": json.loads(config_json),
        "claims": [c.to_json() for c in result.claims],
        "metrics": result.metrics,
        "figures": list(result.figures),
        "env": receipt.environment_receipt(
            config_json, precision=_precisions(json.loads(config_json)),
            seeds=config.get("seeds")),
        "wall_s": round(wall_s, 3),
    }
