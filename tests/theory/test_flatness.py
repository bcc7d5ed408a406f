"""perturbed_loss_increase against the closed form rho^2 tr(H) / (2P) of a quadratic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory.flatness import perturbed_loss_increase


def test_quadratic_mean_increase_is_rho_squared_trace_over_2p():
    h = jnp.array([4.0, 1.0, 0.25, 0.0])
    params = {"a": jnp.zeros(2), "b": jnp.zeros(2)}

    def loss(p):
        flat = jnp.concatenate([p["a"], p["b"]])
        return 0.5 * jnp.sum(h * flat ** 2)

    radii = np.array([0.5, 1.0, 2.0])
    measured = perturbed_loss_increase(loss, params, radii, jax.random.PRNGKey(0),
                                       num_directions=4000)
    np.testing.assert_allclose(measured, radii ** 2 * float(h.sum()) / (2 * 4), rtol=0.05)


def test_a_sharper_quadratic_has_a_larger_increase():
    params = jnp.ones(3)
    key = jax.random.PRNGKey(1)
    flat = perturbed_loss_increase(lambda p: jnp.sum((p - 1.0) ** 2), params, [1.0], key)
    sharp = perturbed_loss_increase(lambda p: 10.0 * jnp.sum((p - 1.0) ** 2), params, [1.0], key)
    assert float(sharp[0]) == pytest.approx(10.0 * float(flat[0]), rel=1e-5)
