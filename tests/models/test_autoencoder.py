"""Tests for dl_theory/models/autoencoder.py: shapes, mirrored layers, the linear special case."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_theory.models.autoencoder import MLPAutoencoder


def test_shapes_and_mirrored_layers():
    model = MLPAutoencoder(widths=(16, 8), code_dim=3, activation="tanh")
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 40))
    params = model.init(jax.random.PRNGKey(1), x)["params"]
    assert model.apply({"params": params}, x, train=True).shape == (5, 40)
    kernels = {name: p["kernel"].shape for name, p in params.items()}
    assert kernels == {"encoder_0": (40, 16), "encoder_1": (16, 8), "code": (8, 3),
                       "decoder_0": (3, 8), "decoder_1": (8, 16), "reconstruction": (16, 40)}
    _, sown = model.apply({"params": params}, x, mutable=["intermediates"])
    assert sown["intermediates"]["latent"][0].shape == (5, 3)


def test_linear_autoencoder_reaches_the_pca_error():
    """A linear autoencoder with a k-dim code learns the top-k principal subspace (Baldi &
    Hornik 1989): its optimal error is the sum of the discarded eigenvalues of the covariance."""
    rng = np.random.default_rng(0)
    scales = np.array([3.0, 2.0, 1.0, 0.3, 0.2, 0.1])
    x = jnp.asarray(rng.standard_normal((512, 6)) * scales, dtype=jnp.float32)
    x = x - x.mean(0, keepdims=True)
    eig = np.sort(np.linalg.eigvalsh(np.cov(np.asarray(x).T, bias=True)))[::-1]
    model = MLPAutoencoder(widths=(), code_dim=3, activation="identity")
    params = model.init(jax.random.PRNGKey(0), x)["params"]
    tx = optax.adam(1e-2)

    def loss(p):
        return jnp.mean(jnp.sum((model.apply({"params": p}, x) - x) ** 2, -1))

    def step(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=3000)
    np.testing.assert_allclose(float(loss(params)), eig[3:].sum(), rtol=0.02)


def test_bad_widths_raise():
    with pytest.raises(ValueError, match="code_dim"):
        MLPAutoencoder(widths=(4,), code_dim=0)
    with pytest.raises(ValueError, match="activation"):
        MLPAutoencoder(widths=(4,), code_dim=2, activation="swish2")
