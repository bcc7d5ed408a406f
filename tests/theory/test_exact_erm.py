"""Exact ERM for one-hidden-layer ReLU nets: hand optima, brute force, Cover's count."""

import itertools

import numpy as np
import pytest

from dl_theory.theory import exact_erm


@pytest.mark.parametrize("points, input_dim", [(6, 1), (7, 2), (6, 3)])
def test_dichotomies_match_brute_force_and_covers_count(points, input_dim):
    """Every subset a random hyperplane cuts is enumerated, and the count is Cover's."""
    rng = np.random.default_rng(points)
    x = rng.uniform(-1, 1, (points, input_dim))
    found = {tuple(m) for m in exact_erm.affine_dichotomies(x)}
    assert len(found) == exact_erm.dichotomy_bound(points, input_dim)
    normals = rng.normal(size=(20000, input_dim))
    offsets = rng.normal(size=20000) * 2
    cut = {tuple(row) for row in (x @ normals.T + offsets > 0).T}
    assert cut <= found


def test_dichotomies_in_1d_are_prefixes_and_suffixes():
    masks = exact_erm.affine_dichotomies(np.array([[0.0], [1.0], [2.0]]))
    expected = {(0, 0, 0), (1, 1, 1), (0, 0, 1), (0, 1, 1), (1, 0, 0), (1, 1, 0)}
    assert {tuple(int(v) for v in m) for m in masks} == expected


def test_data_from_one_relu_unit_gives_loss_zero():
    x = np.linspace(-1, 1, 9)[:, None]
    y = 3.0 * np.maximum(2.0 * x[:, 0] - 0.3, 0.0)
    assert exact_erm.exact_erm(x, y, width=1).loss <= 1e-20


def test_data_from_two_units_gives_loss_zero_with_width_2_only():
    x = np.linspace(-1, 1, 9)[:, None]
    y = np.maximum(x[:, 0], 0.0) - np.maximum(x[:, 0] - 0.5, 0.0)
    assert exact_erm.exact_erm(x, y, width=2).loss <= 1e-20
    assert exact_erm.exact_erm(x, y, width=1).loss > 1e-3


def test_width_1_in_1d_matches_a_dense_grid_search():
    """f = s relu(a x + b): the grid's best is >= the exact optimum and within grid error."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (8, 1))
    y = rng.normal(size=8)
    result = exact_erm.exact_erm(x, y, width=1)
    a, b = np.meshgrid(np.linspace(-6, 6, 1201), np.linspace(-6, 6, 1201), indexing="ij")
    h = np.maximum(a.ravel()[:, None] * x[:, 0] + b.ravel()[:, None], 0.0)
    grid = min(float(np.min(np.mean((s * h - y) ** 2, axis=1))) for s in (1.0, -1.0))
    assert result.loss <= grid + 1e-12
    assert grid - result.loss < 1e-3
    assert result.loss == pytest.approx(exact_erm.net_loss(
        x, y, result.hidden_w, result.hidden_b, result.out_w), abs=0)


def test_subproblem_count_is_unordered_pairs_of_set_sign_choices():
    """w = 2, D = 5 in 1-D: 10 dichotomies, 19 (set, sign) choices (the empty set once),
    C(19 + 1, 2) = 190 unordered pairs."""
    x = np.linspace(0, 1, 5)[:, None]
    result = exact_erm.exact_erm(x, np.sin(5 * x[:, 0]), width=2)
    assert (result.dichotomies, result.subproblems) == (10, 190)
    assert len(list(itertools.combinations_with_replacement(range(19), 2))) == 190


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="need x"):
        exact_erm.exact_erm(np.zeros(4), np.zeros(4), width=1)
