"""The universal-approximation experiment's quick preset, end to end."""

import pytest
from harness import (
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
    run_quick_preset,
)

EXPERIMENT = "universal_approximation"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_barron_bound_binds_and_the_constant_predictor_fails_it(quick_run):
    """Every trained width is above n* = (2C)^2 / Var f in every d, so the bound says more
    than the mean there: the constant predictor (error Var f) fails it and the nets pass it."""
    payload, _ = quick_run
    barron = payload["metrics"]["barron"]
    for d, errors in barron["test_mse"].items():
        mean = [sum(col) / len(col) for col in zip(*errors)]
        for error, bound in zip(mean, barron["bound"]):
            assert bound < barron["variance"][d], (d, bound)
            assert error < bound, (d, error, bound)
    claim = {c["id"]: c for c in payload["claims"]}["barron_bound_holds"]
    assert claim["baseline_name"] == "constant predictor (error Var f)"
    assert claim["baseline"] > 1 and claim["baseline_holds"] is False
    assert claim["measured"] < 0.05 * claim["baseline"]


def test_every_claim_records_a_baseline_its_bound_rejects(quick_run):
    """Untrained nets' error does not fall with width; the constant predictor's relative error
    is Var f / Var f up to the sampling error of two 16,384-point samples (about 1 %)."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    claims = {c["id"]: c for c in payload["claims"]}
    assert claims["error_falls_with_width"]["baseline"] < 0.5
    assert claims["widest_net_is_accurate"]["baseline"] == pytest.approx(1.0, abs=0.05)


def test_estimation_error_is_negligible_with_fresh_samples(quick_run):
    """Fresh samples every step: test error ~ final training loss (|gap| << error)."""
    payload, _ = quick_run
    barron = payload["metrics"]["barron"]
    for d, gaps in barron["generalisation_gap"].items():
        errors = barron["test_mse"][d]
        for gap_row, err_row in zip(gaps, errors):
            assert all(abs(g) < 0.5 * e for g, e in zip(gap_row, err_row)), (d, gap_row, err_row)


def test_same_preset_twice_gives_identical_measurements(tmp_path):
    """Determinism, on a shrunken quick preset (same code path, a few seconds)."""
    small = {"seeds": 2, "num_test": 1024, "cybenko.widths": (2, 4), "cybenko.steps": 60,
             "barron.dims": (2, 4), "barron.widths": (2, 4), "barron.steps": 60}
    first = run_quick_preset(EXPERIMENT, tmp_path / "a", small)
    second = run_quick_preset(EXPERIMENT, tmp_path / "b", small)
    assert [c["measured"] for c in first["claims"]] == [c["measured"] for c in second["claims"]]
    assert first["metrics"] == second["metrics"]
    assert [p["config_hash"] for p in first["parts"].values()] == [
        p["config_hash"] for p in second["parts"].values()]
