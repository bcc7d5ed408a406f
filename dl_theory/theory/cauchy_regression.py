"""Cauchy-loss robust regression: the smooth non-convex test bed of De, Mukherjee & Ullah's
criticality bounds (arXiv:1807.06766, Thm 3.1 RMSProp, Thm 3.2 Adam).

f(w) = (1/m) sum_i log(1 + (a_i . w - b_i)^2) is non-convex with f* >= 0; its gradient norm is
at most sigma = ||A||_2 / sqrt(m) and it is L-smooth with L = 2 ||A||_2^2 / m (the loss's second
derivative lies in [-1/4, 2]). With xi added to sqrt(v) and a constant step alpha < 2 xi / L,
their descent-lemma argument guarantees min_{t <= T} ||grad f(w_t)|| <= eps once
T >= T(eps) = 2 xi (sigma + xi) (f(w_1) - f*) / (alpha (2 xi - L alpha) eps^2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class CauchyProblem(NamedTuple):
    """A [m, d], b [m], the start w_1 [d], the gradient bound sigma and the smoothness L."""

    a: np.ndarray
    b: np.ndarray
    w1: np.ndarray
    sigma: float
    lipschitz: float


def cauchy_problem(*, num_rows: int, dim: int, outlier_fraction: float, outlier_scale: float,
                   init_scale: float, seed: int) -> CauchyProblem:
    """A random problem: Gaussian A, b = A w_true plus large noise on a fraction of rows,
    w_1 ~ N(0, init_scale^2 I)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((num_rows, dim)).astype(np.float32)
    b = a @ rng.standard_normal(dim).astype(np.float32)
    outliers = rng.random(num_rows) < outlier_fraction
    b = b + outliers * outlier_scale * rng.standard_normal(num_rows).astype(np.float32)
    w1 = init_scale * rng.standard_normal(dim).astype(np.float32)
    norm_a = float(np.linalg.norm(a, 2))
    return CauchyProblem(a, b, w1, norm_a / np.sqrt(num_rows), 2.0 * norm_a ** 2 / num_rows)


def cauchy_loss(problem: CauchyProblem, w) -> float:
    """f(w) of `problem`."""
    return float(np.mean(np.log1p((problem.a @ np.asarray(w) - problem.b) ** 2)))


def criticality_bound_constant(problem: CauchyProblem, xi: float, alpha: float,
                               lipschitz: float | None = None) -> float:
    """T(eps) * eps^2 of the bound, with f* >= 0 (so f(w_1) - f* <= f(w_1)); `lipschitz`
    defaults to the problem's own L."""
    lip = problem.lipschitz if lipschitz is None else lipschitz
    if not 0 < alpha < 2 * xi / lip:
        raise ValueError(f"alpha={alpha} outside (0, 2 xi / L = {2 * xi / lip}): no guarantee")
    return (2 * xi * (problem.sigma + xi) * cauchy_loss(problem, problem.w1)
            / (alpha * (2 * xi - lip * alpha)))


def running_min_grad_norms(tx: optax.GradientTransformation, problems: list[CauchyProblem],
                           noise_std_P, steps: int, seed: int = 0) -> np.ndarray:
    """min_{t' <= t} ||grad f(w_t')|| for t = 1..steps, shape [P, steps], of `tx` run from w_1
    on each problem (vmapped over problems). The optimizer is fed grad f plus N(0, noise_std^2 I)
    (noise_std 0: deterministic); the norm recorded is always the true gradient's."""
    a_P, b_P, w1_P = (jnp.asarray(np.stack([getattr(p, k) for p in problems]))
                      for k in ("a", "b", "w1"))

    def one_problem(a, b, w1, noise_std, key):
        def step(carry, key_t):
            w, opt_state = carry
            g = jax.grad(lambda v: jnp.mean(jnp.log1p((a @ v - b) ** 2)))(w)
            updates, opt_state = tx.update(g + noise_std * jax.random.normal(key_t, g.shape),
                                           opt_state, w)
            return (w + updates, opt_state), jnp.linalg.norm(g)

        return jax.lax.scan(step, (w1, tx.init(w1)), jax.random.split(key, steps))[1]

    keys = jax.random.split(jax.random.key(seed), len(problems))
    norms = jax.jit(jax.vmap(one_problem))(a_P, b_P, w1_P, jnp.asarray(noise_std_P), keys)
    return np.minimum.accumulate(np.asarray(norms), axis=1)


def first_hit_steps(running_min_PxT: np.ndarray, eps_PxE: np.ndarray) -> np.ndarray:
    """The first step t (1-based) with running_min <= eps, shape [P, E]; -1 where never."""
    below = running_min_PxT[:, :, None] <= eps_PxE[:, None, :]
    return np.where(below[:, -1], np.argmax(below, axis=1) + 1, -1)
