"""Explicit penalties as gradient transformations: L2 (coupled) and L1 (subgradient).

Both add the penalty's (sub)gradient to the loss gradient before the base optimizer, so an
adaptive optimizer rescales them as it does the loss gradient; this is what "L2
regularisation" means, as opposed to decoupled weight decay (Loshchilov & Hutter 2019),
which `build_optimizer` applies after the base optimizer. The reported loss excludes them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def add_l2_gradient(l2: float) -> optax.GradientTransformation:
    """g <- g + l2 * theta: the gradient of (l2 / 2) ||theta||^2."""
    return optax.add_decayed_weights(l2)


def add_l1_subgradient(l1: float) -> optax.GradientTransformation:
    """g <- g + l1 * sign(theta): a subgradient of l1 ||theta||_1 (sign(0) = 0)."""

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("add_l1_subgradient needs params in update(grads, state, params)")
        updates = jax.tree.map(lambda g, p: g + l1 * jnp.sign(p).astype(g.dtype), updates, params)
        return updates, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)
