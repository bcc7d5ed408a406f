"""Training a `Seq2SeqTransformer` on (source tokens, target tokens) pairs with `fit`.

The batch is {"x": (source ids, decoder inputs), "y": target ids}: the decoder reads the
target shifted right behind BOS (teacher forcing) and the loss is the token cross-entropy
over the target up to and including EOS (`PaddedTokenCrossEntropy`); the model hides padded
source positions itself (`src_pad_id`), so `fit`'s step needs nothing seq2seq-specific.
Minibatches of `batch_size` pairs are drawn with replacement, Adam at a constant rate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory.data.batching import minibatches
from dl_theory.data.symbolic_batches import PAD_ID, VOCAB_SIZE, decoder_inputs, encode_batch
from dl_theory.models.seq2seq import Seq2SeqTransformer
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit
from dl_theory.train.losses import PaddedTokenCrossEntropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_state


def build_seq2seq(config: ml_collections.ConfigDict, precision: str):
    """(model, optimizer) from a config with d_model, num_heads, num_layers, mlp_dim, max_len
    (tokens per sequence, EOS included), steps and learning_rate; the vocabulary is the
    symbolic-math one (`symbolic_batches.TOKENS`)."""
    model = Seq2SeqTransformer(
        VOCAB_SIZE, VOCAB_SIZE, d_model=config.d_model, num_heads=config.num_heads,
        num_layers=config.num_layers, mlp_dim=config.mlp_dim, max_len=config.max_len,
        src_pad_id=PAD_ID, **get_policy(precision).model_dtypes())
    tx = build_optimizer(optimizer_config(name="adam", learning_rate=config.learning_rate),
                         total_steps=config.steps)
    return model, tx


def seq2seq_batch(pairs, length: int) -> dict:
    """{"x": (source ids, decoder inputs), "y": target ids}, each [N, length] int32, from
    (source tokens, target tokens, ...) tuples."""
    source, _ = encode_batch([pair[0] for pair in pairs], length)
    target, _ = encode_batch([pair[1] for pair in pairs], length)
    return {"x": (jnp.asarray(source), jnp.asarray(decoder_inputs(target))),
            "y": jnp.asarray(target)}


def train_seq2seq(config: ml_collections.ConfigDict, precision: str, pairs, seed: int, log):
    """Trains `build_seq2seq(config, precision)` on `pairs` for `config.steps` minibatches of
    `config.batch_size` (initialisation and batch order from `seed`); returns (model, params,
    history)."""
    model, tx = build_seq2seq(config, precision)
    policy = get_policy(precision)
    data = seq2seq_batch(pairs, config.max_len)
    example = jax.tree.map(lambda a: a[:2], data["x"])
    state = create_train_state(model, tx, example, seed, make_loss_scale(policy))
    state, history = fit(state, data, minibatches(config.batch_size),
                         loss=PaddedTokenCrossEntropy(PAD_ID), steps=config.steps,
                         eval_every=max(1, config.steps // 4), data_seed=seed, policy=policy,
                         log=log, label="seq2seq", verbose=False)
    history["loss"] = np.asarray(history["loss"])
    return model, state.params, history
