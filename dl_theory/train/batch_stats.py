"""Recomputing batch-norm statistics for given parameters (e.g. SWA's averaged weights).

Running statistics gathered along the SGD trajectory do not match averaged weights
(Izmailov et al. 2018, Sec. 3.2), so SWA needs one pass over the data to recompute them
("bn_update"). Flax's BatchNorm updates ra <- m ra + (1 - m) b with the batch statistic b;
from one train-mode forward pass we recover b = (ra' - m ra) / (1 - m) and keep the exact
running mean of b over the batches, whatever the layer's momentum m.
"""

from __future__ import annotations

from collections.abc import Iterable

import jax
import jax.numpy as jnp

from dl_theory.train.state import TrainState


def recompute_batch_stats(state: TrainState, params, batches: Iterable[dict],
                          momentum: float = 0.9):
    """model_state for `params` whose batch statistics are the mean, over `batches`, of each
    batch's mean and variance (as flax computes them in training mode).

    `momentum` must be the BatchNorm layers' momentum (flax default 0.9).
    """
    if "batch_stats" not in state.model_state:
        raise ValueError("recompute_batch_stats: the model has no batch_stats collection")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum={momentum}; must be in [0, 1)")
    old = state.model_state["batch_stats"]

    @jax.jit
    def batch_statistic(x):
        _, updated = state.apply_fn({"params": params, **state.model_state}, x, train=True,
                                    rngs={"dropout": jax.random.PRNGKey(0)},
                                    mutable=["batch_stats"])
        return jax.tree.map(lambda new, ra: (new - momentum * ra) / (1.0 - momentum),
                            updated["batch_stats"], old)

    mean, count = None, 0
    for batch in batches:
        stat = batch_statistic(batch["x"])
        count += 1
        mean = stat if mean is None else jax.tree.map(lambda a, b: a + (b - a) / count, mean, stat)
    if mean is None:
        raise ValueError("recompute_batch_stats needs at least one batch")
    return {**state.model_state, "batch_stats": jax.tree.map(jnp.asarray, mean)}
