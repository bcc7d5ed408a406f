"""Batch samplers: pure functions `sample(data, key) -> batch` that the training loop calls
inside its compiled scan, so drawing a batch costs no host round trip.

`data` is passed to the compiled program as an argument (not closed over, which would bake
it into the program as a constant); the key is derived from the step, so the data order is a
function of (seed, step) alone and a resumed run sees the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax

Batch = Mapping[str, jax.Array]
Sampler = Callable[[Batch, jax.Array], Batch]


def full_batch() -> Sampler:
    """Every step sees the whole data set (full-batch gradient descent)."""
    return lambda data, key: data


def minibatches(batch_size: int) -> Sampler:
    """Uniform random minibatches of `batch_size` examples, drawn with replacement (the i.i.d.
    sampling model of SGD analyses); `data` is a dict of arrays sharing their first axis."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; must be a positive integer")

    def sample(data: Batch, key: jax.Array) -> Batch:
        num_examples = jax.tree.leaves(data)[0].shape[0]
        if batch_size > num_examples:
            raise ValueError(f"batch_size={batch_size} exceeds the {num_examples} examples")
        idx = jax.random.randint(key, (batch_size,), 0, num_examples)
        return jax.tree.map(lambda a: a[idx], data)

    return sample


def num_examples(data: Batch) -> int:
    """The common length of the arrays in `data`; a clear error if they disagree."""
    lengths = {k: v.shape[0] for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays in a data set must share their first axis; got {lengths}")
    return next(iter(lengths.values()))
