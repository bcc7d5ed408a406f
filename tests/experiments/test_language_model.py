"""The language-model experiment's quick preset end to end, and its decoding helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment
from dl_theory.models.transformer import CausalLM
from dl_theory.models.transformer_decoding import generate

EXPERIMENT = "language_model"
lm = load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the smallest model, shuffled characters and the cache
    compared one position off each miss the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_baselines_are_ordered_and_samples_have_the_requested_length(quick_run):
    payload, _ = quick_run
    metrics, sampling = payload["metrics"]["lm"], payload["config"]["sampling"]
    assert metrics["bigram_bpc"] < metrics["unigram_bpc"]
    assert len(metrics["samples"]) == sampling["num_prompts"]
    assert all(len(s) == sampling["prompt_len"] + sampling["num_new_tokens"]
               for s in metrics["samples"])


def _tiny_model_and_params(d_model=16, num_layers=2, mlp_dim=32, vocab=11):
    model = CausalLM(vocab, d_model=d_model, num_heads=2, num_layers=num_layers,
                     mlp_dim=mlp_dim, max_len=12)
    params = model.init(jax.random.key(0), jnp.zeros((1, 12), jnp.int32))["params"]
    return model, params


def test_non_embedding_parameters_closed_form():
    # Per pre-LN block: attention 4 d^2 + 4 d (q, k, v, out with biases), MLP 2 d m + m + d,
    # two LayerNorms 4 d; plus the final LayerNorm 2 d. Embeddings are tied and excluded.
    d, m, layers = 16, 32, 2
    _, params = _tiny_model_and_params(d, layers, m)
    expected = layers * (4 * d * d + 4 * d + 2 * d * m + m + d + 4 * d) + 2 * d
    assert lm.non_embedding_parameters(params) == expected


def test_cached_logits_equal_full_forward_and_greedy_decodings_agree():
    model, params = _tiny_model_and_params()
    tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, 11)
    full = model.apply({"params": params}, tokens)
    np.testing.assert_allclose(lm.cached_logits(model, params, tokens), full, atol=1e-5,
                               rtol=1e-5)
    prompt = tokens[:, :4]
    np.testing.assert_array_equal(lm.uncached_greedy(model, params, prompt, 8),
                                  generate(model, params, prompt, 8))
