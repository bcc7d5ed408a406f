"""Sparse coding by a weight-tied ReLU autoencoder (Rangamani et al. 2018): the closed-form
gradient of its squared loss, Monte Carlo moments of that gradient, support recovery, and
column-wise distances between dictionaries.

The loss of one sample is L = 1/2 ||W^T r - y||^2 with r = ReLU(W y - eps). Writing
m = 1[W y - eps > 0] and e = W^T r - y, the gradient with respect to row W_i is

    dL/dW_i = r_i e + m_i <W_i, e> y          (decoder term + encoder term),

i.e. dL/dW = r e^T + (m * (W e)) y^T. `closed_form_gradient` is this formula; the tests check
it against jax.grad and finite differences.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def theorem_bias(support_size: int, mean_value: float, radius: float,
                 incoherence: float) -> float:
    """eps = 2 m1 k (delta + mu / sqrt(n)): the ReLU bias of the support-recovery theorem for
    codes with k non-zeros of mean m1, rows within `radius` (delta) of A*'s columns and
    coherence mu / sqrt(n) = `incoherence`. It exceeds twice the mean of an off-support
    unit's worst-case input m1 k (delta + mu / sqrt(n)), so that an off-support unit stays off
    unless its input deviates from that mean by a further m1 k (delta + mu/sqrt(n))."""
    return 2.0 * mean_value * support_size * (radius + incoherence)


def closed_form_gradient(w_HxN: jax.Array, y_BxN: jax.Array, bias: float) -> jax.Array:
    """Batch mean of dL/dW = r e^T + (m * (W e)) y^T, shape [h, n]."""
    pre_BxH = y_BxN @ w_HxN.T - bias
    code_BxH = jax.nn.relu(pre_BxH)
    err_BxN = code_BxH @ w_HxN - y_BxN
    back_BxH = jnp.where(pre_BxH > 0, err_BxN @ w_HxN.T, 0.0)
    return (code_BxH.T @ err_BxN + back_BxH.T @ y_BxN) / y_BxN.shape[0]


@jax.jit
def _gradient_sums(w_HxN, y_BxN, bias):
    """Batch sums of the per-sample gradients g_s, of ||g_s||_F^2 and of sum_i rho_si^2, with
    rho_si = <g_si, W_i / |W_i|> the radial component of row i (so that the squared norm of
    g_s's part tangent to the rows' spheres is ||g_s||^2 - sum_i rho_si^2)."""
    pre_BxH = y_BxN @ w_HxN.T - bias
    code_BxH = jax.nn.relu(pre_BxH)
    err_BxN = code_BxH @ w_HxN - y_BxN
    back_BxH = jnp.where(pre_BxH > 0, err_BxN @ w_HxN.T, 0.0)
    grad_sum = code_BxH.T @ err_BxN + back_BxH.T @ y_BxN
    # ||r e^T + v y^T||_F^2 = |r|^2 |e|^2 + 2 (r.v)(e.y) + |v|^2 |y|^2, per sample.
    sq = (jnp.sum(code_BxH**2, 1) * jnp.sum(err_BxN**2, 1)
          + 2.0 * jnp.sum(code_BxH * back_BxH, 1) * jnp.sum(err_BxN * y_BxN, 1)
          + jnp.sum(back_BxH**2, 1) * jnp.sum(y_BxN**2, 1))
    unit_HxN = w_HxN / jnp.linalg.norm(w_HxN, axis=1, keepdims=True)
    rho_BxH = code_BxH * (err_BxN @ unit_HxN.T) + back_BxH * (y_BxN @ unit_HxN.T)
    return grad_sum, jnp.sum(sq), jnp.sum(rho_BxH**2)


def _debiased(mean_sq: float, per_sample_sq: float, count: int) -> dict[str, float]:
    """||g||^2 ~ ||g_hat||^2 - tr(Cov) / N with tr(Cov) ~ (mean ||g_s||^2 - ||g_hat||^2)
    N / (N - 1), since E||g_hat||^2 = ||g||^2 + tr(Cov g_s) / N."""
    trace_cov = max(per_sample_sq - mean_sq, 0.0) * count / (count - 1)
    debiased_sq = mean_sq - trace_cov / count
    return {"norm": math.sqrt(max(debiased_sq, 0.0)), "squared": debiased_sq,
            "raw_norm": math.sqrt(mean_sq), "noise": math.sqrt(trace_cov / count),
            "samples": count}


def expected_gradient_norm(w_HxN: jax.Array, batches, bias: float) -> dict[str, dict]:
    """Monte Carlo estimate of ||E dL/dW||_F over the samples of `batches` (an iterable of
    [B, n] arrays of y), unbiased for the squared norm (`_debiased`), for the full gradient
    ("full") and for its part tangent to the sphere of each row ("tangent": the gradient at
    matched row norms). Each holds `norm` (sqrt of the debiased square, 0 when that is
    negative), `squared`, `raw_norm` ||g_hat||, `noise` sqrt(tr(Cov) / N) (the Monte Carlo
    error of g_hat in Frobenius norm) and `samples` N."""
    total, sq_total, rho_total, count = 0.0, 0.0, 0.0, 0
    for y_BxN in batches:
        grad_sum, sq, rho_sq = _gradient_sums(w_HxN, y_BxN, bias)
        total, count = total + grad_sum, count + y_BxN.shape[0]
        sq_total, rho_total = sq_total + float(sq), rho_total + float(rho_sq)
    mean = np.asarray(total, np.float64) / count
    unit = np.asarray(w_HxN, np.float64)
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    tangent = mean - np.sum(mean * unit, axis=1, keepdims=True) * unit
    return {"full": _debiased(float(np.sum(mean**2)), sq_total / count, count),
            "tangent": _debiased(float(np.sum(tangent**2)), (sq_total - rho_total) / count,
                                 count)}


@jax.jit
def support_recovery(w_HxN: jax.Array, codes_BxH: jax.Array, y_BxN: jax.Array,
                     bias: float) -> tuple[jax.Array, jax.Array]:
    """(exact, unit_errors): per sample, whether supp ReLU(W y - eps) == supp x* on every
    unit (bool [B]), and how many units disagree (int [B])."""
    fired_BxH = (y_BxN @ w_HxN.T - bias) > 0
    wrong = jnp.sum(fired_BxH != (codes_BxH > 0), axis=1)
    return wrong == 0, wrong


def columnwise_distance(w_HxN, dictionary_NxH, *, normalise: bool = False) -> np.ndarray:
    """||W_i - A*_i|| for every i (rows of W against columns of A*), shape [h]; with
    `normalise`, each row of W is first scaled to unit norm (the distance of directions,
    blind to the row norms that the bias makes the loss prefer above 1)."""
    w = np.asarray(w_HxN, np.float64)
    if normalise:
        w = w / np.linalg.norm(w, axis=1, keepdims=True)
    return np.linalg.norm(w - np.asarray(dictionary_NxH, np.float64).T, axis=1)


def rows_at_distance(key: jax.Array, dictionary_NxH: jax.Array, distance: float) -> jax.Array:
    """W [h, n] with unit rows W_i = cos(t) A*_i + sin(t) u_i, u_i a random unit vector
    orthogonal to A*_i, and 2 sin(t / 2) = `distance`: every row exactly `distance` from its
    dictionary column, with the norm of A*'s (matched norms). distance in [0, 2]."""
    if not 0.0 <= distance <= 2.0:
        raise ValueError(f"distance={distance}; unit vectors are at most 2 apart")
    a_HxN = jnp.asarray(dictionary_NxH).T
    u = jax.random.normal(key, a_HxN.shape, a_HxN.dtype)
    u = u - jnp.sum(u * a_HxN, axis=1, keepdims=True) * a_HxN
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    angle = 2.0 * math.asin(distance / 2.0)
    return math.cos(angle) * a_HxN + math.sin(angle) * u
