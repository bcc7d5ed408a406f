"""Exact region counts agree with brute force, attain the maxima where theory says, obey bounds."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import constructions
from dl_theory.theory import regions


def _random_layers(rng, widths, bias_scale=0.5):
    """He-scaled Gaussian MLP; widths = (d_in, hidden..., d_out)."""
    return [(rng.normal(0.0, math.sqrt(2.0 / n_in), (n_in, n_out)),
             rng.normal(0.0, bias_scale, n_out)) for n_in, n_out in zip(widths[:-1], widths[1:])]


def _forward(layers, x_NxD):
    h = x_NxD
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    return h @ layers[-1][0] + layers[-1][1]


def _brute_force_linear_pieces(layers, a, b, cells):
    """Runs of equal slope among grid cells; a cell holding a kink has a slope unlike both
    neighbours and only separates runs. Exact when every piece spans >= 3 cells."""
    t = np.linspace(0.0, 1.0, cells + 1)
    f = _forward(layers, a[None, :] + t[:, None] * (b - a)[None, :])[:, 0]
    s = np.diff(f) * cells
    tol = 1e-6 * np.abs(s).max()
    same_next = np.abs(np.diff(s)) <= tol
    clean = np.zeros(cells, bool)
    clean[:-1] |= same_next
    clean[1:] |= same_next
    idx = np.flatnonzero(clean)
    new_run = (np.diff(idx) != 1) | (np.abs(np.diff(s[idx])) > tol)
    return 1 + int(new_run.sum())

def test_segment_counter_agrees_with_brute_force_on_random_nets():
    cells = 2**16
    compared = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        layers = _random_layers(rng, (3, 8, 8, 6, 1))
        a, b = rng.uniform(-3.0, 3.0, 3), rng.uniform(-3.0, 3.0, 3)
        pieces = regions.segment_pieces(layers, a, b)
        if np.diff(pieces.breaks).min() < 4.0 / cells:
            continue  # a piece thinner than the grid resolves: brute force cannot see it
        compared += 1
        assert _brute_force_linear_pieces(layers, a, b, cells) == pieces.num_linear_pieces
        # Activation pieces: pattern changes between consecutive grid points.
        t = np.linspace(0.0, 1.0, cells + 1)
        pat = regions.activation_patterns(layers, a[None, :] + t[:, None] * (b - a)[None, :])
        changes = np.any(pat[1:] != pat[:-1], axis=1).sum()
        assert changes + 1 == pieces.num_activation_pieces
        assert pieces.num_activation_pieces >= pieces.num_linear_pieces
    assert compared >= 20


def test_dead_unit_switch_is_an_activation_piece_but_not_a_linear_piece():
    # Unit 2 crosses zero at x = 0.5 but its outgoing weight is 0: the output never bends there.
    layers = [(np.array([[1.0, 1.0]]), np.array([-0.25, -0.5])), (np.array([[3.0], [0.0]]),
                                                                   np.zeros(1))]
    pieces = regions.segment_pieces(layers, np.zeros(1), np.ones(1))
    np.testing.assert_allclose(pieces.breaks, [0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(pieces.linear_breaks, [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(pieces.patterns, [[False, False], [True, False], [True, True]])
    np.testing.assert_allclose(pieces.slopes[:, 0], [0.0, 3.0, 3.0])
    assert regions.count_activation_pieces(layers, np.zeros(1), np.ones(1)) == 3
    assert regions.count_linear_pieces(layers, np.zeros(1), np.ones(1)) == 2


def test_one_hidden_layer_on_a_line_attains_d_plus_one_pieces():
    knots = np.array([0.1, 0.3, 0.35, 0.6, 0.9])
    layers = [(np.ones((1, 5)), -knots), (np.arange(1.0, 6.0)[:, None], np.zeros(1))]
    assert regions.count_linear_pieces(layers, np.zeros(1), np.ones(1)) == 6
    assert regions.zaslavsky_max_regions(5, 1) == 6


@pytest.mark.parametrize("width, depth", [(2, 1), (2, 4), (3, 3), (4, 2), (5, 3)])
def test_random_nets_never_exceed_telgarsky_or_serra_on_segments(width, depth):
    bound = regions.serra_upper_bound(1, [width] * depth)
    assert bound == (width + 1) ** depth <= regions.telgarsky_pieces_bound(width, depth)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        layers = _random_layers(rng, (2,) + (width,) * depth + (1,), bias_scale=1.0)
        a, b = rng.uniform(-5.0, 5.0, 2), rng.uniform(-5.0, 5.0, 2)
        pieces = regions.segment_pieces(layers, a, b)
        assert pieces.num_linear_pieces <= pieces.num_activation_pieces <= bound


def test_sawtooth_stays_under_telgarsky_bound():
    for k in range(1, 8):
        _, variables = constructions.sawtooth_net(k)
        layers = regions.dense_params_to_layers(variables)
        assert regions.count_linear_pieces(layers, np.zeros(1), np.ones(1)) == 2**k
        assert 2**k <= regions.telgarsky_pieces_bound(2, k)


def _line_arrangement_net(num_lines, rng):
    """One hidden layer on R^3 whose units vanish, on an oblique plane, on lines at angles
    pi j / D through points within 0.1 of the origin: every pair meets well inside [-1, 1]^2."""
    theta = np.pi * np.arange(num_lines) / num_lines + rng.uniform(-0.05, 0.05, num_lines)
    normals_2xD = np.stack([np.cos(theta), np.sin(theta)])
    offsets = rng.uniform(-0.1, 0.1, num_lines)
    frame, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    c, e1, e2 = rng.normal(size=3), frame[:, 0], frame[:, 1]
    w = np.stack([e1, e2], axis=1) @ normals_2xD
    layers = [(w, -(c @ w) - offsets), (rng.normal(size=(num_lines, 1)), np.zeros(1))]
    return layers, (c, e1, e2), normals_2xD, offsets


@pytest.mark.parametrize("num_lines", range(1, 9))
def test_general_position_arrangement_attains_zaslavsky_on_slice(num_lines):
    rng = np.random.default_rng(num_lines)
    layers, (c, e1, e2), normals, offsets = _line_arrangement_net(num_lines, rng)
    for i, j in itertools.combinations(range(num_lines), 2):
        meet = np.linalg.solve(normals[:, [i, j]].T, offsets[[i, j]])
        assert np.abs(meet).max() < 0.9  # the arrangement is as the test claims
    found = regions.slice_regions(layers, c, e1, e2)
    expected = 1 + num_lines + math.comb(num_lines, 2)
    assert found.num_regions == regions.zaslavsky_max_regions(num_lines, 2) == expected
    assert regions.count_slice_regions(layers, c, e1, e2) == expected
    np.testing.assert_allclose(found.areas().sum(), 4.0, rtol=1e-12)


def test_parallel_lines_fall_short_of_zaslavsky():
    # Four parallel lines cut the square into 5 strips, not 1 + 4 + 6 = 11 regions.
    layers = [(np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]),
               np.array([0.6, 0.2, -0.2, -0.6])), (np.ones((4, 1)), np.zeros(1))]
    count = regions.count_slice_regions(layers, np.zeros(2), np.eye(2)[0], np.eye(2)[1])
    assert count == 5 < regions.zaslavsky_max_regions(4, 2)


def test_slice_regions_match_grid_patterns_on_random_deep_net():
    rng = np.random.default_rng(0)
    layers = _random_layers(rng, (4, 8, 8, 6, 1))
    c, e1, e2 = rng.normal(size=4), rng.normal(size=4), rng.normal(size=4)
    found = regions.slice_regions(layers, c, e1, e2)
    assert found.num_regions <= regions.serra_upper_bound(2, [8, 8, 6])
    areas = found.areas()
    np.testing.assert_allclose(areas.sum(), 4.0, rtol=1e-10)
    assert len({p.tobytes() for p in found.patterns}) == found.num_regions
    # The centroid of each polygon has the polygon's pattern.
    centroids = np.stack([p.mean(axis=0) for p in found.polygons])
    x = c[None, :] + centroids[:, :1] * e1[None, :] + centroids[:, 1:] * e2[None, :]
    np.testing.assert_array_equal(regions.activation_patterns(layers, x), found.patterns)
    # A 400 x 400 grid of cell centres sees only these patterns, and every region of
    # area > 20 grid cells.
    g = -1.0 + (np.arange(400) + 0.5) / 200.0
    uv = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    grid = regions.activation_patterns(layers, c[None, :] + uv[:, :1] * e1[None, :]
                                       + uv[:, 1:] * e2[None, :])
    grid_set = {p.tobytes() for p in grid}
    exact = [p.tobytes() for p in found.patterns]
    assert grid_set <= set(exact)
    assert all(p in grid_set for p, area in zip(exact, areas) if area > 20 * (2.0 / 400) ** 2)
    assert found.num_regions > 30  # the net is not trivial


def _serra_by_definition(n0, widths):
    total = 0
    for js in itertools.product(*[range(n + 1) for n in widths]):
        cap, ok = n0, True
        for j, n in zip(js, widths):
            ok &= j <= min(cap, n)
            cap = min(cap, n - j)
        total += ok * math.prod(math.comb(n, j) for j, n in zip(js, widths))
    return total


@pytest.mark.parametrize("n0, widths", [(1, [3]), (2, [4]), (2, [4, 4]), (3, [2, 5, 3]),
                                        (2, [3, 6, 2, 4]), (1, [1, 3]), (4, [4, 4, 4])])
def test_serra_bound_equals_its_definition_and_tops_montufar(n0, widths):
    serra = regions.serra_upper_bound(n0, widths)
    assert serra == _serra_by_definition(n0, widths)
    if min(widths) >= n0:
        assert regions.montufar_lower_bound(n0, widths) <= serra
    if len(widths) == 1:
        assert serra == regions.zaslavsky_max_regions(widths[0], n0)


def test_bound_closed_forms():
    assert regions.zaslavsky_max_regions(4, 2) == 11
    assert regions.zaslavsky_max_regions(5, 3) == 26
    assert regions.zaslavsky_max_regions(3, 5) == 8  # D <= d: all 2**D sign patterns
    assert regions.telgarsky_pieces_bound(2, 5) == 4**5
    assert regions.montufar_lower_bound(1, [2, 2, 2]) == 2 * 2 * 3
    assert regions.montufar_lower_bound(2, [4, 4, 4]) == 4 * 4 * 11
    assert regions.serra_upper_bound(1, [2, 3, 4]) == 3 * 4 * 5
    with pytest.raises(ValueError, match="input_dim"):
        regions.montufar_lower_bound(3, [4, 2])


def test_dense_params_to_layers_orders_numerically_and_matches_apply():
    module = constructions.ReluNet(widths=(3,) * 11 + (2,))
    variables = module.init(jax.random.PRNGKey(0), jnp.ones((1, 5)))
    layers = regions.dense_params_to_layers(variables)
    assert [w.shape for w, _ in layers] == [(5, 3)] + [(3, 3)] * 10 + [(3, 2)]
    x = np.random.default_rng(0).normal(size=(7, 5))
    np.testing.assert_allclose(_forward(layers, x),
                               np.asarray(module.apply(variables, jnp.asarray(x, jnp.float32))),
                               rtol=1e-5, atol=1e-5)
    no_bias = {"Dense_0": {"kernel": np.ones((2, 3))}, "Dense_1": {"kernel": np.ones((3, 1))}}
    np.testing.assert_array_equal(regions.dense_params_to_layers(no_bias)[1][1], np.zeros(1))
    with pytest.raises(ValueError, match="Dense_"):
        regions.dense_params_to_layers({"Dense_0": variables["params"]["Dense_0"],
                                        "Dense_2": variables["params"]["Dense_2"]})


def test_bad_shapes_raise_value_error():
    layers = [(np.ones((2, 3)), np.zeros(3)), (np.ones((3, 1)), np.zeros(1))]
    with pytest.raises(ValueError, match="shape"):
        regions.segment_pieces(layers, np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="inputs"):
        regions.segment_pieces([(np.ones((2, 3)), np.zeros(3)), (np.ones((4, 1)), np.zeros(1))],
                               np.zeros(2), np.ones(2))
    with pytest.raises(ValueError, match="extent"):
        regions.slice_regions(layers, np.zeros(2), np.eye(2)[0], np.eye(2)[1], extent=(1.0, 1.0))


def test_gaussian_nets_stay_within_the_depth_width_bound_and_are_reproducible():
    kwargs = dict(depths=(1, 3), widths=(2, 4), draws=2, seed=0, segment=(-2.0, 2.0))
    ratios = regions.gaussian_net_pieces_over_bound(**kwargs)
    assert len(ratios) == 2 * 2 * 2
    assert all(0.0 < r <= 1.0 for r in ratios)
    assert ratios == regions.gaussian_net_pieces_over_bound(**kwargs)
