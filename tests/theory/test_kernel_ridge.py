"""Kernel ridge regression against closed forms and a brute-force NumPy solve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory import kernel_ridge as kr


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(n, d))
    return x, np.sin(x.sum(1, keepdims=True) * 2.0)


def test_rbf_kernel_matches_formula():
    x, _ = _data(5, 2)
    z = x[::-1] + 0.3
    want = np.exp(-((x[:, None, :] - z[None]) ** 2).sum(-1) / (2 * 0.7**2))
    np.testing.assert_allclose(kr.rbf_kernel(jnp.asarray(x), jnp.asarray(z), 0.7), want,
                               rtol=1e-5, atol=1e-6)


def test_single_point_closed_form():
    """n = 1: K = 1, alpha = y / (1 + lam), prediction at x' = alpha exp(-|x - x'|^2 / 2 l^2)."""
    x, y = jnp.array([[0.2, -0.1]]), jnp.array([[3.0]])
    fit = kr.kernel_ridge_fit(x, y, lengthscale=0.5, ridge=0.25)
    np.testing.assert_allclose(fit.alpha, [[3.0 / 1.25]], rtol=1e-6)
    pred = kr.kernel_ridge_predict(fit, jnp.array([[0.2, 0.4]]))
    np.testing.assert_allclose(pred, [[2.4 * np.exp(-0.25 / 0.5)]], rtol=1e-5)


def test_fit_matches_bruteforce_solve_in_float64():
    x, y = _data()
    n, ell, lam = len(x), 0.6, 1e-3
    gram = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / (2 * ell**2))
    alpha = np.linalg.solve(gram + n * lam * np.eye(n), y)
    with jax.enable_x64(True):
        fit = kr.kernel_ridge_fit(jnp.asarray(x), jnp.asarray(y), ell, lam)
        np.testing.assert_allclose(fit.alpha, alpha, rtol=1e-8, atol=1e-10)


def test_tiny_ridge_interpolates_and_huge_ridge_shrinks_to_zero():
    x, y = _data(20, 2)
    with jax.enable_x64(True):
        x64, y64 = jnp.asarray(x), jnp.asarray(y)
        interp = kr.kernel_ridge_predict(kr.kernel_ridge_fit(x64, y64, 0.3, 1e-12), x64)
        np.testing.assert_allclose(interp, y, atol=1e-5)
    shrunk = kr.kernel_ridge_predict(kr.kernel_ridge_fit(jnp.asarray(x, jnp.float32),
                                                         jnp.asarray(y, jnp.float32), 0.3, 1e6),
                                     jnp.asarray(x, jnp.float32))
    assert float(jnp.max(jnp.abs(shrunk))) < 1e-5


def test_tuning_picks_the_bruteforce_best_grid_point():
    x, y = _data(60, 2, seed=1)
    xv, yv = _data(50, 2, seed=2)
    ells, lams = [0.05, 0.3, 1.0, 5.0], [1e-6, 1e-3, 1e-1]
    with jax.enable_x64(True):
        sel = kr.tune_kernel_ridge(jnp.asarray(x), jnp.asarray(y), jnp.asarray(xv),
                                   jnp.asarray(yv), ells, lams)
        brute = np.array([[float(jnp.mean((kr.kernel_ridge_predict(
            kr.kernel_ridge_fit(jnp.asarray(x), jnp.asarray(y), ell, lam), jnp.asarray(xv))
            - yv) ** 2)) for lam in lams] for ell in ells])
    np.testing.assert_allclose(sel.val_mse, brute, rtol=1e-6)
    i, j = np.unravel_index(np.argmin(brute), brute.shape)
    assert (sel.lengthscale, sel.ridge) == (ells[i], lams[j])
    # The chosen point is an interior one here: too narrow and too wide kernels both lose.
    assert brute[0].min() > brute.min() and brute[-1].min() > brute.min()


@pytest.mark.parametrize("bad", [dict(lengthscale=0.0), dict(ridge=-1.0)])
def test_bad_hyperparameters_raise(bad):
    x, y = _data(5, 2)
    kwargs = dict(lengthscale=1.0, ridge=1e-3) | bad
    with pytest.raises(ValueError, match=next(iter(bad))):
        kr.kernel_ridge_fit(jnp.asarray(x), jnp.asarray(y), **kwargs)
