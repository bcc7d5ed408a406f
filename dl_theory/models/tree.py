"""A deep net with the binary-tree structure of a hierarchically compositional function
(Poggio et al. 2017, Thm 2): one small MLP per tree node.

Moved from experiments/curse_of_dimensionality.py; the biases are now cast to `dtype` like
the kernels (a no-op under float32).
"""

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.data.compositional import check_power_of_two
from dl_theory.models.mlp import get_activation


class TreeNet(nn.Module):
    """A deep net with the binary-tree structure of `compositional_tree_target`: each node maps
    its two inputs through 2 -> node_width -> 1 (activation in between); shape [B, D] -> [B, 1],
    D a power of two; (D - 1)(4 node_width + 1) parameters (Poggio et al. 2017, Thm 2)."""

    node_width: int = 16
    activation: str = "tanh"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics
        check_power_of_two(x_BxD.shape[1])
        act = get_activation(self.activation)
        h, level, w = x_BxD.astype(self.dtype), 0, self.node_width
        while h.shape[1] > 1:
            m = h.shape[1] // 2
            pairs_BxMx2 = h.reshape(h.shape[0], m, 2)
            w1 = self.param(f"w1_{level}", nn.initializers.normal(1.0 / math.sqrt(2.0)),
                            (m, 2, w), self.param_dtype)
            b1 = self.param(f"b1_{level}", nn.initializers.normal(1.0), (m, w), self.param_dtype)
            w2 = self.param(f"w2_{level}", nn.initializers.normal(1.0 / math.sqrt(w)), (m, w),
                            self.param_dtype)
            b2 = self.param(f"b2_{level}", nn.initializers.zeros, (m,), self.param_dtype)
            # Every parameter is cast, biases too, so the node computes in self.dtype.
            w1, b1, w2, b2 = (p.astype(self.dtype) for p in (w1, b1, w2, b2))
            z_BxMxW = jnp.einsum("bmi,miw->bmw", pairs_BxMx2, w1) + b1[None]
            h = jnp.einsum("bmw,mw->bm", act(z_BxMxW), w2) + b2[None]
            level += 1
        return h
