"""Residual MLP with identity skips, and the plain MLP of the same widths (`residual=False`).

Pre-activation residual network (He et al. 2016, "Identity mappings in deep residual
networks"), fully connected:

    h_0 = W_in x + b_in
    h_{l+1} = h_l + f_l(h_l)            (residual=True)
    h_{l+1} = f_l(h_l)                  (residual=False)
    f_l(h) = W_l act(norm(h)) + b_l,    norm = LayerNorm if pre_ln else identity
    logits = W_out act(norm(h_depth)) + b_out

The two variants have identical parameter trees and differ only in the skip, which is
what the residual-depth experiment compares (e.g. Balduzzi et al. 2017, "The shattered
gradients problem"; Veit et al. 2016). With residual=False and pre_ln=False this is the
ordinary MLP with depth + 1 hidden layers of `width` units. `activation` is a name in
`dl_theory.models.mlp.ACTIVATIONS`.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.mlp import get_activation


class ResidualMLP(nn.Module):
    """Shape [B, D] -> [B, num_outputs], in the compute `dtype`; see the module docstring.

    `depth` counts the residual blocks (one Dense each); LayerNorm statistics are computed
    in float32.
    """

    num_outputs: int
    width: int = 64
    depth: int = 4
    residual: bool = True
    pre_ln: bool = False
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        if self.depth < 0 or self.width < 1:
            raise ValueError(f"depth={self.depth}, width={self.width}; need depth >= 0 and"
                             " width >= 1")
        get_activation(self.activation)
        super().__post_init__()

    def _pre(self, h: jax.Array, name: str) -> jax.Array:
        if self.pre_ln:
            h = nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name=name)(h)
        return get_activation(self.activation)(h)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
        h = dense(self.width, name="embed")(x.astype(self.dtype))
        for layer in range(self.depth):
            update = dense(self.width, name=f"block_{layer}")(self._pre(h, f"norm_{layer}"))
            h = h + update if self.residual else update
        return dense(self.num_outputs, name="head")(self._pre(h, "norm_out"))
