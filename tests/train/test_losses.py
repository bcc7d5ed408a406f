"""Losses against closed forms, in float32 whatever the input dtype."""

import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.train import losses


def test_mse_sums_outputs_and_averages_examples():
    pred = jnp.array([[1.0, 2.0], [0.0, 0.0]])
    target = jnp.array([[0.0, 0.0], [0.0, 3.0]])
    assert float(losses.mean_squared_error(pred, target)) == pytest.approx((1 + 4 + 9) / 2)


def test_weights_drop_padded_examples():
    pred = jnp.array([[1.0], [100.0]])
    target = jnp.array([[0.0], [0.0]])
    value = losses.mean_squared_error(pred, target, jnp.array([1.0, 0.0]))
    assert float(value) == pytest.approx(1.0)


def test_binary_cross_entropy_closed_form_and_stability():
    z = jnp.array([[0.0], [2.0], [-50.0]])
    y = jnp.array([[1.0], [0.0], [1.0]])
    expected = np.mean([np.log(2.0), np.log1p(np.exp(2.0)), 50.0 + np.log1p(np.exp(-50.0))])
    assert float(losses.binary_cross_entropy_with_logits(z, y)) == pytest.approx(expected, rel=1e-6)


def test_softmax_cross_entropy_closed_form():
    logits = jnp.array([[0.0, 0.0, 0.0, 0.0], [10.0, 0.0, 0.0, 0.0]])
    labels = jnp.array([2, 0])
    expected = (np.log(4.0) + np.log1p(3 * np.exp(-10.0))) / 2
    assert float(losses.softmax_cross_entropy(logits, labels)) == pytest.approx(expected, rel=1e-6)


def test_losses_are_float32_under_bfloat16_inputs():
    pred = jnp.ones((4, 3), jnp.bfloat16)
    assert losses.softmax_cross_entropy(pred, jnp.zeros(4, jnp.int32)).dtype == jnp.float32
    assert losses.mean_squared_error(pred, pred).dtype == jnp.float32


def test_accuracy():
    logits = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert float(losses.accuracy(logits, jnp.array([0, 1, 1]))) == pytest.approx(2 / 3)


def test_shape_mismatch_and_unknown_name_are_named():
    with pytest.raises(ValueError, match=r"\(3, 1\)"):
        losses.mean_squared_error(jnp.ones((3, 1)), jnp.ones((3,)))
    with pytest.raises(ValueError, match="known"):
        losses.get_loss("hinge2")


def test_padded_token_cross_entropy_ignores_padding_and_averages_per_example():
    """Example 0 has two real tokens (labels 2, then EOS = 1) and padding (0) whose logits are
    garbage; example 1 has three real tokens. Closed form: uniform logits over 4 classes cost
    log 4 per token, a confident right token ~0."""
    logits = jnp.zeros((2, 3, 4)).at[0, 2].set(jnp.array([-50.0, 50.0, 0.0, 0.0]))
    logits = logits.at[1, 0].set(jnp.array([0.0, 0.0, 0.0, 30.0]))
    labels = jnp.array([[2, 1, 0], [3, 2, 1]])
    loss = losses.PaddedTokenCrossEntropy(pad_id=0)
    per_example = [np.log(4.0), (0.0 + 2 * np.log(4.0)) / 3]
    assert float(loss(logits, labels)) == pytest.approx(np.mean(per_example), rel=1e-5)
    assert float(loss(logits, labels, jnp.array([1.0, 0.0]))) == pytest.approx(np.log(4.0))
    assert loss == losses.PaddedTokenCrossEntropy(0)  # equal losses share compiled programs
    with pytest.raises(ValueError, match=r"needs labels \[B, T\]"):
        loss(logits, labels[:, :2])
