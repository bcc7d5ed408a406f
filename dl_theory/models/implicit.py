"""Implicit (equilibrium) models: y = C x + D u where x solves x = relu(A x + B u + b).

El Ghaoui, Gu, Travacca, Askari & Tsai (SIAM J. Math. Data Sci. 2021), well-posedness:
with a componentwise non-expansive activation, ||A||_inf <= kappa < 1 makes the map a
kappa-contraction in the sup norm, so the fixed point is unique and Picard iteration
x_{k+1} = relu(A x_k + B u + b) reaches it with error <= kappa^k ||x_0 - x*||_inf. Training
keeps the condition by projecting each row of A onto the l1 ball of radius kappa, as they
do; here the projection is part of the forward pass (a reparameterisation), so any
optimizer and `fit` keep the model well-posed without a projection step of their own.

Gradients come from the implicit function theorem (Bai, Kolter & Koltun, NeurIPS 2019,
implicit backpropagation): at x* = f(theta, x*), the vector-Jacobian product of x* is
(df/dtheta)^T w with w = g + (df/dx)^T w, itself a contraction (||(df/dx)^T||_1 <= kappa)
solved by the same iteration. Nothing of the forward iterations is stored, so memory does
not grow with their number. Written with `jax.custom_vjp`: optimistix (which has a
fixed-point solver with an implicit adjoint) is not installed here, and the hand-written rule
is short and lets the solve raise `FixedPointError` naming the residual when it does not converge.
Under a half-precision policy the dense maps B, C, D compute in bfloat16 or float16 while the
solve and its adjoint stay float32 (`ImplicitModel.solve_dtype`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.user_errors import ConfigError


class FixedPointError(RuntimeError):
    """A fixed-point solve stopped at its iteration cap with the residual above tolerance."""


def project_rows_to_l1_ball(a_NxM: jax.Array, radius: float) -> jax.Array:
    """Each row of `a` projected (Euclidean) onto {v : ||v||_1 <= radius} (Duchi et al. 2008),
    so that ||a||_inf <= radius; rows already inside are unchanged."""
    mag = jnp.abs(a_NxM)
    sorted_desc = -jnp.sort(-mag, axis=-1)
    cumsum = jnp.cumsum(sorted_desc, axis=-1)
    j = jnp.arange(1, a_NxM.shape[-1] + 1, dtype=a_NxM.dtype).reshape(
        (1,) * (a_NxM.ndim - 1) + (-1,))
    active = sorted_desc - (cumsum - radius) / j > 0
    rho = jnp.sum(active, axis=-1, keepdims=True)
    theta = (jnp.take_along_axis(cumsum, rho - 1, axis=-1) - radius) / rho
    projected = jnp.sign(a_NxM) * jnp.maximum(mag - theta, 0.0)
    inside = jnp.sum(mag, axis=-1, keepdims=True) <= radius
    return jnp.where(inside, a_NxM, projected)


def relu_equilibrium_map(theta, x_BxN: jax.Array) -> jax.Array:
    """f(theta, x) = relu(x A^T + injection) with theta = (A [N, N], injection [B, N])."""
    a_NxN, injection_BxN = theta
    return jax.nn.relu(x_BxN @ a_NxN.T + injection_BxN)


def _raise_if_not_converged(residual, iterations, tol, max_iter, what):
    if not residual <= tol:  # NaN counts as not converged
        raise FixedPointError(
            f"{what} did not converge: residual max|x_k+1 - x_k| = {float(residual):.3g} > "
            f"tol={tol:g} after max_iter={int(iterations)} iterations; the model is not "
            f"well-posed enough (lower kappa) or needs more iterations (raise max_iter)")


def picard(step, x0, tol: float, max_iter: int, what: str = "fixed-point solve"):
    """Iterates x <- step(x) from x0 until max|x_k+1 - x_k| <= tol; returns (x, iterations).

    Raises `FixedPointError` (through a host callback, so also inside jit) if `max_iter`
    iterations leave the residual above `tol`.
    """

    def cond(carry):
        _, residual, k = carry
        return (residual > tol) & (k < max_iter)

    def body(carry):
        x, _, k = carry
        new = step(x)
        return new, jnp.max(jnp.abs(new - x)), k + 1

    init = (x0, jnp.asarray(jnp.inf, x0.dtype), jnp.asarray(0, jnp.int32))
    x, residual, k = jax.lax.while_loop(cond, body, init)
    jax.debug.callback(functools.partial(_raise_if_not_converged, tol=tol, max_iter=max_iter,
                                         what=what), residual, k)
    return x, k


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 3, 4))
def fixed_point(f, theta, x0, tol: float, max_iter: int):
    """x* = f(theta, x*) by Picard iteration from x0, differentiated implicitly in theta."""
    return picard(lambda x: f(theta, x), x0, tol, max_iter)[0]


def _fixed_point_fwd(f, theta, x0, tol, max_iter):
    x_star = fixed_point(f, theta, x0, tol, max_iter)
    return x_star, (theta, x_star)


def _fixed_point_bwd(f, tol, max_iter, residuals, g):
    theta, x_star = residuals
    _, vjp_x = jax.vjp(lambda x: f(theta, x), x_star)
    w, _ = picard(lambda w: g + vjp_x(w)[0], g, tol, max_iter, what="implicit adjoint solve")
    _, vjp_theta = jax.vjp(lambda t: f(t, x_star), theta)
    return vjp_theta(w)[0], jnp.zeros_like(x_star)


fixed_point.defvjp(_fixed_point_fwd, _fixed_point_bwd)


def unrolled_fixed_point(f, theta, x0, num_iter: int):
    """x_K after exactly `num_iter` Picard steps (a scan), differentiated by backpropagating
    through every step: memory grows with `num_iter`."""
    return jax.lax.scan(lambda x, _: (f(theta, x), None), x0, None, length=num_iter)[0]


GRADIENTS = ("implicit", "unrolled")


class ImplicitModel(nn.Module):
    """y = C x + D u, x = relu(A x + B u + b) with ||A||_inf <= kappa; shape [B, P] -> [B, K].

    `hidden` is the state size N. The effective A is the parameter with each row projected
    onto the l1 ball of radius `kappa` (< 1: a unique fixed point, Picard converges). The
    solve stops at max|x_k+1 - x_k| <= `tol` or raises `FixedPointError` after `max_iter`
    iterations. `gradient`: "implicit" (implicit-function-theorem adjoint, memory independent
    of the iteration count) or "unrolled" (exactly `max_iter` steps, backpropagated through).
    `dtype` is the compute dtype of the dense maps B, C, D; the solve runs in `solve_dtype()`.
    """

    hidden: int
    out_dim: int
    kappa: float = 0.95
    tol: float = 1e-5
    max_iter: int = 300
    gradient: str = "implicit"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        if not (isinstance(self.hidden, int) and self.hidden >= 1):
            raise ConfigError(f"hidden={self.hidden!r}; must be an integer >= 1")
        if not 0.0 < self.kappa < 1.0:
            raise ConfigError(f"kappa={self.kappa!r}; must be in (0, 1) for well-posedness")
        if not self.tol > 0.0:
            raise ConfigError(f"tol={self.tol!r}; must be > 0")
        if not (isinstance(self.max_iter, int) and self.max_iter >= 1):
            raise ConfigError(f"max_iter={self.max_iter!r}; must be an integer >= 1")
        if self.gradient not in GRADIENTS:
            raise ConfigError(f"gradient={self.gradient!r}; known: {list(GRADIENTS)}")
        super().__post_init__()

    def solve_dtype(self) -> Any:
        """The dtype of the fixed-point solve and of its implicit adjoint: `dtype` promoted to
        at least float32 (float64 stays float64).

        A half-precision solve cannot meet a useful tolerance: bfloat16 numbers in [1, 2)
        are 2**-7 apart, so the residual max|x_k+1 - x_k| of states of order one stalls at
        the rounding (a bfloat16 solve of a 16-state model stopped at 2**-8 = 0.0039 against
        tol = 1e-5 and raised `FixedPointError` after its 300 iterations),
        and the adjoint's w = g + J^T w inherits the same rounding. So, like softmax and
        normalisation statistics under the precision policy, the solve stays float32 while
        B, C and D compute in `dtype`.
        """
        return jnp.promote_types(self.dtype, jnp.float32)

    def state_matrix(self, a_NxN: jax.Array) -> jax.Array:
        """The effective A: the parameter projected to ||A||_inf <= kappa."""
        return project_rows_to_l1_ball(a_NxN, self.kappa)

    @nn.compact
    def __call__(self, u_BxP: jax.Array, train: bool = False) -> jax.Array:
        n = self.hidden
        a_param = self.param("A", nn.initializers.normal(stddev=0.5 / n), (n, n),
                             self.param_dtype)
        solve_dtype = self.solve_dtype()
        a = self.state_matrix(a_param).astype(solve_dtype)
        injection = nn.Dense(n, dtype=self.dtype, param_dtype=self.param_dtype,
                             name="B")(u_BxP).astype(solve_dtype)
        x0 = jnp.zeros(injection.shape, solve_dtype)
        if self.gradient == "implicit":
            x = fixed_point(relu_equilibrium_map, (a, injection), x0, self.tol, self.max_iter)
        else:
            x = unrolled_fixed_point(relu_equilibrium_map, (a, injection), x0, self.max_iter)
        readout = nn.Dense(self.out_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                           name="C")(x)
        skip = nn.Dense(self.out_dim, use_bias=False, dtype=self.dtype,
                        param_dtype=self.param_dtype, name="D")(u_BxP)
        return readout + skip
