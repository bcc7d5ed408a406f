"""A brute-force minimiser of (1/2)(x - u)^2 + tau |x|^q, to check closed-form prox maps.

No formula from the closed forms is used: a dense grid over [0, |u|] (every minimiser lies
there: moving towards u lowers the quadratic, moving towards 0 lowers the penalty) finds the
global basin, and bisection on the derivative inside the grid cell around the best point
polishes it to float64 precision. The prox map is odd in u, so the result carries sign(u).
"""

from __future__ import annotations

import numpy as np


def lq_objective(x: np.ndarray, u: np.ndarray, tau: np.ndarray, q: float) -> np.ndarray:
    """(1/2)(x - u)^2 + tau |x|^q elementwise (q = 0: tau [x != 0])."""
    penalty = (x != 0).astype(float) if q == 0 else np.abs(x) ** q
    return 0.5 * (x - u) ** 2 + tau * penalty


def brute_force_prox(u: np.ndarray, tau: np.ndarray, q: float, grid_points: int = 4001,
                     bisections: int = 80) -> np.ndarray:
    """argmin_x (1/2)(x - u)^2 + tau |x|^q for each element of the 1-D arrays u, tau (float64).

    Grid search on [0, |u|] with `grid_points` points, then `bisections` halvings of the
    cell [z_{j-1}, z_{j+1}] on the sign of the derivative x - |u| + tau q x^(q-1) (when the
    grid's best point is not 0). The polished point replaces the grid point when the derivative
    changes sign over the cell (a stationary point inside it); objective values cannot decide
    this, since near a minimum they agree to rounding over a width of sqrt(eps) |u|.
    """
    u, tau = np.asarray(u, np.float64), np.asarray(tau, np.float64)
    a = np.abs(u)
    fractions = np.linspace(0.0, 1.0, grid_points)[:, None]
    grid = fractions * a[None, :]
    best = np.argmin(lq_objective(grid, a, tau, q), axis=0)
    cols = np.arange(a.size)
    x = grid[best, cols]
    lo = grid[np.maximum(best - 1, 1), cols]  # the cell, excluding the kink at 0
    hi = grid[np.minimum(best + 1, grid_points - 1), cols]
    def slope(z):
        return z - a + (tau * q * z ** (q - 1.0) if q > 0 else 0.0)

    brackets = (best > 0) & (slope(lo) <= 0) & (slope(hi) >= 0)
    for _ in range(bisections):
        mid = 0.5 * (lo + hi)
        falling = slope(mid) < 0
        lo, hi = np.where(falling, mid, lo), np.where(falling, hi, mid)
    x = np.where(brackets, 0.5 * (lo + hi), x)
    return np.sign(u) * x


def random_preconditioned_prox_problems(seed: int, n: int):
    """n random (u, d, lambda, eta) of a preconditioned prox step, float64, each log-uniform
    over the decades a training run meets: |u| ~ N(0, 1) 10^U(-2, 1), d in [1e-4, 10],
    lambda in [1e-4, 1], eta in [1e-3, 0.1]; tau = lambda eta / d spans 11 decades."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n) * 10.0 ** rng.uniform(-2, 1, n)
    d, lam = 10.0 ** rng.uniform(-4, 1, n), 10.0 ** rng.uniform(-4, 0, n)
    eta = 10.0 ** rng.uniform(-3, -1, n)
    return u, d, lam, eta
