"""Tests for dl_theory/models/transformer.py and seq2seq.py: shapes and dtypes, masks,
causality, dropout, bad sizes (decoding is tested in test_transformer_decoding.py and
test_seq2seq_decoding.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import transformer as tf
from dl_theory.models.seq2seq import Seq2SeqTransformer

KEY = jax.random.key(0)
SMALL = dict(d_model=8, num_heads=2, num_layers=2, mlp_dim=16)


def _tokens(shape, vocab, seed=1):
    return jax.random.randint(jax.random.key(seed), shape, 0, vocab)


CASES = {
    "classifier_tokens": (tf.TransformerClassifier(3, vocab_size=11, max_len=8, **SMALL),
                          _tokens((2, 6), 11), (2, 3)),
    "classifier_vectors": (tf.TransformerClassifier(3, max_len=8, **SMALL),
                           jax.random.normal(KEY, (2, 6, 4)), (2, 3)),
    "conv_transformer": (tf.ConvTransformerClassifier(3, conv_channels=(4, 4), max_len=8, **SMALL),
                         jax.random.normal(KEY, (2, 16)), (2, 3)),
    "lm_tied": (tf.CausalLM(11, max_len=8, **SMALL), _tokens((2, 6), 11), (2, 6, 11)),
    "lm_untied": (tf.CausalLM(11, max_len=8, tie_embeddings=False, **SMALL), _tokens((2, 6), 11),
                  (2, 6, 11)),
    "seq2seq": (Seq2SeqTransformer(7, 11, max_len=8, **SMALL),
                (_tokens((2, 5), 7), _tokens((2, 6), 11)), (2, 6, 11)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shapes_and_dtypes(name):
    """float32 params under both compute dtypes; outputs in the compute dtype."""
    model, x, shape = CASES[name]
    params = model.init(KEY, x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    out = model.apply(params, x, train=False)
    assert out.shape == shape and out.dtype == jnp.float32
    out_bf16 = model.clone(dtype=jnp.bfloat16).apply(params, x)
    assert out_bf16.shape == shape and out_bf16.dtype == jnp.bfloat16
    np.testing.assert_allclose(out_bf16.astype(jnp.float32), out, atol=0.15, rtol=0.1)


def test_tied_head_has_no_output_matrix_and_reuses_the_embedding():
    tokens = _tokens((1, 5), 11)
    tied = tf.CausalLM(11, max_len=8, **SMALL)
    params = tied.init(KEY, tokens)["params"]
    assert "head" not in params
    assert "head" in tf.CausalLM(11, max_len=8, tie_embeddings=False, **SMALL).init(
        KEY, tokens)["params"]
    scaled = jax.tree_util.tree_map_with_path(
        lambda path, p: p * 2.0 if "token_embed" in jax.tree_util.keystr(path) else p, params)
    assert not np.allclose(tied.apply({"params": scaled}, tokens),
                           tied.apply({"params": params}, tokens), atol=1e-3)


def test_causal_lm_future_tokens_cannot_change_past_logits():
    model = tf.CausalLM(13, max_len=10, **SMALL)
    tokens = _tokens((2, 10), 13)
    params = model.init(KEY, tokens)
    changed = tokens.at[:, 6:].set((tokens[:, 6:] + 5) % 13)
    out, out_changed = model.apply(params, tokens), model.apply(params, changed)
    np.testing.assert_allclose(out[:, :6], out_changed[:, :6], atol=1e-6)
    assert not np.allclose(out[:, 6:], out_changed[:, 6:], atol=1e-3)


def test_self_attention_causal_flag():
    x = jax.random.normal(KEY, (1, 5, 8))
    changed = x.at[:, 3:].add(1.0)
    for causal in (True, False):
        layer = tf.SelfAttention(num_heads=2, causal=causal)
        params = layer.init(KEY, x)
        same_past = np.allclose(layer.apply(params, x)[:, :3],
                                layer.apply(params, changed)[:, :3], atol=1e-6)
        assert same_past == causal


def test_classifier_padding_mask():
    model = tf.TransformerClassifier(3, vocab_size=11, max_len=8, **SMALL)
    tokens = _tokens((2, 7), 11)
    mask = jnp.array([[True] * 4 + [False] * 3, [True] * 7])
    params = model.init(KEY, tokens)
    out = model.apply(params, tokens, mask=mask)
    garbage = jnp.where(mask, tokens, (tokens + 3) % 11)
    np.testing.assert_allclose(model.apply(params, garbage, mask=mask), out, atol=1e-5)
    np.testing.assert_allclose(model.apply(params, tokens[:1, :4])[0], out[0], atol=1e-5)
    assert not np.allclose(model.apply(params, garbage)[0], out[0], atol=1e-3)


def test_seq2seq_source_mask_and_target_causality():
    model = Seq2SeqTransformer(7, 11, max_len=8, **SMALL)
    src, tgt = _tokens((2, 6), 7), _tokens((2, 5), 11, seed=2)
    src_mask = jnp.array([[True] * 3 + [False] * 3, [True] * 6])
    params = model.init(KEY, (src, tgt))
    out = model.apply(params, (src, tgt), src_mask=src_mask)
    padded_garbage = jnp.where(src_mask, src, (src + 1) % 7)
    np.testing.assert_allclose(model.apply(params, (padded_garbage, tgt), src_mask=src_mask),
                               out, atol=1e-5)
    np.testing.assert_allclose(model.apply(params, (src[:1, :3], tgt[:1]))[0], out[0],
                               atol=1e-5)
    future = tgt.at[:, 3:].set((tgt[:, 3:] + 2) % 11)
    out_future = model.apply(params, (src, future), src_mask=src_mask)
    np.testing.assert_allclose(out_future[:, :3], out[:, :3], atol=1e-6)
    assert not np.allclose(out_future[:, 3:], out[:, 3:], atol=1e-3)
    # Every target position sees the (real) source.
    other_src = src.at[:, 0].set((src[:, 0] + 1) % 7)
    assert not np.allclose(model.apply(params, (other_src, tgt), src_mask=src_mask)[:, 0],
                           out[:, 0], atol=1e-4)


def test_dropout_only_in_training():
    model = tf.CausalLM(11, max_len=8, dropout_rate=0.5, **SMALL)
    tokens = _tokens((2, 6), 11)
    params = model.init(KEY, tokens)
    eval_out = model.apply(params, tokens)
    np.testing.assert_array_equal(model.apply(params, tokens, train=False), eval_out)
    train_out = model.apply(params, tokens, train=True, rngs={"dropout": jax.random.key(1)})
    assert not np.allclose(train_out, eval_out, atol=1e-3)


@pytest.mark.parametrize("make, match", [
    (lambda: tf.CausalLM(5, d_model=10, num_heads=3), "num_heads=3"),
    (lambda: tf.ConvTransformerClassifier(2, activation="swishy"), "activation='swishy'"),
])
def test_bad_config_names_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_sequence_longer_than_max_len_raises():
    model = tf.CausalLM(5, max_len=4, **SMALL)
    with pytest.raises(ValueError, match="max_len=4"):
        model.init(KEY, jnp.zeros((1, 5), jnp.int32))


def test_seq2seq_src_pad_id_masks_like_an_explicit_mask():
    """With src_pad_id = 0 a call without src_mask hides the positions holding 0, exactly as
    the explicit mask does; encode then decode is the call; an out-of-vocabulary pad id is
    refused."""
    model = Seq2SeqTransformer(7, 11, max_len=8, src_pad_id=0, **SMALL)
    src = jnp.array([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    tgt = _tokens((2, 5), 11, seed=2)
    params = model.init(KEY, (src, tgt))
    implicit = model.apply(params, (src, tgt))
    explicit = model.apply(params, (src, tgt), src_mask=src != 0)
    np.testing.assert_array_equal(implicit, explicit)
    encoded = model.apply(params, src, method=model.encode)  # what decoding computes once
    np.testing.assert_array_equal(
        model.apply(params, tgt, encoded, src != 0, method=model.decoder_logits), implicit)
    assert not np.allclose(implicit, model.apply(params, (src, tgt), src_mask=src >= 0),
                           atol=1e-4)
    with pytest.raises(ValueError, match="src_pad_id=7; must be in"):
        Seq2SeqTransformer(7, 11, max_len=8, src_pad_id=7, **SMALL)
