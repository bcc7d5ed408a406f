"""Scoring an integrator: the verifier's cache and counts, and the binomial intervals of the
comparisons (dl_theory/data/symbolic_scoring)."""

import numpy as np
import pytest

from dl_theory.data.symbolic_scoring import Verifier, paired_difference, short_minus_long

# Integrand 2x (prefix "mul INT+ 2 x"); x^2 is right, x^3 wrong, a lone "add" malformed.
PROBLEM = ("mul", "INT+", "2", "x")
RIGHT, WRONG, MALFORMED = ("pow", "x", "INT+", "2"), ("pow", "x", "INT+", "3"), ("add",)


def test_verifier_checks_each_answer_once_and_counts_verdicts():
    verifier = Verifier(seconds=2.0)
    assert verifier.solved(PROBLEM, [WRONG, MALFORMED, None, RIGHT])
    assert not verifier.solved(PROBLEM, [WRONG, MALFORMED])  # remembered, not re-checked
    assert verifier.counts == {"correct": 1, "wrong": 1, "malformed": 2, "timeout": 0}


def test_paired_difference_counts_discordant_problems_only():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 0, 1, 1], bool)
    b = np.array([1, 0, 0, 0, 0, 1, 0, 1, 0, 0], bool)
    estimate = paired_difference(a, b)  # a alone: 4, b alone: 1 of 10
    assert estimate.value == pytest.approx(0.3)
    assert estimate.lo < 0.3 < estimate.hi and estimate.hi <= 0.5
    same = paired_difference(a, a)
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)
    assert paired_difference(b, a).value == pytest.approx(-0.3)


def test_short_minus_long_splits_by_length_and_has_newcombe_interval():
    lengths = np.arange(30)
    solved = lengths < 10  # every short problem solved, no long one
    estimate = short_minus_long(solved, lengths)
    assert estimate.value == 1.0 and 0.5 < estimate.lo < 1.0 and estimate.hi == pytest.approx(1.0)
    flat = short_minus_long(np.ones(30, bool), lengths)
    assert flat.value == 0.0 and flat.lo < 0.0 < flat.hi
