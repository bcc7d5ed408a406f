"""CPWL functions as ReLU nets: exact on hand cases, depth and size as Theorems 2.1 and 2.2 say."""

import numpy as np
import pytest

from dl_theory.models import cpwl_nets
from dl_theory.theory.regions import count_linear_pieces


def test_max_of_two_maps_is_three_units_in_one_layer():
    """max(x, 1 - x) by relu(a - b) + relu(b) - relu(-b): depth 2, size 3, exact on a grid."""
    f = cpwl_nets.MaxSum(slopes=(np.array([[1.0, -1.0]]),), offsets=(np.array([0.0, 1.0]),),
                         signs=np.array([1.0]))
    net = cpwl_nets.max_sum_net(f)
    x = np.linspace(-3, 3, 61)[:, None]
    np.testing.assert_array_equal(cpwl_nets.evaluate(net, x), np.maximum(x[:, 0], 1 - x[:, 0]))
    assert (cpwl_nets.depth(net), cpwl_nets.size(net)) == (2, 3)


@pytest.mark.parametrize("input_dim, depth", [(1, 2), (2, 3), (3, 3), (4, 4), (7, 4)])
def test_theorem_depth_is_ceil_log2_n_plus_1_plus_1(input_dim, depth):
    assert cpwl_nets.theorem_depth(input_dim) == depth


@pytest.mark.parametrize("input_dim", [1, 2, 3, 4])
def test_max_sum_net_has_the_theorem_depth_and_is_exact_on_kinks(input_dim):
    rng = np.random.default_rng(input_dim)
    f = cpwl_nets.random_max_sum(rng, input_dim, terms=3)
    net = cpwl_nets.max_sum_net(f)
    x = np.concatenate([rng.normal(size=(500, input_dim)), cpwl_nets.kink_points(f, rng, 5)])
    assert cpwl_nets.depth(net) == cpwl_nets.theorem_depth(input_dim)
    np.testing.assert_allclose(cpwl_nets.evaluate(net, x), f(x), rtol=0, atol=1e-12)


def test_shallow_top_replaces_the_last_max_by_the_mean():
    """One layer shallower: max(x, -x) becomes (x - x) / 2 = 0, wrong by |x|."""
    f = cpwl_nets.MaxSum(slopes=(np.array([[1.0, -1.0]]),), offsets=(np.zeros(2),),
                         signs=np.array([1.0]))
    net = cpwl_nets.max_sum_net(f, shallow_top=True)
    assert cpwl_nets.depth(net) == 1
    np.testing.assert_array_equal(cpwl_nets.evaluate(net, np.array([[2.0], [-3.0]])), [0.0, 0.0])


def test_hand_function_values_and_pieces():
    """Slopes (2, -1, 0), breaks (0, 1), f(0) = 1: f(-1) = -1, f(0.5) = 0.5, f = 0 from 1 on."""
    f = cpwl_nets.PiecewiseLinear1D(np.array([0.0, 1.0]), np.array([2.0, -1.0, 0.0]), 1.0)
    np.testing.assert_array_equal(f(np.array([-1.0, 0.0, 0.5, 1.0, 5.0])),
                                  [-1.0, 1.0, 0.5, 0.0, 0.0])
    slopes, intercepts = f.affine_pieces()
    np.testing.assert_array_equal(intercepts, [1.0, 1.0, 0.0])


@pytest.mark.parametrize("pieces", [2, 3, 6, 11])
def test_one_hidden_layer_net_has_p_units_and_p_pieces(pieces):
    rng = np.random.default_rng(pieces)
    f = cpwl_nets.random_piecewise_linear(rng, pieces)
    net = cpwl_nets.one_hidden_layer_net(f)
    x = np.concatenate([np.linspace(-2, 2, 4001), f.breaks])
    np.testing.assert_allclose(cpwl_nets.evaluate(net, x[:, None]), f(x), rtol=0, atol=1e-13)
    assert (cpwl_nets.depth(net), cpwl_nets.size(net)) == (2, pieces)
    assert count_linear_pieces(net, np.array([-2.0]), np.array([2.0])) == pieces
    naive = cpwl_nets.naive_one_hidden_layer_net(f)
    assert cpwl_nets.size(naive) == pieces + 1
    np.testing.assert_allclose(cpwl_nets.evaluate(naive, x[:, None]), f(x), rtol=0, atol=1e-13)


def test_dropping_a_unit_loses_a_piece():
    f = cpwl_nets.random_piecewise_linear(np.random.default_rng(0), 5)
    net = cpwl_nets.one_hidden_layer_net(f, drop_last_unit=True)
    assert cpwl_nets.size(net) == 4
    assert count_linear_pieces(net, np.array([-2.0]), np.array([2.0])) == 4


@pytest.mark.parametrize("pieces", [3, 5, 8])
def test_lattice_net_is_exact_and_deeper(pieces):
    rng = np.random.default_rng(10 + pieces)
    f = cpwl_nets.random_piecewise_linear(rng, pieces)
    net = cpwl_nets.lattice_net_1d(f)
    x = np.concatenate([np.linspace(-2, 2, 4001), f.breaks])
    np.testing.assert_allclose(cpwl_nets.evaluate(net, x[:, None]), f(x), rtol=0, atol=1e-12)
    assert cpwl_nets.depth(net) > 2


def test_convex_function_lattice_is_a_single_max():
    """|x| has S_i = {i}: the lattice net is max(x, -x), depth 2."""
    f = cpwl_nets.PiecewiseLinear1D(np.array([0.0]), np.array([-1.0, 1.0]), 0.0)
    net = cpwl_nets.lattice_net_1d(f)
    assert cpwl_nets.depth(net) == 2
    np.testing.assert_array_equal(cpwl_nets.evaluate(net, np.array([[-2.0], [3.0]])), [2.0, 3.0])


def test_bad_breaks_are_refused():
    with pytest.raises(ValueError, match="not strictly increasing"):
        cpwl_nets.PiecewiseLinear1D(np.array([1.0, 0.0]), np.ones(3), 0.0)


def test_zigzag_coefficients_by_hand():
    """Breaks (0.5,): up with slope 2 on [0, 0.5], down with slope -2: c = (2, -4)."""
    a, c = cpwl_nets.zigzag_coefficients([0.5])
    np.testing.assert_array_equal(a, [0.0, 0.5])
    np.testing.assert_array_equal(c, [2.0, -4.0])
    with pytest.raises(ValueError, match="need 0 < a_1"):
        cpwl_nets.zigzag_coefficients([0.6, 0.4])


@pytest.mark.parametrize("breaks, k", [([0.5], 3), ([0.3, 0.8], 2), ([0.2, 0.5, 0.6], 3)])
def test_hard_family_has_w_to_the_k_pieces_and_maps_onto_0_1(breaks, k):
    w = len(breaks) + 1
    net = cpwl_nets.hard_family_net(breaks, k)
    assert (cpwl_nets.depth(net), cpwl_nets.size(net)) == (k + 1, k * w)
    assert count_linear_pieces(net, np.zeros(1), np.ones(1)) == w ** k
    values = cpwl_nets.evaluate(net, np.linspace(0, 1, 2001)[:, None])
    assert values.min() >= -1e-12 and values.max() <= 1 + 1e-12


def test_hard_family_with_half_break_is_the_tent_map_sawtooth():
    x = np.linspace(0, 1, 257)
    tent = x.copy()
    for _ in range(3):
        tent = 2 * np.minimum(tent, 1 - tent)
    net = cpwl_nets.hard_family_net([0.5], 3)
    np.testing.assert_allclose(cpwl_nets.evaluate(net, x[:, None]), tent, rtol=0, atol=1e-15)


def test_shallow_size_needed_by_hand():
    """3^9 pieces with <= 3 hidden layers: k' = 3 gives (3/2) 27 = 40.5, k' = 1 gives 9841.5;
    16 pieces with <= 2: k' = 2 gives 4."""
    assert cpwl_nets.shallow_size_needed(3 ** 9, 3) == pytest.approx(40.5, rel=1e-12)
    assert cpwl_nets.shallow_size_needed(3 ** 9, 1) == pytest.approx(9841.5, rel=1e-12)
    assert cpwl_nets.shallow_size_needed(16, 2) == pytest.approx(4.0, rel=1e-12)
