"""Flatness of a minimum: the mean loss increase under random weight perturbations.

Izmailov et al. 2018 ("Averaging Weights Leads to Wider Optima and Better Generalization",
Sec. 3.4 and Fig. 5) compare SWA and SGD solutions by the loss along random directions at a
fixed distance. Here: Delta(rho) = E_u[L(theta + rho u)] - L(theta), u uniform on the unit
sphere of the flattened parameters. For a quadratic L = 1/2 theta^T H theta at its minimum,
Delta(rho) = rho^2 tr(H) / (2P) exactly (E[u u^T] = I / P), so Delta measures the mean
curvature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def perturbed_loss_increase(loss_fn: Callable[[Any], jax.Array], params: Any, radii_R,
                            key: jax.Array, num_directions: int = 32) -> jax.Array:
    """Delta(rho) for each radius: mean over `num_directions` random unit directions u of
    loss_fn(params + rho u) - loss_fn(params); shape [R]. The same directions serve every
    radius, so the curve is smooth in rho. Jit-compatible."""
    flat_P, unravel = ravel_pytree(params)
    dirs_KxP = jax.random.normal(key, (num_directions, flat_P.shape[0]), jnp.float32)
    dirs_KxP = dirs_KxP / jnp.linalg.norm(dirs_KxP, axis=1, keepdims=True)
    radii_R = jnp.asarray(radii_R, jnp.float32)
    base = loss_fn(params)

    def at_radius(rho):
        losses = jax.lax.map(lambda u: loss_fn(unravel(flat_P + rho * u)), dirs_KxP)
        return jnp.mean(losses) - base

    return jax.lax.map(at_radius, radii_R)
