"""Tests for dl_theory/models/conv.py: shapes, dtypes, layouts, batch-norm train/eval modes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import conv
from dl_theory.models.transformer import ConvTransformerClassifier

KEY = jax.random.key(0)


@pytest.mark.parametrize("spatial_dims, shape", [(1, (3, 16, 2)), (1, (3, 16)),
                                                  (2, (3, 8, 8, 3)), (2, (3, 8, 8))])
@pytest.mark.parametrize("readout", ["mean", "max", "flatten"])
def test_cnn_shapes(spatial_dims, shape, readout):
    model = conv.CNN(num_classes=5, channels=(4, 6), spatial_dims=spatial_dims, readout=readout)
    x = jax.random.normal(KEY, shape)
    params = model.init(KEY, x)
    out = model.apply(params, x, train=True)
    assert out.shape == (3, 5) and out.dtype == jnp.float32
    if readout == "flatten":
        # Two 2x poolings of side 16 (1-D) or 8x8 (2-D) leave 4 or 2x2 positions of 6 channels.
        assert params["params"]["head"]["kernel"].shape == (24, 5)


def test_cnn_channel_axis_added_for_missing_channels():
    model = conv.CNN(num_classes=3, channels=(4,), spatial_dims=1)
    x = jax.random.normal(KEY, (2, 12))
    params = model.init(KEY, x)
    np.testing.assert_array_equal(model.apply(params, x), model.apply(params, x[..., None]))


@pytest.mark.parametrize("model", [conv.CNN(num_classes=3, channels=(4,)),
                                   conv.ResNet(num_classes=3, stage_channels=(4, 8),
                                               blocks_per_stage=1)])
def test_bf16_compute_keeps_float32_params(model):
    x = jax.random.normal(KEY, (2, 8, 8, 1))
    variables = model.init(KEY, x)
    bf16 = model.clone(dtype=jnp.bfloat16)
    out, state = bf16.apply(variables, x, train=True, mutable=["batch_stats"])
    assert out.dtype == jnp.bfloat16 and out.shape == (2, 3)
    leaves = jax.tree.leaves(variables) + jax.tree.leaves(state)
    assert all(leaf.dtype == jnp.float32 for leaf in leaves)
    np.testing.assert_allclose(out.astype(jnp.float32), model.apply(variables, x, train=True,
                                                                    mutable=["batch_stats"])[0],
                               atol=0.1, rtol=0.1)


@pytest.mark.parametrize("spatial_dims, shape", [(1, (4, 16, 3)), (2, (4, 8, 8, 3))])
@pytest.mark.parametrize("residual", [True, False])
def test_resnet_shapes(spatial_dims, shape, residual):
    model = conv.ResNet(num_classes=7, stage_channels=(4, 8), blocks_per_stage=2,
                        spatial_dims=spatial_dims, residual=residual)
    x = jax.random.normal(KEY, shape)
    variables = model.init(KEY, x)
    out, state = model.apply(variables, x, train=True, mutable=["batch_stats"])
    assert out.shape == (4, 7)
    assert ("proj" in variables["params"]["stage1_block0"]) == residual
    assert jax.tree.structure(state["batch_stats"]) == jax.tree.structure(
        variables["batch_stats"])


def test_resnet_residual_flag_changes_only_the_skips():
    x = jax.random.normal(KEY, (2, 8, 8, 3))
    plain = conv.ResNet(num_classes=2, stage_channels=(4,), blocks_per_stage=2, residual=False)
    res = plain.clone(residual=True)
    # One stage of equal widths: no projection, so both nets have the same parameter tree.
    variables = res.init(KEY, x)
    assert jax.tree.structure(variables) == jax.tree.structure(plain.init(KEY, x))
    assert not np.allclose(res.apply(variables, x), plain.apply(variables, x))


def test_batch_norm_uses_running_averages_at_eval_only():
    model = conv.ResNet(num_classes=3, stage_channels=(4,), blocks_per_stage=1)
    x = jax.random.normal(KEY, (6, 8, 8, 2)) * 3.0 + 1.0
    variables = model.init(KEY, x)
    shifted = dict(variables, batch_stats=jax.tree.map(lambda s: s + 0.5,
                                                       variables["batch_stats"]))
    # Eval reads the running statistics, so it is per-example: independent of the batch.
    eval_out = model.apply(variables, x)
    np.testing.assert_allclose(model.apply(variables, x[:2]), eval_out[:2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(model.apply(shifted, x), eval_out, atol=1e-3)
    # Train normalises with the batch's own statistics and ignores the running ones.
    train_out, state = model.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_array_equal(
        train_out, model.apply(shifted, x, train=True, mutable=["batch_stats"])[0])
    assert not np.allclose(model.apply(variables, x[:2], train=True,
                                       mutable=["batch_stats"])[0], train_out[:2], atol=1e-3)
    # The stem's running mean moves by (1 - momentum) times the batch mean of its conv output.
    new_mean = state["batch_stats"]["stem_norm"]["mean"]
    conv_out = jax.lax.conv_general_dilated(
        x, variables["params"]["stem"]["kernel"], (1, 1), "SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(new_mean, 0.1 * conv_out.mean(axis=(0, 1, 2)), rtol=1e-4,
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [(dict(pool="median"), "pool='median'"),
                                           (dict(readout="sum"), "readout='sum'"),
                                           (dict(spatial_dims=3), "spatial_dims=3")])
def test_bad_config_names_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv.CNN(num_classes=2, **kwargs)


def test_bad_input_rank_raises():
    model = conv.CNN(num_classes=2, spatial_dims=2)
    with pytest.raises(ValueError, match="ndim=2"):
        model.init(KEY, jnp.ones((2, 5)))


@pytest.mark.parametrize("model", [
    conv.CNN(10, channels=(6, 5), kernel_size=5, readout="flatten", spatial_dims=1),
    ConvTransformerClassifier(10, conv_channels=(8, 8), kernel_size=4, conv_stride=2,
                              d_model=8, num_heads=2, num_layers=1, mlp_dim=8, max_len=40)])
def test_conv_as_matmul_equals_lax_conv(model):
    """Same parameter tree and, to float rounding, the same outputs as lax.conv (stride 1 and
    2, odd and even kernel widths)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (16, 40))
    variables = model.init(jax.random.PRNGKey(1), x)
    with nn.intercept_methods(conv.conv_as_matmul):
        same_tree = model.init(jax.random.PRNGKey(1), x)
        out = model.apply(variables, x)
    assert jax.tree.map(jnp.shape, same_tree) == jax.tree.map(jnp.shape, variables)
    np.testing.assert_allclose(out, model.apply(variables, x), atol=1e-5)


def test_conv_as_matmul_refuses_valid_padding():
    model = nn.Conv(4, kernel_size=(3,), padding="VALID")
    with nn.intercept_methods(conv.conv_as_matmul), pytest.raises(ValueError, match="'VALID'"):
        model.init(KEY, jnp.zeros((2, 10, 3)))
