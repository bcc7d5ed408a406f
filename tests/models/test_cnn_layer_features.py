"""A CNN's layer features: the input, then each conv layer after its pool, flattened; the head
applied to the last layer's features gives the model's logits."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models.cnn_layer_features import cnn_layer_features
from dl_theory.models.conv import CNN, conv_as_matmul

X = jax.random.normal(jax.random.PRNGKey(0), (3, 40))


def _model(pool="max"):
    return CNN(10, channels=(4, 5), kernel_size=5, pool=pool, pool_size=2, readout="flatten",
               spatial_dims=1)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_layer_features_are_the_forward_pass(pool):
    model = _model(pool)
    params = model.init(jax.random.PRNGKey(1), X)["params"]
    with nn.intercept_methods(conv_as_matmul):
        features = cnn_layer_features(model, params, X)
        logits = model.apply({"params": params}, X)
    assert [f.shape for f in features] == [(3, 40), (3, 20 * 4), (3, 10 * 5)]
    np.testing.assert_array_equal(np.asarray(features[0]), np.asarray(X))
    head = params["head"]
    np.testing.assert_allclose(np.asarray(features[-1] @ head["kernel"] + head["bias"][None]),
                               np.asarray(logits), atol=1e-5)
    # Layer 1 by hand: relu(conv) then a pool of window 2.
    conv = nn.Conv(4, (5,), padding="SAME").apply({"params": params["conv_0"]}, X[..., None])
    pooled = jnp.maximum(conv, 0).reshape(3, 20, 2, 4)
    pooled = pooled.max(axis=2) if pool == "max" else pooled.mean(axis=2)
    np.testing.assert_allclose(np.asarray(features[1]), np.asarray(pooled.reshape(3, -1)),
                               atol=1e-5)


def test_unpooled_cnn_is_refused():
    model = CNN(10, channels=(4,), pool="none", readout="flatten", spatial_dims=1)
    params = model.init(jax.random.PRNGKey(1), X)["params"]
    with pytest.raises(ValueError, match="pool='none'"):
        cnn_layer_features(model, params, X)
