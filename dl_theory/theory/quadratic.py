"""Closed forms for gradient methods on quadratics and linear regression.

- Gradient descent on f(w) = 1/2 (w - w*)^T H (w - w*) with H = Q diag(lambda) Q^T moves each
  eigen-coordinate delta_i = q_i . (w - w*) as delta_i(t) = (1 - lr lambda_i)^t delta_i(0), so
  it converges for every start iff |1 - lr lambda_max| < 1, i.e. 0 < lr < 2 / lambda_max
  (Nesterov 2004, "Introductory Lectures on Convex Optimization", Sec. 1.2.3 and Thm 2.1.15).
- A minibatch of B examples drawn uniformly with replacement from N has a gradient whose
  expected squared distance to the full gradient is tr(Sigma) / B, Sigma the covariance of
  one example's gradient over the N examples (the variance of a mean of B i.i.d. draws).
- For linear regression y = w* . x + sigma eps, x ~ N(0, I_d), loss (w . x - y)^2, the gradient
  noise scale of McCandlish et al. 2018 ("An Empirical Model of Large-Batch Training", App. A)
  is B_simple = tr(Sigma) / |G|^2 = ((d + 1) |delta|^2 + d sigma^2) / |delta|^2, delta = w - w*.
- Gradient descent preconditioned by diag(d) is plain gradient descent in the coordinates
  D^(1/2) w, so its 1/L step is 1 / lambda_max(D^(-1/2) H D^(-1/2)); with a prox after each
  step it is (preconditioned) proximal gradient, ISTA for an l1 penalty (Beck & Teboulle 2009),
  run here as an iteration (`preconditioned_proximal_gradient`), not a closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def gd_loss_curve(eigenvalues_D, error_D, learning_rate: float, steps: int) -> np.ndarray:
    """f(w_t) = 1/2 sum_i lambda_i (1 - lr lambda_i)^(2t) delta_i(0)^2 for t = 0..steps.

    eigenvalues_D: the Hessian's eigenvalues [D]; error_D: the initial error w_0 - w* in the
    eigenbasis [D]. Returns shape [steps + 1], in float64 (overflow gives inf, not an error).
    """
    lam = np.asarray(eigenvalues_D, np.float64)
    err = np.asarray(error_D, np.float64)
    if lam.shape != err.shape or lam.ndim != 1:
        raise ValueError(f"eigenvalues shape {lam.shape} and error shape {err.shape} must be "
                         "equal and 1-D")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r}; must be an integer >= 0")
    t_T = np.arange(steps + 1, dtype=np.float64)[:, None]
    with np.errstate(over="ignore"):
        factor_TxD = np.abs(1.0 - learning_rate * lam[None, :]) ** (2.0 * t_T)
        return 0.5 * (factor_TxD * (lam * err ** 2)[None, :]).sum(axis=1)


def preconditioned_step_size(hessian_DxD, preconditioner_D) -> float:
    """1 / L for gradient descent preconditioned by diag(d) on a quadratic with Hessian H:
    the step w <- w - eta D^-1 grad is gradient descent in the coordinates D^(1/2) w, whose
    Hessian D^(-1/2) H D^(-1/2) has largest eigenvalue L (eta = 1 / L: monotone descent)."""
    d = np.asarray(preconditioner_D)
    return 1.0 / np.linalg.eigvalsh(hessian_DxD / np.sqrt(np.outer(d, d))).max()


def preconditioned_proximal_gradient(hessian_DxD, linear_D, prox, preconditioner_D, tau_D,
                                     step_size: float, iterations: int, reference_D):
    """Proximal gradient on f(w) + R(w), f(w) = 1/2 w^T H w - b^T w, preconditioned by diag(d):
    w <- prox(w - eta D^-1 (H w - b), tau) from w = 0, `prox(u, tau)` the map of R (e.g.
    `dl_theory.optim.proximal.PROX_MAPS`), `iterations` steps by `lax.scan`. Returns (final
    w [D], sup |w - reference| after every step [iterations]), in the caller's precision
    (float64 under `jax.enable_x64`)."""
    h, b = jnp.asarray(hessian_DxD), jnp.asarray(linear_D)
    d, tau = jnp.asarray(preconditioner_D), jnp.asarray(tau_D)

    def step(w, _):
        w = prox(w - step_size * (h @ w - b) / d, tau)
        return w, jnp.max(jnp.abs(w - reference_D))

    return jax.lax.scan(step, jnp.zeros(h.shape[0]), None, length=iterations)


def minibatch_gradient_variance(per_example_grads_NxP, batch_size: int) -> float:
    """E |g_B - G|^2 = tr(Sigma) / B for a mean of B per-example gradients drawn uniformly with
    replacement from the N rows of per_example_grads_NxP (Sigma with the 1/N normalisation)."""
    g_NxP = np.asarray(per_example_grads_NxP, np.float64)
    if g_NxP.ndim != 2 or batch_size < 1:
        raise ValueError(f"need per-example gradients [N, P] and batch_size >= 1; got shape "
                         f"{g_NxP.shape}, batch_size={batch_size}")
    centred = g_NxP - g_NxP.mean(axis=0, keepdims=True)
    return float(np.mean(np.sum(centred ** 2, axis=1)) / batch_size)


def linear_regression_noise_scale(dim: int, delta_sq_norm: float, noise_var: float) -> float:
    """B_simple = ((d + 1)|delta|^2 + d sigma^2) / |delta|^2 for Gaussian linear regression.

    Per-example gradient g = 2 r x with r = delta . x - sigma eps: G = 2 delta and
    E|g|^2 = 4 ((d + 2)|delta|^2 + d sigma^2) (E[x_i x_j |x|^2] = (d + 2) delta_ij), so
    tr(Sigma) = 4 ((d + 1)|delta|^2 + d sigma^2) and |G|^2 = 4 |delta|^2.
    """
    if dim < 1 or delta_sq_norm <= 0 or noise_var < 0:
        raise ValueError(f"dim={dim} (>= 1), delta_sq_norm={delta_sq_norm} (> 0), "
                         f"noise_var={noise_var} (>= 0)")
    return ((dim + 1) * delta_sq_norm + dim * noise_var) / delta_sq_norm
