"""The protocol: a claim's verdict follows its measured value; loading and validation errors."""

import math

import pytest

from dl_theory import experiment
from dl_theory.experiment import ClaimSpec, Result, check
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


def test_module_without_protocol_is_rejected(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("def run(config, workdir):\n    pass\n")
    with pytest.raises(AttributeError, match="CLAIMS"):
        experiment.load_experiment(str(path))


def test_result_must_carry_exactly_the_declared_claims(tmp_path):
    path = tmp_path / "declared.py"
    path.write_text("from dl_theory.experiment import ClaimSpec\n"
                    "CLAIMS = (ClaimSpec('a', 's', 'src'), ClaimSpec('b', 's', 'src'))\n"
                    "def get_config(preset='quick'): pass\n"
                    "def run(config, workdir): pass\n")
    module = experiment.load_experiment(str(path))
    only_a = Result(claims=[check(module.CLAIMS[0], 1.0, at_most=2.0)])
    with pytest.raises(ValueError, match="declared"):
        experiment.validate_result(module, only_a)
