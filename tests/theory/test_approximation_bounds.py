"""Closed-form approximation lower bounds against brute force on explicit PL functions."""

import numpy as np
import pytest

from dl_theory.theory import approximation_bounds as ab

GRID = np.linspace(0.0, 1.0, 2**16 + 1)


def _tent_power(x, k):
    for _ in range(k):
        x = 2.0 * np.minimum(x, 1.0 - x)
    return x


def _l1(f, g):
    return float(np.trapezoid(np.abs(f - g), GRID))


def test_shallow_max_pieces_is_width_plus_one_and_attained():
    # Four units with kinks inside (-1, 1) and slope changes of alternating sign: 5 pieces.
    x = np.linspace(-1.0, 1.0, 4001)
    kinks = np.array([-0.6, -0.2, 0.2, 0.6])
    f = (np.maximum(x[:, None] - kinks[None], 0.0) * np.array([1.0, -2.0, 2.0, -2.0])).sum(1)
    slopes = np.round(np.diff(f) / np.diff(x), 6)
    pieces = 1 + int(np.count_nonzero(np.diff(slopes)))
    assert pieces == ab.shallow_max_pieces(4) == 5


@pytest.mark.parametrize("k", [3, 5, 7])
def test_sawtooth_bound_below_distance_of_coarser_sawtooths(k):
    target = _tent_power(GRID, k)
    for j in range(0, k - 1):
        coarse = _tent_power(GRID, j)  # 2**j pieces
        assert _l1(target, coarse) >= ab.sawtooth_l1_lower_bound(2**j, k) - 1e-9
    # The constant 1/2 (one piece) is at distance exactly 1/4 >= 1/8 - 2/2**(k+2).
    assert _l1(target, np.full_like(GRID, 0.5)) == pytest.approx(0.25, abs=1e-6)
    assert ab.sawtooth_l1_lower_bound(1, k) == pytest.approx(0.125 - 2 / 2 ** (k + 2))


def test_sawtooth_bound_vanishes_once_pieces_reach_half_the_teeth():
    k = 6
    assert ab.sawtooth_l1_lower_bound(2 ** (k - 1) - 2, k) > 0
    assert ab.sawtooth_l1_lower_bound(2 ** (k - 1) - 1, k) == 0.0
    assert ab.sawtooth_l1_lower_bound(2**k, k) == 0.0  # the tent map itself


@pytest.mark.parametrize("k", [3, 6])
def test_alternating_points_bound_holds_for_coarse_tents_and_is_attained(k):
    points = np.arange(2**k) / 2**k
    labels = np.arange(2**k) % 2
    for j in range(0, k):
        error = np.mean((_tent_power(points, j) >= 0.5) != labels)  # 2**j pieces
        assert error >= ab.alternating_points_error_lower_bound(2**j, k)
    assert np.mean((_tent_power(points, k) >= 0.5) != labels) == 0.0
    # Following the first t - 1 pieces of the tent map, then the constant 0: t pieces, one
    # point more wrong than the bound allows (the bound is tight to within one point).
    t = 5
    follow = np.where(points < (t - 1) / 2**k, _tent_power(points, k), 0.0)
    assert np.mean((follow >= 0.5) != labels) == pytest.approx(
        ab.alternating_points_error_lower_bound(t, k) + 1 / 2**k)
    assert ab.alternating_points_error_lower_bound(2**k - 1, k) == 0.0


@pytest.mark.parametrize("t", [1, 2, 3, 8])
def test_square_bound_is_attained_by_shifted_interpolant(t):
    knots = np.linspace(0.0, 1.0, t + 1)
    interpolant = np.interp(GRID, knots, knots**2)
    shifted = interpolant - 1.0 / (8 * t**2)
    assert np.max(np.abs(shifted - GRID**2)) == pytest.approx(ab.square_pl_sup_error(t),
                                                              rel=1e-6)
    # The unshifted interpolant (Yarotsky's f_m) has twice the error.
    assert np.max(np.abs(interpolant - GRID**2)) == pytest.approx(2 * ab.square_pl_sup_error(t),
                                                                  rel=1e-6)


def test_square_bound_below_random_pl_functions():
    rng = np.random.default_rng(0)
    for t in (2, 4, 8):
        for _ in range(20):
            knots = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(size=t - 1)]))
            values = knots**2 + rng.normal(scale=0.02, size=t + 1)
            g = np.interp(GRID, knots, values)
            assert np.max(np.abs(g - GRID**2)) >= ab.square_pl_sup_error(t) - 1e-12


@pytest.mark.parametrize("fn, args", [(ab.shallow_max_pieces, (0,)),
                                      (ab.sawtooth_l1_lower_bound, (0, 3)),
                                      (ab.sawtooth_l1_lower_bound, (3, 1.5)),
                                      (ab.alternating_points_error_lower_bound, (0, 3)),
                                      (ab.square_pl_sup_error, (0,))])
def test_bad_input_names_the_value(fn, args):
    with pytest.raises(ValueError, match="must be an integer"):
        fn(*args)
