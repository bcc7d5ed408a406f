"""Helpers shared by the experiment tests (importable because setup.cfg puts tests/ on the path)."""

from __future__ import annotations

import pathlib

from dl_theory import experiment, report


def run_quick_preset(name: str, workdir: pathlib.Path, overrides: dict | None = None) -> dict:
    """Runs experiments/<name>.py with its quick preset into `workdir`, writing the run
    directory as launch.py does, and returns the results.json payload. `overrides` maps dotted
    keys to values, as --config.a.b=value would."""
    module = experiment.load_experiment(name)
    config = module.get_config("quick")
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    report.prepare_workdir(workdir, config)
    payload = experiment.run_experiment(module, config, workdir, "quick")
    report.write_report(payload, workdir)
    return payload


def assert_every_claim_holds(payload: dict) -> None:
    """Fails with the verdict table when any claim of a run does not hold."""
    failed = [c["id"] for c in payload["claims"] if not c["holds"]]
    assert not failed, f"claims that do not hold: {failed}\n{report.verdict_table(payload)}"
