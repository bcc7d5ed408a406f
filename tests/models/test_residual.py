"""Tests for dl_theory/models/residual.py: the residual and plain MLPs against a hand-written
forward pass with the same parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import residual

KEY = jax.random.key(0)


def _reference(params, x, *, depth, skip):
    """h_0 = W_in x; h <- [h +] W relu(h); logits = W_out relu(h), written out by hand."""
    def dense(p, h):
        return h @ p["kernel"] + p["bias"][None, :]

    h = dense(params["embed"], x)
    for layer in range(depth):
        update = dense(params[f"block_{layer}"], jax.nn.relu(h))
        h = h + update if skip else update
    return dense(params["head"], jax.nn.relu(h))


@pytest.mark.parametrize("skip", [True, False])
def test_forward_matches_hand_written_network(skip):
    model = residual.ResidualMLP(num_outputs=3, width=8, depth=4, residual=skip)
    x = jax.random.normal(KEY, (5, 6))
    params = model.init(KEY, x)["params"]
    np.testing.assert_allclose(model.apply({"params": params}, x),
                               _reference(params, x, depth=4, skip=skip), rtol=1e-5, atol=1e-5)


def test_plain_and_residual_share_parameters_and_differ_only_in_skips():
    x = jax.random.normal(KEY, (5, 6))
    res = residual.ResidualMLP(num_outputs=3, width=8, depth=3, pre_ln=True)
    plain = res.clone(residual=False)
    params = res.init(KEY, x)
    assert jax.tree.structure(params) == jax.tree.structure(plain.init(KEY, x))
    assert not np.allclose(res.apply(params, x), plain.apply(params, x), atol=1e-3)
    # With every block's weights zero, f_l = 0: the residual net keeps h_0 = W_in x, the plain
    # one sends h = 0 to the head, so only the residual net's output still depends on x.
    zeroed = jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.zeros_like(p) if "block_" in jax.tree_util.keystr(path) else p,
        params)
    zero_input = res.apply(zeroed, jnp.zeros_like(x))
    np.testing.assert_allclose(plain.apply(zeroed, x), plain.apply(zeroed, 0 * x), atol=1e-6)
    assert not np.allclose(res.apply(zeroed, x), zero_input, atol=1e-3)


def test_depth_zero_and_dtypes():
    model = residual.ResidualMLP(num_outputs=2, width=4, depth=0, dtype=jnp.bfloat16)
    x = jnp.ones((3, 5))
    params = model.init(KEY, x)
    assert sorted(params["params"]) == ["embed", "head"]
    out = model.apply(params, x, train=True)
    assert out.shape == (3, 2) and out.dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))


@pytest.mark.parametrize("kwargs", [dict(depth=-1), dict(width=0)])
def test_bad_sizes_raise(kwargs):
    with pytest.raises(ValueError, match="depth="):
        residual.ResidualMLP(num_outputs=2, **kwargs)
