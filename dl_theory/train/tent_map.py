"""Training ReLU MLPs on the k-fold tent map (Telgarsky's sawtooth), one net per seed.

`train_on_tent_map` trains a stack of MLPs (one per seed, `fit_grid`) on fresh uniform samples
of t_k(x), t(x) = 2 min(x, 1 - x), and evaluates them in the terms of the depth-separation
bounds: L1 error on a grid over [0, 1], classification error on the 2**k alternating points
(`dl_theory.theory.sawtooth`), and float64 layers for exact piece counting
(`dl_theory.theory.regions`). Before training, `spread_first_layer_kinks` moves the first
layer's kinks into [0, 1]: flax's zero biases put every kink at x = 0, where no unit sees the
teeth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.synthetic import Target
from dl_theory.models import constructions
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.theory import regions
from dl_theory.theory.sawtooth import alternating_points, classification_error
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import TrainState, create_train_states


class TentFit(NamedTuple):
    """Per-seed results of `train_on_tent_map`."""

    l1_S: np.ndarray  # mean |f - t_k| on the grid
    classification_S: np.ndarray  # error of 1[f >= 1/2] on the 2**k alternating points
    pred_SxN: np.ndarray  # predictions on the grid
    layers: list[regions.Layers]  # float64 (W, b) layers of each seed's net


def tent_target(k: int) -> Target:
    """The k-fold tent map on U[0, 1]."""
    return Target(name=f"sawtooth_k{k}", dim=1, fn=lambda x: constructions.sawtooth(x, k),
                  sample_inputs=lambda key, n: jax.random.uniform(key, (n, 1)))


def spread_first_layer_kinks(states: TrainState, tx, scale: float, seed: int) -> TrainState:
    """Dense_0 of every member: kernel *= scale and bias = -kernel * u, u ~ U[0, 1], so unit i
    has its kink at x = u_i inside [0, 1]; the optimizer state is re-initialised to match."""
    num = jax.tree.leaves(states.params)[0].shape[0]
    keys = jax.vmap(jax.random.PRNGKey)(seed + jnp.arange(num))

    def spread(params, key):
        dense = dict(params["Dense_0"])
        kernel = dense["kernel"] * scale
        dense["kernel"] = kernel
        dense["bias"] = -kernel[0] * jax.random.uniform(key, dense["bias"].shape)
        return {**params, "Dense_0": dense}

    params = jax.vmap(spread)(states.params, keys)
    return states.replace(params=params, opt_state=jax.vmap(tx.init)(params))


def train_on_tent_map(hidden: Sequence[int], k: int, x_N1: np.ndarray, *, seeds: int,
                      batch_size: int, steps: int, optimizer: Any, kink_init_scale: float,
                      precision: str, log, label: str) -> TentFit:
    """MLPs with hidden widths `hidden`, seeds 0..seeds-1 (data seeds 1000 + s), first-layer
    kinks spread by `kink_init_scale`, trained for `steps` steps of `optimizer` (an
    `optimizer_config`) on fresh batches of the k-fold tent map in `precision`; evaluated on the
    grid `x_N1` [N, 1] and the alternating points. `log` and `label` go to `fit_grid`."""
    seed_list = list(range(seeds))
    target = tent_target(k)
    grid = {"x": jnp.asarray(x_N1, jnp.float32)}
    grid["y"] = target.fn(grid["x"])
    tx = build_optimizer(optimizer, total_steps=steps)
    policy = get_policy(precision)
    model = MLP(widths=tuple(hidden), **policy.model_dtypes())
    states = create_train_states(model, tx, grid["x"][:2], seed_list, make_loss_scale(policy))
    states = spread_first_layer_kinks(states, tx, kink_init_scale, seed=7919)
    states, _ = fit_grid(states, None, target.sampler(batch_size), loss=mean_squared_error,
                         steps=steps, data_seeds=[1000 + s for s in seed_list],
                         eval_data=grid, eval_every=steps,
                         accumulate_steps=optimizer.accumulate_steps, policy=policy,
                         log=log, tags={"hidden": list(hidden), "k": k}, label=label,
                         verbose=False)

    def predict(x):
        return np.asarray(jax.vmap(lambda p: model.apply({"params": p}, x))(
            states.params).astype(jnp.float32))[..., 0]

    pred_SxN = predict(grid["x"])
    l1_S = np.mean(np.abs(pred_SxN - np.asarray(grid["y"])[None, :, 0]), axis=1)
    at_points_SxP = predict(jnp.asarray(alternating_points(k)[:, None], jnp.float32))
    classification_S = np.asarray([classification_error(v, k) for v in at_points_SxP])
    layers = [regions.dense_params_to_layers(jax.tree.map(lambda a: a[s], states.params))
              for s in range(seeds)]
    return TentFit(l1_S, classification_S, pred_SxN, layers)
