"""The weight-tied ReLU autoencoder of Rangamani et al. 2018 ("Sparse coding and autoencoders").

y -> r = ReLU(W y - eps) -> y_hat = W^T r, with one weight matrix W of shape [h, n] (the
encoder; its transpose decodes) and a fixed bias eps (not trained: the paper sets it from the
sparsity and the incoherence). Its rows W_i play the dictionary's columns A*_i: at W = A*^T
the code r has the support of x* (Theorem: support recovery).

Precision: W is stored in `param_dtype`; the forward pass computes in `dtype` (None: the
common dtype of the input and W, e.g. float64 under `jax.enable_x64` in the tests), and
`squared_loss` takes the error in the target's dtype.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class TiedReLUAutoencoder(nn.Module):
    """y_hat = W^T ReLU(W y - bias); shape [B, n] -> [B, n]; one parameter "W" [code_dim, n].

    `bias` is the paper's epsilon, the same for every unit and held fixed. W is initialised
    with unit-norm random rows (the matched-norm random dictionary); experiments set it.
    `train` is accepted for the models' common call signature; nothing depends on it.
    """

    code_dim: int
    bias: float
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        if self.code_dim < 1:
            raise ValueError(f"code_dim={self.code_dim}; must be >= 1")
        super().__post_init__()

    @nn.compact
    def __call__(self, y_BxN: jax.Array, train: bool = False) -> jax.Array:
        def unit_rows(key, shape, dtype=jnp.float32):
            w = jax.random.normal(key, shape, dtype)
            return w / jnp.linalg.norm(w, axis=1, keepdims=True)

        w_HxN = self.param("W", unit_rows, (self.code_dim, y_BxN.shape[-1]), self.param_dtype)
        y_BxN, w_HxN = nn.dtypes.promote_dtype(y_BxN, w_HxN, dtype=self.dtype)
        code_BxH = jax.nn.relu(y_BxN @ w_HxN.T - self.bias)
        self.sow("intermediates", "code", code_BxH)
        return code_BxH @ w_HxN


def squared_loss(w_HxN: jax.Array, y_BxN: jax.Array, bias: float, dtype: Any = None
                 ) -> jax.Array:
    """The paper's loss, averaged over the batch: mean_b 1/2 ||W^T ReLU(W y_b - eps) - y_b||^2,
    the forward pass in `dtype` (None: the inputs' own), the error in y's dtype."""
    model = TiedReLUAutoencoder(code_dim=w_HxN.shape[0], bias=bias, dtype=dtype)
    y_hat = model.apply({"params": {"W": w_HxN}}, y_BxN).astype(y_BxN.dtype)
    return 0.5 * jnp.mean(jnp.sum((y_hat - y_BxN) ** 2, axis=-1))
