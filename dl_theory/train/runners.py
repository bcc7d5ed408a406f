"""Where the training state lives between chunks, and how a chunk is dispatched over it.

A runner holds one model or a grid of G members in the form its strategy needs, and offers
the host loop three things: `advance(num_steps)` (per-step metrics as numpy, [n] or [G, n]),
`evaluate(batch)` and `state` (stacked [G, ...] for a grid). The strategies:

- `SingleModel`: `fit`'s one model, one program per chunk.
- `VmappedGrid`: the members batched into one program (wins on accelerators, and on a CPU
  for members of a few dozen units).
- `ConcurrentMembers` ("sequential"): one program per member; the state is split into
  members once, at the start, and stacked once, at the end (never per chunk), and up to
  `workers` members' programs (default: one per core for small members, see
  `default_workers`) run at the same time on separate host threads. On XLA:CPU
  one program of a small member keeps one core busy, and a second dispatch to the same
  device waits for the first, so threads (which release the GIL while XLA runs) are what
  puts the second core to work (benchmarks/sweep.py measures it). Each member runs the
  same compiled program on the same inputs as it would alone, so the results are
  bit-identical to a one-member run whatever the number of workers.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import jax
import numpy as np

from dl_theory.data.batching import Batch
from dl_theory.train import chunk as chunk_lib
from dl_theory.train.concurrent_jobs import usable_cores
from dl_theory.train.state import TrainState, stack_members

# Measured on the 2-core CPU (a jitted scan of 2,000 full-batch Adam steps of a 1-hidden-layer
# MLP, 1,024 examples in 8-D, 5 seeds, machine load ~5): widths 64 and 256 (~0.6M and ~2.6M
# parameter x example products per step) ran 1.34x and 1.24x faster two at a time; width 1024
# (~10M) spreads its matmuls over both cores by itself and ran 1.4x slower two at a time.
SMALL_MEMBER_WORK = 2**22


def default_workers(member: TrainState, batch_rows: int) -> int:
    """How many members to run at once: every core this process may use if one member's
    step (parameters x examples per batch) is below `SMALL_MEMBER_WORK`, else one."""
    cores = usable_cores()
    params = sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(member.params))
    return cores if params * batch_rows < SMALL_MEMBER_WORK else 1


def _unstack(tree: Any, num: int) -> list[Any]:
    """The `num` members of a stacked tree, each leaf placed as the stacked one was. Sliced
    in host memory (on a CPU a view, no copy): an on-device unstack would be one more
    program to compile per model shape. Inverse of `state.stack_members`."""
    host = jax.device_get(tree)
    return [jax.tree.map(lambda h, leaf, g=g: jax.device_put(h[g], leaf.sharding), host, tree)
            for g in range(num)]


def _signature(tree: Any) -> tuple:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple((np.shape(leaf), str(getattr(leaf, "dtype", type(leaf))))
                          for leaf in leaves)


_STARTED: set[tuple] = set()
_BATCH_ROWS: dict[tuple, int] = {}


def _batch_rows(sampler, data: Batch, key: jax.Array) -> int:
    """Examples per batch the sampler draws (its output traced once per data shape)."""
    signature = (sampler, _signature(data), _signature(key))
    if signature not in _BATCH_ROWS:
        batch = jax.eval_shape(sampler, data, key)
        _BATCH_ROWS[signature] = jax.tree.leaves(batch)[0].shape[0]
    return _BATCH_ROWS[signature]


def forget_compiled() -> None:
    """Forgets which chunk programs have been compiled (call after `jax.clear_caches()`,
    so that the next chunk is again compiled by one member before the others start)."""
    _STARTED.clear()


class SingleModel:
    """One model: `train_chunk` per chunk."""

    def __init__(self, state: TrainState, data: Batch, data_key: jax.Array,
                 chunk: chunk_lib.Chunk):
        self.state, self._data, self._key, self._chunk = state, data, data_key, chunk

    def advance(self, num_steps: int) -> dict[str, np.ndarray]:
        self.state, metrics = chunk_lib.train_chunk(self.state, self._data, self._key,
                                                    chunk=self._chunk, num_steps=num_steps)
        return jax.device_get(metrics)

    def evaluate(self, batch: Batch, evaluation: chunk_lib.Evaluation) -> dict[str, Any]:
        return jax.device_get(chunk_lib.evaluate(self.state, batch, evaluation=evaluation))


class VmappedGrid:
    """G stacked members stepped together by one vmapped program."""

    def __init__(self, states: TrainState, data: Batch, data_keys: jax.Array,
                 chunk: chunk_lib.Chunk, data_axis: int | None):
        self.state, self._data, self._keys = states, data, data_keys
        self._chunk, self._data_axis = chunk, data_axis

    def advance(self, num_steps: int) -> dict[str, np.ndarray]:
        self.state, metrics = chunk_lib.train_chunk_vmapped(
            self.state, self._data, self._keys, chunk=self._chunk, num_steps=num_steps,
            data_axis=self._data_axis)
        return jax.device_get(metrics)

    def evaluate(self, batch: Batch, evaluation: chunk_lib.Evaluation) -> dict[str, Any]:
        return jax.device_get(chunk_lib.evaluate_stacked(self.state, batch,
                                                         evaluation=evaluation))


class ConcurrentMembers:
    """G members as separate states, each chunk one program per member, `workers` at once."""

    def __init__(self, states: TrainState, data: Batch, data_keys: jax.Array,
                 chunk: chunk_lib.Chunk, data_axis: int | None, workers: int | None):
        num = data_keys.shape[0]
        self._members = _unstack(states, num)
        self._keys = _unstack(data_keys, num)
        self._data = [data] * num if data_axis is None else _unstack(data, num)
        if workers is None:
            rows = _batch_rows(chunk.sampler, self._data[0], self._keys[0])
            workers = default_workers(self._members[0], rows)
        self._chunk, self._workers = chunk, max(1, min(workers, num))

    @property
    def state(self) -> TrainState:
        return stack_members(self._members)

    def _run(self, g: int, num_steps: int) -> dict[str, np.ndarray]:
        self._members[g], metrics = chunk_lib.train_chunk(
            self._members[g], self._data[g], self._keys[g], chunk=self._chunk,
            num_steps=num_steps)
        return jax.device_get(metrics)  # waits in this thread, not the host loop's

    def advance(self, num_steps: int) -> dict[str, np.ndarray]:
        signature = (self._chunk, num_steps, _signature(self._members[0]),
                     _signature(self._data[0]), _signature(self._keys[0]))
        if signature not in _STARTED and self._workers > 1:
            # Compiled once, ahead of the members (lower().compile() fills the jit's own
            # cache): started together, every thread would trace and compile the same program.
            # (The signature only schedules: a program it wrongly deems compiled is compiled
            # twice at worst, never wrong.)
            chunk_lib.train_chunk.lower(self._members[0], self._data[0], self._keys[0],
                                        chunk=self._chunk, num_steps=num_steps).compile()
        _STARTED.add(signature)
        members = range(len(self._members))
        if self._workers == 1:
            per_member = [self._run(g, num_steps) for g in members]
        else:
            with concurrent.futures.ThreadPoolExecutor(self._workers) as pool:
                per_member = list(pool.map(lambda g: self._run(g, num_steps), members))
        return {k: np.stack([m[k] for m in per_member]) for k in per_member[0]}

    def evaluate(self, batch: Batch, evaluation: chunk_lib.Evaluation) -> dict[str, Any]:
        return jax.device_get(chunk_lib.evaluate_members(self._members, batch,
                                                         evaluation=evaluation))
