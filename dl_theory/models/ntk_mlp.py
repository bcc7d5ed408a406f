"""MLPs in the NTK and mean-field (muP) parameterisations (Jacot et al. 2018; Yang & Hu 2021).

Every weight and bias is drawn N(0, 1); the width enters as a multiplier in the forward pass
instead of in the initialisation. Hidden layer l computes

    h^l = act(W^l h^{l-1} / sqrt(n_{l-1}) + bias_scale * b^l),

and the read-out is f(x) = output_scale * m(n_L) * W^{L+1} h^L with m(n) = 1 / sqrt(n) under
"ntk" (Jacot, Gabriel & Hongler 2018, eq. (1)) and m(n) = 1 / n under "mean_field".

At initialisation both have the same hidden features; "ntk" has O(1) outputs and an O(1)
tangent kernel, so gradient descent with an O(1) step stays in the lazy (linearised) regime
as the width grows (Lee et al. 2019, Thm 2.1). "mean_field" is muP in this NTK-style form
(Yang & Hu 2021, Table 3 with the a <- a + theta, b <- b - theta, c <- c - 2 theta symmetry
at theta = 1/2): the 1 / n read-out makes the kernel O(1/n), and with the learning rate
multiplied by n (`learning_rate_scale`) the features move by O(1) at every width (for one
hidden layer: the mean-field limit of Mei, Montanari & Nguyen 2018, Chizat & Bach 2018).
`output_scale` is Chizat, Oyallon & Bach's (2019) alpha: a large alpha makes any
parameterisation lazy, a small one pushes it away from the kernel regime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.mlp import get_activation

PARAM_SCALINGS = ("ntk", "mean_field")


def readout_multiplier(param_scaling: str, width: int) -> float:
    """m(n): 1 / sqrt(n) under "ntk", 1 / n under "mean_field" (n = last hidden width)."""
    if param_scaling not in PARAM_SCALINGS:
        raise ValueError(f"param_scaling={param_scaling!r}; known: {list(PARAM_SCALINGS)}")
    return width ** -0.5 if param_scaling == "ntk" else 1.0 / width


def learning_rate_scale(param_scaling: str, width: int) -> float:
    """The factor that makes plain gradient descent's dynamics width-independent.

    1 under "ntk" (the kernel is O(1)); n under "mean_field" (muP with N(0, 1) weights: every
    layer's learning rate is eta * n, Yang & Hu 2021, so the function moves by O(1) per step
    although the 1 / n read-out makes each gradient O(1 / n)).
    """
    if param_scaling not in PARAM_SCALINGS:
        raise ValueError(f"param_scaling={param_scaling!r}; known: {list(PARAM_SCALINGS)}")
    return 1.0 if param_scaling == "ntk" else float(width)


class NTKMLP(nn.Module):
    """A fully connected net with N(0, 1) parameters and width multipliers; [B, D] -> [B, out_dim].

    Fields: `widths` (hidden widths, at least one), `param_scaling` ("ntk" | "mean_field", the
    read-out multiplier m(n) of the module docstring), `output_scale` (alpha), `bias_scale`
    (beta in Jacot et al. 2018; 0 with use_bias=False is the same net without biases).
    """

    widths: Sequence[int]
    out_dim: int = 1
    activation: str = "relu"
    param_scaling: str = "ntk"
    output_scale: float = 1.0
    use_bias: bool = True
    bias_scale: float = 0.1
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        get_activation(self.activation)
        readout_multiplier(self.param_scaling, 1)
        if not self.widths or any(int(w) < 1 for w in self.widths) or self.out_dim < 1:
            raise ValueError(f"widths={tuple(self.widths)}, out_dim={self.out_dim}; need at "
                             "least one hidden layer and every width >= 1")
        if self.output_scale <= 0:
            raise ValueError(f"output_scale={self.output_scale}; must be > 0")
        super().__post_init__()

    def _dense(self, h_BxI: jax.Array, features: int, name: str, multiplier: float,
               use_bias: bool) -> jax.Array:
        """multiplier * h W (+ bias_scale * b) with W ~ N(0, 1) [I, features], b ~ N(0, 1)."""
        normal = nn.initializers.normal(stddev=1.0)
        w = self.param(f"{name}_kernel", normal, (h_BxI.shape[-1], features), self.param_dtype)
        out = multiplier * jnp.dot(h_BxI.astype(self.dtype), w.astype(self.dtype))
        if use_bias:
            b = self.param(f"{name}_bias", normal, (features,), self.param_dtype)
            out = out + self.bias_scale * b.astype(self.dtype)[None, :]
        return out

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics
        act = get_activation(self.activation)
        h = x_BxD
        for i, width in enumerate(self.widths):
            h = act(self._dense(h, int(width), f"hidden_{i}", h.shape[-1] ** -0.5,
                                self.use_bias))
        multiplier = self.output_scale * readout_multiplier(self.param_scaling, h.shape[-1])
        # No read-out bias: under "mean_field" it would not be scaled by 1 / n and would
        # dominate the output, and under "ntk" it only shifts f_0.
        return self._dense(h, self.out_dim, "readout", multiplier, use_bias=False)
