"""Sample budgets: how many samples a method needs to reach an error level, and how fast that
budget grows with the input dimension d (the curse of dimensionality, Poggio et al. 2017).

With e(n) a seed-mean error curve on a grid of sample sizes, the budget n*(eps) is its first
crossing of eps, interpolated linearly in (log n, log e). A curve still above eps at the largest
n is censored (n* > n_max). The growth exponent between the smallest and largest d is
p = log(n*(d_max) / n*(d_min)) / log(d_max / d_min) (p = 1: linear in d), with a percentile-
bootstrap interval over seeds resampled independently per d (runs at different d are
independent trainings).

Moved from experiments/curse_of_dimensionality.py (budget_to_reach, the exponent and its
bootstrap unchanged), with the exponent gap between two methods added.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from dl_theory.uncertainty import Estimate


@dataclasses.dataclass(frozen=True)
class BudgetGrid:
    """The grid the budgets are read on: sample sizes, dimensions, error level eps, number of
    seeds per (d, n) and bootstrap resamples."""

    sample_sizes: tuple[int, ...]
    dims: tuple[int, ...]
    level: float
    num_seeds: int
    num_bootstrap: int


def budget_to_reach(sizes_K, errors_K, level: float) -> tuple[float, str]:
    """(n*, status): the first crossing of `level` by the error curve, interpolated linearly in
    (log n, log e) between the grid points around it. status "exact"; "above_grid" (never reached,
    n* returned as the largest n, a lower bound) or "below_grid" (reached at the first point, n*
    returned as the smallest n, an upper bound)."""
    sizes = np.asarray(sizes_K, dtype=float)
    errors = np.asarray(errors_K, dtype=float)
    below = np.flatnonzero(errors <= level)
    if below.size == 0:
        return float(sizes[-1]), "above_grid"
    k = int(below[0])
    if k == 0:
        return float(sizes[0]), "below_grid"
    log_n0, log_n1 = np.log(sizes[k - 1]), np.log(sizes[k])
    log_e0, log_e1 = np.log(errors[k - 1]), np.log(errors[k])
    frac = (np.log(level) - log_e0) / (log_e1 - log_e0)
    return float(np.exp(log_n0 + frac * (log_n1 - log_n0))), "exact"


def budget_exponent(grid: BudgetGrid, errors_by_dim: dict, conservative: str,
                    resample=None) -> float:
    """Budget exponent p between the smallest and largest d of errors {d: [S, K]}.
    `conservative`: "high" (censoring makes p unknown -> inf, for claims that p is small) or
    "low" (censored budgets used as bounds, for claims that p is large). `resample` maps each
    d to the seed indices to use (a bootstrap draw)."""
    d_lo, d_hi = min(grid.dims), max(grid.dims)
    budgets = {}
    for d in (d_lo, d_hi):
        errors = errors_by_dim[d] if resample is None else errors_by_dim[d][resample[d]]
        budgets[d] = budget_to_reach(grid.sample_sizes, errors.mean(0), grid.level)
    (n_lo, s_lo), (n_hi, s_hi) = budgets[d_lo], budgets[d_hi]
    if conservative == "high" and (s_lo == "below_grid" or s_hi == "above_grid"):
        return math.inf
    if conservative == "low" and s_lo == "above_grid":
        return -math.inf  # neither budget is known from below: no lower bound on p
    return math.log(n_hi / n_lo) / math.log(d_hi / d_lo)


def _percentile_interval(draws: list[float]) -> tuple[float, float]:
    # "inverted_cdf" returns drawn values, so a censored (infinite) draw stays infinite.
    lo, hi = np.quantile(np.asarray(draws), [0.025, 0.975], method="inverted_cdf")
    return float(lo), float(hi)


def budget_exponent_estimate(grid: BudgetGrid, errors_by_dim: dict,
                             conservative: str) -> Estimate:
    """p with a percentile-bootstrap interval: seeds resampled independently for each d."""
    rng = np.random.default_rng(0)
    draws = [budget_exponent(grid, errors_by_dim, conservative, resample={
        d: rng.integers(0, grid.num_seeds, grid.num_seeds) for d in grid.dims})
        for _ in range(grid.num_bootstrap)]
    return Estimate(budget_exponent(grid, errors_by_dim, conservative),
                    *_percentile_interval(draws))


def budget_exponent_gap_estimate(grid: BudgetGrid, cursed_by_dim: dict,
                                 deep_by_dim: dict) -> Estimate:
    """p_cursed ("low": a lower bound when censored) minus p_deep ("high"), with a percentile-
    bootstrap interval: the same seed resample for both methods at each d (they share data)."""
    def gap(resample=None):
        return (budget_exponent(grid, cursed_by_dim, "low", resample)
                - budget_exponent(grid, deep_by_dim, "high", resample))

    rng = np.random.default_rng(1)  # its own stream, apart from the exponents' draws
    draws = [gap({d: rng.integers(0, grid.num_seeds, grid.num_seeds) for d in grid.dims})
             for _ in range(grid.num_bootstrap)]
    return Estimate(gap(), *_percentile_interval(draws))
