"""Every layer's features of a plain `dl_theory.models.conv.CNN`, for linear probes.

Layer i's features are what layer i + 1 reads: pool(act(conv_i(h_{i-1}))), flattened over
positions and channels ([N, L_i * C_i]); layer 0 is the input itself. The convolutions' outputs
are captured with flax's `capture_intermediates` (the model's own `layer_features` method, so
the features are exactly the forward pass's) and pooled here as the model pools them.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.conv import CNN


def cnn_layer_features(model: CNN, params, x_NxL: jax.Array) -> list[jax.Array]:
    """[input, layer 1, ..., layer n] features of `model` with `params` on inputs [N, L]
    (1-D CNN with max or average pooling), each flattened to [N, D_i]."""
    if model.spatial_dims != 1 or model.pool not in ("max", "avg"):
        raise ValueError(f"cnn_layer_features needs a 1-D CNN with max or avg pooling; got "
                         f"spatial_dims={model.spatial_dims}, pool={model.pool!r}")
    _, state = model.apply({"params": params}, x_NxL,
                           capture_intermediates=lambda _, method: method == "layer_features",
                           mutable=["intermediates"])
    outputs = state["intermediates"]["layer_features"]
    pool = nn.max_pool if model.pool == "max" else nn.avg_pool
    window = (model.pool_size,)
    features = [x_NxL.reshape(x_NxL.shape[0], -1)]
    for h_NxLxC in outputs:
        pooled = pool(h_NxLxC, window_shape=window, strides=window)
        features.append(jnp.reshape(pooled, (pooled.shape[0], -1)))
    return features
