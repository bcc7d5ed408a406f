"""Sparse coding data y = A* x* (Rangamani et al. 2018, "Sparse coding and autoencoders").

The dictionary A* is n x h (h > n, overcomplete) with unit-norm, incoherent columns:
|<A*_i, A*_j>| <= mu / sqrt(n) for i != j. The code x* in R^h is non-negative with a support
S of exactly k entries drawn uniformly at random (so P(i in S) = k / h, P(i, j in S) =
k (k - 1) / (h (h - 1)), the paper's q_i = Theta(h^(p - 1)), q_ij = Theta(h^(2p - 2)) when
k = h^p), and its non-zero values drawn independently and uniformly from [low, high] (the
paper's a1 <= x*_i <= a2). Everything is a pure function of a JAX key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg


def two_ortho_dictionary(n: int) -> np.ndarray:
    """[I_n, H_n / sqrt(n)]: the identity beside the normalised Sylvester-Hadamard basis,
    shape [n, 2n], float64.

    Every column has unit norm and every cross inner product is 0 (same basis) or
    +-1/sqrt(n) (one from each), so mu / sqrt(n) = n^(-1/2) = sqrt(2 / h): the most
    incoherent overcomplete dictionary of its size (h = 2n), with xi = 1/2 in the paper's
    mu / sqrt(n) = h^(-xi) up to the factor sqrt(2). `n` must be a power of two."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"n={n}; the Sylvester-Hadamard basis needs a power of two")
    return np.concatenate([np.eye(n), scipy.linalg.hadamard(n) / np.sqrt(n)], axis=1)


def gaussian_dictionary(key: jax.Array, n: int, h: int) -> jax.Array:
    """n x h Gaussian matrix with columns normalised to unit length (the authors' simulation
    dictionary); its coherence is about sqrt(4 log h / n), far above the two-ortho one."""
    a = jax.random.normal(key, (n, h))
    return a / jnp.linalg.norm(a, axis=0, keepdims=True)


def coherence(dictionary) -> float:
    """max_{i != j} |<A_i, A_j>| over the columns of `dictionary` (the paper's mu / sqrt(n))."""
    a = np.asarray(dictionary, dtype=np.float64)
    gram = np.abs(a.T @ a)
    np.fill_diagonal(gram, 0.0)
    return float(gram.max())


def sparse_codes(key: jax.Array, num: int, h: int, k: int, low: float,
                 high: float) -> jax.Array:
    """`num` non-negative codes in R^h, shape [num, h]: each has a support of exactly `k`
    indices, uniform over the k-subsets, and values uniform on [low, high] there."""
    if not 1 <= k <= h:
        raise ValueError(f"support size k={k} must be in [1, h={h}]")
    support_key, value_key = jax.random.split(key)
    # The k smallest of h i.i.d. uniform scores: a uniformly random k-subset per row.
    scores = jax.random.uniform(support_key, (num, h))
    kth = jnp.sort(scores, axis=1)[:, k - 1:k]
    support = scores <= kth
    values = jax.random.uniform(value_key, (num, h), minval=low, maxval=high)
    return jnp.where(support, values, 0.0)


def sparse_coding_batch(key: jax.Array, dictionary: jax.Array, num: int, k: int,
                        low: float, high: float) -> tuple[jax.Array, jax.Array]:
    """(x*, y) with x* = `sparse_codes(...)` of shape [num, h] and y = A* x* of shape
    [num, n] (rows are samples)."""
    codes = sparse_codes(key, num, dictionary.shape[1], k, low, high)
    return codes, codes @ jnp.asarray(dictionary, codes.dtype).T
