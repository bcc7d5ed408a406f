"""Protocol v2: claims keyed by id, bounds from the config, parts cached and resumed."""

import dataclasses
import json
import math

import pytest
from tiny_parts import write_tiny_experiment

from dl_theory import experiment, parts, report, run_directory
from dl_theory.experiment import ClaimSpec, Measured


@pytest.fixture
def tiny(tmp_path):
    return experiment.load_experiment(str(write_tiny_experiment(tmp_path / ".")))


def _run(module, workdir, overrides=None, **flags):
    config = module.get_config("quick")
    config.update(overrides or {})
    return run_directory.run(module, config, workdir, "quick", **flags)


def _verdicts(payload):
    return {c["id"]: (c["measured"], c["expected"], c["holds"]) for c in payload["claims"]}


def test_bounds_come_from_config_keys_and_measured_tolerances(tiny, tmp_path):
    payload = _run(tiny, tmp_path / "run", {"a_max": 1.4})
    verdicts = _verdicts(payload)
    assert verdicts["a_mean_small"] == (1.5, "<= 1.4", False)
    assert verdicts["b_mean_large"] == (2.0, ">= 1", True)
    assert verdicts["c_within_spread"] == (2.25, "<= 5", True)  # 2 x max(c), measured
    assert verdicts["c_is_negative"] == (2.25, "<= 0", False)


def test_reordering_the_specs_changes_nothing(tiny, tmp_path):
    forward = _run(tiny, tmp_path / "forward")
    tiny.CLAIMS = tuple(reversed(tiny.CLAIMS))
    backward = _run(tiny, tmp_path / "backward")
    assert _verdicts(backward) == _verdicts(forward)
    by_id = {c["id"]: c for c in forward["claims"]}
    for claim in backward["claims"]:
        assert claim == by_id[claim["id"]]


def test_judged_claims_must_be_exactly_the_declared_ones(tiny):
    config = tiny.get_config()
    with pytest.raises(ValueError, match="not declared"):
        experiment.judge_claims(tiny.CLAIMS, config, {"no_such_claim": 1.0})
    tiny.CLAIMS = tiny.CLAIMS[:-1]
    records = {p.name: {"measurements": {"mean": 1.0, "values": [1.0]}} for p in tiny.PARTS}
    with pytest.raises(ValueError, match="declared"):
        parts.judge_parts(tiny, config, records)


def test_a_bound_key_missing_from_the_config_is_named(tiny):
    spec = ClaimSpec("x", "s", "src", at_most="nowhere.max")
    with pytest.raises(KeyError, match="nowhere.max"):
        experiment.judge_claims((spec,), tiny.get_config(), {"x": 1.0})


def test_non_finite_value_never_holds_and_is_written_as_null_with_a_reason(tmp_path):
    spec = ClaimSpec("x", "s", "src", at_most=1.0)
    claim = experiment.judge_claims((spec,), {}, {"x": Measured(math.nan, at_most=2.0)})[0]
    assert claim.holds is False
    record = claim.to_json()
    assert record["measured"] is None and "nan" in record["not_finite"]
    payload = {"claims": [record], "metrics": {"loss": [1.0, math.inf]}, "figures": [],
               "experiment": "x", "preset": "quick", "wall_s": 0.0,
               "env": {"versions": {"jax": "?"}, "device_count": 1, "device_kind": "cpu",
                       "backend": "cpu", "precision_policy": "float32", "config_hash": "0"}}
    report.write_report(payload, tmp_path)

    def reject(token):
        raise AssertionError(f"bare {token} in results.json")

    on_disk = json.loads((tmp_path / "results.json").read_text(), parse_constant=reject)
    assert on_disk["metrics"]["loss"] == [1.0, None]
    assert on_disk["non_finite"] == {"metrics.loss.1": "inf (written as null)"}


def test_expected_negative_result_is_no_surprise_and_is_marked(tiny, tmp_path):
    payload = _run(tiny, tmp_path / "run")
    assert report.surprises(payload) == []
    table = report.verdict_table(payload)
    assert "no (expected)" in table and "0 surprises" in table
    assert "c is positive by construction" in (tmp_path / "run" / "report.md").read_text()
    flipped = _run(tiny, tmp_path / "flipped", {"c": (-2.0, -1.0)})
    assert report.surprises(flipped) == ["c_is_negative"]
    assert "YES (expected no)" in report.verdict_table(flipped)
    with pytest.raises(ValueError, match="why"):
        dataclasses.replace(tiny.CLAIMS[3], why="")


def test_rerun_skips_unchanged_parts_and_recomputes_changed_ones(tiny, tmp_path):
    first = _run(tiny, tmp_path)
    assert [r["skipped"] for r in first["parts"].values()] == [False, False, False]
    again = _run(tiny, tmp_path)
    assert [r["skipped"] for r in again["parts"].values()] == [True, True, True]
    assert _verdicts(again) == _verdicts(first)
    changed_b = _run(tiny, tmp_path, {"b": (5.0, 7.0)})
    assert {k: r["skipped"] for k, r in changed_b["parts"].items()} == {
        "a": True, "b": False, "c": True}
    assert changed_b["metrics"]["b"]["mean"] == 6.0
    forced = _run(tiny, tmp_path, {"b": (5.0, 7.0)}, rerun=True)
    assert [r["skipped"] for r in forced["parts"].values()] == [False, False, False]


def test_changed_code_invalidates_the_cache(tiny, tmp_path):
    _run(tiny, tmp_path)
    path = tiny.__file__
    with open(path, "a") as f:
        f.write("\n# an edit\n")
    edited = experiment.load_experiment(path)
    assert [r["skipped"] for r in _run(edited, tmp_path)["parts"].values()] == [False] * 3


def test_parts_selects_a_subset_and_leaves_unrun_claims_unjudged(tiny, tmp_path):
    payload = _run(tiny, tmp_path, selected_parts=["b"])
    assert list(payload["parts"]) == ["b"] and payload["missing_parts"] == ["a", "c"]
    assert [c["id"] for c in payload["claims"]] == ["b_mean_large"]
    assert "not judged" in report.verdict_table(payload)
    with pytest.raises(ValueError, match=r"unknown \['z'\]"):
        _run(tiny, tmp_path / "other", selected_parts=["z"])


def test_a_part_reading_an_undeclared_key_fails_at_once(tiny, tmp_path):
    part = dataclasses.replace(tiny.PARTS[0], reads=("fail_in",))  # forgets "a"
    tiny.PARTS = (part, *tiny.PARTS[1:])
    with pytest.raises((AttributeError, KeyError), match="'a'"):
        _run(tiny, tmp_path)


def test_every_evaluation_is_in_metrics_jsonl(tiny, tmp_path):
    _run(tiny, tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["label"], r["value"]) for r in records] == [
        ("a", 1.0), ("a", 2.0), ("b", 1.0), ("b", 3.0), ("c", 2.0), ("c", 2.5)]


def _two_trained_parts():
    """A module with parts "mlp" and "lm" that train (read precision) and a "task" section."""
    import types

    module = types.ModuleType("two_parts")
    module.PARTS = tuple(
        experiment.Part(name, lambda config, log: {"precision": config.precision},
                        lambda config, m: {}, reads=(name, "task", "precision"))
        for name in ("mlp", "lm"))
    presets = {"quick": dict(precision="float32", task=dict(n=1), mlp=dict(width=2),
                             lm=dict(width=3))}
    return module, experiment.config_from_presets(presets, "quick", module.PARTS)


def test_one_precision_key_sets_every_part_and_a_part_may_override_it(tmp_path):
    from dl_theory import config_checks

    module, config = _two_trained_parts()
    before = {p.name: parts.part_hash(config, p) for p in module.PARTS}
    config.precision = "bfloat16"
    assert all(parts.part_config(config, p).precision == "bfloat16" for p in module.PARTS)
    config.mlp.precision = "float16"  # what --config.mlp.precision=float16 sets
    config_checks.validate_experiment_config(module, config)
    seen = {p.name: parts.part_config(config, p).precision for p in module.PARTS}
    assert seen == {"mlp": "float16", "lm": "bfloat16"}
    config.precision = "float32"
    after = {p.name: parts.part_hash(config, p) for p in module.PARTS}
    assert after["lm"] == before["lm"] and after["mlp"] != before["mlp"]
    assert "precision" not in config.task  # not a part: --config.task.precision is unknown
