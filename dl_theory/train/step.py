"""Pure training and evaluation steps: `step(state, batch) -> (state, metrics)`.

A batch is a dict with "x" (inputs), "y" (targets) and optionally "weight" (per-example
weights; 0 marks padding) and "normalizer" (under gradient accumulation: the mean total
weight of the k micro-batches that form one large batch). Nothing here is jitted: callers
jit, scan or vmap the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from dl_theory.optim.build import current_hyperparam
from dl_theory.train.losses import Loss
from dl_theory.train.state import TrainState

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
MetricFn = Callable[..., jax.Array]


def micro_batch_share(batch: Batch) -> jax.Array | float:
    """This micro-batch's total weight over the mean micro-batch weight (1 without a
    "normalizer"). Scaling each micro-batch's mean loss by it makes the mean of k micro-batch
    gradients (optax.MultiSteps) equal the large batch's gradient sum_i w_i grad l_i /
    sum_i w_i, also when micro-batches hold different numbers of real examples."""
    if "normalizer" not in batch:
        return 1.0
    weight = batch.get("weight")
    total = batch["y"].shape[0] if weight is None else jnp.sum(weight.astype(jnp.float32))
    return total / batch["normalizer"]


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
            value = loss(pred, batch["y"], batch.get("weight"))
            return value * micro_batch_share(batch), (value, new_model_state)

        (_, (value, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": value, "grad_norm": optax.global_norm(grads)}
        learning_rate = current_hyperparam(opt_state, "learning_rate")
        if learning_rate is not None:
            metrics["learning_rate"] = learning_rate
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
