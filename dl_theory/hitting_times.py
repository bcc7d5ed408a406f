"""Hitting times of measured curves: the first step at which a curve reaches a level.

Steps to a tolerance, rounds to a target accuracy and labels to a version-space width are all
the first index t along a curve's last axis with curve[..., t] <= level (a falling error) or
>= level (a rising accuracy). A curve that never gets there is censored: its hitting time is
reported as the curve's length T, one past the last index, a lower bound on the true time
(callers that count from 1, or from a labelled start, add their offset to every entry alike).
A NaN entry compares false, so a run that diverged never reaches the level.
"""

from __future__ import annotations

import numpy as np

APPROACHES = ("below", "above")


def hitting_time(curve_XxT, level: float, *, approach: str = "below") -> np.ndarray:
    """Per curve (last axis: steps), the 0-based index of the first entry at or below `level`
    (approach="below") or at or above it (approach="above"); T, the curve's length, where no
    entry gets there (censored). Shape curve.shape[:-1], integers (0-d for one curve)."""
    if approach not in APPROACHES:
        raise ValueError(f"approach={approach!r}; allowed: {APPROACHES}")
    curve = np.asarray(curve_XxT)
    if curve.ndim < 1:
        raise ValueError(f"curve shape {curve.shape}; need at least one axis (the steps)")
    reached = curve <= level if approach == "below" else curve >= level
    return np.where(reached.any(axis=-1), np.argmax(reached, axis=-1), curve.shape[-1])
