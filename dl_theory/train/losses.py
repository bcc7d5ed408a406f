"""Losses, each reduced in float32 whatever the compute dtype of the predictions.

Every loss takes `(pred, target, weight=None)` and returns the weighted mean over examples,
sum_i w_i l_i / sum_i w_i, so that padded or masked examples (w_i = 0) do not count and k
micro-batches combine into exactly one large batch when their sums are added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

Loss = Callable[..., jax.Array]


def _weighted_mean(per_example_B: jax.Array, weight_B: jax.Array | None) -> jax.Array:
    if weight_B is None:
        return jnp.mean(per_example_B)
    weight_B = weight_B.astype(jnp.float32)
    return jnp.sum(per_example_B * weight_B) / jnp.maximum(jnp.sum(weight_B), 1e-12)


def _check_same_shape(name: str, pred, target) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: pred shape {pred.shape} != target shape {target.shape}")


def mean_squared_error(pred_BxK, target_BxK, weight_B=None) -> jax.Array:
    """(1/B) sum_i ||pred_i - target_i||^2: the squared error summed over outputs, averaged
    over examples. Shapes [B, K] and [B, K]."""
    _check_same_shape("mean_squared_error", pred_BxK, target_BxK)
    diff = pred_BxK.astype(jnp.float32) - target_BxK.astype(jnp.float32)
    per_example = jnp.sum(diff.reshape(diff.shape[0], -1) ** 2, axis=-1)
    return _weighted_mean(per_example, weight_B)


def binary_cross_entropy_with_logits(logits_BxK, labels_BxK, weight_B=None) -> jax.Array:
    """-[y log s(z) + (1-y) log(1-s(z))] summed over outputs, averaged over examples; labels in
    {0, 1} (or probabilities), shapes [B, K] and [B, K]. Stable for large |z|."""
    _check_same_shape("binary_cross_entropy_with_logits", logits_BxK, labels_BxK)
    per_entry = optax.sigmoid_binary_cross_entropy(logits_BxK.astype(jnp.float32),
                                                   labels_BxK.astype(jnp.float32))
    return _weighted_mean(jnp.sum(per_entry.reshape(per_entry.shape[0], -1), axis=-1), weight_B)


def softmax_cross_entropy(logits_BxC, labels_B, weight_B=None) -> jax.Array:
    """-log softmax(z)_y averaged over examples; integer labels of shape [B] (or [B, T] for
    sequences, averaged over all positions), logits [B, C] ([B, T, C])."""
    if logits_BxC.shape[:-1] != labels_B.shape:
        raise ValueError(f"softmax_cross_entropy: logits shape {logits_BxC.shape} needs labels of "
                         f"shape {logits_BxC.shape[:-1]}; got {labels_B.shape}")
    per_entry = optax.softmax_cross_entropy_with_integer_labels(
        logits_BxC.astype(jnp.float32), labels_B)
    per_example = jnp.mean(per_entry.reshape(per_entry.shape[0], -1), axis=-1)
    return _weighted_mean(per_example, weight_B)


@dataclasses.dataclass(frozen=True)
class PaddedTokenCrossEntropy:
    """Cross-entropy of token sequences whose tail is padding: logits [B, T, V], labels
    [B, T] with `pad_id` after the end of each sequence. An example's loss is the mean
    -log softmax(z_t)[y_t] over its positions whose label is not `pad_id` (an end-of-sequence
    token counts; padding does not); then the weighted mean over examples. A frozen
    dataclass, so equal instances share compiled training programs."""

    pad_id: int = 0

    def __call__(self, logits_BxTxV, labels_BxT, weight_B=None) -> jax.Array:
        if logits_BxTxV.ndim != 3 or logits_BxTxV.shape[:-1] != labels_BxT.shape:
            raise ValueError(f"PaddedTokenCrossEntropy: logits shape {logits_BxTxV.shape} "
                             f"needs labels [B, T] = {logits_BxTxV.shape[:-1]}; got "
                             f"{labels_BxT.shape}")
        per_token = optax.softmax_cross_entropy_with_integer_labels(
            logits_BxTxV.astype(jnp.float32), labels_BxT)
        real = (labels_BxT != self.pad_id).astype(jnp.float32)
        per_example = jnp.sum(per_token * real, axis=1) / jnp.maximum(jnp.sum(real, axis=1), 1.0)
        return _weighted_mean(per_example, weight_B)


def accuracy(logits_BxC, labels_B, weight_B=None) -> jax.Array:
    """Fraction of examples whose arg-max logit is the label (a metric, not a loss)."""
    correct = (jnp.argmax(logits_BxC, axis=-1) == labels_B).astype(jnp.float32)
    return _weighted_mean(correct.reshape(correct.shape[0], -1).mean(axis=-1), weight_B)


LOSSES: dict[str, Loss] = {
    "mse": mean_squared_error,
    "binary_cross_entropy": binary_cross_entropy_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def get_loss(name: str) -> Loss:
    """The loss registered under `name`; a clear error listing the known names otherwise."""
    if name not in LOSSES:
        raise ValueError(f"loss={name!r}; known: {sorted(LOSSES)}")
    return LOSSES[name]
