"""Autoregressive decoding of a `CausalLM` through its key/value cache.

A `CausalLM` built with `decode=True` takes one token [B, 1] per call and reads and extends
flax's `cache` collection: per attention layer the keys and values seen so far and a write
index, plus the position counter of its `PositionEmbedding`. `init_cache` makes that cache
empty (zeros) without running a forward pass; `generate` feeds a prompt and samples a
continuation one token at a time inside one `lax.scan`, greedily (temperature 0) or from
softmax(logits / temperature). Each cached step's logits equal those of the full-sequence
call at that position (tests/models/test_transformer_decoding.py checks both).
"""

from typing import Any

import jax
import jax.numpy as jnp

from dl_theory.models.transformer import CausalLM


def init_cache(model: CausalLM, batch_size: int, length: int | None = None) -> Any:
    """An empty decoding cache (zeros) for `length` positions (default `model.max_len`).

    The pytree holds, per attention layer, keys and values [B, length, heads, d_head] and
    the write index, plus the position counter; it is shaped by `jax.eval_shape`, so no
    forward pass runs.
    """
    length = model.max_len if length is None else length
    tokens = jnp.zeros((batch_size, length), jnp.int32)
    shapes = jax.eval_shape(lambda: model.clone(decode=True).init(jax.random.key(0), tokens))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes["cache"])


def generate(model: CausalLM, params: Any, prompt: jax.Array, num_new_tokens: int,
             rng: jax.Array | None = None, temperature: float = 0.0) -> jax.Array:
    """Samples a continuation: prompt [B, P] -> tokens [B, P + num_new_tokens].

    One token per step through the KV cache, inside one `lax.scan`: step t feeds token t
    and writes token t+1, which is the prompt's own while t+1 < P, else the argmax of the
    logits (temperature 0, greedy) or a draw from softmax(logits / temperature) (`rng`
    required), the softmax in float32.
    """
    if temperature < 0:
        raise ValueError(f"temperature={temperature}; need temperature >= 0")
    if temperature > 0 and rng is None:
        raise ValueError(f"temperature={temperature} > 0 samples, so it needs an rng key")
    batch, prompt_len = prompt.shape
    total = prompt_len + num_new_tokens
    if prompt_len < 1 or total > model.max_len:
        raise ValueError(f"prompt length {prompt_len} + num_new_tokens {num_new_tokens}"
                         f" must be in [1, max_len={model.max_len}]")
    decoder = model.clone(decode=True)
    tokens = jnp.zeros((batch, total), jnp.int32).at[:, :prompt_len].set(prompt)
    rng = jax.random.key(0) if rng is None else rng

    def step(carry: tuple[jax.Array, Any, jax.Array], t: jax.Array):
        tokens, cache, rng = carry
        current = jax.lax.dynamic_slice_in_dim(tokens, t, 1, axis=1)
        logits, state = decoder.apply({"params": params, "cache": cache}, current,
                                      mutable=["cache"])
        logits = logits[:, 0].astype(jnp.float32)
        rng, key = jax.random.split(rng)
        if temperature == 0:
            sampled = jnp.argmax(logits, axis=-1)
        else:
            sampled = jax.random.categorical(key, logits / temperature, axis=-1)
        prompt_next = jax.lax.dynamic_slice_in_dim(tokens, t + 1, 1, axis=1)[:, 0]
        chosen = jnp.where(t + 1 < prompt_len, prompt_next, sampled.astype(jnp.int32))
        return (tokens.at[:, t + 1].set(chosen), state["cache"], rng), None

    carry = (tokens, init_cache(model, batch, total), rng)
    (tokens, _, _), _ = jax.lax.scan(step, carry, jnp.arange(total - 1))
    return tokens
