"""Sparsity of trained nets: the fraction of exact zeros, magnitude pruning, and accuracy read
off a sparsity-accuracy curve at a matched sparsity (ProxGen's comparison of proximal training
with pruning after training; `experiments/proximal_sparsity.py`)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def zero_fraction(params: Any, members: int) -> np.ndarray:
    """Per member of a stacked parameter tree (leading axis `members`), the fraction of all its
    parameters that are exactly zero; shape [members]."""
    leaves = jax.tree.leaves(params)
    zeros = sum(np.asarray((leaf == 0).reshape(members, -1).sum(1)) for leaf in leaves)
    return zeros / sum(int(np.prod(leaf.shape[1:])) for leaf in leaves)


def magnitude_pruned(params: Any, sparsity: float) -> Any:
    """`params` (one net) with the smallest-magnitude fraction `sparsity` of all its entries,
    pooled over every leaf, set to zero."""
    flat = np.concatenate([np.abs(np.asarray(a)).ravel() for a in jax.tree.leaves(params)])
    cut = np.quantile(flat, sparsity)
    return jax.tree.map(lambda a: jnp.where(jnp.abs(a) > cut, a, 0.0), params)


def magnitude_pruned_members(params: Any, members: int, sparsity: float) -> Any:
    """`magnitude_pruned` applied to each member of a stacked parameter tree (leading axis
    `members`), stacked again."""
    pruned = [magnitude_pruned(jax.tree.map(lambda a, i=i: a[i], params), sparsity)
              for i in range(members)]
    return jax.tree.map(lambda *a: jnp.stack(a), *pruned)


def accuracy_at_sparsity(zero_fraction_K: np.ndarray, accuracy_K: np.ndarray,
                         target: float) -> float:
    """Accuracy linearly interpolated at `target` sparsity along a strength curve of K points
    (NaN if the curve does not bracket the target: the comparison is then not measured)."""
    order = np.argsort(zero_fraction_K)
    zf, acc = zero_fraction_K[order], accuracy_K[order]
    if not zf[0] <= target <= zf[-1]:
        return float("nan")
    return float(np.interp(target, zf, acc))
