"""Tests for dl_theory/models/transformer_decoding.py: KV-cache decoding against full
recomputation, greedy and temperature sampling, bad lengths and temperatures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models.transformer import CausalLM
from dl_theory.models.transformer_decoding import generate, init_cache

KEY = jax.random.key(0)
SMALL = dict(d_model=8, num_heads=2, num_layers=2, mlp_dim=16)


def _tokens(shape, vocab, seed=1):
    return jax.random.randint(jax.random.key(seed), shape, 0, vocab)


def test_kv_cache_decoding_equals_full_recomputation():
    model = CausalLM(17, max_len=12, tie_embeddings=False, **SMALL)
    tokens = _tokens((3, 9), 17)
    params = model.init(KEY, tokens)["params"]
    full = model.apply({"params": params}, tokens)
    decoder = model.clone(decode=True)
    step = jax.jit(lambda cache, token: decoder.apply({"params": params, "cache": cache}, token,
                                                      mutable=["cache"]))
    cache = init_cache(model, batch_size=3)
    for t in range(tokens.shape[1]):
        logits, state = step(cache, tokens[:, t:t + 1])
        cache = state["cache"]
        np.testing.assert_allclose(logits[:, 0], full[:, t], rtol=1e-4, atol=1e-5,
                                   err_msg=f"step {t}")


def _greedy_by_recomputation(model, params, prompt, num_new_tokens):
    tokens = prompt
    for _ in range(num_new_tokens):
        logits = model.apply({"params": params}, tokens)
        tokens = jnp.concatenate([tokens, jnp.argmax(logits[:, -1], axis=-1)[:, None]], axis=1)
    return tokens


def test_greedy_generate_equals_recomputed_greedy_decoding():
    model = CausalLM(9, max_len=12, **SMALL)
    prompt = _tokens((2, 4), 9)
    params = model.init(KEY, prompt)["params"]
    generated = generate(model, params, prompt, num_new_tokens=4)
    assert generated.shape == (2, 8)
    np.testing.assert_array_equal(generated[:, :4], prompt)
    np.testing.assert_array_equal(generated,
                                  _greedy_by_recomputation(model, params, prompt, 4))


def test_temperature_sampling():
    model = CausalLM(9, max_len=12, **SMALL)
    prompt = _tokens((4, 3), 9)
    params = model.init(KEY, prompt)["params"]
    greedy = generate(model, params, prompt, 8)
    # A vanishing temperature puts all mass on the argmax.
    cold = generate(model, params, prompt, 8, rng=jax.random.key(3), temperature=1e-4)
    np.testing.assert_array_equal(cold, greedy)
    hot = [generate(model, params, prompt, 8, rng=jax.random.key(s), temperature=5.0)
           for s in (3, 3, 4)]
    np.testing.assert_array_equal(hot[0], hot[1])
    assert not np.array_equal(hot[0], hot[2])
    assert int(hot[0].min()) >= 0 and int(hot[0].max()) < 9


def test_bad_lengths_and_temperature_raise():
    model = CausalLM(5, max_len=4, **SMALL)
    params = model.init(KEY, jnp.zeros((1, 4), jnp.int32))["params"]
    with pytest.raises(ValueError, match="max_len=4"):
        generate(model, params, jnp.zeros((1, 2), jnp.int32), num_new_tokens=3)
    with pytest.raises(ValueError, match="temperature=-1"):
        generate(model, params, jnp.zeros((1, 2), jnp.int32), 1, temperature=-1.0)
    with pytest.raises(ValueError, match="rng"):
        generate(model, params, jnp.zeros((1, 2), jnp.int32), 1, temperature=1.0)
