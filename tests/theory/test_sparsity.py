"""Zero fractions, magnitude pruning and matched-sparsity accuracy, on hand-made trees."""

import math

import numpy as np

from dl_theory.theory.sparsity import (
    accuracy_at_sparsity,
    magnitude_pruned,
    magnitude_pruned_members,
    zero_fraction,
)


def test_zero_fraction_counts_exact_zeros_per_member():
    params = {"w": np.array([[0.0, 1.0, 0.0], [2.0, 3.0, 4.0]]), "b": np.array([[0.0], [0.0]])}
    np.testing.assert_allclose(zero_fraction(params, 2), [3 / 4, 1 / 4])


def test_magnitude_pruning_zeroes_the_smallest_entries_over_all_leaves():
    params = {"w": np.array([0.1, -5.0, 0.3]), "b": np.array([-0.2, 4.0])}
    pruned = magnitude_pruned(params, 0.6)
    np.testing.assert_array_equal(pruned["w"], [0.0, -5.0, 0.0])
    np.testing.assert_array_equal(pruned["b"], [0.0, 4.0])


def test_accuracy_is_interpolated_at_the_target_and_nan_outside_the_curve():
    zeros, accuracy = np.array([0.9, 0.5, 0.7]), np.array([0.4, 0.8, 0.6])
    assert math.isclose(accuracy_at_sparsity(zeros, accuracy, 0.8), 0.5)
    assert math.isnan(accuracy_at_sparsity(zeros, accuracy, 0.95))


def test_magnitude_pruning_per_member_of_a_stacked_tree():
    params = {"w": np.array([[1.0, -3.0, 2.0, 0.5], [4.0, 0.1, -0.2, 3.0]])}
    pruned = magnitude_pruned_members(params, 2, 0.5)
    np.testing.assert_array_equal(pruned["w"], [[0.0, -3.0, 2.0, 0.0], [4.0, 0.0, 0.0, 3.0]])
