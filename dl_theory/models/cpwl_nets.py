"""Continuous piecewise-linear (CPWL) functions written exactly as ReLU nets, with depth and size.

Arora, Basu, Mianjy & Mukherjee ("Understanding deep neural networks with rectified linear
units", ICLR 2018): every ReLU net computes a CPWL function, and every CPWL f: R^n -> R is a
ReLU net with at most ceil(log2(n + 1)) hidden layers, i.e. depth ceil(log2(n + 1)) + 1
(Theorem 2.1). The proof writes f = sum_j s_j max_{i in S_j} l_i with affine l_i, signs s_j and
|S_j| <= n + 1 (Wang & Sun 2005) and computes each max of n + 1 affine maps by a balanced tree of
pairwise maxima, max(a, b) = relu(a - b) + relu(b) - relu(-b): three units per pair, one hidden
layer per tree level. In 1-D a p-piece CPWL function is one hidden layer of p units (Theorem 2.2):
f(x) = f(t_1) - s_0 relu(t_1 - x) + s_1 relu(x - t_1) + sum_{i >= 2} (s_i - s_{i-1}) relu(x - t_i).

A net is data, `[(W [d_in, d_out], b [d_out]), ...]` with ReLU after all but the last layer
(the convention of `dl_theory.theory.regions`, whose exact piece counter reads it directly).
Depth is the number of layers (hidden + output), size the number of hidden units, as the paper
counts them. Everything is float64 NumPy: the claims are exact equalities to rounding.

Separate from `dl_theory.models.constructions` (Flax `ReluNet`s approximating smooth targets,
already 320 lines): these are exact representations of a given CPWL function, built by a
max-tree reducer that the approximation constructions do not need.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

Layers = list[tuple[np.ndarray, np.ndarray]]


def evaluate(layers: Layers, x_NxD: np.ndarray) -> np.ndarray:
    """The net's output at each row of x; shape [N, D] -> [N] (float64, single output)."""
    h = np.asarray(x_NxD, np.float64)
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    w, b = layers[-1]
    return (h @ w + b)[:, 0]


def depth(layers: Layers) -> int:
    """Hidden layers + 1 (the paper's depth: k hidden layers make a (k + 1)-layer net)."""
    return len(layers)


def size(layers: Layers) -> int:
    """Total hidden units w_1 + ... + w_k (the paper's size)."""
    return sum(w.shape[1] for w, _ in layers[:-1])


def max_relative_error(layers: Layers, f, x_NxD: np.ndarray) -> float:
    """max |net(x) - f(x)| / max |f(x)| over the rows of x (f maps [N, D] -> [N])."""
    values = f(x_NxD)
    return float(np.max(np.abs(evaluate(layers, x_NxD) - values)) / np.max(np.abs(values)))


def theorem_depth(input_dim: int) -> int:
    """ceil(log2(n + 1)) + 1: the depth Theorem 2.1 guarantees for any CPWL f: R^n -> R."""
    return math.ceil(math.log2(input_dim + 1)) + 1


def _reduce_maxima(m: np.ndarray, c: np.ndarray, groups: list[list[int]],
                   shallow_top: bool = False) -> tuple[Layers, np.ndarray, np.ndarray]:
    """Hidden layers computing max over each group of the values v = h @ m + c.

    `m` [d, k], `c` [k] are the values as affine maps of the last layer's output h (the input
    at first); each level pairs a group's members, max(a, b) = relu(a - b) + relu(b) - relu(-b),
    and passes an unpaired member through as relu(a) - relu(-a). Returns the new hidden layers
    and the groups' maxima as affine maps (m, c) of the last new layer, one column per group.
    With `shallow_top`, the last level is replaced by the mean (a + b) / 2 without a ReLU
    layer: the tree one layer shallower, wrong by |a - b| / 2 (a baseline, not a max).
    """
    layers: Layers = []
    while any(len(g) > 1 for g in groups):
        last = shallow_top and all(len(g) <= 2 for g in groups)
        if last:  # the mean of each pair, linear in the current values: no new layer
            combo = np.zeros((m.shape[1], len(groups)))
            for j, g in enumerate(groups):
                combo[g, j] = 1.0 / len(g)
            return layers, m @ combo, c @ combo
        units, values, new_groups = [], [], []
        e = np.eye(m.shape[1])
        for g in groups:
            members = []
            for start in range(0, len(g), 2):
                pair = g[start:start + 2]
                first = len(units)
                if len(pair) == 2:
                    a, b = e[pair[0]], e[pair[1]]
                    units += [a - b, b, -b]
                    values.append({first: 1.0, first + 1: 1.0, first + 2: -1.0})
                else:
                    units += [e[pair[0]], -e[pair[0]]]
                    values.append({first: 1.0, first + 1: -1.0})
                members.append(len(values) - 1)
            new_groups.append(members)
        combos = np.stack(units, axis=1)  # [k, units]: pre-activations as combos of values
        layers.append((m @ combos, c @ combos))
        m = np.zeros((combos.shape[1], len(values)))
        for j, value in enumerate(values):
            for unit, coefficient in value.items():
                m[unit, j] = coefficient
        c, groups = np.zeros(len(values)), new_groups
    order = [g[0] for g in groups]
    return layers, m[:, order], c[order]


@dataclasses.dataclass(frozen=True)
class MaxSum:
    """f(x) = sum_j sign_j max_i (x @ slopes[j] + offsets[j])_i: the form of Theorem 2.1's proof.

    slopes[j] [n, k_j], offsets[j] [k_j] (k_j affine maps in term j), signs [J] in {-1, +1}.
    """

    slopes: tuple[np.ndarray, ...]
    offsets: tuple[np.ndarray, ...]
    signs: np.ndarray

    def __call__(self, x_NxD: np.ndarray) -> np.ndarray:
        """The function itself (NumPy max, no net); [N, n] -> [N]."""
        x = np.asarray(x_NxD, np.float64)
        return sum(s * np.max(x @ a + c, axis=1)
                   for s, a, c in zip(self.signs, self.slopes, self.offsets))


def max_sum_net(f: MaxSum, shallow_top: bool = False) -> Layers:
    """The ReLU net of `f`: all maxima's trees side by side, summed with their signs at the
    output. Depth ceil(log2(max_j k_j)) + 1, so ceil(log2(n + 1)) + 1 when every k_j <= n + 1.
    `shallow_top`: the baseline one layer shallower (see `_reduce_maxima`)."""
    m = np.concatenate(f.slopes, axis=1)
    c = np.concatenate(f.offsets)
    bounds = np.cumsum([0] + [a.shape[1] for a in f.slopes])
    groups = [list(range(lo, hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    layers, m, c = _reduce_maxima(m, c, groups, shallow_top)
    signs = np.asarray(f.signs, np.float64)[:, None]
    return layers + [(m @ signs, c @ signs)]


def random_max_sum(rng: np.random.Generator, input_dim: int, terms: int) -> MaxSum:
    """A random f = sum of `terms` signed maxima of n + 1 Gaussian affine maps on R^n."""
    return MaxSum(slopes=tuple(rng.normal(size=(input_dim, input_dim + 1)) for _ in range(terms)),
                  offsets=tuple(rng.normal(size=input_dim + 1) for _ in range(terms)),
                  signs=rng.choice([-1.0, 1.0], size=terms))


def kink_points(f: MaxSum, rng: np.random.Generator, per_pair: int) -> np.ndarray:
    """Points where two maps of one maximum tie (where f may bend): random Gaussian points
    projected onto each hyperplane x @ (a_i - a_k) + c_i - c_k = 0; [M, n]."""
    points = []
    for a, c in zip(f.slopes, f.offsets):
        for i in range(a.shape[1]):
            for k in range(i + 1, a.shape[1]):
                normal, gap = a[:, i] - a[:, k], c[i] - c[k]
                x = rng.normal(size=(per_pair, a.shape[0]))
                x -= np.outer((x @ normal + gap) / (normal @ normal), normal)
                points.append(x)
    return np.concatenate(points)


@dataclasses.dataclass(frozen=True)
class PiecewiseLinear1D:
    """A CPWL f: R -> R with p pieces: breaks t_1 < ... < t_{p-1}, slopes s_0..s_{p-1} (s_i on
    (t_i, t_{i+1}), t_0 = -inf, t_p = inf) and the value f(t_1)."""

    breaks: np.ndarray
    slopes: np.ndarray
    value_at_first_break: float

    def __post_init__(self):
        if len(self.slopes) != len(self.breaks) + 1 or len(self.breaks) < 1:
            raise ValueError(f"{len(self.breaks)} breaks and {len(self.slopes)} slopes; need "
                             "p - 1 >= 1 breaks and p slopes")
        if np.any(np.diff(self.breaks) <= 0):
            raise ValueError(f"breaks {self.breaks} are not strictly increasing")

    @property
    def pieces(self) -> int:
        """p, the number of affine pieces (adjacent slopes are assumed to differ)."""
        return len(self.slopes)

    def values_at_breaks(self) -> np.ndarray:
        """f(t_1), ..., f(t_{p-1}) by walking along the pieces."""
        steps = self.slopes[1:-1] * np.diff(self.breaks)
        return self.value_at_first_break + np.concatenate([[0.0], np.cumsum(steps)])

    def __call__(self, x_N: np.ndarray) -> np.ndarray:
        """f at each x; [N] -> [N], from the nearest break on the left (the first for x < t_1)."""
        x = np.asarray(x_N, np.float64)
        piece = np.searchsorted(self.breaks, x, side="right")  # 0..p-1
        anchor = np.maximum(piece - 1, 0)
        return self.values_at_breaks()[anchor] + self.slopes[piece] * (x - self.breaks[anchor])

    def affine_pieces(self) -> tuple[np.ndarray, np.ndarray]:
        """(slopes [p], intercepts [p]) of the affine map on each piece."""
        anchors = np.concatenate([[self.breaks[0]], self.breaks])
        values = np.concatenate([[self.value_at_first_break], self.values_at_breaks()])
        return self.slopes.copy(), values - self.slopes * anchors


def random_piecewise_linear(rng: np.random.Generator, pieces: int) -> PiecewiseLinear1D:
    """A generic p-piece function: sorted uniform breaks on [-1, 1], Gaussian slopes (adjacent
    slopes differ with probability one), Gaussian f(t_1)."""
    return PiecewiseLinear1D(np.sort(rng.uniform(-1.0, 1.0, pieces - 1)),
                             rng.normal(size=pieces), float(rng.normal()))


def one_hidden_layer_net(f: PiecewiseLinear1D, drop_last_unit: bool = False) -> Layers:
    """Theorem 2.2's net: p hidden units (relu(t_1 - x), relu(x - t_i) for i = 1..p-1), output
    f(t_1) - s_0 relu(t_1 - x) + s_1 relu(x - t_1) + sum_{i>=2} (s_i - s_{i-1}) relu(x - t_i).
    `drop_last_unit`: the baseline with relu(x - t_{p-1}) removed (p - 1 units)."""
    t, s = f.breaks, f.slopes
    w = np.concatenate([[-1.0], np.ones(len(t))])[None, :]
    b = np.concatenate([[t[0]], -t])
    out = np.concatenate([[-s[0], s[1]], np.diff(s[1:])])[:, None]
    if drop_last_unit and len(t) > 1:
        w, b, out = w[:, :-1], b[:-1], out[:-1]
    return [(w, b), (out, np.array([f.value_at_first_break]))]


def naive_one_hidden_layer_net(f: PiecewiseLinear1D) -> Layers:
    """The textbook net f(x) = f(0) + s_0 x + sum_i (s_i - s_{i-1}) relu(x - t_i) with the
    linear term as s_0 (relu(x) - relu(-x)): p + 1 units, one more than Theorem 2.2's."""
    t, s = f.breaks, f.slopes
    w = np.concatenate([[1.0, -1.0], np.ones(len(t))])[None, :]
    b = np.concatenate([[0.0, 0.0], -t])
    out = np.concatenate([[s[0], -s[0]], np.diff(s)])[:, None]
    f0 = float(f(np.zeros(1))[0]) - float(np.sum(np.diff(s) * np.maximum(-t, 0.0)))
    return [(w, b), (out, np.array([f0]))]


def lattice_net_1d(f: PiecewiseLinear1D) -> Layers:
    """The max-min lattice representation f = max_i min_{j in S_i} l_j (S_i: the affine maps
    >= l_i on piece i; Tarela & Martinez 1999, Ovchinnikov 2002) as a net: a min tree then a
    max tree, depth ceil(log2 max |S_i|) + ceil(log2 p) + 1, deeper than Theorem 2.2's 2."""
    a, c = f.affine_pieces()
    ends = np.concatenate([[-np.inf], f.breaks, [np.inf]])
    groups = []
    for i in range(f.pieces):
        lo, hi = ends[i], ends[i + 1]
        above = []
        for j in range(f.pieces):
            # l_j - l_i is affine: >= 0 on [lo, hi] iff >= 0 at finite ends and slope allows.
            ok = all(a[j] * e + c[j] >= a[i] * e + c[i] - 1e-12 * (1 + abs(e))
                     for e in (lo, hi) if np.isfinite(e))
            ok &= (np.isfinite(lo) or a[j] <= a[i]) and (np.isfinite(hi) or a[j] >= a[i])
            if ok:
                above.append(j)
        groups.append(above)
    # min_j l_j = -max_j (-l_j): the min tree works on the negated maps.
    mins, m, cm = _reduce_maxima(-a[None, :], -c, groups)
    maxs, m2, c2 = _reduce_maxima(-m, -cm, [list(range(len(groups)))])
    return mins + maxs + [(m2, c2)]


def one_hidden_layer(weights_in: Sequence[float], biases: Sequence[float],
                     weights_out: Sequence[float], bias_out: float = 0.0) -> Layers:
    """x -> sum_i v_i relu(a_i x + b_i) + c for scalar x, as layers."""
    return [(np.asarray(weights_in, np.float64)[None, :], np.asarray(biases, np.float64)),
            (np.asarray(weights_out, np.float64)[:, None], np.array([bias_out], np.float64))]


def zigzag_coefficients(interior_breaks: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """h_a(z) = sum_i c_i relu(z - a_i), a_0 = 0 < a_1 < ... < a_{w-1} < 1: the w-piece zigzag
    rising from 0 to 1 on [0, a_1], falling back to 0 on [a_1, a_2], ..., so it maps [0, 1]
    onto [0, 1] once per piece. Returns (a [w], c [w])."""
    a = np.concatenate([[0.0], np.asarray(interior_breaks, np.float64)])
    if np.any(np.diff(np.concatenate([a, [1.0]])) <= 0):
        raise ValueError(f"interior breaks {list(interior_breaks)}; need 0 < a_1 < ... < 1")
    lengths = np.diff(np.concatenate([a, [1.0]]))
    slopes = (-1.0) ** np.arange(len(a)) / lengths
    return a, np.concatenate([[slopes[0]], np.diff(slopes)])


def random_zigzag_breaks(rng: np.random.Generator, width: int) -> np.ndarray:
    """a_i = (i + u_i) / w, u_i uniform in [-1/4, 1/4]: every zigzag piece is >= 1 / (2 w) long,
    so a k-fold composite's smallest piece, >= (2 w)^-k, stays far above a counter's 1e-12."""
    return (np.arange(1, width) + rng.uniform(-0.25, 0.25, width - 1)) / width


def hard_family_net(interior_breaks: Sequence[float], hidden_layers: int) -> Layers:
    """h_a composed `hidden_layers` = k times: Section 3's smoothly parameterised hard family,
    a (k + 1)-layer net of width w = len(breaks) + 1 with w^k pieces on [0, 1] for every a
    (each composition maps every piece onto [0, 1] w times). [B, 1] -> [B, 1] on [0, 1]."""
    a, c = zigzag_coefficients(interior_breaks)
    w = len(a)
    layers = [(np.ones((1, w)), -a)]
    layers += [(np.outer(c, np.ones(w)), -a) for _ in range(hidden_layers - 1)]
    return layers + [(c[:, None], np.zeros(1))]


def shallow_size_needed(pieces: int, max_hidden_layers: int) -> float:
    """The least size s with (2 s / k')^k' >= pieces for some k' <= max_hidden_layers: a
    (k' + 1)-layer net of size s has at most (2 s / k')^k' pieces (each layer multiplies the
    count by at most 2 w_i, Telgarsky 2015; AM-GM), so no smaller net with at most
    `max_hidden_layers` hidden layers has `pieces` pieces."""
    return min(k / 2.0 * pieces ** (1.0 / k) for k in range(1, max_hidden_layers + 1))
