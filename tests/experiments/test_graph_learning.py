"""The graph-learning experiment's quick preset end to end, and its SBM closed forms."""

import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment

EXPERIMENT = "graph_learning"
gl = load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: shuffled karate edges, r = 1, the first detectable ratio
    and the gap between undetectable ratios each miss the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_gcn_on_shuffled_karate_edges_is_near_chance(quick_run):
    payload, _ = quick_run
    control = np.asarray(payload["metrics"]["karate"]["shuffled_edges_gcn_accuracy"])
    assert abs(control.mean() - 0.5) < 0.1


@pytest.mark.experiment
def test_mlp_without_edges_is_at_chance_everywhere(quick_run):
    """Identity features: the MLP has nothing to go on for unlabelled nodes."""
    payload, _ = quick_run
    mlp = np.asarray(payload["metrics"]["sbm"]["mlp_accuracy"])
    assert abs(mlp.mean() - 0.5) < 0.05


def test_edge_probabilities_give_the_mean_degree_and_ratio():
    p_in, p_out = gl.sbm_edge_probabilities(num_nodes=400, mean_degree=5.0, ratio=4.0)
    assert p_in / p_out == pytest.approx(4.0)
    assert 400 * (p_in + p_out) / 2 == pytest.approx(5.0)


def test_detectability_threshold_closed_form():
    # c = 9: r* = (3 + 1) / (3 - 1) = 2, where c (r - 1)^2 / (r + 1)^2 = 9 / 9 = 1.
    assert gl.threshold_ratio(9.0) == pytest.approx(2.0)
    assert gl.detectability_snr(9.0, 2.0) == pytest.approx(1.0)
    # Directly from Decelle et al.: c_in = 12, c_out = 6 -> (12 - 6)^2 / (2 * 18) = 1.
    p_in, p_out = gl.sbm_edge_probabilities(100, 9.0, 2.0)
    assert (100 * p_in, 100 * p_out) == pytest.approx((12.0, 6.0))
    assert gl.detectability_snr(9.0, 1.0) == 0.0
    assert gl.threshold_ratio(1.0) == float("inf")


def test_sbm_mean_degree_matches_on_a_sampled_graph():
    from dl_theory.data import graphs

    p_in, p_out = gl.sbm_edge_probabilities(2000, 5.0, 3.0)
    graph = graphs.stochastic_block_model((1000, 1000), p_in, p_out, seed=0)
    assert len(graph["senders"]) / 2000 == pytest.approx(5.0, rel=0.05)


def test_shuffled_edges_keep_the_degrees_and_the_labels():
    from dl_theory.data import graphs

    club = graphs.karate_club()
    shuffled = gl.shuffle_nodes_of_edges(club, seed=0)
    assert np.array_equal(shuffled["y"], club["y"])
    degrees = np.bincount(club["senders"], minlength=club["num_nodes"])
    new_degrees = np.bincount(shuffled["senders"], minlength=club["num_nodes"])
    assert sorted(degrees) == sorted(new_degrees) and not np.array_equal(degrees, new_degrees)


def test_a_sweep_without_an_undetectable_ratio_above_one_is_refused():
    from harness import set_dotted

    from dl_theory.config_checks import validate_experiment_config
    from dl_theory.user_errors import ConfigError

    config = set_dotted(gl.get_config("quick"), {"sbm.ratios": (1.0, 5.0, 30.0)})
    with pytest.raises(ConfigError, match=r"sbm.ratios=\(1.0, 5.0, 30.0\); allowed"):
        validate_experiment_config(gl, config, "quick")
