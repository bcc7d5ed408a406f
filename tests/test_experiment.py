"""The protocol: a claim's verdict follows its measured value; loading and validation errors."""

import math

import pytest

from dl_theory import experiment, parts
from dl_theory.experiment import ClaimSpec, check
from dl_theory.uncertainty import Estimate

SPEC = ClaimSpec("x", "x is small", "folklore")


@pytest.mark.parametrize("measured, holds", [(0.5, True), (1.0, True), (1.0001, False),
                                             (math.nan, False), (math.inf, False)])
def test_upper_bound_verdict_follows_measurement(measured, holds):
    claim = check(SPEC, measured, at_most=1.0)
    assert claim.holds is holds
    assert claim.expected == "<= 1"
    assert claim.measured == measured or math.isnan(measured)


@pytest.mark.parametrize("measured, holds", [(-0.1, False), (0.0, True), (2.0, True), (2.5, False)])
def test_two_sided_bound(measured, holds):
    assert check(SPEC, measured, at_least=0.0, at_most=2.0).holds is holds


@pytest.mark.parametrize("lo, hi, holds", [(-1.3, -1.1, True), (-1.3, -0.9, False),
                                           (-1.0, -1.0, True)])
def test_estimate_holds_only_if_whole_interval_satisfies_bound(lo, hi, holds):
    claim = check(SPEC, Estimate((lo + hi) / 2, lo, hi), at_most=-1.0)
    assert claim.holds is holds
    assert claim.interval == (lo, hi)
    assert "interval" in claim.expected


def test_check_needs_a_bound_and_a_consistent_one():
    with pytest.raises(ValueError, match="at_least, at_most"):
        check(SPEC, 1.0)
    with pytest.raises(ValueError, match="empty bound"):
        check(SPEC, 1.0, at_least=2.0, at_most=1.0)


def test_unknown_experiment_names_the_known_ones():
    with pytest.raises(FileNotFoundError, match="universal_approximation"):
        experiment.load_experiment("no_such_theorem")


PROTOCOL = {
    "CLAIMS": "from dl_theory.experiment import ClaimSpec\nCLAIMS = ()\n",
    "PARTS": "PARTS = ()\n",
    "get_config": "def get_config(preset='quick'): pass\n",
}


@pytest.mark.parametrize("missing", sorted(PROTOCOL))
def test_module_without_protocol_is_rejected_naming_what_is_missing(tmp_path, missing):
    path = tmp_path / "broken.py"
    path.write_text("".join(text for name, text in PROTOCOL.items() if name != missing))
    with pytest.raises(AttributeError, match=rf"lacks \['{missing}'\]"):
        experiment.load_experiment(str(path))


@pytest.mark.parametrize("judged", [["a"], ["a", "b", "c"]])
def test_judges_must_return_exactly_the_declared_claims(tmp_path, judged):
    path = tmp_path / "declared.py"
    path.write_text("from dl_theory.experiment import ClaimSpec, Part\n"
                    "CLAIMS = (ClaimSpec('a', 's', 'src', at_most=2.0),\n"
                    "          ClaimSpec('b', 's', 'src', at_most=2.0))\n"
                    "def get_config(preset='quick'): pass\n"
                    "def judge(config, m): return {claim_id: 1.0 for claim_id in m['ids']}\n"
                    "PARTS = (Part('only', lambda config, log: {}, judge, reads=()),)\n")
    module = experiment.load_experiment(str(path))
    records = {"only": {"measurements": {"ids": judged}}}
    with pytest.raises(ValueError, match="declared"):
        parts.judge_parts(module, None, records)


def test_baseline_is_judged_by_the_same_bound_and_recorded():
    spec = ClaimSpec("c", "error below the bound", "here", at_most=0.1,
                     published=experiment.Published(0.05, "Table 1"))
    values = {"c": experiment.Measured(0.02, baseline=0.25, baseline_name="constant predictor")}
    (claim,) = experiment.judge_claims((spec,), None, values)
    assert claim.holds and claim.baseline_holds is False
    record = claim.to_json()
    assert record["baseline"] == 0.25 and record["baseline_name"] == "constant predictor"
    assert record["published"] == {"value": 0.05, "where": "Table 1"}
    passing_baseline = {"c": experiment.Measured(0.02, baseline=0.09)}
    (vacuous,) = experiment.judge_claims((spec,), None, passing_baseline)
    assert vacuous.baseline_holds is True  # a claim its baseline passes cannot fail
    assert check(spec, 0.02, at_most=0.1).baseline_holds is None
