"""Linear regions of ReLU MLPs: exact counts on segments and 2-D slices, and the known bounds.

A ReLU MLP is given as layers [(W [d_in, d_out], b [d_out]), ...] computing
h_{l+1} = relu(h_l @ W_l + b_l) with a linear last layer (the Flax `Dense` convention; see
`dense_params_to_layers`). The network is affine wherever the activation pattern (which hidden
units are > 0) is constant, so its regions are found exactly, layer by layer: on each current
piece the next pre-activations are affine, so their zero sets are points (on a segment) or lines
(on a plane) found in closed form, and the piece is split there. Float64 NumPy; "exact" means
up to the stated tolerances, not sampling.

Counts:
- activation pieces / regions: maximal connected sets of constant activation pattern;
- linear pieces (segments only): maximal intervals on which the function is affine, i.e.
  adjacent activation pieces merged when their slopes agree (a unit may switch without
  changing the output, e.g. when its outgoing weights are zero). linear <= activation.

Bounds (`telgarsky_pieces_bound`, `zaslavsky_max_regions`, `montufar_lower_bound`,
`serra_upper_bound`) are stated with their sources in their docstrings;
`gaussian_net_pieces_over_bound` sets Gaussian random nets' counts against Telgarsky's.
"""

import dataclasses
import functools
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def dense_params_to_layers(params: Mapping) -> Layers:
    """Flax params {"Dense_0": {"kernel", "bias"}, ..., "Dense_L": ...} -> [(W, b), ...] float64.

    Accepts the params dict or the variables dict holding it under "params"; a layer without
    "bias" (use_bias=False) gets zeros. Every key must be Dense_i and the indices must run
    0..L, so a mis-named stack is caught rather than reordered.
    """
    params = params.get("params", params)
    names = sorted(params, key=lambda k: int(k[6:]) if re.fullmatch(r"Dense_\d+", k) else -1)
    expected = [f"Dense_{i}" for i in range(len(params))]
    if names != expected:
        raise ValueError(f"param keys {sorted(params)}; expected exactly {expected}")
    layers = []
    for name in names:
        w = np.asarray(params[name]["kernel"], np.float64)
        b = params[name].get("bias")
        layers.append((w, np.zeros(w.shape[1]) if b is None else np.asarray(b, np.float64)))
    return layers


def _check_layers(layers: Sequence[tuple[np.ndarray, np.ndarray]]) -> Layers:
    if not layers:
        raise ValueError("layers is empty; need at least the linear output layer")
    out = [(np.asarray(w, np.float64), np.asarray(b, np.float64)) for w, b in layers]
    for i, (w, b) in enumerate(out):
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise ValueError(f"layer {i}: W shape {w.shape}, b shape {b.shape}; "
                             "need W [d_in, d_out] and b [d_out]")
        if i and w.shape[0] != out[i - 1][0].shape[1]:
            raise ValueError(f"layer {i}: W has {w.shape[0]} inputs but layer {i - 1} "
                             f"has {out[i - 1][0].shape[1]} outputs")
    return out


def activation_patterns(layers: Sequence[tuple[np.ndarray, np.ndarray]],
                        x_NxD: np.ndarray) -> np.ndarray:
    """Which hidden units are > 0 at each point; shape [N, D] -> bool [N, sum of hidden widths].

    Columns are layer 0's units, then layer 1's, ...; the output layer has no pattern.
    """
    layers = _check_layers(layers)
    h = np.asarray(x_NxD, np.float64)
    masks = []
    for w, b in layers[:-1]:
        z = h @ w + b
        masks.append(z > 0)
        h = np.maximum(z, 0.0)
    return np.concatenate(masks, axis=1) if masks else np.zeros((h.shape[0], 0), bool)


@dataclasses.dataclass(frozen=True)
class SegmentPieces:
    """The pieces of a ReLU MLP along x(t) = a + t (b - a), t in [0, 1].

    breaks: [P + 1] t-values bounding the P activation pieces (0 and 1 included).
    patterns: [P, H] bool activation pattern on each piece.
    slopes: [P, K] d output / dt on each piece (K outputs).
    linear_breaks: [Q + 1] t-values bounding the Q linear pieces (a subset of `breaks`).
    """

    breaks: np.ndarray
    patterns: np.ndarray
    slopes: np.ndarray
    linear_breaks: np.ndarray

    @property
    def num_activation_pieces(self) -> int:
        return len(self.breaks) - 1

    @property
    def num_linear_pieces(self) -> int:
        return len(self.linear_breaks) - 1


def segment_pieces(layers: Sequence[tuple[np.ndarray, np.ndarray]], a: np.ndarray,
                   b: np.ndarray, t_tol: float = 1e-12, slope_rtol: float = 1e-9) -> SegmentPieces:
    """Exact pieces of a ReLU MLP on the segment from a to b (both shape [D]).

    Each piece carries the affine map t -> alpha + t beta of the current layer's output. For
    the next layer, z(t) = (alpha W + b) + t (beta W) is affine on the piece, so unit j changes
    sign only at t* = -c_j / s_j; crossings within `t_tol` of the piece ends or of each other
    are dropped (touching zero at an end is not a change). The sign on each sub-piece is taken
    at its midpoint. Adjacent pieces are merged into one linear piece when
    max |slope difference| <= slope_rtol * (largest |slope| on the segment).
    Raises ValueError for bad shapes.
    """
    layers = _check_layers(layers)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d_in = layers[0][0].shape[0]
    if a.shape != (d_in,) or b.shape != (d_in,):
        raise ValueError(f"a shape {a.shape}, b shape {b.shape}; both must be ({d_in},)")
    # (t0, t1, alpha, beta, pattern pieces); patterns are lists of per-layer masks.
    pieces = [(0.0, 1.0, a, b - a, [])]
    for w, bias in layers[:-1]:
        split = []
        for t0, t1, alpha, beta, pattern in pieces:
            c, s = alpha @ w + bias, beta @ w
            nz = s != 0
            cross = np.sort(-c[nz] / s[nz])
            cross = cross[(cross > t0 + t_tol) & (cross < t1 - t_tol)]
            cuts = [t0]
            for t in cross:
                if t - cuts[-1] > t_tol:
                    cuts.append(float(t))
            cuts.append(t1)
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                on = c + 0.5 * (lo + hi) * s > 0
                split.append((lo, hi, np.where(on, c, 0.0), np.where(on, s, 0.0), pattern + [on]))
        pieces = split
    w_out = layers[-1][0]
    slopes = np.stack([beta @ w_out for _, _, _, beta, _ in pieces])
    patterns = np.array([np.concatenate(p) if p else np.zeros(0, bool)
                         for *_, p in pieces], dtype=bool)
    # Equal patterns on neighbours mean a cut that changed nothing (a float tie); undo it.
    keep = [0] + [i for i in range(1, len(pieces))
                  if not np.array_equal(patterns[i], patterns[i - 1])]
    breaks = np.array([pieces[i][0] for i in keep] + [1.0])
    patterns, slopes = patterns[keep], slopes[keep]
    scale = max(float(np.abs(slopes).max()), np.finfo(np.float64).tiny)
    changed = np.abs(np.diff(slopes, axis=0)).max(axis=1, initial=0.0) > slope_rtol * scale
    linear_breaks = np.concatenate([[0.0], breaks[1:-1][changed], [1.0]])
    return SegmentPieces(breaks=breaks, patterns=patterns, slopes=slopes,
                         linear_breaks=linear_breaks)


def count_linear_pieces(layers: Sequence[tuple[np.ndarray, np.ndarray]], a: np.ndarray,
                        b: np.ndarray) -> int:
    """Number of maximal affine pieces of the MLP on the segment [a, b]; see `segment_pieces`."""
    return segment_pieces(layers, a, b).num_linear_pieces


def count_activation_pieces(layers: Sequence[tuple[np.ndarray, np.ndarray]], a: np.ndarray,
                            b: np.ndarray) -> int:
    """Number of constant-activation-pattern pieces on the segment [a, b]; >= linear pieces."""
    return segment_pieces(layers, a, b).num_activation_pieces


@dataclasses.dataclass(frozen=True)
class SliceRegions:
    """Activation regions of a ReLU MLP met on the square {c + u e1 + v e2 : (u, v) in S}.

    polygons: convex polygons in (u, v) coordinates, each [V, 2] in counter-clockwise order;
    they tile the square. patterns: [R, H] bool activation pattern of each (all distinct).
    """

    polygons: tuple[np.ndarray, ...]
    patterns: np.ndarray

    @property
    def num_regions(self) -> int:
        return len(self.polygons)

    def areas(self) -> np.ndarray:
        """Shoelace areas of the polygons; shape [R]."""
        return np.array([0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1))
                                   - np.dot(p[:, 1], np.roll(p[:, 0], -1))) for p in self.polygons])


def _split_polygon(poly_Vx2: np.ndarray, val_V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clips a convex polygon by the line where the affine `val` is 0: (val >= 0, val <= 0)."""
    pos, neg = [], []
    n = len(poly_Vx2)
    for i in range(n):
        p, q, vp, vq = poly_Vx2[i], poly_Vx2[(i + 1) % n], val_V[i], val_V[(i + 1) % n]
        if vp >= 0:
            pos.append(p)
        if vp <= 0:
            neg.append(p)
        if vp * vq < 0:
            x = p + (vp / (vp - vq)) * (q - p)
            pos.append(x)
            neg.append(x)
    return np.array(pos), np.array(neg)


def _split_by_layer(poly_Vx2: np.ndarray, z0_M: np.ndarray, grad_2xM: np.ndarray,
                    radius: float, tol: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cuts a convex polygon along the zero lines of M affine units z0 + (u, v) @ grad.

    Returns (cell, signs [M]) pairs; a unit within its tolerance of 0 on a cell counts as off.
    """
    cells = [(poly_Vx2, np.zeros(0, bool))]
    for j in range(z0_M.shape[0]):
        eps = tol * (abs(z0_M[j]) + radius * np.abs(grad_2xM[:, j]).sum())
        next_cells = []
        for cell, signs in cells:
            val = z0_M[j] + cell @ grad_2xM[:, j]
            if val.max() > eps and val.min() < -eps:
                pos, neg = _split_polygon(cell, np.where(np.abs(val) <= eps, 0.0, val))
                next_cells += [(pos, np.append(signs, True)), (neg, np.append(signs, False))]
            else:
                next_cells.append((cell, np.append(signs, val.max() > eps)))
        cells = next_cells
    return cells


def slice_regions(layers: Sequence[tuple[np.ndarray, np.ndarray]], c: np.ndarray,
                  e1: np.ndarray, e2: np.ndarray, extent: tuple[float, float] = (-1.0, 1.0),
                  tol: float = 1e-10) -> SliceRegions:
    """Exact activation regions on the 2-D slice x(u, v) = c + u e1 + v e2, (u, v) in extent**2.

    Start from the square; for each layer and each current convex polygon the pre-activation
    of unit j is affine in (u, v), so the polygon is clipped by its zero line when the line
    crosses the interior (values beyond +-tol * scale on both sides, scale = |offset| + |gradient|
    times the square's radius); otherwise the unit's sign is constant there (a unit within
    tolerance of 0 on the whole polygon counts as off). c, e1, e2 have shape [D].
    """
    layers = _check_layers(layers)
    d_in = layers[0][0].shape[0]
    vecs = [np.asarray(v, np.float64) for v in (c, e1, e2)]
    if any(v.shape != (d_in,) for v in vecs):
        raise ValueError(f"c, e1, e2 shapes {[v.shape for v in vecs]}; all must be ({d_in},)")
    lo, hi = map(float, extent)
    if not hi > lo:
        raise ValueError(f"extent={extent!r}; need lo < hi")
    radius = max(abs(lo), abs(hi))
    square = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])
    # (polygon, alpha [n], grad [2, n], per-layer masks): output = alpha + (u, v) @ grad.
    regions = [(square, vecs[0], np.stack(vecs[1:]), [])]
    for w, bias in layers[:-1]:
        split = []
        for poly, alpha, grad, pattern in regions:
            z0, gz = alpha @ w + bias, grad @ w
            for cell, on in _split_by_layer(poly, z0, gz, radius, tol):
                split.append((cell, np.where(on, z0, 0.0), np.where(on[None, :], gz, 0.0),
                              pattern + [on]))
        regions = split
    patterns = np.array([np.concatenate(p) if p else np.zeros(0, bool)
                         for *_, p in regions], dtype=bool)
    return SliceRegions(polygons=tuple(r[0] for r in regions), patterns=patterns)


def count_slice_regions(layers: Sequence[tuple[np.ndarray, np.ndarray]], c: np.ndarray,
                        e1: np.ndarray, e2: np.ndarray,
                        extent: tuple[float, float] = (-1.0, 1.0)) -> int:
    """Number of activation regions met on the square slice; see `slice_regions`."""
    return slice_regions(layers, c, e1, e2, extent).num_regions


def _check_widths(input_dim: int, hidden_widths: Sequence[int]) -> None:
    if input_dim < 1 or not hidden_widths or any(n < 1 for n in hidden_widths):
        raise ValueError(f"input_dim={input_dim}, hidden_widths={tuple(hidden_widths)}; "
                         "need input_dim >= 1 and at least one hidden width, all >= 1")


def telgarsky_pieces_bound(width: int, depth: int) -> int:
    """(2m)**L: max affine pieces on any line of a ReLU net with L hidden layers of width <= m.

    A linear combination of m functions of N pieces each has at most mN pieces and a ReLU at
    most doubles that, so each layer multiplies the count by at most 2m (Telgarsky 2015,
    "Representation benefits of deep feedforward networks", Lemma 2.1; Telgarsky 2016,
    "Benefits of depth in neural networks").
    Looser than `serra_upper_bound(1, widths)`, which for input dimension 1 and widths >= 2 is
    prod_l (n_l + 1).
    """
    _check_widths(1, [width] * depth)
    return (2 * width) ** depth


def gaussian_net_pieces_over_bound(depths: Sequence[int], widths: Sequence[int], draws: int,
                                   seed: int, segment: tuple[float, float]) -> list[float]:
    """Linear pieces on `segment` / `telgarsky_pieces_bound(width, depth)` of `draws` random
    one-input one-output ReLU nets per (depth, width), W ~ N(0, 2 / fan_in), b ~ N(0, 1),
    drawn in order from `np.random.default_rng(seed)`."""
    rng = np.random.default_rng(seed)
    a, b = np.array([segment[0]]), np.array([segment[1]])
    ratios = []
    for depth in depths:
        for width in widths:
            sizes = [1] + [width] * depth + [1]
            for _ in range(draws):
                layers = [(rng.normal(size=(i, o)) * np.sqrt(2.0 / i), rng.normal(size=o))
                          for i, o in zip(sizes[:-1], sizes[1:])]
                ratios.append(count_linear_pieces(layers, a, b)
                              / telgarsky_pieces_bound(width, depth))
    return ratios


def zaslavsky_max_regions(num_units: int, input_dim: int) -> int:
    """sum_{j=0}^{d} C(D, j): the exact maximum number of regions of one hidden layer.

    D hyperplanes in R^d cut it into at most this many regions, attained iff they are in
    general position (Zaslavsky 1975; applied to ReLU layers by Pascanu, Montufar, Bengio 2014).
    """
    _check_widths(input_dim, [num_units])
    return sum(math.comb(num_units, j) for j in range(input_dim + 1))


def montufar_lower_bound(input_dim: int, hidden_widths: Sequence[int]) -> int:
    """(prod_{l<L} floor(n_l / n_0)**n_0) * sum_{j=0}^{n_0} C(n_L, j), for all n_l >= n_0.

    Some ReLU net with n_0 inputs and hidden widths n_1..n_L has at least this many linear
    regions (Montufar, Pascanu, Cho, Bengio 2014, "On the number of linear regions of deep
    neural networks", lower bound for rectifier networks): each early layer folds the input
    n_l / n_0 times per axis, the last places a general-position arrangement.
    """
    _check_widths(input_dim, hidden_widths)
    if min(hidden_widths) < input_dim:
        raise ValueError(f"hidden_widths={tuple(hidden_widths)}; Montufar et al. need every "
                         f"width >= input_dim={input_dim}")
    folds = math.prod((n // input_dim) ** input_dim for n in hidden_widths[:-1])
    return folds * zaslavsky_max_regions(hidden_widths[-1], input_dim)


def serra_upper_bound(input_dim: int, hidden_widths: Sequence[int]) -> int:
    """sum_{(j_1..j_L) in J} prod_l C(n_l, j_l): max regions of a ReLU net (Serra et al. 2018).

    J = {j : 0 <= j_l <= min(n_0, n_1 - j_1, ..., n_{l-1} - j_{l-1}, n_l)}: the image of a region
    after layer l has dimension at most that min, which caps how many of layer l's hyperplanes
    can cut it in general position (Serra, Tjandraatmadja, Ramalingam 2018, "Bounding and
    counting linear regions of deep neural networks", Thm 1). For L = 1 it is
    `zaslavsky_max_regions`; for n_0 = 1 and all n_l >= 2 it is prod_l (n_l + 1). Summed by
    recursion over the dimension cap rather than over J.
    """
    _check_widths(input_dim, hidden_widths)
    widths = tuple(hidden_widths)

    @functools.cache
    def count(layer: int, dim: int) -> int:
        if layer == len(widths):
            return 1
        n = widths[layer]
        return sum(math.comb(n, j) * count(layer + 1, min(dim, n - j))
                   for j in range(min(dim, n) + 1))

    return count(0, input_dim)
