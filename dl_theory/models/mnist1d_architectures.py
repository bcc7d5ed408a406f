"""The MNIST-1D architectures of Greydanus 2020 ("Scaling down deep learning", Fig. 1 and the
mnist1d benchmark table), built from a config section each: logistic regression, an MLP, a
transformer on scalar tokens with learned positions, a CNN, a GRU, a conv-stem hybrid and a
recurrent CNN. Each entry says whether the model reads [B, 40, 1] tokens instead of [B, 40],
and, for the permutation-equivariant ones, how to align its first layer with a permutation of
the positions (`dl_theory.theory.equivariant_twins`). `experiments/inductive_bias.py` trains
them on original and shuffled MNIST-1D.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN
from dl_theory.models.conv import CNN
from dl_theory.models.mlp import MLP
from dl_theory.models.recurrent import RCNN, SequenceClassifier
from dl_theory.models.transformer import ConvTransformerClassifier, TransformerClassifier
from dl_theory.theory.equivariant_twins import dense_rows, position_rows


@dataclasses.dataclass(frozen=True)
class Architecture:
    """How to build one model from its config section, whether it reads [B, 40, 1] tokens
    instead of [B, 40], and (for permutation-invariant models) how to align its first layer
    with a permutation of the positions."""

    build: Callable[[ml_collections.ConfigDict, dict], nn.Module]
    token_axis: bool = False
    align: Callable[[Any, np.ndarray], Any] | None = None


ARCHITECTURES: dict[str, Architecture] = {
    "logreg": Architecture(lambda c, dt: MLP(widths=(), out_dim=NUM_CLASSES, **dt),
                           align=dense_rows(("Dense_0", "kernel"))),
    "mlp": Architecture(lambda c, dt: MLP(widths=tuple(c.widths), out_dim=NUM_CLASSES,
                                          activation=c.activation, **dt),
                        align=dense_rows(("Dense_0", "kernel"))),
    "transformer": Architecture(
        lambda c, dt: TransformerClassifier(NUM_CLASSES, d_model=c.d_model,
                                            num_heads=c.num_heads, num_layers=c.num_layers,
                                            mlp_dim=c.mlp_dim, max_len=SEQ_LEN, **dt),
        token_axis=True,
        align=position_rows(("embed", "position", "table", "embedding"), SEQ_LEN)),
    "cnn": Architecture(lambda c, dt: CNN(NUM_CLASSES, channels=tuple(c.channels),
                                          kernel_size=c.kernel_size, pool="max", pool_size=2,
                                          readout="flatten", spatial_dims=1, **dt)),
    "gru": Architecture(lambda c, dt: SequenceClassifier(NUM_CLASSES, hidden=c.hidden,
                                                         cell="gru", readout=c.readout, **dt)),
    "hybrid": Architecture(
        lambda c, dt: ConvTransformerClassifier(
            NUM_CLASSES, conv_channels=tuple(c.conv_channels), kernel_size=c.kernel_size,
            conv_stride=c.conv_stride, d_model=c.d_model, num_heads=c.num_heads,
            num_layers=c.num_layers, mlp_dim=c.mlp_dim, max_len=SEQ_LEN, **dt)),
    "rcnn": Architecture(lambda c, dt: RCNN(NUM_CLASSES, channels=tuple(c.channels),
                                            kernel_size=c.kernel_size, pool="max", pool_size=2,
                                            readout="flatten", spatial_dims=1, steps=c.steps,
                                            **dt)),
}


def architecture_inputs(name: str, x_NxL: np.ndarray) -> jnp.ndarray:
    """MNIST-1D inputs [N, 40] in the layout architecture `name` reads ([N, 40, 1] tokens for
    the transformer, [N, 40] otherwise)."""
    return jnp.asarray(x_NxL[..., None] if ARCHITECTURES[name].token_axis else x_NxL)
