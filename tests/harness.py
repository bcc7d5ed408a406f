"""Helpers shared by the experiment tests (importable because setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import json
import pathlib

import jax
import pytest

from dl_theory import experiment, report, run_directory
from dl_theory.config_checks import validate_experiment_config
from dl_theory.user_errors import ConfigError


def make_jax_strict() -> None:
    """Silent broadcasting of rank-mismatched arrays hides shape bugs; make it an error (in the
    test process and in the quick-preset workers alike)."""
    jax.config.update("jax_numpy_rank_promotion", "raise")


def set_dotted(config, overrides: dict):
    """Sets each dotted key of `overrides` in `config` (as --config.a.b=value would) and
    returns `config`."""
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return config


def assert_config_refused(name: str, overrides: dict, fragment: str) -> None:
    """Experiment `name`'s quick config with `overrides` (dotted keys) is refused by its
    validation, before anything runs, with a one-line ConfigError containing `fragment`."""
    module = experiment.load_experiment(name)
    config = set_dotted(module.get_config("quick"), overrides)
    with pytest.raises(ConfigError) as info:
        validate_experiment_config(module, config, "quick")
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def run_quick_preset(name: str, workdir: pathlib.Path, overrides: dict | None = None,
                     **run_flags) -> dict:
    """Runs experiments/<name>.py with its quick preset into `workdir`, writing the run
    directory as launch.py does, and returns the results.json payload. `overrides` maps dotted
    keys to values, as --config.a.b=value would; `run_flags` are `run_directory.run`'s
    selected_parts / rerun (--parts / --rerun)."""
    module = experiment.load_experiment(name)
    config = set_dotted(module.get_config("quick"), overrides or {})
    payload = run_directory.run(module, config, workdir, "quick", **run_flags)
    assert_run_directory_is_complete(payload, pathlib.Path(workdir))
    return payload


def assert_run_directory_is_complete(payload: dict, workdir: pathlib.Path) -> None:
    """config.json, results.json (with the payload's claims), metrics.jsonl (when the run
    trained), report.md and every figure are on disk."""
    for name in ("config.json", "results.json", "report.md", *payload["figures"]):
        assert (workdir / name).is_file(), f"{name} missing from {workdir}"
    assert run_directory.read_status(workdir) == "complete"
    on_disk = json.loads((workdir / "results.json").read_text())
    assert [c["id"] for c in on_disk["claims"]] == [c["id"] for c in payload["claims"]]


def assert_every_claim_has_a_failing_baseline(payload: dict) -> None:
    """Every claim of the run could have failed: it recorded a baseline, and its own bound
    rejects that baseline."""
    for claim in payload["claims"]:
        assert claim["baseline"] is not None, f"{claim['id']}: no baseline recorded"
        assert claim["baseline_holds"] is False, (
            f"{claim['id']}: its baseline {claim['baseline']} ({claim['baseline_name']}) passes "
            f"its own bound {claim['expected']}")


def assert_every_claim_holds(payload: dict) -> None:
    """Fails with the verdict table when any claim of a run does not hold, expected negative
    results aside (their verdict must be the expected one too)."""
    failed = report.surprises(payload)
    assert not failed, f"claims that do not hold: {failed}\n{report.verdict_table(payload)}"
