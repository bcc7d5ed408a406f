"""Greedy and beam-search decoding of a `Seq2SeqTransformer`, batched and jitted.

Target convention: the decoder reads [BOS, y_1, y_2, ...] (the target shifted right) and
predicts y_1, y_2, ...; a hypothesis ends at its first EOS, after which it holds PAD. Its
score is the exact log-probability sum_t log p(y_t | src, y_<t) over y_1 .. EOS (no length
penalty), so the scores of different decoders compare directly (`sequence_log_prob`
recomputes it by teacher forcing).

The source is encoded once; each step feeds the last token to the decoder through its
key/value cache (`Seq2SeqTransformer(decode=True)`), so a step costs one position, not the
whole prefix. Beam search reorders the cache rows with the surviving hypotheses. The steps
run in a `lax.while_loop` that stops when every hypothesis has ended or after `max_len`
tokens. The cached logits equal the full-prefix ones to float rounding (a test checks the
scores against teacher forcing).

Beam search (as in Lample & Charton 2020, Section 4.4) keeps the `beam_size` best prefixes
by score; an ended hypothesis keeps its score and is extended only by PAD, so it competes
with the open ones until the end. Hypotheses are returned best first.
"""

import functools

import jax
import jax.numpy as jnp

from dl_theory.models.seq2seq import Seq2SeqTransformer


def _encode(model: Seq2SeqTransformer, variables, src, src_mask):
    """(encoder output, the source mask the model applies) for a batch of sources."""
    src_mask = model.apply(variables, src, src_mask, method=model.source_mask)
    return model.apply(variables, src, src_mask, method=model.encode), src_mask


def _empty_cache(decoder: Seq2SeqTransformer, encoded, src_mask, length: int):
    """The decoder's key/value cache for len(encoded) rows and `length` positions, zeros
    (shaped by `jax.eval_shape`, so no forward pass runs)."""
    tokens = jnp.zeros((encoded.shape[0], length), jnp.int32)
    shapes = jax.eval_shape(lambda: decoder.init(jax.random.key(0), tokens, encoded, src_mask,
                                                 method=decoder.decoder_logits))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["cache"])


def _step_log_probs(decoder: Seq2SeqTransformer, params, cache, encoded, src_mask, token):
    """(log p(. | src, the prefix ending in `token` [N]) as [N, V] float32, the cache
    extended by that token)."""
    logits, updated = decoder.apply({"params": params, "cache": cache}, token[:, None],
                                    encoded, src_mask, method=decoder.decoder_logits,
                                    mutable=["cache"])
    return jax.nn.log_softmax(logits[:, 0].astype(jnp.float32), axis=-1), updated["cache"]


def _check(model: Seq2SeqTransformer, max_len: int, bos_id: int, eos_id: int,
           pad_id: int) -> None:
    if not 1 <= max_len <= model.max_len:
        raise ValueError(f"max_len={max_len}; must be in [1, model.max_len={model.max_len}]")
    for name, token in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
        if not 0 <= token < model.tgt_vocab_size:
            raise ValueError(f"{name}={token}; must be in [0, tgt_vocab_size="
                             f"{model.tgt_vocab_size})")


@functools.partial(jax.jit, static_argnames=("model", "max_len", "bos_id", "eos_id", "pad_id"))
def _greedy(model, variables, src, src_mask, max_len, bos_id, eos_id, pad_id):
    batch = src.shape[0]
    encoded, src_mask = _encode(model, variables, src, src_mask)
    decoder = model.clone(decode=True)
    buffer = jnp.full((batch, max_len + 1), pad_id, jnp.int32).at[:, 0].set(bos_id)
    state = (jnp.int32(0), buffer, jnp.zeros(batch, jnp.float32), jnp.zeros(batch, bool),
             _empty_cache(decoder, encoded, src_mask, max_len))

    def running(state):
        t, _, _, done, _ = state
        return (t < max_len) & ~jnp.all(done)

    def step(state):
        t, buffer, score, done, cache = state
        log_probs, cache = _step_log_probs(decoder, variables["params"], cache, encoded,
                                           src_mask, buffer[:, t])
        token = jnp.argmax(log_probs, axis=-1).astype(jnp.int32)
        best = jnp.max(log_probs, axis=-1)
        score = jnp.where(done, score, score + best)
        token = jnp.where(done, pad_id, token)
        buffer = jax.lax.dynamic_update_index_in_dim(buffer, token, t + 1, axis=1)
        return t + 1, buffer, score, done | (token == eos_id), cache

    _, buffer, score, done, _ = jax.lax.while_loop(running, step, state)
    return buffer[:, 1:], score, done


def greedy_decode(model: Seq2SeqTransformer, variables, src: jax.Array,
                  src_mask: jax.Array | None, max_len: int, bos_id: int, eos_id: int,
                  pad_id: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Greedy decoding: src [B, S] -> (tokens [B, max_len] (y_1 .. EOS, then PAD),
    log-probabilities [B], ended [B] (False if no EOS within max_len))."""
    _check(model, max_len, bos_id, eos_id, pad_id)
    return _greedy(model, variables, src, src_mask, max_len, bos_id, eos_id, pad_id)


@functools.partial(jax.jit, static_argnames=("model", "max_len", "beam_size", "bos_id",
                                             "eos_id", "pad_id"))
def _beam(model, variables, src, src_mask, max_len, beam_size, bos_id, eos_id, pad_id):
    batch, k = src.shape[0], beam_size
    vocab = model.tgt_vocab_size
    encoded, src_mask = _encode(model, variables, src, src_mask)
    flat_encoded = jnp.repeat(encoded, k, axis=0)
    flat_mask = None if src_mask is None else jnp.repeat(src_mask, k, axis=0)
    decoder = model.clone(decode=True)
    buffer = jnp.full((batch, k, max_len + 1), pad_id, jnp.int32).at[:, :, 0].set(bos_id)
    # Only beam 0 is alive at the start, so the first step does not pick k copies of it.
    score = jnp.full((batch, k), -jnp.inf).at[:, 0].set(0.0)
    state = (jnp.int32(0), buffer, score, jnp.zeros((batch, k), bool),
             _empty_cache(decoder, flat_encoded, flat_mask, max_len))
    # An ended (or dead, score -inf) hypothesis continues with PAD at no cost, only.
    pad_only = jnp.full(vocab, -jnp.inf).at[pad_id].set(0.0)

    def running(state):
        t, _, score, done, _ = state
        return (t < max_len) & ~jnp.all(done | jnp.isneginf(score))

    def step(state):
        t, buffer, score, done, cache = state
        log_probs, cache = _step_log_probs(decoder, variables["params"], cache, flat_encoded,
                                           flat_mask, buffer[:, :, t].reshape(-1))
        log_probs = jnp.where(done.reshape(-1, 1), pad_only, log_probs)
        candidates = (score[..., None] + log_probs.reshape(batch, k, vocab)).reshape(batch, -1)
        score, index = jax.lax.top_k(candidates, k)
        parent, token = index // vocab, (index % vocab).astype(jnp.int32)
        buffer = jnp.take_along_axis(buffer, parent[..., None], axis=1)
        buffer = jax.lax.dynamic_update_index_in_dim(buffer, token, t + 1, axis=2)
        done = jnp.take_along_axis(done, parent, axis=1) | (token == eos_id)
        # Each surviving hypothesis takes over its parent's cache row (the write index and
        # position counter are scalars, shared by all rows).
        rows = (jnp.arange(batch)[:, None] * k + parent).reshape(-1)
        cache = jax.tree.map(lambda c: c[rows] if c.ndim else c, cache)
        return t + 1, buffer, score, done, cache

    _, buffer, score, done, _ = jax.lax.while_loop(running, step, state)
    return buffer[:, :, 1:], score, done


def beam_search(model: Seq2SeqTransformer, variables, src: jax.Array,
                src_mask: jax.Array | None, max_len: int, beam_size: int, bos_id: int,
                eos_id: int, pad_id: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Beam search: src [B, S] -> (tokens [B, K, max_len], log-probabilities [B, K], ended
    [B, K]), hypotheses sorted best first; a score of -inf marks an empty slot (fewer than K
    distinct hypotheses exist)."""
    _check(model, max_len, bos_id, eos_id, pad_id)
    if beam_size < 1:
        raise ValueError(f"beam_size={beam_size}; must be >= 1")
    return _beam(model, variables, src, src_mask, max_len, beam_size, bos_id, eos_id, pad_id)


def sequence_log_prob(model: Seq2SeqTransformer, variables, src: jax.Array,
                      src_mask: jax.Array | None, tokens: jax.Array, bos_id: int,
                      eos_id: int) -> jax.Array:
    """Teacher-forced log p(tokens | src) [B] over y_1 up to and including the first EOS
    (all of `tokens` [B, T] if none); the model reads [BOS, y_1, ..., y_{T-1}]."""
    decoder_input = jnp.concatenate(
        [jnp.full((tokens.shape[0], 1), bos_id, tokens.dtype), tokens[:, :-1]], axis=1)
    logits = model.apply(variables, (src, decoder_input), src_mask=src_mask)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    per_token = jnp.take_along_axis(log_probs, tokens[..., None], axis=-1)[..., 0]
    is_eos = tokens == eos_id
    # Count positions up to the first EOS: no EOS strictly before position t.
    before_first_eos = jnp.cumsum(is_eos, axis=1) - is_eos == 0
    return jnp.sum(jnp.where(before_first_eos, per_token, 0.0), axis=1)
