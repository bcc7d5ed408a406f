"""Hanin & Rolnick's sampling protocol: He-normal nets, their Flax round trip, and the averaged
segment and slice counts against closed forms for one-hidden-layer nets."""

import math

import numpy as np
import pytest

from dl_theory.theory import random_net_regions as rnr


def test_he_normal_layers_have_the_stated_variances():
    layers = rnr.he_normal_layers(np.random.default_rng(0), 50, [400, 400], bias_std=1e-3)
    assert [w.shape for w, _ in layers] == [(50, 400), (400, 400), (400, 1)]
    np.testing.assert_allclose(np.var(layers[0][0]), 2.0 / 50, rtol=0.05)
    np.testing.assert_allclose(np.var(layers[1][0]), 2.0 / 400, rtol=0.05)
    np.testing.assert_allclose(np.std(layers[1][1]), 1e-3, rtol=0.15)


def test_flax_stacking_round_trips_up_to_float32_rounding():
    nets = [rnr.he_normal_layers(np.random.default_rng(s), 3, [4, 5], bias_std=0.1)
            for s in range(2)]
    params = rnr.stack_layers_as_flax(nets)
    assert sorted(params) == ["Dense_0", "Dense_1", "Dense_2"]
    assert params["Dense_1"]["kernel"].shape == (2, 4, 5)
    assert params["Dense_1"]["bias"].shape == (2, 5)
    back = rnr.unstack_flax_params(params)
    for net, net_back in zip(nets, back):
        for (w, b), (w_back, b_back) in zip(net, net_back):
            assert w_back.dtype == np.float64
            np.testing.assert_allclose(w_back, w, rtol=1e-6)
            np.testing.assert_allclose(b_back, b, rtol=1e-6)
    # float32, not float64: the round trip is not exact.
    assert not np.array_equal(back[0][0][0], nets[0][0][0])


def _crossings(w_DxM, b_M, a, b):
    """Hidden units of a one-hidden-layer net whose zero set crosses the segment [a, b]."""
    return int(np.sum(np.sign(a @ w_DxM + b_M) != np.sign(b @ w_DxM + b_M)))


def test_mean_breakpoints_count_each_unit_crossing_once():
    """One hidden layer with nonzero output weights: a breakpoint wherever a unit switches."""
    dim, lines = 5, 6
    nets = [rnr.he_normal_layers(np.random.default_rng(s), dim, [7], bias_std=0.5)
            for s in range(3)]
    counts, densities = rnr.mean_breakpoints(nets, dim, lines, first_seed=100)
    for s, net in enumerate(nets):
        segments = rnr.random_segments(dim, lines, seed=100 + s)
        expected = [_crossings(*net[0], a, b) for a, b in segments]
        assert counts[s] == pytest.approx(np.mean(expected))
        assert densities[s] == pytest.approx(np.mean(
            [c / np.linalg.norm(b - a) for c, (a, b) in zip(expected, segments)]))
    assert counts.shape == densities.shape == (3,) and counts.max() > 0


def test_random_square_slice_is_centred_at_norm_sqrt_dim_in_an_orthogonal_plane():
    c, e1, e2 = rnr.random_square_slice(np.random.default_rng(0), 8)
    assert np.linalg.norm(c) == pytest.approx(math.sqrt(8))
    gram = np.stack([c / np.linalg.norm(c), e1, e2]) @ np.stack([c / np.linalg.norm(c), e1, e2]).T
    np.testing.assert_allclose(gram, np.eye(3), atol=1e-12)


def test_mean_slice_regions_of_one_unit_is_two_iff_its_line_crosses_the_square():
    """A single hidden unit splits the square {c + u e1 + v e2 : |u|, |v| <= h} in two exactly
    when |w.c + b| < h (|w.e1| + |w.e2|); several nets give both outcomes."""
    dim, h = 4, 0.5
    nets = [rnr.he_normal_layers(np.random.default_rng(s), dim, [1], bias_std=1.0)
            for s in range(12)]
    regions_S = rnr.mean_slice_regions(nets, dim, slices_per_net=1, half_extent=h,
                                       first_seed=7)
    expected = []
    for s, net in enumerate(nets):
        c, e1, e2 = rnr.random_square_slice(np.random.default_rng(7 + s), dim)
        w, b = net[0][0][:, 0], net[0][1][0]
        expected.append(2 if abs(w @ c + b) < h * (abs(w @ e1) + abs(w @ e2)) else 1)
    np.testing.assert_array_equal(regions_S, expected)
    assert set(expected) == {1, 2}


@pytest.mark.parametrize("depth, neurons, expected", [
    (1, (4, 8), [3, 7]), (2, (8, 16), [15, 63]), (4, (16, 32), [255, 4095])])
def test_zigzag_breakpoints_are_width_to_the_depth_minus_one(depth, neurons, expected):
    assert rnr.zigzag_breakpoints(depth, neurons) == expected
