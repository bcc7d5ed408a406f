"""The sawtooth separation in float64 NumPy: tent map, Telgarsky's alternating points, and an
explicit one-hidden-layer comparator.

- `tent_power`: t(x) = 2 min(x, 1 - x) composed k times (2**k affine pieces on [0, 1]).
- `alternating_points` / `classification_error`: the 2**k points x_i = i / 2**k with labels
  i mod 2 of Telgarsky (2015, "Representation benefits of deep feedforward networks",
  Thm 1.1), and the error of the classifier 1[f(x) >= 1/2] on them.
- `forward_relu_layers`: a ReLU MLP given as float64 (W, b) layers, evaluated exactly.
- `construction_layers` / `distance_to_tent_map`: the depth-k width-2 construction
  (`dl_theory.models.constructions.sawtooth_net`) as float64 layers, and a net's sup and L1
  distances to the k-fold tent map on a grid.
- `check_constructions` / `construction_errors`: the construction's piece counts and sup
  distances over k, beside the one-layer-shallower construction's (the baseline that fails
  them), and its L1 and classification errors at one k.
- `breakpoint_least_squares`: one-hidden-layer nets whose kinks sit on the tent map's first
  breakpoints, output weights fitted by least squares: an explicit shallow net per width that
  follows the first teeth (exact with 2**k units), to set beside the lower bounds of
  `dl_theory.theory.approximation_bounds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dl_theory.models import constructions
from dl_theory.theory import regions


def tent_power(x: np.ndarray, k: int) -> np.ndarray:
    """The tent map 2 min(x, 1 - x) composed k times, elementwise; meaningful on [0, 1]."""
    for _ in range(k):
        x = 2.0 * np.minimum(x, 1.0 - x)
    return x


def forward_relu_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]],
                        x_NxD: np.ndarray) -> np.ndarray:
    """A ReLU MLP given as (W [in, out], b [out]) layers evaluated in NumPy; [N, D] -> [N, K]."""
    h = x_NxD
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    w, b = layers[-1]
    return h @ w + b


def construction_layers(k: int) -> regions.Layers:
    """Telgarsky's depth-k width-2 net computing the k-fold tent map (`sawtooth_net(k)`), as
    float64 (W, b) layers from its exact weights."""
    return regions.dense_params_to_layers(constructions.sawtooth_net(k)[1])


def distance_to_tent_map(layers: Sequence[tuple[np.ndarray, np.ndarray]], k: int,
                         x_N1: np.ndarray) -> tuple[float, float]:
    """(sup, mean) of |f(x) - t_k(x)| over the grid `x_N1` [N, 1], f the one-output net given
    by `layers` and t_k the k-fold tent map; float64."""
    gap_N = np.abs(forward_relu_layers(layers, x_N1)[:, 0] - tent_power(x_N1[:, 0], k))
    return float(np.max(gap_N)), float(np.mean(gap_N))


class ConstructionCheck(NamedTuple):
    """Per k of `check_constructions`' ks: the depth-k construction's piece count on [0, 1] and
    sup distance to the k-fold tent map; per k > 1: the same two numbers for the depth-(k-1)
    construction, still measured against the k-fold tent map and 2**k."""

    pieces: list[int]
    sup_errors: list[float]
    shallower_sup_errors: list[float]
    shallower_pieces: list[int]


def check_constructions(ks: Sequence[int], x_N1: np.ndarray) -> ConstructionCheck:
    """Piece counts (exact, `regions.count_linear_pieces` on [0, 1]) and sup distances on the
    grid `x_N1` [N, 1] of the depth-k construction for each k in `ks`, and of the
    one-layer-shallower construction (the baseline) for each k > 1."""
    pieces, errors, shallower, shallower_pieces = [], [], [], []
    for k in ks:
        layers = construction_layers(k)
        pieces.append(regions.count_linear_pieces(layers, np.zeros(1), np.ones(1)))
        errors.append(distance_to_tent_map(layers, k, x_N1)[0])
        if k > 1:
            shallower_layers = construction_layers(k - 1)
            shallower.append(distance_to_tent_map(shallower_layers, k, x_N1)[0])
            shallower_pieces.append(
                regions.count_linear_pieces(shallower_layers, np.zeros(1), np.ones(1)))
    return ConstructionCheck(pieces, errors, shallower, shallower_pieces)


def alternating_points(k: int) -> np.ndarray:
    """x_i = i / 2**k for i < 2**k, shape [2**k]; label i mod 2 is the k-fold tent map there."""
    return np.arange(2**k) / 2**k


def classification_error(values_N: np.ndarray, k: int) -> float:
    """Fraction of the 2**k alternating points that 1[f(x_i) >= 1/2] labels wrongly, given
    f's values [2**k] at `alternating_points(k)`."""
    values_N = np.asarray(values_N)
    if values_N.shape != (2**k,):
        raise ValueError(f"values of shape {values_N.shape}; need ({2**k},), one per point")
    return float(np.mean((values_N >= 0.5) != (np.arange(2**k) % 2)))


def construction_errors(k: int, x_N1: np.ndarray) -> tuple[float, float]:
    """L1 error on the grid `x_N1` [N, 1] and classification error on the 2**k alternating
    points of the depth-k construction, evaluated in float64 from its exact weights."""
    layers = construction_layers(k)
    at_points = forward_relu_layers(layers, alternating_points(k)[:, None])[:, 0]
    return distance_to_tent_map(layers, k, x_N1)[1], classification_error(at_points, k)


def breakpoint_least_squares(k: int, units: Sequence[int], x_N: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """L1 errors on the grid `x_N` and classification errors on the alternating points, each
    [len(units)], of a + sum_{i < n} c_i relu(x - i / 2**k) with (a, c) fitted by least squares
    on the grid to the k-fold tent map, for each n in `units` (exact at n = 2**k)."""
    y_N = tent_power(x_N, k)
    points = alternating_points(k)
    l1, classification = [], []
    for n in units:
        kinks = np.arange(n)[None, :] / 2**k
        design = np.concatenate([np.ones((x_N.size, 1)), np.maximum(x_N[:, None] - kinks, 0)], 1)
        coef, *_ = np.linalg.lstsq(design, y_N, rcond=None)
        l1.append(float(np.mean(np.abs(design @ coef - y_N))))
        at_points = coef[0] + np.maximum(points[:, None] - kinks, 0) @ coef[1:]
        classification.append(classification_error(at_points, k))
    return np.asarray(l1), np.asarray(classification)
