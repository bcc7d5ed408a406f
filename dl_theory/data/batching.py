"""Batch samplers: pure functions `sample(data, key) -> batch` that the training loop calls
inside its compiled scan, so drawing a batch costs no host round trip.

`data` is passed to the compiled program as an argument (not closed over, which would bake
it into the program as a constant); the key is derived from the step, so the data order is a
function of (seed, step) alone and a resumed run sees the same batches. Samplers built here
compare equal by value, so a training program compiled for one serves an equal one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax

Batch = Mapping[str, jax.Array]
Sampler = Callable[[Batch, jax.Array], Batch]


@dataclasses.dataclass(frozen=True)
class _FullBatch:
    """Every step sees the whole data set. A frozen dataclass, not a lambda, so that two
    calls of `full_batch()` compare equal and a compiled training program is reused."""

    def __call__(self, data: Batch, key: jax.Array) -> Batch:
        del key
        return data


@dataclasses.dataclass(frozen=True)
class _Minibatches:
    """Uniform random minibatches of `batch_size` examples, drawn with replacement; equal
    (and hashed) by `batch_size`, so programs compiled for one sampler serve an equal one."""

    batch_size: int

    def __call__(self, data: Batch, key: jax.Array) -> Batch:
        size = jax.tree.leaves(data)[0].shape[0]
        if self.batch_size > size:
            raise ValueError(f"batch_size={self.batch_size} exceeds the {size} examples")
        idx = jax.random.randint(key, (self.batch_size,), 0, size)
        return jax.tree.map(lambda a: a[idx], data)


def full_batch() -> Sampler:
    """Every step sees the whole data set (full-batch gradient descent)."""
    return _FullBatch()


def minibatches(batch_size: int) -> Sampler:
    """Uniform random minibatches of `batch_size` examples, drawn with replacement (the i.i.d.
    sampling model of SGD analyses); `data` is a dict of arrays sharing their first axis."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; must be a positive integer")
    return _Minibatches(batch_size)


def num_examples(data: Batch) -> int:
    """The common length of the arrays in `data`; a clear error if they disagree."""
    lengths = {k: v.shape[0] for k, v in data.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"arrays in a data set must share their first axis; got {lengths}")
    return next(iter(lengths.values()))
