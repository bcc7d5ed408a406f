"""Perceptrons and multi-layer perceptrons (Rosenblatt 1958; Rumelhart et al. 1986)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.size_checks import check_sizes
from dl_theory.user_errors import ConfigError

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "identity": lambda x: x,
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "gelu": nn.gelu,
    "softplus": nn.softplus,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation registered under `name`; a clear error listing the known names."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"activation={name!r}; known: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class Perceptron(nn.Module):
    """One affine layer z = W x + b; shape [B, D] -> [B, out_dim].

    With out_dim=1 and the sign of z it is Rosenblatt's perceptron; with several outputs, a
    linear classifier (logistic regression when trained with cross-entropy).
    """

    out_dim: int = 1
    use_bias: bool = True
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        check_sizes("Perceptron", out_dim=self.out_dim)
        super().__post_init__()

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics in a single affine layer
        return nn.Dense(self.out_dim, use_bias=self.use_bias, dtype=self.dtype,
                        param_dtype=self.param_dtype)(x_BxD)


class MLP(nn.Module):
    """Dense -> activation (-> dropout) for each hidden width, then a Dense read-out.

    Shape [B, D] -> [B, out_dim]. `widths` are the hidden widths (empty: a perceptron).
    Dropout (Srivastava et al. 2014) is active only with train=True and needs a "dropout"
    RNG. Weights use LeCun-normal initialisation, biases zero (flax defaults).
    """

    widths: Sequence[int]
    out_dim: int = 1
    activation: str = "relu"
    use_bias: bool = True
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        get_activation(self.activation)
        check_sizes("MLP", widths=tuple(self.widths), out_dim=self.out_dim)
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f"dropout_rate={self.dropout_rate}; must be in [0, 1)")
        super().__post_init__()

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        act = get_activation(self.activation)
        h = x_BxD
        for width in self.widths:
            h = nn.Dense(width, use_bias=self.use_bias, dtype=self.dtype,
                         param_dtype=self.param_dtype)(h)
            h = act(h)
            if self.dropout_rate > 0:
                h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
        return nn.Dense(self.out_dim, use_bias=self.use_bias, dtype=self.dtype,
                        param_dtype=self.param_dtype)(h)
