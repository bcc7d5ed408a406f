"""The experiment protocol: claims, parts, and loading experiment modules.

An experiment is a module in `experiments/` with

    CLAIMS: tuple[ClaimSpec, ...]        # keyed by id, each with its bound; --list needs no run
    PARTS: tuple[Part, ...]              # named computations: config -> JSON measurements
    def get_config(preset="quick") -> ml_collections.ConfigDict
    def figures(config, measurements, workdir) -> list[str]     # optional

A part computes measurements and judges nothing; its `judge` turns the measurements into one
number per claim id, and `judge_claims` compares each with the bound its spec names, so that no
verdict is ever written by hand. `dl_theory.parts` runs, caches and resumes the parts;
`dl_theory.run_directory` runs an experiment into its run directory.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import pathlib
import sys
import types
from collections.abc import Callable
from typing import Any

import ml_collections

from dl_theory.uncertainty import Estimate
from dl_theory.user_errors import ExperimentFileError

EXPERIMENTS_DIR = pathlib.Path(__file__).resolve().parent.parent / "experiments"


Bound = float | str | None  # a number, or the dotted config key that holds it


@dataclasses.dataclass(frozen=True)
class Published:
    """What the paper reports for a claim: a number (a slope, an accuracy) or a qualitative
    result, and exactly where ("Table 2", "Theorem 1", "Figure 3b")."""

    value: float | str
    where: str


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A falsifiable sentence an experiment tests: its id, the sentence, its source, its bound
    and the verdict expected of it.

    `at_least` / `at_most` are numbers or dotted config keys ("cybenko.max_rel_error"); leave
    both None when the judge measures the tolerance in the run (it returns `Measured`). A known
    negative result has `expected_holds=False` and says `why`; `--strict` fails only when a
    verdict differs from the expected one. `published` is the paper's own number for the
    claim, with its location. `margin_why` says why a measurement far (over 100x) inside its
    bound is the point of the claim; such a claim must record a baseline that fails the bound.
    """

    id: str
    statement: str
    source: str
    at_least: Bound = None
    at_most: Bound = None
    unit: str = ""
    expected_holds: bool = True
    why: str = ""
    published: Published | None = None
    margin_why: str = ""

    def __post_init__(self):
        if not self.expected_holds and not self.why:
            raise ValueError(f"claim {self.id!r}: expected_holds=False needs `why` (the measured "
                             "reason the claim is kept failing)")

    def bound_text(self) -> str:
        """The bound as written in the spec, for `--list` (config keys unresolved)."""
        if self.at_least is None and self.at_most is None:
            return "bound measured in the run"
        return _describe_bound(self.at_least, self.at_most)


@dataclasses.dataclass(frozen=True)
class Measured:
    """A judge's value, optionally with a tolerance measured in the run (overrides the spec's
    bound: e.g. at_most = three standard errors of a seed spread) and the value of a baseline
    measured in the same run (the constant predictor, an untrained net, the method the theorem
    says loses) that the same bound is expected to reject."""

    value: float | Estimate
    at_least: float | None = None
    at_most: float | None = None
    baseline: float | None = None
    baseline_name: str = ""


@dataclasses.dataclass(frozen=True)
class Part:
    """A named computation of an experiment: `compute(config, log) -> measurements` and
    `judge(config, measurements) -> {claim id: number | Estimate | Measured}`.

    `reads` lists the top-level config keys the part uses; `compute` is given a config holding
    only those keys, so the part's cache hash (over exactly these keys) cannot miss a knob it
    reads: a forgotten key fails at once (AttributeError or KeyError naming it). `log` is a
    `MetricsLog` in the part's own directory. Measurements must be JSON-serialisable (lists,
    dicts, floats); the judge reads the config's bound keys, never a cached value.
    """

    name: str
    compute: Callable[[ml_collections.ConfigDict, Any], dict[str, Any]]
    judge: Callable[[ml_collections.ConfigDict, dict[str, Any]], dict[str, Any]]
    reads: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Claim:
    """A claim with its measured number and verdict; build it with `check`, never by hand.

    `interval` is the confidence interval of `measured` when it is an estimate (a fitted rate);
    `at_least` / `at_most` are the numbers it was judged against (spec or measured tolerance).
    """

    id: str
    statement: str
    source: str
    measured: float
    expected: str
    holds: bool
    interval: tuple[float, float] | None = None
    expected_holds: bool = True
    why: str = ""
    baseline: float | None = None
    baseline_name: str = ""
    baseline_holds: bool | None = None
    published: Published | None = None
    at_least: float | None = None
    at_most: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The claim as valid JSON: a non-finite measured value becomes null plus a reason."""
        record = dataclasses.asdict(self)
        values = [self.measured, *(self.interval or ())]
        if not all(math.isfinite(v) for v in values):
            record["measured"] = self.measured if math.isfinite(self.measured) else None
            record["interval"] = (None if self.interval is None else
                                  [v if math.isfinite(v) else None for v in self.interval])
            record["not_finite"] = (f"measured {self.measured!r}, interval {self.interval!r}: "
                                    "a non-finite value never holds")
        if self.baseline is not None and not math.isfinite(self.baseline):
            record["baseline"] = None
        return record


def _describe_bound(at_least, at_most) -> str:
    def text(bound):
        return bound if isinstance(bound, str) else f"{bound:.4g}"

    if at_least is not None and at_most is not None:
        return f"in [{text(at_least)}, {text(at_most)}]"
    if at_least is not None:
        return f">= {text(at_least)}"
    return f"<= {text(at_most)}"


def check(
    spec: ClaimSpec,
    measured: float | Estimate,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    unit: str = "",
    baseline: float | None = None,
    baseline_name: str = "",
) -> Claim:
    """The claim `spec` judged on `measured` against a bound.

    For a plain number, `holds` is `at_least <= measured <= at_most` (either side optional).
    For an `Estimate` the whole confidence interval must satisfy the bound: the claim holds
    only if the data leave no reasonable doubt, not just if the point estimate lands inside.
    A non-finite measurement never holds. A `baseline` is judged by the same bound
    (`baseline_holds`), so the record shows whether the claim could have failed.
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
    holds = math.isfinite(value) and _within(low, high, at_least, at_most)
    expected = _describe_bound(at_least, at_most) + (f" {unit}" if unit else "")
    if interval is not None:
        expected += " (whole 95% interval)"
    baseline_holds = None
    if baseline is not None:
        baseline = float(baseline)
        baseline_holds = _within(baseline, baseline, at_least, at_most)
    return Claim(spec.id, spec.statement, spec.source, value, expected, bool(holds), interval,
                 spec.expected_holds, spec.why, baseline, baseline_name, baseline_holds,
                 spec.published, _number_or_none(at_least), _number_or_none(at_most))


def _within(low: float, high: float, at_least: float | None, at_most: float | None) -> bool:
    """Whether [low, high] is finite and satisfies the bound (either side optional)."""
    return bool(math.isfinite(low) and math.isfinite(high)
                and (at_least is None or low >= at_least)
                and (at_most is None or high <= at_most))


def _number_or_none(bound: float | None) -> float | None:
    return None if bound is None else float(bound)


def _resolve_bound(bound: Bound, config, claim_id: str) -> float | None:
    if bound is None or not isinstance(bound, str):
        return bound
    node = config
    for key in bound.split("."):
        if key not in node:
            raise KeyError(f"claim {claim_id!r}: bound key {bound!r} is not in the config")
        node = node[key]
    return float(node)


def judge_claims(specs: tuple[ClaimSpec, ...], config, values: dict[str, Any]) -> list[Claim]:
    """Judges every claim of `values` (claim id -> number, Estimate or Measured) against its
    spec's bound, in the order of `specs` (found by id, so the order of specs changes nothing).
    Every id must be declared."""
    by_id = {spec.id: spec for spec in specs}
    unknown = sorted(set(values) - set(by_id))
    if unknown:
        raise ValueError(f"judged claims {unknown} are not declared; declared: {sorted(by_id)}")
    claims = []
    for claim_id in (s.id for s in specs if s.id in values):
        spec, value = by_id[claim_id], values[claim_id]
        at_least = _resolve_bound(spec.at_least, config, claim_id)
        at_most = _resolve_bound(spec.at_most, config, claim_id)
        baseline = baseline_name = None
        if isinstance(value, Measured):
            at_least = value.at_least if value.at_least is not None else at_least
            at_most = value.at_most if value.at_most is not None else at_most
            baseline, baseline_name = value.baseline, value.baseline_name
            value = value.value
        claims.append(check(spec, value, at_least=at_least, at_most=at_most, unit=spec.unit,
                            baseline=baseline, baseline_name=baseline_name or ""))
    return claims


def config_from_presets(presets: dict[str, dict], preset: str, parts: tuple[Part, ...] = ()):
    """The ConfigDict of `presets[preset]`; a clear error naming the known presets.

    When the preset has a top-level `precision` (the precision of every part), the section
    of each of `parts` that trains (reads `precision`) and has a section of its own name gets
    an unset `precision` (a placeholder, so that `--config.PART.precision=bfloat16` can set
    it): set, it overrides `precision` for that part (`dl_theory.parts.part_config`).
    """
    if preset not in presets:
        raise ValueError(f"preset={preset!r}; known presets: {sorted(presets)}")
    config = ml_collections.ConfigDict(presets[preset])
    if "precision" in config:
        for part in parts:
            section = config.get(part.name)
            if (isinstance(section, ml_collections.ConfigDict) and "precision" in part.reads
                    and "precision" not in section):
                section.precision = ml_collections.config_dict.placeholder(str)
    return config


def precision_override(config: ml_collections.ConfigDict, section: str) -> str | None:
    """`config.SECTION.precision` when it is set (a part's own precision), else None."""
    node = config.get(section)
    return node.get("precision") if isinstance(node, ml_collections.ConfigDict) else None


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
    missing = [a for a in ("CLAIMS", "PARTS", "get_config") if not hasattr(module, a)]
    if missing:
        raise AttributeError(f"experiment {path} lacks {missing}; an experiment defines CLAIMS, "
                             "PARTS and get_config(preset)")
    ids = [spec.id for spec in module.CLAIMS]
    if len(set(ids)) != len(ids):
        raise ValueError(f"experiment {path}: claim ids {ids} repeat")
    return module


def summary_line(module: types.ModuleType) -> str:
    """The first paragraph of an experiment's docstring, on one line."""
    first_paragraph = (module.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(first_paragraph.split())


def validate_claim_ids(module: types.ModuleType, returned: list[str]) -> None:
    """`returned` holds exactly the claim ids `module.CLAIMS` declares, each once."""
    declared = [c.id for c in module.CLAIMS]
    if sorted(declared) != sorted(returned):
        raise ValueError(f"{module.__name__}: judges returned claims {returned}, "
                         f"declared {declared}")


def precisions(config: dict, prefix: str = "") -> str:
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

