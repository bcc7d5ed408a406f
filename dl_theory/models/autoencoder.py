"""Fully connected autoencoders (Hinton & Salakhutdinov 2006, "Reducing the dimensionality of
data with neural networks", Science), the benchmark of De, Mukherjee & Ullah 2018 (Sec. 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.mlp import get_activation


class MLPAutoencoder(nn.Module):
    """x -> encoder (Dense + activation per width) -> code -> mirrored decoder -> x_hat.

    Shape [B, D] -> [B, D]. The encoder has hidden `widths` and a linear code layer of width
    `code_dim`; the decoder runs through `reversed(widths)` with the same activation and ends
    with a linear Dense back to D, the input dimension (read from x at initialisation). Trained
    with the squared reconstruction error ||x_hat - x||^2. LeCun-normal weights, zero biases.
    """

    widths: Sequence[int]
    code_dim: int
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        get_activation(self.activation)
        if self.code_dim < 1 or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths={tuple(self.widths)}, code_dim={self.code_dim}; every "
                             "width must be >= 1")
        super().__post_init__()

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or normalisation
        act = get_activation(self.activation)

        def dense(width: int, name: str) -> nn.Dense:
            return nn.Dense(int(width), dtype=self.dtype, param_dtype=self.param_dtype, name=name)

        h = x_BxD
        for i, width in enumerate(self.widths):
            h = act(dense(width, f"encoder_{i}")(h))
        # The code is sown as "latent" so that callers can read it (mutable=["intermediates"]).
        h = dense(self.code_dim, "code")(h)
        self.sow("intermediates", "latent", h)
        for i, width in enumerate(reversed(self.widths)):
            h = act(dense(width, f"decoder_{i}")(h))
        return dense(x_BxD.shape[-1], "reconstruction")(h)
