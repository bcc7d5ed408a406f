"""Pure training and evaluation steps: `step(state, batch) -> (state, metrics)`.

A batch is a dict with "x" (inputs), "y" (targets) and optionally "weight" (per-example
weights; 0 marks padding). Nothing here is jitted: callers jit, scan or vmap the steps.
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import optax

from dl_theory.train.losses import Loss
from dl_theory.train.state import TrainState

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
MetricFn = Callable[..., jax.Array]


def make_train_step(loss: Loss) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """A step of the optimizer `state.tx` on `loss(model(x), y, weight)`.

    Metrics: "loss" (before the update), "grad_norm" and, when the optimizer injects it,
    "learning_rate".
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        rng, dropout_rng = jax.random.split(state.rng)
        # flax returns (out, updates) for any mutable other than False, even an empty list.
        mutable = list(state.model_state) or False

        def objective(params):
            variables = {"params": params, **state.model_state}
            out = state.apply_fn(variables, batch["x"], train=True,
                                 rngs={"dropout": dropout_rng}, mutable=mutable)
            pred, new_model_state = out if mutable else (out, state.model_state)
            return loss(pred, batch["y"], batch.get("weight")), new_model_state

        (value, model_state), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": value, "grad_norm": optax.global_norm(grads)}
        hyperparams = getattr(opt_state, "hyperparams", None)
        if hyperparams is not None and "learning_rate" in hyperparams:
            metrics["learning_rate"] = hyperparams["learning_rate"]
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  model_state=dict(model_state), rng=rng)
        return new_state, metrics

    return train_step


def make_eval_step(loss: Loss, extra: Mapping[str, MetricFn] | None = None
                   ) -> Callable[[TrainState, Batch], Metrics]:
    """Evaluation (train=False: no dropout, running batch statistics) of "loss" and of each
    `extra` metric `fn(pred, y, weight)` on one batch."""
    extra = dict(extra or {})

    def eval_step(state: TrainState, batch: Batch) -> Metrics:
        pred = state.apply_fn({"params": state.params, **state.model_state}, batch["x"],
                              train=False)
        weight = batch.get("weight")
        metrics = {"loss": loss(pred, batch["y"], weight)}
        metrics.update({name: fn(pred, batch["y"], weight) for name, fn in extra.items()})
        return metrics

    return eval_step
