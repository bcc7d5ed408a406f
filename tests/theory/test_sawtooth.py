"""Float64 sawtooth tools: the tent map's values at the alternating points, the comparator."""

import numpy as np
import pytest

from dl_theory.models import constructions
from dl_theory.theory import regions, sawtooth


@pytest.mark.parametrize("k", [1, 3, 6])
def test_tent_map_labels_the_alternating_points_and_the_construction_agrees(k):
    points = sawtooth.alternating_points(k)
    assert np.array_equal(sawtooth.tent_power(points, k), np.arange(2**k) % 2)
    _, variables = constructions.sawtooth_net(k)
    values = sawtooth.forward_relu_layers(regions.dense_params_to_layers(variables),
                                          points[:, None])[:, 0]
    assert sawtooth.classification_error(values, k) == 0.0
    assert sawtooth.classification_error(np.zeros(2**k), k) == 0.5


def test_breakpoint_least_squares_is_exact_with_every_breakpoint_and_constant_with_one():
    k, x = 4, np.linspace(0.0, 1.0, 2**10 + 1)
    l1, classification = sawtooth.breakpoint_least_squares(k, [1, 2**k], x)
    assert l1[1] < 1e-9 and classification[1] == 0.0
    # One unit relu(x) plus a bias: the best L1 fit in least squares is near the constant 1/2.
    assert l1[0] == pytest.approx(0.25, abs=5e-3)


def test_classification_error_rejects_the_wrong_number_of_values():
    with pytest.raises(ValueError, match=r"need \(8,\)"):
        sawtooth.classification_error(np.zeros(7), 3)


def test_construction_is_at_distance_zero_from_its_tent_map_and_order_one_from_the_next():
    x = np.linspace(0.0, 1.0, 2**9 + 1)[:, None]
    sup, l1 = sawtooth.distance_to_tent_map(sawtooth.construction_layers(4), 4, x)
    assert sup < 1e-12 and l1 < 1e-12
    # At x = 1/8, t_3 = 1 and t_4 = 0; over [0, 1] the mean gap is 1/3 (up to the grid).
    sup_shallower, l1_shallower = sawtooth.distance_to_tent_map(
        sawtooth.construction_layers(3), 4, x)
    assert sup_shallower == pytest.approx(1.0)
    assert l1_shallower == pytest.approx(1 / 3, abs=1e-2)


def test_check_constructions_counts_two_to_the_k_and_the_shallower_baseline_half_of_it():
    x = np.linspace(0.0, 1.0, 2**9 + 1)[:, None]
    check = sawtooth.check_constructions([1, 2, 5], x)
    assert check.pieces == [2, 4, 32]
    assert max(check.sup_errors) < 1e-12
    # Only k > 1 has a shallower construction: depth 1 and 4 against t_2 and t_5.
    assert check.shallower_pieces == [2, 16]
    np.testing.assert_allclose(check.shallower_sup_errors, [1.0, 1.0])


@pytest.mark.parametrize("k", [2, 4])
def test_construction_errors_are_zero_on_the_grid_and_the_alternating_points(k):
    x = np.linspace(0.0, 1.0, 2**9 + 1)[:, None]
    l1, classification = sawtooth.construction_errors(k, x)
    assert l1 < 1e-12 and classification == 0.0
