"""Twins of permutation-equivariant networks: aligning the first layer with a permutation of
the input positions, and measuring how far twins drift apart.

A network whose first layer is a dense layer (or a learned table of position embeddings) is
permutation-equivariant: with the kernel rows (or table rows) permuted like the positions,
x[:, perm] @ W[perm] = x @ W, so the aligned net on shuffled inputs computes what the original
net computes on the original inputs, and a coordinatewise optimizer (SGD, Adam) keeps the two
equal step by step, up to the rounding of sums taken in another order. Greydanus (2020)
shuffles MNIST-1D's positions; `experiments/inductive_bias.py` trains such twins and compares
their drift with that of a twin started one ulp away (`floating_point.next_float_up`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.theory.floating_point import next_float_up, unit_roundoff

Aligner = Callable[[Any, np.ndarray], Any]


def _get(tree, path: Sequence[str]):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree, path: Sequence[str], value):
    if not path:
        return value
    return {**tree, path[0]: _set(tree[path[0]], path[1:], value)}


def dense_rows(path: Sequence[str]) -> Aligner:
    """Aligner for a model whose first layer is the dense kernel at `path` (shape [..., L, H],
    leading axes e.g. grid members): rows permuted like the inputs."""

    def align(params, perm_L):
        return _set(params, path, _get(params, path)[..., perm_L, :])

    return align


def position_rows(path: Sequence[str], num_positions: int) -> Aligner:
    """Aligner for a learned position table at `path` (shape [..., max_len, D]): rows
    0..num_positions-1 permuted like the tokens, the rest left as they are."""

    def align(params, perm_L):
        table = _get(params, path)
        return _set(params, path, table.at[..., :num_positions, :].set(table[..., perm_L, :]))

    return align


def twin_initialisations(params, align: Aligner, perm: np.ndarray) -> dict:
    """Initial parameters of the twins, by name: "original" and "shuffled" (the same
    parameters; the second trains on shuffled data), "aligned" (first layer permuted like the
    inputs, for shuffled data) and "ulp" (every parameter one ulp up, for the original data)."""
    return {"original": params, "shuffled": params, "aligned": align(params, perm),
            "ulp": next_float_up(params)}


def one_step_relative_differences(apply_fn: Callable, loss_fn: Callable,
                                  tx: optax.GradientTransformation, params_by_twin: Mapping,
                                  data_by_twin: Mapping, batch_size: int) -> dict[str, float]:
    """For every twin but "original": largest |test logit - the original's| / largest
    |original logit| after one step of `tx` from its initial params.

    params_by_twin: twin -> params stacked over seeds [S, ...] (vmapped); data_by_twin: twin ->
    {"train": {"x", "y"}, "test": {"x", "y"}}; the step uses the first `batch_size` training
    examples, `apply_fn(params, x)` gives logits and `loss_fn(logits, y)` the loss.
    """

    def one_step_logits(params, data):
        batch = jax.tree.map(lambda a: a[:batch_size], data["train"])
        grads = jax.grad(lambda p: loss_fn(apply_fn(p, batch["x"]).astype(jnp.float32),
                                           batch["y"]))(params)
        updates, _ = tx.update(grads, tx.init(params), params)
        return apply_fn(optax.apply_updates(params, updates), data["test"]["x"])

    logits = {twin: np.asarray(jax.vmap(one_step_logits, in_axes=(0, None))(
        params, data_by_twin[twin]), np.float64) for twin, params in params_by_twin.items()}
    scale = np.abs(logits["original"]).max()
    return {twin: float(np.abs(value - logits["original"]).max() / scale)
            for twin, value in logits.items() if twin != "original"}


def rms_logit_distance(logits_SxNxC, reference_SxNxC) -> np.ndarray:
    """Root-mean-square difference of two sets of logits, per seed; [S]."""
    return np.sqrt(np.mean((np.asarray(logits_SxNxC, np.float64)
                            - np.asarray(reference_SxNxC, np.float64)) ** 2, axis=(1, 2)))


def trained_twin_distances(logits_by_twin: Mapping[str, np.ndarray]) -> dict:
    """Seed-mean RMS test-logit distance of every twin from "original" ([S, N, C] each), plus
    the float32 rounding floor u x RMS logit of the original (so a twin equal to it to the
    last bit still has the distance rounding alone would give)."""
    reference = np.asarray(logits_by_twin["original"], np.float64)
    floor = float(unit_roundoff(jnp.float32)) * np.sqrt(np.mean(reference ** 2))
    return {twin: float(rms_logit_distance(value, reference).mean() + floor)
            for twin, value in logits_by_twin.items() if twin != "original"}
