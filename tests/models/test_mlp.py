"""MLP and perceptron: shapes, dtypes, activations, dropout, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models.mlp import ACTIVATIONS, MLP, Perceptron


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_shapes_for_every_activation(activation):
    model = MLP(widths=(5, 7), out_dim=3, activation=activation)
    x = jnp.ones((4, 2))
    variables = model.init(jax.random.PRNGKey(0), x)
    assert model.apply(variables, x).shape == (4, 3)
    assert [variables["params"][f"Dense_{i}"]["kernel"].shape for i in range(3)] == [
        (2, 5), (5, 7), (7, 3)]


def test_identity_activation_makes_the_mlp_linear():
    model = MLP(widths=(6,), activation="identity", use_bias=False)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    variables = model.init(jax.random.PRNGKey(0), x)
    p = variables["params"]
    np.testing.assert_allclose(model.apply(variables, x),
                               x @ p["Dense_0"]["kernel"] @ p["Dense_1"]["kernel"], rtol=1e-5)


def test_bias_off_removes_biases():
    variables = MLP(widths=(3,), use_bias=False).init(jax.random.PRNGKey(0), jnp.ones((1, 2)))
    assert all("bias" not in layer for layer in variables["params"].values())


def test_dropout_is_identity_at_eval_and_keeps_expected_activation_in_training():
    model = MLP(widths=(2000,), activation="identity", dropout_rate=0.5, use_bias=False)
    x = jnp.ones((1, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    eval_out = model.apply(variables, x)
    train_outs = jnp.stack([model.apply(variables, x, train=True,
                                        rngs={"dropout": jax.random.PRNGKey(i)})
                            for i in range(200)])
    assert not jnp.allclose(train_outs[0], eval_out)
    # Inverted dropout is unbiased: the mean over masks is the eval output, within 4 standard
    # errors of the 200-mask average.
    std_error = float(train_outs.std()) / np.sqrt(train_outs.size)
    assert abs(float(train_outs.mean()) - float(eval_out[0, 0])) < 4 * std_error


def test_bfloat16_compute_keeps_float32_params():
    model = MLP(widths=(4,), dtype=jnp.bfloat16)
    variables = model.init(jax.random.PRNGKey(0), jnp.ones((2, 3)))
    assert variables["params"]["Dense_0"]["kernel"].dtype == jnp.float32
    assert model.apply(variables, jnp.ones((2, 3))).dtype == jnp.bfloat16


def test_perceptron_is_one_affine_layer():
    variables = Perceptron(out_dim=2).init(jax.random.PRNGKey(0), jnp.ones((1, 3)))
    assert list(variables["params"]) == ["Dense_0"]


@pytest.mark.parametrize("kw, match", [(dict(widths=(4,), activation="swish9"), "known"),
                                       (dict(widths=(0,)), "width"),
                                       (dict(widths=(4,), dropout_rate=1.0), "dropout")])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kw)
