"""Tests for dl_theory/theory/ntk.py: brute-force Jacobians and gradient descent on f_lin."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_theory.theory import ntk


class _TinyMLP(nn.Module):
    """Two tanh hidden layers; test-only (the project's MLP lives in dl_theory/models)."""

    width: int = 8
    num_outputs: int = 1

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train
        for _ in range(2):
            x = jnp.tanh(nn.Dense(self.width)(x))
        return nn.Dense(self.num_outputs)(x)


def _setup(num_outputs: int):
    model = _TinyMLP(num_outputs=num_outputs)
    x1 = jax.random.normal(jax.random.key(1), (7, 3))
    x2 = jax.random.normal(jax.random.key(2), (5, 3))
    params = jax.jit(model.init)(jax.random.key(0), x1)["params"]
    if num_outputs == 1:
        def apply_fn(p, x):
            return model.apply({"params": p}, x)[:, 0]
    else:
        def apply_fn(p, x):
            return model.apply({"params": p}, x)
    return apply_fn, params, x1, x2


def _brute_jacobian(apply_fn, params, x):
    """[N, K, P] (or [N, P] for scalar outputs) by jax.jacrev of the flattened parameters."""
    flat, unravel = ravel_pytree(params)
    # jit: op-by-op jacrev dispatches hundreds of tiny ops, slower than one compile.
    return jax.jit(jax.jacrev(lambda w: apply_fn(unravel(w), x)))(flat)


def test_scalar_ntk_equals_brute_force_jacobian_product():
    apply_fn, params, x1, x2 = _setup(1)
    expected = _brute_jacobian(apply_fn, params, x1) @ _brute_jacobian(apply_fn, params, x2).T
    # batch_size 3 leaves ragged last chunks in both inputs (7 = 3+3+1, 5 = 3+2).
    got = ntk.empirical_ntk(apply_fn, params, x1, x2, batch_size=3)
    assert got.shape == (7, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * float(jnp.abs(expected).max()))


def test_symmetric_ntk_fills_lower_blocks_from_upper():
    apply_fn, params, x1, _ = _setup(1)
    jac = _brute_jacobian(apply_fn, params, x1)
    got = ntk.empirical_ntk(apply_fn, params, x1, batch_size=2)
    np.testing.assert_allclose(got, jac @ jac.T, rtol=1e-5, atol=1e-5 * float(jnp.abs(got).max()))
    np.testing.assert_array_equal(got, got.T)


def test_multi_output_ntk_full_and_traced():
    apply_fn, params, x1, x2 = _setup(3)
    j1, j2 = _brute_jacobian(apply_fn, params, x1), _brute_jacobian(apply_fn, params, x2)
    expected = jnp.einsum("ikp,jlp->ijkl", j1, j2)
    got = ntk.empirical_ntk(apply_fn, params, x1, x2, batch_size=4)
    assert got.shape == (7, 5, 3, 3)
    atol = 1e-5 * float(jnp.abs(expected).max())
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=atol)
    traced = ntk.empirical_ntk(apply_fn, params, x1, x2, batch_size=4, trace_outputs=True)
    np.testing.assert_allclose(traced, jnp.trace(expected, axis1=2, axis2=3) / 3, rtol=1e-5,
                               atol=atol)


def test_ntk_rejects_bad_batch_size_and_output_rank():
    apply_fn, params, x1, _ = _setup(1)
    with pytest.raises(ValueError, match="batch_size=0"):
        ntk.empirical_ntk(apply_fn, params, x1, batch_size=0)
    with pytest.raises(ValueError, match="expected \\[1\\] or \\[1, K\\]"):
        ntk.empirical_ntk(lambda p, x: apply_fn(p, x)[:, None, None], params, x1)


def _linearised_gd(apply_fn, params, x_train, y_train, x_test, lr, steps):
    """Plain GD on L = 1/(2N) sum (f_lin - y)^2 with f_lin(w) = f(w0) + J0 (w - w0)."""
    w0, unravel = ravel_pytree(params)
    n = x_train.shape[0]

    def f_lin(w, x):
        out0, tangent = jax.jvp(lambda v: apply_fn(unravel(v), x), (w0,), (w - w0,))
        return out0 + tangent

    def loss(w):
        return 0.5 * jnp.sum((f_lin(w, x_train) - y_train) ** 2) / n

    def step(w, _):
        return w - lr * jax.grad(loss)(w), None

    w, _ = jax.lax.scan(step, w0, None, length=steps)
    return f_lin(w, x_train), f_lin(w, x_test)


def test_closed_form_matches_gradient_descent_on_linearised_model():
    apply_fn, params, x_train, x_test = _setup(1)
    y_train = jnp.sin(2.0 * x_train[:, 0])
    theta = ntk.empirical_ntk(apply_fn, params, x_train)
    theta_test = ntk.empirical_ntk(apply_fn, params, x_test, x_train)
    n = x_train.shape[0]
    # lr * lambda_max / N = 0.02 per step: GD's per-mode factor (1 - a)^k differs from the
    # flow's exp(-a k) by at most 2 e^-2 / k of the initial residual (0.0001 at k = 2000);
    # measured 4e-5. Dropping the 1/N of the loss would be off by 0.28.
    lr = 0.02 * n / float(jnp.linalg.eigvalsh(theta).max())
    steps = 2000
    gd_train, gd_test = _linearised_gd(apply_fn, params, x_train, y_train, x_test, lr, steps)
    f0_train, f0_test = apply_fn(params, x_train), apply_fn(params, x_test)
    cf_train, cf_test = ntk.linearized_gradient_flow(theta, theta_test, f0_train, f0_test,
                                                     y_train, lr, steps)
    scale = float(jnp.abs(y_train - f0_train).max())
    # Training must have moved the outputs, or agreement would be vacuous.
    assert float(jnp.abs(cf_train - f0_train).max()) > 0.3 * scale
    np.testing.assert_allclose(cf_train, gd_train, atol=5e-4 * scale)
    np.testing.assert_allclose(cf_test, gd_test, atol=5e-4 * scale)


def test_rank_deficient_kernel_finite_and_infinite_time():
    # f(w, x) = x . w with 4 points in R^2: Theta = X X^T has rank 2 (two zero eigenvalues).
    # The model is its own linearisation, so GD from w = 0 is the reference; at t = inf it
    # reaches the min-norm least-squares fit w* = pinv(X) y.
    x_train = jnp.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [2.0, -1.0]])
    x_test = jnp.array([[0.5, 0.5], [-1.0, 3.0]])
    y_train = jnp.array([1.0, -1.0, 0.5, 2.0])
    theta, theta_test = x_train @ x_train.T, x_test @ x_train.T
    zeros_train, zeros_test = jnp.zeros(4), jnp.zeros(2)
    lr, steps = 0.05, 300
    w = jax.lax.fori_loop(
        0, steps, lambda _, w: w - lr * x_train.T @ (x_train @ w - y_train) / 4, jnp.zeros(2))
    f_train, f_test = ntk.linearized_gradient_flow(theta, theta_test, zeros_train, zeros_test,
                                                   y_train, lr, steps)
    assert bool(jnp.all(jnp.isfinite(f_train))) and bool(jnp.all(jnp.isfinite(f_test)))
    np.testing.assert_allclose(f_train, x_train @ w, atol=2e-3)
    np.testing.assert_allclose(f_test, x_test @ w, atol=2e-3)
    w_star = jnp.linalg.pinv(x_train) @ y_train
    inf_train, inf_test = ntk.linearized_gradient_flow(theta, theta_test, zeros_train,
                                                       zeros_test, y_train, lr, jnp.inf)
    np.testing.assert_allclose(inf_train, x_train @ w_star, atol=1e-4)
    np.testing.assert_allclose(inf_test, x_test @ w_star, atol=1e-4)


def test_closed_form_at_zero_time_and_vmapped_over_times():
    theta = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    theta_test = jnp.array([[1.0, 0.2]])
    f0, f0_test, y = jnp.array([0.3, -0.2]), jnp.array([0.1]), jnp.array([1.0, 0.0])
    at_zero = ntk.linearized_gradient_flow(theta, theta_test, f0, f0_test, y, 0.1, 0.0)
    np.testing.assert_array_equal(at_zero[0], f0)
    np.testing.assert_array_equal(at_zero[1], f0_test)
    times = jnp.array([1.0, 10.0, 100.0])
    batched = jax.vmap(
        lambda t: ntk.linearized_gradient_flow(theta, theta_test, f0, f0_test, y, 0.1, t))(times)
    for k, t in enumerate(times):
        single = ntk.linearized_gradient_flow(theta, theta_test, f0, f0_test, y, 0.1, t)
        np.testing.assert_allclose(batched[0][k], single[0], rtol=1e-6)
        np.testing.assert_allclose(batched[1][k], single[1], rtol=1e-6)
    # Train residual |f_t - y| shrinks monotonically in t under gradient flow.
    residuals = jnp.linalg.norm(batched[0] - y[None, :], axis=1)
    assert bool(jnp.all(jnp.diff(residuals) < 0))


def test_closed_form_rejects_mismatched_shapes():
    theta = jnp.eye(3)
    with pytest.raises(ValueError, match="theta_test_train.shape"):
        ntk.linearized_gradient_flow(theta, jnp.ones((2, 4)), jnp.zeros(3), jnp.zeros(2),
                                     jnp.zeros(3), 0.1, 1.0)


def test_relative_kernel_change():
    theta_0 = jnp.array([[3.0, 0.0], [0.0, 4.0]])
    theta_t = theta_0 + jnp.array([[0.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(ntk.relative_kernel_change(theta_t, theta_0), 0.1, rtol=1e-6)
    with pytest.raises(ValueError, match="differ"):
        ntk.relative_kernel_change(theta_t, jnp.eye(3))
