"""Synthetic long-range memory tasks: recall the first token of a sequence after a delay.

Delayed recall, the information-latching problem of Bengio, Simard & Frasconi 1994 ("Learning
long-term dependencies with gradient descent is difficult", Sec. II and V) in token form: a
sequence of length T opens with a signal token s ~ U{0, ..., K - 1} (K = `num_symbols`),
followed by T - 1 noise tokens; the target, to be output after the last step, is s. Nothing
but s predicts it, so a model must carry s across T - 1 steps; guessing gives accuracy 1 / K.

Noise tokens are drawn uniformly from the whole vocabulary {0, ..., V - 1} (V = `vocab_size`
>= K), signal symbols included, as Bengio et al. feed information and noise through one input
channel: the noise cannot be told apart from the signal by its value, only by its position.
With `distinct_noise=True` they are drawn from {K, ..., V - 1} instead (needs V > K): the
distractors of Hochreiter & Schmidhuber 1997 (Sec. 5.2, Experiment 2b), which a network can
learn to ignore by their value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dl_theory.data.batching import Batch, Sampler


def _check_task(batch_size, seq_len, num_symbols, vocab_size, distinct_noise) -> None:
    for name, value in (("batch_size", batch_size), ("seq_len", seq_len),
                        ("num_symbols", num_symbols), ("vocab_size", vocab_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; must be a positive integer")
    smallest = num_symbols + 1 if distinct_noise else num_symbols
    if vocab_size < smallest:
        raise ValueError(f"vocab_size={vocab_size}; need vocab_size >= {smallest} for "
                         f"num_symbols={num_symbols}, distinct_noise={distinct_noise}")


def delayed_recall(key: jax.Array, batch_size: int, seq_len: int, num_symbols: int = 4,
                   vocab_size: int = 8, distinct_noise: bool = False) -> Batch:
    """A batch of the delayed-recall task: {"x": [B, T] int32, "y": [B] int32}.

    x[b, 0] = y[b] ~ U{0, ..., K - 1}; x[b, t] ~ U{0, ..., V - 1} for 1 <= t < T (or
    U{K, ..., V - 1} with `distinct_noise`), all independent. seq_len = T >= 1 (T = 1 is
    recall without delay).
    """
    _check_task(batch_size, seq_len, num_symbols, vocab_size, distinct_noise)
    signal_key, noise_key = jax.random.split(key)
    signal_B = jax.random.randint(signal_key, (batch_size,), 0, num_symbols, dtype=jnp.int32)
    noise_BxT = jax.random.randint(noise_key, (batch_size, seq_len - 1),
                                   num_symbols if distinct_noise else 0, vocab_size,
                                   dtype=jnp.int32)
    return {"x": jnp.concatenate([signal_B[:, None], noise_BxT], axis=1), "y": signal_B}


def delayed_recall_sampler(seq_len: int, batch_size: int, num_symbols: int = 4,
                           vocab_size: int = 8, distinct_noise: bool = False) -> Sampler:
    """A training-loop sampler `sample(data, key) -> delayed_recall(key, ...)`.

    The task is generated afresh at every step (online learning: no example is seen twice),
    so `data` is ignored; pass None.
    """
    _check_task(batch_size, seq_len, num_symbols, vocab_size, distinct_noise)

    def sample(data: Batch | None, key: jax.Array) -> Batch:
        del data
        return delayed_recall(key, batch_size, seq_len, num_symbols, vocab_size, distinct_noise)

    return sample
