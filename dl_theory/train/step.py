"""Pure training and evaluation steps: `step(state, batch) -> (state, metrics)`.

A batch is a dict with "x" (inputs), "y" (targets) and optionally "weight" (per-example
weights; 0 marks padding) and "normalizer" (under gradient accumulation: the mean total
weight of the k micro-batches that form one large batch). Nothing here is jitted: callers
jit, scan or vmap the steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.interpreters import partial_eval

from dl_theory.optim.build import current_hyperparam
from dl_theory.train.losses import Loss
from dl_theory.train.precision import Policy
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


def _depends_on(fn: Callable[[jax.Array], Any], key: jax.Array) -> bool:
    """Whether fn(key)'s outputs depend on `key`: fn traced to a jaxpr and its dead code
    removed (no compilation; e.g. a model without dropout ignores its dropout key)."""
    closed = jax.make_jaxpr(fn)(key)
    _, used = partial_eval.dce_jaxpr(closed.jaxpr, [True] * len(closed.jaxpr.outvars))
    return used[0]


def _keep_if(finite: jax.Array, new: Any, old: Any) -> Any:
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)


def make_train_step(loss: Loss, policy: Policy | None = None, grad_norm: bool = True
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """A step of the optimizer `state.tx` on `loss(model(x), y, weight)`.

    With a precision `policy` (`dl_theory.train.precision`), x is cast to the compute dtype
    (the model, built with `policy.model_dtypes()`, casts its float32 parameters per layer),
    the prediction to the output dtype, and the loss reduces in float32; gradients arrive in
    the parameter dtype, so the optimizer state stays float32. With `state.loss_scale` (float16),
    the gradient of S * loss is divided by S; a non-finite gradient skips the update (params,
    opt_state and model_state unchanged; step and any drawn key advance) and lowers S.

    The state's key is split into a new key and a dropout key only when the model's training
    forward pass draws from it (found by tracing, `_depends_on`); a model that draws nothing
    keeps its key, and its program compiles and runs no random-number code.

    Metrics: "loss" (before the update), "grad_norm" (if `grad_norm`), "learning_rate" when
    injected, and with a loss scale "loss_scale" (the S used) and "grads_finite" (1.0 or 0.0).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        # flax returns (out, updates) for any mutable other than False, even an empty list.
        mutable = list(state.model_state) or False
        x = batch["x"] if policy is None else policy.cast_to_compute(batch["x"])

        def forward(params, dropout_key):
            variables = {"params": params, **state.model_state}
            return state.apply_fn(variables, x, train=True, rngs={"dropout": dropout_key},
                                  mutable=mutable)

        rng = dropout_rng = state.rng
        if _depends_on(lambda key: forward(state.params, key), state.rng):
            rng, dropout_rng = jax.random.split(state.rng)

        def objective(params):
            out = forward(params, dropout_rng)
            pred, new_model_state = out if mutable else (out, state.model_state)
            if policy is not None:
                pred = policy.cast_to_output(pred)
            value = loss(pred, batch["y"], batch.get("weight"))
            return value * micro_batch_share(batch), (value, new_model_state)

        metrics: Metrics = {}
        if state.loss_scale is None:
            (_, (value, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
                state.params)
            finite, loss_scale = None, None
        else:
            grad_fn = state.loss_scale.value_and_grad(objective, has_aux=True)
            loss_scale, finite, (_, (value, model_state)), grads = grad_fn(state.params)
            metrics["loss_scale"] = state.loss_scale.scale
            metrics["grads_finite"] = finite.astype(jnp.float32)
        if policy is not None:
            grads = policy.cast_to_param(grads)
        updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        model_state = dict(model_state)
        if finite is not None:
            params = _keep_if(finite, params, state.params)
            opt_state = _keep_if(finite, opt_state, state.opt_state)
            model_state = _keep_if(finite, model_state, dict(state.model_state))
        metrics["loss"] = value
        if grad_norm:
            metrics["grad_norm"] = optax.tree.norm(grads)
        learning_rate = current_hyperparam(opt_state, "learning_rate")
        if learning_rate is not None:
            metrics["learning_rate"] = learning_rate
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                                  model_state=model_state, rng=rng, loss_scale=loss_scale)
        return new_state, metrics

    return train_step


def make_eval_step(loss: Loss, extra: Mapping[str, MetricFn] | None = None,
                   policy: Policy | None = None) -> Callable[[TrainState, Batch], Metrics]:
    """Evaluation (train=False: no dropout, running batch statistics) of "loss" and of each
    `extra` metric `fn(pred, y, weight)` on one batch; under a precision `policy` the inputs
    are cast to the compute dtype and the predictions to the output dtype (float32), as in
    training."""
    extra = dict(extra or {})

    def eval_step(state: TrainState, batch: Batch) -> Metrics:
        x = batch["x"] if policy is None else policy.cast_to_compute(batch["x"])
        pred = state.apply_fn({"params": state.params, **state.model_state}, x, train=False)
        if policy is not None:
            pred = policy.cast_to_output(pred)
        weight = batch.get("weight")
        metrics = {"loss": loss(pred, batch["y"], weight)}
        metrics.update({name: fn(pred, batch["y"], weight) for name, fn in extra.items()})
        return metrics

    return eval_step
