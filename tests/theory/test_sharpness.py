"""Tests for dl_theory/theory/sharpness.py: power iteration against explicit Hessians."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_theory.theory import sharpness

# A pytree with 6 entries in all, so a 6x6 matrix A defines the quadratic 1/2 w^T A w.
_PARAMS = {"a": jnp.array([0.3, -1.0]), "b": jnp.array([[0.5, 2.0], [-0.7, 0.1]])}


def _quadratic(eigenvalues):
    """Loss 1/2 w^T A w on _PARAMS, A = Q diag(eigenvalues) Q^T with a fixed random Q."""
    q, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(3), (6, 6)))
    a = (q * jnp.asarray(eigenvalues)[None, :]) @ q.T
    a = 0.5 * (a + a.T)

    def loss_fn(params):
        w, _ = ravel_pytree(params)
        return 0.5 * w @ a @ w

    return loss_fn, a


def test_hvp_equals_explicit_hessian_times_vector():
    loss_fn, a = _quadratic([4.0, 2.5, 1.0, 0.5, -0.3, -1.0])
    v = jax.tree.map(lambda p: jnp.cos(3.0 * p), _PARAMS)
    got, _ = ravel_pytree(sharpness.hvp(loss_fn, _PARAMS, v))
    np.testing.assert_allclose(got, a @ ravel_pytree(v)[0], rtol=1e-5, atol=1e-5)


def test_power_iteration_on_quadratic_finds_top_eigenvalue_and_vector():
    loss_fn, a = _quadratic([4.0, 2.5, 1.0, 0.5, -0.3, -1.0])
    result = sharpness.hessian_top_eigenvalue(loss_fn, _PARAMS, num_iters=200, tol=1e-7)
    np.testing.assert_allclose(result.eigenvalue, 4.0, rtol=1e-4)
    v, _ = ravel_pytree(result.eigenvector)
    np.testing.assert_allclose(jnp.linalg.norm(v), 1.0, rtol=1e-5)
    np.testing.assert_allclose(a @ v, 4.0 * v, atol=1e-3)
    assert 1 < int(result.num_iters) < 200


def test_negative_dominant_eigenvalue_is_shifted_away():
    # |-6| dominates: plain power iteration would return -6; the shifted pass must give 2.
    loss_fn, _ = _quadratic([2.0, 1.0, 0.5, 0.0, -3.0, -6.0])
    result = sharpness.hessian_top_eigenvalue(loss_fn, _PARAMS, num_iters=500, tol=1e-7)
    np.testing.assert_allclose(result.eigenvalue, 2.0, rtol=1e-4)


def test_negative_definite_hessian_gives_negative_lambda_max():
    loss_fn, _ = _quadratic([-0.5, -1.0, -2.0, -3.0, -4.0, -8.0])
    result = sharpness.hessian_top_eigenvalue(loss_fn, _PARAMS, num_iters=500, tol=1e-7)
    np.testing.assert_allclose(result.eigenvalue, -0.5, rtol=1e-4)


class _TinyMLP(nn.Module):
    """Test-only two-layer tanh net (the project's MLP lives in dl_theory/models)."""

    width: int = 6

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train
        return nn.Dense(1)(jnp.tanh(nn.Dense(self.width)(x)))[:, 0]


def test_power_iteration_on_tiny_net_matches_explicit_hessian():
    model = _TinyMLP()
    x = jax.random.normal(jax.random.key(1), (16, 3))
    y = jnp.sin(x[:, 0] + x[:, 1])
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]

    def loss_fn(p):
        return 0.5 * jnp.mean((model.apply({"params": p}, x) - y) ** 2)

    flat, unravel = ravel_pytree(params)
    hessian = jax.jit(jax.hessian(lambda w: loss_fn(unravel(w))))(flat)
    expected = float(jnp.linalg.eigvalsh(hessian).max())

    top = jax.jit(lambda p: sharpness.hessian_top_eigenvalue(
        loss_fn, p, num_iters=1000, key=jax.random.key(7), tol=1e-7))(params)
    np.testing.assert_allclose(top.eigenvalue, expected, rtol=1e-3)


def test_rejects_non_scalar_loss():
    with pytest.raises(ValueError, match="expected a scalar"):
        sharpness.hessian_top_eigenvalue(lambda p: p["a"], _PARAMS)
