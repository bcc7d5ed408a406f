"""SGD on the tied autoencoder's loss over fresh sparse-coding samples (Rangamani et al. 2018)."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.sparse_coding import sparse_coding_batch, two_ortho_dictionary
from dl_theory.models.tied_autoencoder import squared_loss
from dl_theory.theory.sparse_coding import rows_at_distance
from dl_theory.train.sparse_coding_fit import sgd_on_fresh_samples

SETTINGS = dict(steps=3, batch=8, k=2, low=1.0, high=2.0, bias=0.3)


def test_zero_learning_rate_keeps_w_and_its_distance():
    a = jnp.asarray(two_ortho_dictionary(8), jnp.float32)
    w0 = rows_at_distance(jax.random.key(0), a, 0.4)
    w, distances = sgd_on_fresh_samples(w0, a, jax.random.key(1), learning_rate=0.0, **SETTINGS)
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w0))
    np.testing.assert_allclose(np.asarray(distances), 0.4, atol=1e-6)


def test_one_step_is_plain_sgd_on_the_first_fresh_batch():
    """W_1 = W_0 - lr * grad L(W_0; batch drawn with fold_in(key, 0))."""
    a = jnp.asarray(two_ortho_dictionary(8), jnp.float32)
    w0 = rows_at_distance(jax.random.key(2), a, 0.4)
    key, lr = jax.random.key(3), 0.7
    w1, _ = sgd_on_fresh_samples(w0, a, key, learning_rate=lr, **{**SETTINGS, "steps": 1})
    _, y = sparse_coding_batch(jax.random.fold_in(key, 0), a, 8, 2, 1.0, 2.0)
    expected = w0 - lr * jax.grad(squared_loss)(w0, y, 0.3)
    np.testing.assert_allclose(np.asarray(w1), np.asarray(expected), atol=1e-6)


def test_autoencoder_matches_the_training_problem_and_takes_the_policy():
    import ml_collections

    from dl_theory.train.precision import get_policy
    from dl_theory.train.sparse_coding_fit import autoencoder, training_problem

    c = ml_collections.ConfigDict(dict(n=16, p=0.2, step_scale=0.2))
    values = ml_collections.ConfigDict(dict(low=1.0, high=2.0))
    problem = training_problem(c, values)
    assert problem["dictionary"].shape == (16, 32) and problem["h"] == 32
    model = autoencoder(c, values, get_policy("bfloat16"))
    assert (model.code_dim, model.bias) == (32, problem["bias"])
    assert model.dtype == jnp.bfloat16 and model.param_dtype == jnp.float32


def test_bfloat16_forward_pass_keeps_float32_gradients_close_to_float32s():
    """The loss in bfloat16 compute: W's gradient stays float32 and within bfloat16's
    rounding (a few 2^-8 relative) of the float32 gradient."""
    a = jnp.asarray(two_ortho_dictionary(8), jnp.float32)
    w = rows_at_distance(jax.random.key(0), a, 0.3)
    _, y = sparse_coding_batch(jax.random.key(1), a, 64, 2, 1.0, 2.0)
    g32 = jax.grad(squared_loss)(w, y, 0.3)
    g16 = jax.grad(squared_loss)(w, y, 0.3, jnp.bfloat16)
    assert g16.dtype == jnp.float32
    assert float(jnp.linalg.norm(g16 - g32) / jnp.linalg.norm(g32)) < 0.05
    assert float(jnp.linalg.norm(g16 - g32)) > 0.0  # the compute dtype is really bfloat16
