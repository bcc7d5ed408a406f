"""Twins of a permutation-equivariant net: aligned twins agree after a step, unaligned do not."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_theory.theory.equivariant_twins import (
    dense_rows,
    one_step_relative_differences,
    position_rows,
    rms_logit_distance,
)

PERM = np.asarray([2, 0, 3, 1])


def _apply(params, x):
    return jnp.tanh(x @ params["w"]) @ params["v"]


def _loss(logits, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def test_aligned_twin_agrees_after_one_adam_step_and_the_unaligned_one_does_not():
    key_w, key_v, key_x = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w": jax.random.normal(key_w, (2, 4, 8)), "v": jax.random.normal(key_v, (2, 8, 3))}
    x = jax.random.normal(key_x, (32, 4))
    y = jnp.arange(32) % 3
    original = {"train": {"x": x, "y": y}, "test": {"x": x, "y": y}}
    shuffled = {split: {"x": x[:, PERM], "y": y} for split in ("train", "test")}
    twins = {"original": params, "aligned": dense_rows(("w",))(params, PERM),
             "unaligned": params}
    diffs = one_step_relative_differences(
        _apply, _loss, optax.adam(1e-2), twins,
        {"original": original, "aligned": shuffled, "unaligned": shuffled}, batch_size=16)
    assert diffs["aligned"] < 1e-5 and diffs["unaligned"] > 1e-2, diffs


def test_position_rows_permute_only_the_first_positions():
    table = jnp.arange(12.0).reshape(6, 2)
    aligned = position_rows(("t",), 4)({"t": table}, PERM)["t"]
    np.testing.assert_array_equal(aligned[:4], table[PERM])
    np.testing.assert_array_equal(aligned[4:], table[4:])


def test_rms_logit_distance_per_seed():
    a = np.zeros((2, 3, 4))
    b = np.stack([np.zeros((3, 4)), np.full((3, 4), 2.0)])
    assert rms_logit_distance(b, a).tolist() == pytest.approx([0.0, 2.0])
