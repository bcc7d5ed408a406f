"""Greedy and beam-search decoding of the encoder-decoder (dl_theory/models/seq2seq_decoding)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models.seq2seq import Seq2SeqTransformer
from dl_theory.models.seq2seq_decoding import beam_search, greedy_decode, sequence_log_prob

PAD, BOS, EOS = 0, 1, 2
SMALL = dict(d_model=16, num_heads=2, num_layers=2, mlp_dim=32)


def _model_and_variables(tgt_vocab=9, max_len=8, seed=0, head_scale=30.0):
    model = Seq2SeqTransformer(7, tgt_vocab, max_len=max_len, **SMALL)
    src = jax.random.randint(jax.random.key(seed + 1), (4, 6), 3, 7)
    variables = model.init(jax.random.key(seed), (src, jnp.zeros((4, max_len), jnp.int32)))
    # Random init gives near-uniform outputs; a larger head makes the choices decisive.
    variables = jax.tree_util.tree_map_with_path(
        lambda path, x: x * head_scale if "head" in jax.tree_util.keystr(path) else x, variables)
    src_mask = jnp.array([[True] * 6, [True] * 4 + [False] * 2, [True] * 6,
                          [True] * 3 + [False] * 3])
    return model, variables, src, src_mask


def test_greedy_score_is_the_sequence_log_probability_and_pad_follows_eos():
    model, variables, src, mask = _model_and_variables()
    tokens, score, ended = greedy_decode(model, variables, src, mask, 8, BOS, EOS, PAD)
    assert tokens.shape == (4, 8) and score.shape == (4,)
    np.testing.assert_allclose(score, sequence_log_prob(model, variables, src, mask, tokens,
                                                        BOS, EOS), atol=1e-4)
    for row, end in zip(np.asarray(tokens), np.asarray(ended)):
        eos_at = np.flatnonzero(row == EOS)
        assert end == (eos_at.size > 0)
        if end:
            assert np.all(row[eos_at[0] + 1:] == PAD)
    assert np.any(ended)  # the PAD check above ran


def test_beam_size_one_equals_greedy():
    model, variables, src, mask = _model_and_variables(seed=3)
    greedy = greedy_decode(model, variables, src, mask, 8, BOS, EOS, PAD)
    beam = beam_search(model, variables, src, mask, 8, 1, BOS, EOS, PAD)
    np.testing.assert_array_equal(beam[0][:, 0], greedy[0])
    np.testing.assert_allclose(beam[1][:, 0], greedy[1], atol=1e-4)
    np.testing.assert_array_equal(beam[2][:, 0], greedy[2])


def test_beam_hypotheses_are_sorted_scored_exactly_and_beat_greedy():
    model, variables, src, mask = _model_and_variables(seed=5, head_scale=10.0)
    tokens, score, _ = beam_search(model, variables, src, mask, 8, 4, BOS, EOS, PAD)
    assert tokens.shape == (4, 4, 8)
    assert np.all(np.diff(np.asarray(score), axis=1) <= 1e-6)
    for beam in range(4):
        np.testing.assert_allclose(
            score[:, beam], sequence_log_prob(model, variables, src, mask, tokens[:, beam],
                                              BOS, EOS), atol=1e-4)
    _, greedy_score, _ = greedy_decode(model, variables, src, mask, 8, BOS, EOS, PAD)
    assert np.all(np.asarray(score[:, 0]) >= np.asarray(greedy_score) - 1e-5)
    # The random model is decisive enough that beam search finds a strictly better answer
    # for at least one source (else the comparison above would test nothing).
    assert np.any(np.asarray(score[:, 0]) > np.asarray(greedy_score) + 1e-3)


def test_wide_beam_finds_the_exhaustive_optimum():
    """With 5 tokens and 3 steps, a beam of 25 never prunes before the last step, so its
    best hypothesis is the most likely of all 125 output sequences (by teacher forcing)."""
    model, variables, src, mask = _model_and_variables(tgt_vocab=5, max_len=6, seed=7)
    tokens, score, _ = beam_search(model, variables, src, mask, 3, 25, BOS, EOS, PAD)
    everything = jnp.array(list(itertools.product(range(5), repeat=3)), jnp.int32)
    num, batch = len(everything), src.shape[0]
    all_scores = sequence_log_prob(
        model, variables, jnp.repeat(src, num, axis=0), jnp.repeat(mask, num, axis=0),
        jnp.tile(everything, (batch, 1)), BOS, EOS).reshape(batch, num)
    np.testing.assert_allclose(score[:, 0], jnp.max(all_scores, axis=1), atol=1e-4)


def test_eos_stops_decoding():
    """A model whose EOS logit dominates ends every hypothesis at step 1, then writes PAD."""
    model, variables, src, mask = _model_and_variables()
    params = variables["params"]
    bias = params["head"]["bias"].at[EOS].set(1e4)
    variables = {"params": {**params, "head": {**params["head"], "bias": bias}}}
    tokens, score, ended = greedy_decode(model, variables, src, mask, 8, BOS, EOS, PAD)
    expected = np.array([EOS] + [PAD] * 7)
    assert np.all(np.asarray(tokens) == expected) and np.all(ended)
    np.testing.assert_allclose(score, 0.0, atol=1e-4)
    beam_tokens, beam_score, beam_ended = beam_search(model, variables, src, mask, 8, 3, BOS,
                                                      EOS, PAD)
    assert np.all(np.asarray(beam_tokens[:, 0]) == expected) and np.all(beam_ended[:, 0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_len=9), r"max_len=9; must be in \[1, model.max_len=8\]"),
    (dict(eos_id=9), r"eos_id=9; must be in \[0, tgt_vocab_size=9\)"),
    (dict(beam_size=0), "beam_size=0; must be >= 1"),
])
def test_bad_decoding_arguments_are_refused(kwargs, message):
    model, variables, src, mask = _model_and_variables()
    arguments = dict(max_len=8, beam_size=2, bos_id=BOS, eos_id=EOS, pad_id=PAD) | kwargs
    with pytest.raises(ValueError, match=message):
        beam_search(model, variables, src, mask, **arguments)
