"""Splitting a labelled data set over clients: IID and McMahan et al.'s pathological non-IID.

McMahan et al. (AISTATS 2017, Section 3): IID shuffles the data and gives each of K clients an
equal share; pathological non-IID sorts the examples by label, cuts them into 2K shards of equal
size and gives each client two shards, so most clients see examples of only two labels.
Both return indices of shape [K, n] (n = N // K; the N mod K leftover examples are dropped),
to be used as `x[indices]`, giving the stacked client axis of `dl_theory.train.federated`.
"""

from __future__ import annotations

import numpy as np

SPLITS = ("iid", "pathological")


def iid_split(num_examples: int, num_clients: int, seed: int) -> np.ndarray:
    """[K, n] indices: a seeded permutation cut into K equal shares."""
    per_client = num_examples // num_clients
    order = np.random.default_rng(seed).permutation(num_examples)
    return order[:num_clients * per_client].reshape(num_clients, per_client)


def pathological_split(labels_N: np.ndarray, num_clients: int, seed: int,
                       shards_per_client: int = 2) -> np.ndarray:
    """[K, n] indices: examples sorted by label (stable, ties in a seeded random order), cut
    into K * shards_per_client equal shards, each client given shards_per_client of them at
    random."""
    rng = np.random.default_rng(seed)
    labels_N = np.asarray(labels_N)
    num_shards = num_clients * shards_per_client
    shard_size = labels_N.shape[0] // num_shards
    shuffled = rng.permutation(labels_N.shape[0])
    by_label = shuffled[np.argsort(labels_N[shuffled], kind="stable")]
    shards = by_label[:num_shards * shard_size].reshape(num_shards, shard_size)
    assignment = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return shards[assignment].reshape(num_clients, shards_per_client * shard_size)


def client_split(name: str, labels_N: np.ndarray, num_clients: int, seed: int) -> np.ndarray:
    """`iid_split` or `pathological_split` by name (one of SPLITS)."""
    if name == "iid":
        return iid_split(len(labels_N), num_clients, seed)
    if name == "pathological":
        return pathological_split(labels_N, num_clients, seed)
    raise ValueError(f"split={name!r}; allowed: {SPLITS}")
