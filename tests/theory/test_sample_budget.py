"""Sample budgets and their growth exponents on hand-made error curves."""

import math

import numpy as np

from dl_theory.theory.sample_budget import (
    BudgetGrid,
    budget_exponent,
    budget_exponent_estimate,
    budget_exponent_gap_estimate,
)

GRID = BudgetGrid(sample_sizes=(64, 128, 256, 512), dims=(4, 8), level=0.2, num_seeds=2,
                  num_bootstrap=200)


def _two_seeds(curve):
    return np.array([curve, curve], dtype=float)


CURSED = {4: _two_seeds([0.4, 0.2, 0.1, 0.05]), 8: _two_seeds([0.8, 0.6, 0.4, 0.2])}
LINEAR = {4: _two_seeds([0.4, 0.2, 0.1, 0.05]), 8: _two_seeds([0.4, 0.3, 0.2, 0.1])}
CENSORED = {4: _two_seeds([0.4, 0.2, 0.1, 0.05]), 8: _two_seeds([0.5, 0.5, 0.5, 0.5])}


def test_exponent_is_log_budget_ratio_over_log_dimension_ratio():
    """Budgets 128 -> 512 over d 4 -> 8 is p = 2; 128 -> 256 is p = 1."""
    assert math.isclose(budget_exponent(GRID, CURSED, "low"), 2.0, rel_tol=1e-12)
    assert math.isclose(budget_exponent(GRID, LINEAR, "high"), 1.0, rel_tol=1e-12)


def test_censored_budget_is_a_bound_in_the_conservative_direction():
    """Never reached at d = 8: p >= log2(512 / 128) = 2 for a claim that p is large, unknown
    (inf) for a claim that p is small."""
    assert math.isclose(budget_exponent(GRID, CENSORED, "low"), 2.0, rel_tol=1e-12)
    assert budget_exponent(GRID, CENSORED, "high") == math.inf


def test_gap_and_its_interval_from_identical_seeds():
    """Identical seeds leave nothing to resample: the interval is the point. A censored deep
    budget makes the gap's lower end -inf (no lower bound)."""
    gap = budget_exponent_gap_estimate(GRID, CURSED, LINEAR)
    assert math.isclose(gap.value, 1.0, rel_tol=1e-12)
    assert math.isclose(gap.lo, 1.0, rel_tol=1e-12) and math.isclose(gap.hi, 1.0, rel_tol=1e-12)
    assert budget_exponent_gap_estimate(GRID, CURSED, CENSORED).lo == -math.inf
    estimate = budget_exponent_estimate(GRID, CURSED, "low")
    assert math.isclose(estimate.lo, 2.0, rel_tol=1e-12)
