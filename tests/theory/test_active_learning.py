"""Active learning of 1-D thresholds: closed forms, bisection, ERM thresholds, pool queries."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory import active_learning as al

HIDDEN = ((0.45, 0.0, 1.0, 0), (0.05, 1.1, 1.3, 1), (0.025, 1.4, 1.6, 0), (0.475, 4.0, 5.0, 1))


def test_passive_width_closed_form_matches_quadrature_for_one_label():
    """m = 1: the width is x when t* < x and 1 - x otherwise, so E = E[x^2 + (1 - x)^2] = 2/3;
    E[width^2] = E[x^3 + (1 - x)^3] = 1/2."""
    x = (np.arange(100000) + 0.5) / 100000
    assert al.expected_passive_width(1) == pytest.approx(np.mean(x**2 + (1 - x) ** 2), 1e-9)
    assert al.passive_width_second_moment(1) == pytest.approx(np.mean(x**3 + (1 - x) ** 3), 1e-9)
    assert al.expected_passive_width(0) == 1.0
    assert al.passive_width_second_moment(0) == 1.0


def test_bisection_width_is_exactly_two_to_minus_k_and_holds_the_threshold():
    widths = al.bisection_widths(0.3, 20)
    np.testing.assert_array_equal(widths, 2.0 ** -np.arange(21))


@pytest.mark.parametrize("m", [1, 3, 10])
def test_passive_monte_carlo_is_within_four_standard_errors_of_the_closed_form(m):
    draws = 40000
    widths = al.passive_widths(jax.random.PRNGKey(m), [m], draws)[:, 0]
    sd = np.sqrt(al.passive_width_second_moment(m) - al.expected_passive_width(m) ** 2)
    assert abs(widths.mean() - al.expected_passive_width(m)) < 4 * sd / np.sqrt(draws)


def test_passive_labels_to_width_are_one_based_and_bounded_by_the_horizon():
    """Each count m is a label count (>= 1) whose width is <= eps while the width after m - 1
    labels is not (checked against the same draws); no count exceeds M + 1 = horizon / eps + 1;
    a smaller eps needs at least as many labels."""
    key, eps, horizon = jax.random.PRNGKey(3), (0.25, 0.125), 4.0
    labels = al.passive_labels_to_width(key, eps, horizon, 50)
    widths = al.passive_widths(key, np.arange(1, 33), 50)
    assert labels.shape == (50, 2) and labels.min() >= 1 and labels.max() <= 33
    assert np.all(labels[:, 1] >= labels[:, 0])
    for r, m in enumerate(labels[:, 0]):
        if m <= 32:
            assert widths[r, m - 1] <= 0.25 and (m == 1 or widths[r, m - 2] > 0.25)


def test_interval_groups_zip_and_refuse_ragged_input():
    assert al.interval_groups((0.5, 0.5), (0, 2), (1, 3), (0, 1)) == ((0.5, 0, 1, 0),
                                                                      (0.5, 2, 3, 1))
    with pytest.raises(ValueError, match="lengths 2, 2, 2, 1"):
        al.interval_groups((0.5, 0.5), (0, 2), (1, 3), (0,))


def test_best_threshold_error_on_the_hidden_mixture_is_the_third_groups_mass():
    """The best threshold lies between groups 1 and 2 and errs on group 3 only (2.5 %)."""
    assert al.best_threshold_error(HIDDEN, -0.5, 5.5) == pytest.approx(0.025)


def test_start_hits_interval_reads_the_first_points_of_each_order():
    x = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    order = np.array([[2, 0, 1, 3], [3, 0, 2, 1]])
    np.testing.assert_array_equal(al.start_hits_interval(x, order, 2, 1.5, 2.5), [True, False])


def test_random_orders_are_permutations_and_mixture_runs_share_them():
    order = al.random_orders(jax.random.PRNGKey(0), 3, 50)
    assert np.all(np.sort(np.asarray(order), axis=1) == np.arange(50))
    x, runs = al.mixture_query_runs(jax.random.PRNGKey(1), HIDDEN, order, num_start=4,
                                    num_queries=5, lo=-0.5, hi=5.5)
    assert x.shape == (3, 50) and set(runs) == set(al.STRATEGIES)
    for thresholds, errors in runs.values():
        assert thresholds.shape == errors.shape == (3, 6)
        np.testing.assert_array_equal(errors, al.interval_mixture_error(thresholds, HIDDEN))
    # Round 0 is the ERM threshold of the shared labelled start: equal for both strategies.
    np.testing.assert_array_equal(runs["uncertainty"][0][:, 0], runs["random"][0][:, 0])


def test_erm_threshold_by_hand():
    x = jnp.array([0.1, 0.2, 0.3, 0.4])
    t, err = al.erm_threshold(x, jnp.array([0.0, 0, 1, 1]), jnp.ones(4), 0.0, 1.0)
    assert (float(t), float(err)) == pytest.approx((0.25, 0.0))
    t, _ = al.erm_threshold(x, jnp.array([0.0, 0, 1, 1]), jnp.array([1.0, 0, 0, 1]), 0.0, 1.0)
    assert float(t) == pytest.approx(0.25)  # middle of the version space [0.1, 0.4]
    # Labels 0, 1, 0, 1: errors per gap [2, 1, 2, 1, 2]; the first minimising gap is (0.1, 0.2).
    t, err = al.erm_threshold(x, jnp.array([0.0, 1, 0, 1]), jnp.ones(4), 0.0, 1.0)
    assert (float(t), float(err)) == pytest.approx((0.15, 1.0))
    t, err = al.erm_threshold(x, jnp.zeros(4), jnp.zeros(4), 0.0, 1.0)
    assert (float(t), float(err)) == pytest.approx((0.5, 0.0))  # no labels: the whole range


def test_uncertainty_sampling_on_a_realizable_pool_is_bisection():
    """64 points (i + 1/2) / 64, t* = 0.3: each threshold is the middle of the version space
    and each query the pool point nearest it (ties to the left), by hand: 0.5 -> label 0.4921875
    (1) -> 0.24609375 -> label 0.2421875 (0) -> 0.3671875 (1) -> 0.3046875 (1) -> 0.2734375 (0)
    -> 0.2890625 (0): the gap holding t* is pinned after 6 <= ceil(log2 65) = 7 queries."""
    u = 64
    x = (jnp.arange(u) + 0.5) / u
    y = (x > 0.3).astype(jnp.float32)
    t = al.run_pool_queries(x[None], y[None], jnp.arange(u)[None], num_start=0, num_queries=7,
                            strategy="uncertainty", lo=0.0, hi=1.0)[0]
    np.testing.assert_allclose(t, [0.5, 0.24609375, 0.3671875, 0.3046875, 0.2734375,
                                   0.2890625, 0.296875, 0.296875], rtol=1e-7)


def test_random_sampling_labels_in_the_given_order():
    x = jnp.array([[0.1, 0.2, 0.3, 0.4]])
    y = jnp.array([[0.0, 0, 1, 1]])
    order = jnp.array([[3, 0, 2, 1]])  # labels 0.4, then 0.1, then 0.3
    t = al.run_pool_queries(x, y, order, num_start=1, num_queries=2, strategy="random",
                            lo=0.0, hi=1.0)[0]
    np.testing.assert_allclose(t, [0.2, 0.25, 0.2], rtol=1e-6)


def test_interval_mixture_error_by_hand():
    errors = al.interval_mixture_error([1.05, 2.5, -1.0, 1.2], HIDDEN)
    np.testing.assert_allclose(errors, [0.025, 0.05, 0.475, 0.025 + 0.025], atol=1e-12)


def test_sample_interval_mixture_is_sorted_and_labelled_by_group():
    x, y = al.sample_interval_mixture(jax.random.PRNGKey(0), HIDDEN, 2, 500)
    assert bool(jnp.all(jnp.diff(x, axis=1) >= 0))
    in_group_2 = (x >= 1.1) & (x <= 1.3)
    assert bool(jnp.all(y[in_group_2] == 1)) and bool(jnp.all(y[(x <= 1.0)] == 0))
