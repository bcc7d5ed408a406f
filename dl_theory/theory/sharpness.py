"""Sharpness: the largest eigenvalue of the loss Hessian, by power iteration on HVPs.

Gradient descent with step lr on a quadratic is stable iff lr < 2 / lambda_max(H) (the classical
bound that the LR finder uses); Cohen et al. 2021 ("Gradient Descent on Neural Networks
Typically Occurs at the Edge of Stability", ICLR) measure lambda_max rising to 2 / lr and
hovering there. Hessian-vector products are forward-over-reverse (Pearlmutter 1994; the JAX
autodiff cookbook's `hvp`): one HVP costs about one forward and one backward pass, and the
Hessian itself ([P, P]) is never formed.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

LossFn = Callable[[Any], jax.Array]


class HessianEigen(NamedTuple):
    """Result of `hessian_top_eigenvalue`."""

    eigenvalue: jax.Array  # scalar: lambda_max, the algebraically largest eigenvalue
    eigenvector: Any  # pytree shaped like params, unit Euclidean norm over all leaves
    num_iters: jax.Array  # int scalar: HVPs used, over both passes when a shift was needed


def hvp(loss_fn: LossFn, params: Any, v: Any) -> Any:
    """Hessian-vector product H v = d/de grad L(params + e v) at e = 0, a pytree like params.

    Forward-over-reverse (jax.jvp of jax.grad): memory of one backward pass, time of about
    three forward passes. `loss_fn(params) -> scalar`; close over the batch (inside a jitted
    caller the closure costs nothing). `v` has the structure and shapes of `params`.
    """
    return jax.jvp(jax.grad(loss_fn), (params,), (v,))[1]


def _power_iteration(
    matvec: Callable[[jax.Array], jax.Array],
    v0_P: jax.Array,
    shift: jax.Array,
    num_iters: int | jax.Array,
    tol: float | jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Power iteration on (H - shift I); returns (Rayleigh quotient, unit vector, iterations).

    Stops after num_iters, or once the Rayleigh quotient moves by at most tol * |quotient|.
    """

    def step(state):
        i, v, quotient, _ = state
        w = matvec(v) - shift * v
        norm = jnp.linalg.norm(w)
        # A zero product (v in H's null space) would divide 0 by 0; keep v and stop instead.
        v_next = jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), v)
        return i + 1, v_next, jnp.vdot(v, w), quotient

    def not_converged(state):
        i, _, quotient, previous = state
        return (i < num_iters) & (jnp.abs(quotient - previous) > tol * jnp.abs(quotient))

    v0_P = v0_P / jnp.linalg.norm(v0_P)
    zero = jnp.zeros((), v0_P.dtype)
    init = (jnp.zeros((), jnp.int32), v0_P, zero, jnp.full((), jnp.inf, v0_P.dtype))
    i, v, quotient, _ = jax.lax.while_loop(not_converged, step, init)
    return quotient, v, i


def hessian_top_eigenvalue(
    loss_fn: LossFn,
    params: Any,
    num_iters: int = 100,
    key: jax.Array | None = None,
    tol: float = 1e-4,
) -> HessianEigen:
    """lambda_max of the Hessian of `loss_fn` at `params`, by power iteration on `hvp`.

    Power iteration v <- H v / ||H v|| converges to the eigenvalue of largest magnitude, at the
    rate |lambda_2 / lambda_1| per step. When that eigenvalue mu is negative (a saddle whose
    negative curvature dominates), a second pass iterates on H - mu I, whose spectrum
    lambda_i - mu >= 0 has lambda_max - mu on top, and returns that plus mu; it converges at the
    rate (lambda_2 - mu) / (lambda_max - mu), slower, and costs up to num_iters more HVPs.
    If lambda_max = -lambda_min exactly the first pass does not converge to either (its
    quotient stays between them); that is not detected.

    Args:
        loss_fn: `loss_fn(params) -> scalar`; close over the batch.
        params: any pytree of float arrays; flattened with ravel_pytree (P entries in all).
        num_iters: at most this many HVPs per pass.
        key: draws the start vector (it only needs to be generic, i.e. not orthogonal to the
            top eigenvector); None means jax.random.key(0).
        tol: stop once the Rayleigh quotient changes by at most tol times its magnitude.

    Returns:
        HessianEigen(eigenvalue, eigenvector, num_iters). jit-friendly: both passes are
        lax.while_loop and the choice of the second is lax.cond (num_iters and tol may be
        traced).
    """
    loss_shape = jax.eval_shape(loss_fn, params).shape
    if loss_shape != ():
        raise ValueError(f"loss_fn(params) has shape {loss_shape}; expected a scalar")
    flat_P, unravel = ravel_pytree(params)
    if not jnp.issubdtype(flat_P.dtype, jnp.floating):
        raise ValueError(f"params flatten to dtype {flat_P.dtype}; expected floating point")
    key = jax.random.key(0) if key is None else key

    def flat_loss(p_P: jax.Array) -> jax.Array:
        return loss_fn(unravel(p_P))

    def matvec(v_P: jax.Array) -> jax.Array:
        return jax.jvp(jax.grad(flat_loss), (flat_P,), (v_P,))[1]

    v0_P = jax.random.normal(key, flat_P.shape, flat_P.dtype)
    top, v, iters = _power_iteration(matvec, v0_P, jnp.zeros((), flat_P.dtype), num_iters, tol)

    def shifted(_):
        # Restart from v0: the first pass's vector is the mu-eigenvector, which H - mu I maps
        # to zero.
        quotient, v_shifted, more = _power_iteration(matvec, v0_P, top, num_iters, tol)
        return quotient + top, v_shifted, iters + more

    def unshifted(_):
        return top, v, iters

    eigenvalue, v, iters = jax.lax.cond(top < 0, shifted, unshifted, None)
    return HessianEigen(eigenvalue, unravel(v), iters)
