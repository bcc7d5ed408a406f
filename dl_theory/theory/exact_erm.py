"""Exact empirical risk minimisation for one-hidden-layer ReLU nets (Arora et al. 2018, Sec. 4).

The net is f(x) = sum_{i=1}^w v_i relu(a_i . x + b_i) on x in R^n (an affine hidden layer and a
linear output, as in the paper's training problem); the loss is the mean squared error over D
points. Since relu is positively homogeneous, |v_i| folds into (a_i, b_i) and only the sign
s_i = sign(v_i) is left. Fix for every unit the set P_i of points where it is active
(a_i . x_j + b_i >= 0 on P_i, <= 0 off it) and the signs: the output is then linear in the
parameters, sum_i s_i [j in P_i] (a_i . x_j + b_i), and the sign constraints are linear, so the
subproblem is convex (here a least-squares problem with linear inequality constraints). The
global optimum is the best subproblem over all sign vectors and all sets the data admit, the
affine dichotomies of the D points: O(D^n) per unit, hence O(2^w D^{nw}) convex programs
(Theorem 4.1: time O(2^w D^{nw} poly(D, n, w)), polynomial in D for fixed n and w).

Dichotomies are enumerated by hyperplanes through n data points (points in general position):
any separating hyperplane can be moved to touch n points without crossing another, and the
touched points go to either side. Units are interchangeable, so unordered w-tuples of
(set, sign) suffice. Each subproblem is tried by unconstrained least squares first (optimal
when it is feasible) and otherwise solved by scipy's SLSQP: a QP in w (n + 1) <= 6 variables
needs no hand-written active-set code, and SLSQP's ftol bounds its error. The reported loss is
always recomputed from the returned net, so solver error can only make it higher, never hide
a better net.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import scipy.optimize

_SLSQP_FTOL = 1e-15


def affine_dichotomies(x_DxN: np.ndarray) -> np.ndarray:
    """Every set {j : a . x_j + b > 0} an affine hyperplane can cut from the points, as bool
    rows [M, D] (the empty and the full set included, no repeats). Assumes general position."""
    x = np.asarray(x_DxN, np.float64)
    d, n = x.shape
    found = {(False,) * d, (True,) * d}
    for subset in itertools.combinations(range(d), n):
        base = x[subset[0]]
        if n == 1:
            normal = np.ones(1)
        else:
            normal = np.linalg.svd(x[list(subset[1:])] - base)[2][-1]
        side = (x - base) @ normal
        for orientation in (1.0, -1.0):
            positive = orientation * side > 0
            for on_plane in itertools.product((False, True), repeat=n):
                mask = positive.copy()
                mask[list(subset)] = on_plane
                found.add(tuple(bool(v) for v in mask))
    return np.array(sorted(found), dtype=bool)


@dataclasses.dataclass(frozen=True)
class ErmResult:
    """The exact optimum: hidden weights a [n, w], biases b [w], output weights v [w] (signs
    with the scale folded into a and b), its mean squared loss, and the work done."""

    hidden_w: np.ndarray
    hidden_b: np.ndarray
    out_w: np.ndarray
    loss: float
    dichotomies: int
    subproblems: int


def net_loss(x_DxN, y_D, hidden_w, hidden_b, out_w) -> float:
    """Mean squared error of x -> relu(x @ hidden_w + hidden_b) @ out_w, in float64."""
    x = np.asarray(x_DxN, np.float64)
    h = np.maximum(x @ np.asarray(hidden_w, np.float64) + np.asarray(hidden_b, np.float64), 0.0)
    residual = h @ np.asarray(out_w, np.float64) - np.asarray(y_D, np.float64)
    return float(np.mean(residual ** 2))


def _solve_pattern(features_DxF: np.ndarray, y_D: np.ndarray, masks_WxD: np.ndarray,
                   signs_W: np.ndarray) -> np.ndarray:
    """theta [w, n + 1] minimising the squared loss with unit i active exactly on masks[i]."""
    d, f = features_DxF.shape
    w = len(signs_W)
    design = np.concatenate([(signs_W[i] * masks_WxD[i])[:, None] * features_DxF
                             for i in range(w)], axis=1)  # [D, w F]: output = design @ theta
    side = np.where(masks_WxD, 1.0, -1.0)  # [w, D]
    constraints = np.zeros((w * d, w * f))  # side_ij * (phi_j . theta_i) >= 0
    for i in range(w):
        constraints[i * d:(i + 1) * d, i * f:(i + 1) * f] = side[i][:, None] * features_DxF
    theta = np.linalg.lstsq(design, y_D, rcond=None)[0]
    if np.all(constraints @ theta >= 0):
        return theta.reshape(w, f)
    result = scipy.optimize.minimize(
        lambda t: 0.5 * np.sum((design @ t - y_D) ** 2), np.zeros(w * f),
        jac=lambda t: design.T @ (design @ t - y_D), method="SLSQP",
        constraints=[{"type": "ineq", "fun": lambda t: constraints @ t,
                      "jac": lambda t: constraints}],
        options={"ftol": _SLSQP_FTOL, "maxiter": 1000})
    return result.x.reshape(w, f)


def exact_erm(x_DxN: np.ndarray, y_D: np.ndarray, width: int) -> ErmResult:
    """The global minimiser of the mean squared loss over one-hidden-layer ReLU nets of
    `width` units without output bias (Algorithm 1 of Arora et al. 2018), by enumeration."""
    x, y = np.asarray(x_DxN, np.float64), np.asarray(y_D, np.float64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"x shape {x.shape}, y shape {y.shape}; need x [D, n] and y [D]")
    if width < 1:
        raise ValueError(f"width={width}; must be >= 1")
    features = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    masks = affine_dichotomies(x)
    # A unit active nowhere is dead whatever its sign: keep one sign for it.
    choices = [(m, s) for m in range(len(masks)) for s in (1.0, -1.0)
               if masks[m].any() or s > 0]
    best, count = None, 0
    for combo in itertools.combinations_with_replacement(choices, width):
        unit_masks = masks[[m for m, _ in combo]]
        signs = np.array([s for _, s in combo])
        theta = _solve_pattern(features, y, unit_masks, signs)
        count += 1
        loss = net_loss(x, y, theta[:, :-1].T, theta[:, -1], signs)
        if best is None or loss < best[0]:
            best = (loss, theta, signs)
    loss, theta, signs = best
    return ErmResult(hidden_w=theta[:, :-1].T, hidden_b=theta[:, -1], out_w=signs, loss=loss,
                     dichotomies=len(masks), subproblems=count)


def dichotomy_bound(points: int, input_dim: int) -> int:
    """2 sum_{k=0}^{n} C(D - 1, k): the most affine dichotomies of D points in R^n (Cover 1965),
    reached in general position; O(D^n), the count Theorem 4.1's running time rests on."""
    return 2 * sum(math.comb(points - 1, k) for k in range(input_dim + 1))


def net_losses(x_DxN, y_D, params) -> list[float]:
    """`net_loss` of every net in a stack {"w": [R, n, w], "b": [R, w], "v": [R, w]}."""
    return [net_loss(x_DxN, y_D, w, b, v)
            for w, b, v in zip(params["w"], params["b"], params["v"])]


def noisy_relu_teacher(rng: np.random.Generator, points: int, input_dim: int, width: int,
                       noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Data for the ERM problem: D = `points` inputs uniform on [-1, 1]^n, labels from a random
    one-hidden-layer ReLU teacher of `width` units (Gaussian weights, biases of scale 1/2)
    plus Gaussian noise of standard deviation `noise`, so no net fits them exactly."""
    x = rng.uniform(-1.0, 1.0, (points, input_dim))
    w, b, v = rng.normal(size=(input_dim, width)), rng.normal(size=width) * 0.5, \
        rng.normal(size=width)
    y = np.maximum(x @ w + b, 0.0) @ v + noise * rng.normal(size=points)
    return x, y
