"""The no-free-lunch experiment's quick preset, end to end, and its enumeration helpers."""

import fractions

import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment

EXPERIMENT = "no_free_lunch"
NFL = load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_every_uniform_accuracy_is_exactly_one_half_and_priors_are_symmetric(quick_run):
    for per_size in quick_run[0]["metrics"]["enumeration"]["by_train_size"].values():
        assert set(per_size["uniform_accuracy"].values()) == {"1/2"}
        prior = per_size["prior_accuracy"]
        for name, values in prior.items():
            if name.startswith("anti_"):
                # A learner and its anti-learner split every comparison: accuracies sum to 1.
                base = prior[name[len("anti_"):]]
                for beta, value in values.items():
                    assert value + base[beta] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.experiment
def test_the_prior_is_each_claims_control(quick_run):
    """Under the smooth prior the learners leave 1/2 (nearest neighbour by ~0.45); under the
    uniform prior nearest neighbour is at exactly 1/2."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    claims = {c["id"]: c for c in payload["claims"]}
    smooth = claims["nearest_neighbour_wins_smooth_prior"]["measured"]
    assert claims["uniform_average_half_deterministic"]["baseline"] >= smooth - 0.5 > 0.4
    assert claims["uniform_average_half_mlp"]["baseline"] > 0.1
    for claim_id in ("nearest_neighbour_wins_smooth_prior",
                     "nearest_neighbour_loses_reversed_prior"):
        assert claims[claim_id]["baseline"] == 0.5


def test_hypercube_and_labelings_enumerate_binary_digits():
    cube = NFL.hypercube(3)
    assert cube.shape == (8, 3)
    np.testing.assert_array_equal(cube[5], [1, 0, 1])
    assert len({tuple(r) for r in NFL.all_labelings(4)}) == 16


def test_total_sensitivity_of_constant_dictator_and_parity():
    n = 4
    cube = NFL.hypercube(n)
    labels = np.stack([np.zeros(2 ** n, np.int8), cube[:, 0], cube.sum(1) % 2])
    # Constant: no edge; dictator x_1: the 2^(n-1) edges along coordinate 1; parity: all edges.
    np.testing.assert_array_equal(NFL.total_sensitivity(labels, cube),
                                  [0, 2 ** (n - 1), n * 2 ** (n - 1)])


def test_exact_uniform_accuracy_is_one_half_for_any_predictions():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 2, size=(8, 5)).astype(np.int8)
    assert NFL.exact_uniform_accuracy(pred) == fractions.Fraction(1, 2)


def test_nearest_neighbour_majority_vote_and_prior_accuracy():
    train_x = np.array([[0, 0], [1, 1]], np.int8)
    test_x = np.array([[0, 1], [1, 0]], np.int8)
    labels = NFL.all_labelings(2)  # rows (0,0), (0,1), (1,0), (1,1)
    # Both test points are at distance 1 from both training points: a vote, ties -> 0.
    np.testing.assert_array_equal(NFL.nearest_neighbour(train_x, labels, test_x),
                                  [[0, 0], [0, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(NFL.majority_vote(train_x, labels, test_x)[:, 0], [0, 0, 0, 1])
    pred = np.array([[0, 1]], np.int8)
    ots = NFL.all_labelings(2)
    # beta = 0: uniform over the 4 OTS labelings, agreements 1, 2, 0, 1 of 2 -> 1/2.
    assert NFL.prior_accuracy(pred, np.zeros((1, 4)), ots, 0.0) == pytest.approx(0.5)
    # Very large beta puts all weight on the lowest-energy target (here OTS labeling (0, 1)).
    energy = np.array([[3.0, 0.0, 3.0, 3.0]])
    assert NFL.prior_accuracy(pred, energy, ots, 50.0) == pytest.approx(1.0)
