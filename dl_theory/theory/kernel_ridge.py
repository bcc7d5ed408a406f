"""Kernel ridge regression with a Gaussian (RBF) kernel, tuned on a validation set.

The estimator (e.g. Schölkopf & Smola 2002, Sec. 4; Caponnetto & De Vito 2007):

    f_hat = argmin_{f in H_k} (1/n) sum_i (f(x_i) - y_i)^2 + lam ||f||^2_{H_k}
          = sum_i alpha_i k(x_i, .),   alpha = (K + n lam I)^{-1} y,

with K_ij = k(x_i, x_j) = exp(-||x_i - x_j||^2 / (2 ell^2)). Its minimax-optimal rate on
s-smooth targets in d dimensions is n^{-2s/(2s+d)} (Caponnetto & De Vito 2007): the curse of
dimensionality that compositional deep nets avoid (Poggio et al. 2017; Schmidt-Hieber 2020).

A grid of ridges costs one eigendecomposition per lengthscale: with K = U diag(s) U^T,
alpha(lam) = U diag(1 / (s + n lam)) U^T y for every lam at once. Float32 unless the inputs are
float64; the ridges should keep n lam above ~1e-6 * max(s) in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp


class KernelRidgeFit(NamedTuple):
    """A fitted estimator: training inputs [N, D], coefficients alpha [N, K], lengthscale."""

    x_train: jax.Array
    alpha: jax.Array
    lengthscale: jax.Array


class KernelRidgeSelection(NamedTuple):
    """Validation-tuned estimator: the fit, the chosen (lengthscale, ridge) and the validation
    mean squared errors of the whole grid, shape [len(lengthscales), len(ridges)]."""

    fit: KernelRidgeFit
    lengthscale: float
    ridge: float
    val_mse: jax.Array


def _check_positive(name: str, values) -> None:
    values = jnp.asarray(values)
    if values.ndim > 1 or values.size == 0 or bool(jnp.any(values <= 0)):
        raise ValueError(f"{name}={values.tolist()}; need a non-empty list of positive numbers")


def rbf_kernel(x_NxD: jax.Array, z_MxD: jax.Array, lengthscale) -> jax.Array:
    """k(x, z) = exp(-||x - z||^2 / (2 lengthscale^2)); shapes [N, D], [M, D] -> [N, M]."""
    sq = (jnp.sum(x_NxD**2, axis=1)[:, None] + jnp.sum(z_MxD**2, axis=1)[None, :]
          - 2.0 * x_NxD @ z_MxD.T)
    return jnp.exp(-jnp.maximum(sq, 0.0) / (2.0 * lengthscale**2))


def _as_matrix(y) -> jax.Array:
    y = jnp.asarray(y)
    return y[:, None] if y.ndim == 1 else y


def kernel_ridge_fit(x_NxD: jax.Array, y_NxK: jax.Array, lengthscale: float,
                     ridge: float) -> KernelRidgeFit:
    """alpha = (K + n ridge I)^{-1} y by Cholesky; y of shape [N, K] or [N]."""
    _check_positive("lengthscale", [lengthscale])
    _check_positive("ridge", [ridge])
    y_NxK = _as_matrix(y_NxK)
    if x_NxD.ndim != 2 or y_NxK.shape[0] != x_NxD.shape[0]:
        raise ValueError(f"x shape {x_NxD.shape}, y shape {y_NxK.shape}; need [N, D] and [N, K]")
    n = x_NxD.shape[0]
    gram = rbf_kernel(x_NxD, x_NxD, lengthscale) + n * ridge * jnp.eye(n, dtype=x_NxD.dtype)
    alpha = jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(gram), y_NxK)
    return KernelRidgeFit(x_NxD, alpha, jnp.asarray(lengthscale, x_NxD.dtype))


def kernel_ridge_predict(fit: KernelRidgeFit, x_MxD: jax.Array) -> jax.Array:
    """f_hat(x) = sum_i alpha_i k(x_i, x); shape [M, D] -> [M, K]."""
    return rbf_kernel(x_MxD, fit.x_train, fit.lengthscale) @ fit.alpha


@jax.jit
def _grid_val_mse(x_NxD, y_NxK, x_val_MxD, y_val_MxK, lengthscales_L, ridges_R):
    """Validation MSE [L, R] of every (lengthscale, ridge), one eigh per lengthscale."""
    n = x_NxD.shape[0]

    def per_lengthscale(ell):
        s_N, u_NxN = jnp.linalg.eigh(rbf_kernel(x_NxD, x_NxD, ell))
        s_N = jnp.maximum(s_N, 0.0)  # round-off can leave tiny negative eigenvalues
        uty_NxK = u_NxN.T @ y_NxK
        k_val_MxN = rbf_kernel(x_val_MxD, x_NxD, ell) @ u_NxN

        def per_ridge(lam):
            pred = k_val_MxN @ (uty_NxK / (s_N + n * lam)[:, None])
            return jnp.mean(jnp.sum((pred - y_val_MxK) ** 2, axis=1))

        return jax.vmap(per_ridge)(ridges_R)

    return jax.lax.map(per_lengthscale, lengthscales_L)


def tune_kernel_ridge(x_NxD: jax.Array, y_NxK: jax.Array, x_val_MxD: jax.Array,
                      y_val_MxK: jax.Array, lengthscales: Sequence[float],
                      ridges: Sequence[float]) -> KernelRidgeSelection:
    """The (lengthscale, ridge) of the grid with the smallest validation MSE, refitted.

    Validation MSE is (1/M) sum_j ||f_hat(x_j) - y_j||^2 on the held-out set; ties go to the
    first grid point (lengthscales outer, ridges inner).
    """
    _check_positive("lengthscales", lengthscales)
    _check_positive("ridges", ridges)
    y_NxK, y_val_MxK = _as_matrix(y_NxK), _as_matrix(y_val_MxK)
    dtype = x_NxD.dtype
    val = _grid_val_mse(x_NxD, y_NxK, x_val_MxD, y_val_MxK,
                        jnp.asarray(lengthscales, dtype), jnp.asarray(ridges, dtype))
    i, j = divmod(int(jnp.argmin(jnp.where(jnp.isfinite(val), val, jnp.inf))), len(ridges))
    ell, lam = float(lengthscales[i]), float(ridges[j])
    return KernelRidgeSelection(kernel_ridge_fit(x_NxD, y_NxK, ell, lam), ell, lam, val)
