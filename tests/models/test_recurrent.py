"""Tests for dl_theory/models/recurrent.py: RNN/LSTM/GRU shapes and padding; RCNN reduces to
its CNN at steps=0."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import conv, recurrent

KEY = jax.random.key(0)


@pytest.mark.parametrize("cell", sorted(recurrent.CELLS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_classifier_and_tagger_shapes_and_dtypes(cell, dtype):
    x = jax.random.normal(KEY, (3, 7, 2))
    for model, shape in [(recurrent.SequenceClassifier(4, hidden=5, cell=cell, num_layers=2,
                                                       dtype=dtype), (3, 4)),
                         (recurrent.SequenceTagger(4, hidden=5, cell=cell, dtype=dtype),
                          (3, 7, 4))]:
        params = model.init(KEY, x)
        out = model.apply(params, x, train=True)
        assert out.shape == shape and out.dtype == dtype
        assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))


def test_simple_cell_is_elman_recurrence():
    model = recurrent.RecurrentEncoder(hidden=3, cell="rnn")
    x = jax.random.normal(KEY, (2, 4, 2))
    params = model.init(KEY, x)["params"]["layer_0"]
    h = jnp.zeros((2, 3))
    expected = []
    for t in range(4):
        h = jnp.tanh(x[:, t] @ params["i"]["kernel"] + params["i"]["bias"][None, :]
                     + h @ params["h"]["kernel"])
        expected.append(h)
    out = model.apply({"params": {"layer_0": params}}, x)
    np.testing.assert_allclose(out, jnp.stack(expected, axis=1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("readout", sorted(recurrent.READOUTS))
def test_padding_does_not_change_classifier(readout):
    model = recurrent.SequenceClassifier(3, hidden=6, cell="gru", readout=readout)
    lengths = jnp.array([2, 5, 3])
    x = jax.random.normal(KEY, (3, 5, 2))
    mask = (jnp.arange(5)[None, :] < lengths[:, None])[..., None]
    garbage = jnp.where(mask, x, 100.0 * jax.random.normal(jax.random.key(1), x.shape))
    params = model.init(KEY, x)
    out = model.apply(params, x, lengths=lengths)
    np.testing.assert_allclose(model.apply(params, garbage, lengths=lengths), out, atol=1e-6)
    # Each padded sequence alone, cut to its length, gives the same logits.
    for b, n in enumerate(lengths.tolist()):
        np.testing.assert_allclose(model.apply(params, x[b:b + 1, :n])[0], out[b], atol=1e-5)
    assert not np.allclose(model.apply(params, x), out, atol=1e-3)


def test_token_inputs_are_embedded():
    model = recurrent.SequenceTagger(2, hidden=4, cell="lstm", vocab_size=11)
    tokens = jnp.array([[1, 2, 3], [10, 0, 5]])
    params = model.init(KEY, tokens)
    assert params["params"]["encoder"]["embed"]["embedding"].shape == (11, 4)
    assert model.apply(params, tokens).shape == (2, 3, 2)


def test_tagger_is_causal():
    model = recurrent.SequenceTagger(2, hidden=4, cell="lstm")
    x = jax.random.normal(KEY, (1, 6, 3))
    params = model.init(KEY, x)
    changed = x.at[:, 4:].set(5.0)
    out, out_changed = model.apply(params, x), model.apply(params, changed)
    np.testing.assert_array_equal(out[:, :4], out_changed[:, :4])
    assert not np.allclose(out[:, 4:], out_changed[:, 4:], atol=1e-3)


@pytest.mark.parametrize("spatial_dims, shape", [(1, (2, 8, 2)), (2, (2, 4, 4, 2))])
def test_rcnn_with_zero_steps_equals_its_cnn(spatial_dims, shape):
    x = jax.random.normal(KEY, shape)
    rcnn = recurrent.RCNN(num_classes=4, channels=(3, 4), steps=2, spatial_dims=spatial_dims)
    params = rcnn.init(KEY, x)["params"]
    assert sorted(k for k in params if k.startswith("rec_")) == ["rec_conv_1"]
    feedforward = {k: v for k, v in params.items() if not k.startswith("rec_")}
    cnn = conv.CNN(num_classes=4, channels=(3, 4), spatial_dims=spatial_dims)
    expected = cnn.apply({"params": feedforward}, x)
    np.testing.assert_array_equal(rcnn.clone(steps=0).apply({"params": feedforward}, x),
                                  expected)
    assert not np.allclose(rcnn.apply({"params": params}, x), expected, atol=1e-3)


def test_rcnn_shares_recurrent_weights_across_steps():
    x = jax.random.normal(KEY, (1, 4, 4, 1))
    shapes = [jax.tree.map(jnp.shape, recurrent.RCNN(3, channels=(2, 2), steps=t).init(KEY, x))
              for t in (1, 4)]
    assert shapes[0] == shapes[1]


def test_rcnn_unrolls_the_rcl_equation():
    # One RCL, no pooling, identity readout: compare x_2 with the equation written out.
    model = recurrent.RCNN(2, channels=(3,), steps=2, plain_layers=0, spatial_dims=1,
                           pool="none", kernel_size=1, readout="flatten")
    u = jax.random.normal(KEY, (1, 4, 2))
    params = model.init(KEY, u)["params"]
    w_ff, b_ff = params["conv_0"]["kernel"][0], params["conv_0"]["bias"]
    w_rec = params["rec_conv_0"]["kernel"][0]
    feedforward = u[0] @ w_ff + b_ff[None, :]
    h = jax.nn.relu(feedforward)
    for _ in range(2):
        h = jax.nn.relu(feedforward + h @ w_rec)
    expected = h.reshape(1, -1) @ params["head"]["kernel"] + params["head"]["bias"][None, :]
    np.testing.assert_allclose(model.apply({"params": params}, u), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("make, match", [
    (lambda: recurrent.RecurrentEncoder(cell="transformer"), "cell='transformer'"),
    (lambda: recurrent.SequenceClassifier(2, readout="first"), "readout='first'"),
    (lambda: recurrent.RCNN(2, steps=-1), "steps=-1"),
])
def test_bad_config_names_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()
