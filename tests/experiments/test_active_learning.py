"""The active_learning experiment's quick preset, end to end."""

import numpy as np
import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

EXPERIMENT = "active_learning"
pytestmark = pytest.mark.experiment


def _claims(payload):
    return {c["id"]: c for c in payload["claims"]}


def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: passive widths at the same k, the mean spacing 1/(m+1),
    bisection's logarithmic slope, random sampling's labels, the realizable mixture's gap and
    random sampling's own MNIST-1D gain over its start are all rejected by the bounds their
    claims pass."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_the_measured_numbers_sit_where_the_closed_forms_put_them(quick_run):
    """Bisection is exact; the passive slope is within 0.05 of 1; margin sampling needs at
    most half of random's labels; the hidden-cluster gap is about the 5 % - 2.5 % closed form
    diluted by the seeds whose start found group 2; on MNIST-1D uncertainty sampling trails
    random sampling, which gains at least 5 points of accuracy over its start."""
    claims = _claims(quick_run[0])
    assert claims["bisection_width_is_two_to_minus_k"]["measured"] == 1.0
    # The mean hitting time is about 2/eps - 1 (15 labels at eps = 1/8): over eps = 1/8..1/256
    # the offset lifts the log-log slope to about 1.02, and the interval need not hold 1.
    lo, hi = claims["passive_labels_grow_like_one_over_eps"]["interval"]
    assert 0.95 <= lo <= hi <= 1.05
    margin = claims["margin_sampling_needs_fewer_labels"]
    assert margin["measured"] <= 0.5 * margin["baseline"]
    assert 0.005 <= claims["uncertainty_sampling_stuck_above_random"]["measured"] <= 0.025
    assert claims["uncertainty_sampling_stuck_above_random"]["baseline"] <= 0.0
    mnist = claims["uncertainty_no_better_than_random_on_mnist1d"]
    assert mnist["measured"] <= 0.0 and mnist["baseline"] >= 0.05


def test_uncertainty_sampling_is_stuck_at_the_mass_of_the_hidden_group(quick_run):
    """Most seeds' uncertainty-sampling threshold ends at error 5 % (group 2's mass, never
    queried), random sampling's mostly at the best 2.5 %."""
    import json

    _, workdir = quick_run
    m = json.loads((workdir / "parts/hidden_cluster/measurements.json").read_text())
    m = m["measurements"]
    # (1 - 0.05)^4 = 0.81 of the starts miss group 2; 64 seeds: binomial SE 0.05.
    assert abs(np.mean(m["hidden/start_has_group_2"]) - (1 - 0.95**4)) <= 3 * 0.05
    stuck = np.isclose(m["hidden/uncertainty"]["final_error"], 0.05, atol=1e-3).mean()
    best = np.isclose(m["hidden/random"]["final_error"], 0.025, atol=2e-3).mean()
    assert stuck >= 0.6 and best >= 0.5
    assert m["best_error"] == pytest.approx(0.025)


def test_passive_hitting_times_are_not_censored_and_near_two_over_eps(quick_run):
    """Every Monte Carlo draw reaches each eps within the horizon, and the mean passive labels
    are within 10 % of 2 / eps at the smallest eps (the closed form's E[width] = 2 / (m + 2)
    read as a hitting time), while bisection needs log2(1/eps)."""
    import json

    _, workdir = quick_run
    m = json.loads((workdir / "parts/thresholds/measurements.json").read_text())
    m = m["measurements"]
    assert m["passive_never_reached"] == 0
    eps = min(m["eps"])
    assert m["passive_labels_mean"][-1] == pytest.approx(2 / eps, rel=0.1)
    assert m["active_labels"][-1] == round(np.log2(1 / eps))


def test_masses_not_summing_to_one_are_refused():
    assert_config_refused(EXPERIMENT, {"hidden_cluster.masses": (0.5, 0.05, 0.025, 0.475)},
                          "hidden_cluster.masses=(0.5, 0.05, 0.025, 0.475); allowed: positive "
                          "numbers")
