"""The weight-tied ReLU autoencoder of Rangamani et al. 2018 ("Sparse coding and autoencoders").

y -> r = ReLU(W y - eps) -> y_hat = W^T r, with one weight matrix W of shape [h, n] (the
encoder; its transpose decodes) and a fixed bias eps (not trained: the paper sets it from the
sparsity and the incoherence). Its rows W_i play the dictionary's columns A*_i: at W = A*^T
the code r has the support of x* (Theorem: support recovery).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class TiedReLUAutoencoder(nn.Module):
    """y_hat = W^T ReLU(W y - bias); shape [B, n] -> [B, n]; one parameter "W" [code_dim, n].

    `bias` is the paper's epsilon, the same for every unit and held fixed. W is initialised
    with unit-norm random rows (the matched-norm random dictionary); experiments set it.
    """

    code_dim: int
    bias: float

    def __post_init__(self):
        if self.code_dim < 1:
            raise ValueError(f"code_dim={self.code_dim}; must be >= 1")
        super().__post_init__()

    @nn.compact
    def __call__(self, y_BxN: jax.Array) -> jax.Array:
        def unit_rows(key, shape, dtype=jnp.float32):
            w = jax.random.normal(key, shape, dtype)
            return w / jnp.linalg.norm(w, axis=1, keepdims=True)

        w_HxN = self.param("W", unit_rows, (self.code_dim, y_BxN.shape[-1]))
        code_BxH = jax.nn.relu(y_BxN @ w_HxN.T - self.bias)
        self.sow("intermediates", "code", code_BxH)
        return code_BxH @ w_HxN


def squared_loss(w_HxN: jax.Array, y_BxN: jax.Array, bias: float) -> jax.Array:
    """The paper's loss, averaged over the batch: mean_b 1/2 ||W^T ReLU(W y_b - eps) - y_b||^2."""
    model = TiedReLUAutoencoder(code_dim=w_HxN.shape[0], bias=bias)
    y_hat = model.apply({"params": {"W": w_HxN}}, y_BxN)
    return 0.5 * jnp.mean(jnp.sum((y_hat - y_BxN) ** 2, axis=-1))
