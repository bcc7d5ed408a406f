"""Asymptotic test risk of min-norm ("ridgeless") and ridge least squares, isotropic features.

Hastie, Montanari, Rosset & Tibshirani 2019 ("Surprises in high-dimensional ridgeless least
squares interpolation", arXiv:1903.08560). Model: rows x_i ~ N(0, I_p), y_i = x_i . beta + eps_i
with E eps = 0, Var eps = sigma^2, ||beta||^2 = r^2, n samples, p features, p / n -> gamma.
The risk is the excess test error R = E_x (x . (beta_hat - beta))^2 = ||beta_hat - beta||^2
(the noise sigma^2 of a test label is not included).

Ridgeless (Thm 1, isotropic case; beta_hat = pinv(X) y, the min-norm least-squares solution):

    R(gamma) = sigma^2 gamma / (1 - gamma)                        for gamma < 1,
    R(gamma) = r^2 (1 - 1/gamma) + sigma^2 / (gamma - 1)          for gamma > 1,

infinite at gamma = 1 (the interpolation threshold, where double descent peaks).

Ridge (Thm 5 / Dobriban & Wager 2018; beta_hat = (X^T X / n + lam I)^-1 X^T y / n, lam > 0):

    R(gamma, lam) = r^2 lam^2 m'(-lam) + sigma^2 gamma (m(-lam) - lam m'(-lam)),

where m(z) = int dmu(s) / (s - z) is the Stieltjes transform of the Marchenko-Pastur law mu of
the eigenvalues of X^T X / n at ratio gamma; at z = -lam it is the positive root of
gamma lam m^2 + (1 - gamma + lam) m - 1 = 0. The first term is the bias
lam^2 beta^T (S + lam)^-2 beta (for beta uniform on its sphere) and the second the variance
sigma^2 / n tr(S (S + lam)^-2), with S = X^T X / n.

NumPy only (closed forms evaluated on the host); inputs broadcast as NumPy arrays.
"""

from __future__ import annotations

import numpy as np


def _check_common(gamma, snr_terms: dict[str, float]) -> np.ndarray:
    gamma = np.asarray(gamma, dtype=np.float64)
    if np.any(~np.isfinite(gamma)) or np.any(gamma <= 0):
        raise ValueError(f"gamma={gamma!r}; every p/n ratio must be finite and > 0")
    for name, value in snr_terms.items():
        if not value >= 0:
            raise ValueError(f"{name}={value!r}; must be >= 0")
    return gamma


def ridgeless_risk(gamma, signal: float, noise: float) -> np.ndarray:
    """Limiting excess risk of min-norm least squares (Hastie et al. 2019, Thm 1); shape of gamma.

    Args:
      gamma: p / n, shape [K] (or scalar), each > 0.
      signal: r^2 = ||beta||^2.
      noise: sigma^2 = Var(eps).
    Returns:
      sigma^2 gamma / (1 - gamma) below 1, r^2 (1 - 1/gamma) + sigma^2 / (gamma - 1) above 1,
      +inf at gamma = 1.
    """
    gamma = _check_common(gamma, {"signal": signal, "noise": noise})
    with np.errstate(divide="ignore", invalid="ignore"):
        under = noise * gamma / (1.0 - gamma)
        over = signal * (1.0 - 1.0 / gamma) + noise / (gamma - 1.0)
    return np.where(gamma < 1, under, np.where(gamma > 1, over, np.inf))


def marchenko_pastur_stieltjes(gamma, lam) -> tuple[np.ndarray, np.ndarray]:
    """(m(-lam), m'(-lam)) of the Marchenko-Pastur law at ratio gamma, for lam > 0.

    m(-lam) = E 1 / (s + lam) and m'(-lam) = E 1 / (s + lam)^2 over the limiting eigenvalues s of
    X^T X / n (a point mass 1 - 1/gamma at 0 included when gamma > 1):

        m = [-(1 - gamma + lam) + sqrt((1 - gamma + lam)^2 + 4 gamma lam)] / (2 gamma lam),
        m' = (gamma m^2 + m) / (2 gamma lam m + 1 - gamma + lam)   (implicit differentiation).
    """
    gamma = _check_common(gamma, {})
    lam = np.asarray(lam, dtype=np.float64)
    if np.any(~(lam > 0)):
        raise ValueError(f"lam={lam!r}; the ridge penalty must be > 0 (use ridgeless_risk at 0)")
    b = 1.0 - gamma + lam
    m = (-b + np.sqrt(b * b + 4.0 * gamma * lam)) / (2.0 * gamma * lam)
    dm = (gamma * m * m + m) / (2.0 * gamma * lam * m + b)
    return m, dm


def ridge_risk(gamma, lam, signal: float, noise: float) -> np.ndarray:
    """Limiting excess risk of ridge regression, isotropic features (Hastie et al. 2019, Thm 5).

    R = r^2 lam^2 m'(-lam) + sigma^2 gamma (m(-lam) - lam m'(-lam)) for the estimator
    (X^T X / n + lam I)^-1 X^T y / n; shapes of gamma and lam broadcast. Tends to
    `ridgeless_risk` as lam -> 0 (for gamma != 1) and is finite at gamma = 1 for every lam > 0.
    """
    _check_common(gamma, {"signal": signal, "noise": noise})
    m, dm = marchenko_pastur_stieltjes(gamma, lam)
    lam = np.asarray(lam, dtype=np.float64)
    return signal * lam * lam * dm + noise * np.asarray(gamma) * (m - lam * dm)


def optimal_ridge_penalty(gamma, signal: float, noise: float) -> np.ndarray:
    """lam* = sigma^2 gamma / r^2, the penalty minimising `ridge_risk` for isotropic beta
    (Dobriban & Wager 2018, Thm 2.1; Hastie et al. 2019, Cor. 5): the Bayes-optimal ridge."""
    gamma = _check_common(gamma, {"signal": signal, "noise": noise})
    if not signal > 0:
        raise ValueError(f"signal={signal!r}; the optimal penalty needs r^2 > 0")
    return noise * gamma / signal


def ridgeless_risk_finite(n: int, p: int, signal: float, noise: float) -> float:
    """Exact expected excess risk of min-norm least squares at finite n, p, Gaussian design.

    sigma^2 p / (n - p - 1) for p < n - 1 (E tr (X^T X)^-1, inverse Wishart), and
    r^2 (1 - n / p) + sigma^2 n / (p - n - 1) for p > n + 1 (the bias is the part of beta
    outside a uniformly random n-dimensional row space); +inf for |p - n| <= 1. Its gap to
    `ridgeless_risk(p / n)` is the finite-size error of the asymptotic formula, O(1 / |n - p|).
    """
    if n < 1 or p < 1:
        raise ValueError(f"n={n}, p={p}; both must be >= 1")
    _check_common(p / n, {"signal": signal, "noise": noise})
    if p < n - 1:
        return noise * p / (n - p - 1)
    if p > n + 1:
        return signal * (1.0 - n / p) + noise * n / (p - n - 1)
    return float("inf")


def least_squares_risk_samples(n: int, p: int, lams, signal: float, noise: float,
                               trials: int, seed: int = 0,
                               max_entries: int = 4_000_000) -> np.ndarray:
    """Monte-Carlo excess risks ||beta_hat - beta||^2 of `trials` independent problems, each
    fitted with every penalty in `lams`; shape [len(lams), trials].

    Each trial draws X [n, p] with N(0, 1) entries, beta uniform on the sphere of radius
    sqrt(signal), eps ~ N(0, noise I_n), y = X beta + eps, and fits
    beta_hat = (X^T X + n lam I)^-1 X^T y = X^T (X X^T + n lam I)^-1 y (the smaller system is
    solved), which at lam = 0 is the min-norm least-squares solution pinv(X) y (p != n needed).
    All penalties see the same draws. Float64 NumPy; trials are batched `max_entries / (n p)`
    at a time to bound memory.
    """
    lams = np.atleast_1d(np.asarray(lams, dtype=np.float64))
    if lams.ndim != 1 or np.any(lams < 0) or (p == n and np.any(lams == 0)):
        raise ValueError(f"lams={lams.tolist()}, n={n}, p={p}: need every lam >= 0, and lam > 0 "
                         "when p == n (there the min-norm risk has infinite mean)")
    if trials < 1:
        raise ValueError(f"trials={trials}; must be >= 1")
    rng = np.random.default_rng(seed)
    chunk = max(1, max_entries // (n * p))
    risks = []
    for start in range(0, trials, chunk):
        t = min(chunk, trials - start)
        x = rng.standard_normal((t, n, p))
        beta = rng.standard_normal((t, p))
        beta *= np.sqrt(signal) / np.linalg.norm(beta, axis=1, keepdims=True)
        y = (x @ beta[..., None])[..., 0] + np.sqrt(noise) * rng.standard_normal((t, n))
        x_t = np.swapaxes(x, 1, 2)
        # matmul (batched BLAS), not einsum: the Gram matrices dominate the cost.
        gram = x_t @ x if p <= n else x @ x_t
        eye = np.eye(gram.shape[-1])
        per_lam = []
        for lam in lams:
            if p <= n:
                beta_hat = np.linalg.solve(gram + n * lam * eye, x_t @ y[..., None])[..., 0]
            else:
                beta_hat = (x_t @ np.linalg.solve(gram + n * lam * eye, y[..., None]))[..., 0]
            per_lam.append(np.sum((beta_hat - beta) ** 2, axis=1))
        risks.append(np.stack(per_lam))
    return np.concatenate(risks, axis=1)
