"""Estimates with an uncertainty: power-law rates and means, with bootstrap intervals.

Every rate claim in dl_theory (a slope, an exponent) is fitted here, so that all experiments
state their intervals the same way. Intervals are percentile bootstrap intervals (Efron &
Tibshirani 1993, ch. 13): a resample draws, for every x, that x's replicate values (one per
seed) with replacement, because runs at different x are independent trainings. With a single
replicate per x the residuals of the fit are resampled instead.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval [lo, hi] at `level`."""

    value: float
    lo: float
    hi: float
    level: float = 0.95
    method: str = "percentile bootstrap"

    def __str__(self) -> str:
        return f"{self.value:.4g} [{self.lo:.4g}, {self.hi:.4g}]"


def _slope(log_x_K: np.ndarray, log_y_K: np.ndarray) -> float:
    return float(np.polyfit(log_x_K, log_y_K, 1)[0])


def fit_loglog_slope(
    x_K, y_SxK, *, num_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Slope b of log y = a + b log x, with a bootstrap interval.

    Args:
      x_K: positive abscissae (widths, sample sizes), shape [K], K >= 2.
      y_SxK: positive measurements, shape [S, K] (S replicates, e.g. seeds) or [K].
    Returns:
      An `Estimate` whose value is the least-squares slope through the per-x means of log y
      (geometric means over replicates). With S >= 2 the interval resamples, independently for
      every x, its S replicates; with S == 1 it resamples the fit's residuals.
    """
    x_K = np.asarray(x_K, dtype=np.float64)
    y_SxK = np.atleast_2d(np.asarray(y_SxK, dtype=np.float64))
    if x_K.ndim != 1 or x_K.size < 2 or y_SxK.shape[1] != x_K.size:
        raise ValueError(f"need x of shape [K>=2] and y of shape [S, K]; got {x_K.shape}, "
                         f"{y_SxK.shape}")
    if np.any(x_K <= 0) or np.any(~np.isfinite(y_SxK)) or np.any(y_SxK <= 0):
        raise ValueError(f"log-log fit needs positive finite values; got x={x_K}, y={y_SxK}")
    log_x, log_y = np.log(x_K), np.log(y_SxK)
    value = _slope(log_x, log_y.mean(axis=0))
    rng = np.random.default_rng(seed)
    num_rep, num_x = log_y.shape
    if num_rep >= 2:
        picks = rng.integers(0, num_rep, size=(num_resamples, num_rep, num_x))
        resampled = np.take_along_axis(log_y[None], picks, axis=1).mean(axis=1)
        slopes = np.polyfit(log_x, resampled.T, 1)[0]
    else:
        coef = np.polyfit(log_x, log_y[0], 1)
        fitted = np.polyval(coef, log_x)
        residuals = log_y[0] - fitted
        noise = residuals[rng.integers(0, num_x, size=(num_resamples, num_x))]
        slopes = np.polyfit(log_x, (fitted[None] + noise).T, 1)[0]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(slopes, [alpha, 1.0 - alpha])
    return Estimate(value, float(lo), float(hi), level)


def fit_semilog_slope(
    t_K, y_SxK, *, num_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Slope b of log y = a + b t (a geometric rate per unit of t), with a bootstrap interval.

    Args:
      t_K: abscissae (iteration counts), shape [K], K >= 2; any sign.
      y_SxK: positive measurements, shape [S, K], S >= 2: row s is replicate s's whole
        trajectory (e.g. one seed's error at every step).
    Returns:
      An `Estimate` whose value is the least-squares slope through the per-t means of log y.
      Unlike `fit_loglog_slope`, the interval resamples whole rows (seeds) with replacement:
      a trajectory's values at different t are one run, not independent draws.
    """
    t_K = np.asarray(t_K, dtype=np.float64)
    y_SxK = np.asarray(y_SxK, dtype=np.float64)
    if t_K.ndim != 1 or t_K.size < 2 or y_SxK.ndim != 2 or y_SxK.shape[0] < 2 \
            or y_SxK.shape[1] != t_K.size:
        raise ValueError(f"need t of shape [K>=2] and y of shape [S>=2, K]; got {t_K.shape}, "
                         f"{y_SxK.shape}")
    if np.any(~np.isfinite(t_K)) or np.any(~np.isfinite(y_SxK)) or np.any(y_SxK <= 0):
        raise ValueError(f"semi-log fit needs finite t and positive finite y; got t={t_K}, "
                         f"y={y_SxK}")
    log_y = np.log(y_SxK)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, log_y.shape[0], size=(num_resamples, log_y.shape[0]))
    slopes = np.polyfit(t_K, log_y[rows].mean(axis=1).T, 1)[0]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(slopes, [alpha, 1.0 - alpha])
    return Estimate(_slope(t_K, log_y.mean(axis=0)), float(lo), float(hi), level)


def standard_error(values_S) -> float:
    """Standard error of the mean of replicate values (shape [S]): sample standard deviation
    (ddof=1) over sqrt(S); NaN with fewer than two values, where no spread is measured."""
    values_S = np.asarray(values_S).ravel()
    if values_S.size < 2:
        return float("nan")
    return float(np.std(values_S, ddof=1) / np.sqrt(values_S.size))


def binomial_difference_se(p: float, trials: int) -> float:
    """Standard error of the difference of two independent success fractions, each over
    `trials` Bernoulli(p) draws (e.g. two seed-mean test accuracies near p on the same number
    of test predictions): sqrt(2 p (1 - p) / trials)."""
    return np.sqrt(2.0 * p * (1.0 - p) / trials)


def bootstrap_mean(
    values_S, *, num_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean of replicate values (shape [S]) with a percentile bootstrap interval."""
    values_S = np.asarray(values_S, dtype=np.float64).ravel()
    if values_S.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    rng = np.random.default_rng(seed)
    means = values_S[rng.integers(0, values_S.size, size=(num_resamples, values_S.size))]
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means.mean(axis=1), [alpha, 1.0 - alpha])
    return Estimate(float(values_S.mean()), float(lo), float(hi), level)


def wilson_interval(successes: int, trials: int, *, z: float = 1.96) -> Estimate:
    """The fraction successes / trials with its Wilson score interval (95% for z = 1.96;
    Wilson 1927): unlike the normal approximation it stays inside [0, 1] and is not empty
    at 0 or `trials` successes, so a count of 0 still bounds the fraction from above."""
    if trials < 1 or not 0 <= successes <= trials:
        raise ValueError(f"successes={successes}, trials={trials}; need 0 <= successes <= "
                         "trials and trials >= 1")
    p = successes / trials
    shrink = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / shrink
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / shrink
    return Estimate(p, float(max(0.0, centre - half)), float(min(1.0, centre + half)),
                    0.95, "Wilson score")
