"""Pool-based active learning of a logistic-regression classifier, batched over seeds.

Every seed holds a fixed pool (inputs [U, d], labels in {0, 1}) and a labelled mask, so the
shapes never change: a round trains the classifier on the masked pool (warm-started, a fixed
number of optax steps on the mean logistic loss of the labelled points), then labels one more
point, either the unlabelled point of smallest margin |w . x + b| / |w| (margin, or uncertainty,
sampling: Settles 2009, Section 3.1; for two classes margin, least-confidence and entropy
sampling pick the same point) or the next point of the seed's random order (random sampling,
the passive baseline). Rounds are a `lax.scan`, seeds a `vmap`; the test error is recorded
after every round.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.theory.active_learning import random_orders

STRATEGIES = ("margin", "random")


def _logistic_loss(params, x_UxD, y_U, mask_U, l2):
    """Mean logistic loss over the labelled points, plus l2 |w|^2 / 2 (keeps |w| finite on
    separable data, where the unregularised minimiser is at infinity)."""
    w, b = params
    logits = x_UxD @ w + b
    losses = optax.sigmoid_binary_cross_entropy(logits, y_U)
    return jnp.sum(mask_U * losses) / jnp.maximum(mask_U.sum(), 1.0) + 0.5 * l2 * jnp.sum(w * w)


def _error(params, x_NxD, y_N):
    w, b = params
    return jnp.mean(((x_NxD @ w + b) > 0).astype(jnp.float32) != y_N)


def next_query(params, x_UxD, mask_U, rank_U, strategy: str):
    """Index of the next pool point to label: the unlabelled point of smallest distance
    |w . x + b| / |w| to the boundary ("margin") or of smallest rank in the seed's random order
    ("random")."""
    w, b = params
    if strategy == "margin":
        score = jnp.abs(x_UxD @ w + b) / (jnp.linalg.norm(w) + 1e-12)
    else:
        score = rank_U.astype(jnp.float32)
    return jnp.argmin(jnp.where(mask_U > 0, jnp.inf, score))


def _seed_loop(x_UxD, y_U, order_U, x_test, y_test, *, num_start, num_queries, steps,
               learning_rate, l2, strategy):
    """One seed: test errors after num_start + q labels, q = 0..num_queries; [Q + 1]."""
    tx = optax.adam(learning_rate)
    rank_U = jnp.zeros_like(order_U).at[order_U].set(jnp.arange(order_U.shape[0]))
    mask0 = (rank_U < num_start).astype(jnp.float32)
    params0 = (jnp.zeros(x_UxD.shape[1]), jnp.zeros(()))
    grad = jax.grad(_logistic_loss)

    def train(params, opt_state, mask):
        def step(carry, _):
            p, s = carry
            updates, s = tx.update(grad(p, x_UxD, y_U, mask, l2), s, p)
            return (optax.apply_updates(p, updates), s), None
        (params, opt_state), _ = jax.lax.scan(step, (params, opt_state), None, length=steps)
        return params, opt_state

    def round_(carry, _):
        params, opt_state, mask = carry
        params, opt_state = train(params, opt_state, mask)
        mask = mask.at[next_query(params, x_UxD, mask, rank_U, strategy)].set(1.0)
        return (params, opt_state, mask), _error(params, x_test, y_test)

    carry = (params0, tx.init(params0), mask0)
    carry, errors = jax.lax.scan(round_, carry, None, length=num_queries)
    params, _ = train(carry[0], carry[1], carry[2])
    return jnp.concatenate([errors, _error(params, x_test, y_test)[None]])


def run_logistic_queries(x_SxUxD, y_SxU, order_SxU, x_test_SxNxD, y_test_SxN, *,
                         num_start: int, num_queries: int, steps: int, learning_rate: float,
                         l2: float, strategy: str) -> np.ndarray:
    """Test errors per seed after num_start + q labels, q = 0..num_queries; [S, Q + 1].

    `order_SxU` is a random permutation per seed: its first num_start points are the labelled
    start (the same for both strategies, so that they are paired) and, for random sampling,
    the order in which the rest are labelled.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; known: {STRATEGIES}")

    def one(x, y, o, xt, yt):
        return _seed_loop(x, y, o, xt, yt, num_start=num_start, num_queries=num_queries,
                          steps=steps, learning_rate=learning_rate, l2=l2, strategy=strategy)

    return np.asarray(jax.jit(jax.vmap(one))(x_SxUxD, y_SxU, order_SxU, x_test_SxNxD,
                                             y_test_SxN), np.float64)


def errors_by_strategy(pools, **knobs) -> dict[str, np.ndarray]:
    """`run_logistic_queries` on the same `pools` (`linear_gaussian_pools`) for each of
    STRATEGIES, paired by seed: strategy -> test errors [S, Q + 1]."""
    return {s: run_logistic_queries(*pools, strategy=s, **knobs) for s in STRATEGIES}


def linear_gaussian_pools(key: jax.Array, num_seeds: int, pool_size: int, test_size: int,
                          dim: int):
    """Noise-free linearly separable pools: x ~ N(0, I_dim), y = 1[x_0 > 0] (the two classes
    are the half-Gaussians on either side of the hyperplane x_0 = 0), plus test sets and a
    random labelling order per seed. Returns (x [S,U,d], y [S,U], order [S,U], x_test, y_test)."""
    k_x, k_t, k_o = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (num_seeds, pool_size, dim))
    x_test = jax.random.normal(k_t, (num_seeds, test_size, dim))
    order = random_orders(k_o, num_seeds, pool_size)
    return (x, (x[..., 0] > 0).astype(jnp.float32), order, x_test,
            (x_test[..., 0] > 0).astype(jnp.float32))
