"""Active learning of 1-D thresholds: version spaces, bisection, passive closed forms, and a
pool-based query loop (uncertainty vs random sampling) batched over seeds.

Hypotheses are thresholds h_t(x) = 1[x > t]. After labels of points x_1..x_m (realizable, true
threshold t*), the version space is the interval between the largest point labelled 0 and the
smallest labelled 1; its width bounds the error of any consistent learner under uniform x.

Closed forms (t* ~ U[0, 1], x_i iid U[0, 1]): the m points cut [0, 1] into m + 1 spacings,
each marginally Beta(1, m), and t* falls into a spacing with probability equal to its length
(size-biased), so E[width] = (m + 1) E[S^2] = 2 / (m + 2) and E[width^2] = (m + 1) E[S^3] =
6 / ((m + 2)(m + 3)). Bisection (query the midpoint of the version space) halves the width with
every label: width 2^-k after k labels on the continuum (Dasgupta 2005, the thresholds example).

The pool loop (`run_pool_queries`) fits the empirical-risk minimiser among thresholds on the
labelled part of a fixed pool (a mask, so shapes never change), takes the middle of the
minimising interval as the learned threshold, and queries either the unlabelled point nearest
to it (uncertainty sampling; on realizable data this is bisection over the pool) or the next
point of a random order (passive / random sampling). Rounds are a `lax.scan`, seeds a `vmap`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.hitting_times import hitting_time

STRATEGIES = ("uncertainty", "random")


def expected_passive_width(m):
    """E[version-space width] after m uniform random labels, t* ~ U[0, 1]: 2 / (m + 2)."""
    return 2.0 / (np.asarray(m, np.float64) + 2.0)


def passive_width_second_moment(m):
    """E[width^2] after m uniform random labels, t* ~ U[0, 1]: 6 / ((m + 2)(m + 3))."""
    m = np.asarray(m, np.float64)
    return 6.0 / ((m + 2.0) * (m + 3.0))


def passive_width_std(m):
    """The standard deviation of the version-space width after m uniform random labels,
    sqrt(E[width^2] - E[width]^2)."""
    return np.sqrt(passive_width_second_moment(m) - expected_passive_width(m) ** 2)


def bisection_widths(threshold: float, num_queries: int) -> np.ndarray:
    """Version-space widths on the continuum [0, 1] after 0..num_queries bisection labels; [K+1].

    Each query labels the midpoint of the current interval and keeps the half holding
    `threshold`; in float64 the widths are exact powers of two.
    """
    lo, hi, widths = 0.0, 1.0, [1.0]
    for _ in range(num_queries):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mid <= threshold else (lo, mid)
        widths.append(hi - lo)
    return np.asarray(widths)


def passive_widths(key: jax.Array, label_counts, num_draws: int) -> np.ndarray:
    """Monte Carlo version-space widths after m random uniform labels; shape [draws, len(counts)].

    Each draw samples t* ~ U[0, 1] and max(counts) points; the width after the first m of them
    is (smallest point above t*, else 1) - (largest point below t*, else 0).
    """
    counts = np.asarray(label_counts)
    k_t, k_x = jax.random.split(key)
    t_R = jax.random.uniform(k_t, (num_draws,), jnp.float32)
    x_RxM = jax.random.uniform(k_x, (num_draws, int(counts.max())), jnp.float32)
    above = jnp.where(x_RxM > t_R[:, None], x_RxM, 1.0)
    below = jnp.where(x_RxM <= t_R[:, None], x_RxM, 0.0)
    # Running min / max along the label order: the version space after each prefix.
    hi_RxM = jax.lax.cummin(above, axis=1)
    lo_RxM = jax.lax.cummax(below, axis=1)
    width_RxM = hi_RxM - lo_RxM
    return np.asarray(width_RxM[:, counts - 1], np.float64)


def passive_labels_to_width(key: jax.Array, eps, horizon: float, num_draws: int) -> np.ndarray:
    """Per Monte Carlo draw, the random uniform labels (1-based count) until the version-space
    width is <= each of `eps`; [draws, len(eps)].

    The widths are drawn after every count 1..M, M = horizon / min(eps); a draw that never
    gets there counts as M + 1 (censored). P(width_M > eps) ~ (1 + horizon) e^-horizon, 2e-6
    at horizon 16, so the counts are (almost surely) not censored; callers count the ones
    above M.
    """
    counts = np.arange(1, int(horizon / min(eps)) + 1)
    widths_RxM = passive_widths(key, counts, num_draws)
    return np.stack([hitting_time(widths_RxM, e) + 1 for e in eps], 1)


def erm_threshold(x_U: jax.Array, y_U: jax.Array, mask_U: jax.Array, lo: float, hi: float):
    """The middle of the first interval of thresholds minimising the labelled 0-1 error.

    `x_U` sorted ascending in [lo, hi]; `y_U` in {0, 1}; `mask_U` 1 where labelled. The
    threshold between x_{a-1} and x_a (a = 0..U, x_{-1} = lo, x_U = hi) errs on labelled 1s at
    or below it and labelled 0s above it. Returns (threshold, its labelled error count).
    """
    ones = jnp.concatenate([jnp.zeros(1), jnp.cumsum(mask_U * y_U)])
    zeros = jnp.concatenate([jnp.zeros(1), jnp.cumsum(mask_U * (1 - y_U))])
    errors = ones + (zeros[-1] - zeros)  # [U + 1]
    best = errors.min()
    a_lo = jnp.argmin(errors)
    index = jnp.arange(errors.shape[0])
    beyond = (index > a_lo) & (errors > best)
    a_end = jnp.where(beyond.any(), jnp.argmax(beyond), errors.shape[0])  # first non-minimiser
    edges = jnp.concatenate([jnp.array([lo], x_U.dtype), x_U, jnp.array([hi], x_U.dtype)])
    return 0.5 * (edges[a_lo] + edges[a_end]), best


def _query_loop(x_U, y_U, order_U, num_start, num_queries, strategy, lo, hi):
    """One seed: thresholds after num_start, num_start + 1, ..., num_start + num_queries labels."""
    rank_U = jnp.zeros_like(order_U).at[order_U].set(jnp.arange(order_U.shape[0]))
    mask0 = (rank_U < num_start).astype(x_U.dtype)

    def round_(mask, _):
        t, _ = erm_threshold(x_U, y_U, mask, lo, hi)
        if strategy == "uncertainty":
            score = jnp.where(mask > 0, jnp.inf, jnp.abs(x_U - t))
        else:  # random: the next unlabelled point of this seed's random order
            score = jnp.where(mask > 0, jnp.inf, rank_U.astype(x_U.dtype))
        return mask.at[jnp.argmin(score)].set(1.0), t

    mask, thresholds = jax.lax.scan(round_, mask0, None, length=num_queries)
    last, _ = erm_threshold(x_U, y_U, mask, lo, hi)
    return jnp.concatenate([thresholds, last[None]])


def run_pool_queries(x_SxU, y_SxU, order_SxU, *, num_start: int, num_queries: int,
                     strategy: str, lo: float, hi: float) -> np.ndarray:
    """Learned thresholds per seed after num_start + q labels, q = 0..num_queries; [S, Q+1].

    Every seed's pool `x_SxU` must be sorted ascending; `order_SxU` is a permutation per seed
    (the random labelling order; its first num_start points are the labelled start, shared by
    both strategies so that they are paired).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; known: {STRATEGIES}")
    run = jax.jit(jax.vmap(lambda x, y, o: _query_loop(x, y, o, num_start, num_queries,
                                                       strategy, lo, hi)))
    return np.asarray(run(x_SxU, y_SxU, order_SxU), np.float64)


def mixture_query_runs(key: jax.Array, groups, order_SxU, *, num_start: int,
                       num_queries: int, lo: float, hi: float):
    """Pools from the interval mixture `groups` (`sample_interval_mixture`, one pool per row
    of `order_SxU`) and, for each of STRATEGIES on those pools and orders (`run_pool_queries`),
    the learned thresholds and their population errors (`interval_mixture_error`), each
    [S, Q + 1]. Returns (x [S, U], {strategy: (thresholds, errors)})."""
    x, y = sample_interval_mixture(key, groups, *np.shape(order_SxU))
    runs = {s: run_pool_queries(x, y, order_SxU, num_start=num_start, num_queries=num_queries,
                                strategy=s, lo=lo, hi=hi) for s in STRATEGIES}
    return x, {s: (t, interval_mixture_error(t, groups)) for s, t in runs.items()}


def random_orders(key: jax.Array, num_seeds: int, pool_size: int) -> jax.Array:
    """A random labelling order (a permutation of the pool's indices) per seed; [S, U]."""
    return jax.vmap(lambda k: jax.random.permutation(k, pool_size))(
        jax.random.split(key, num_seeds))


def start_hits_interval(x_SxU, order_SxU, num_start: int, left: float, right: float):
    """Per seed, whether its labelled start (the first num_start points of its order) holds a
    point of [left, right]; [S] booleans."""
    start_x = np.take_along_axis(np.asarray(x_SxU), np.asarray(order_SxU[:, :num_start]), 1)
    return np.any((start_x >= left) & (start_x <= right), axis=1)


def best_threshold_error(groups, lo: float, hi: float, grid_points: int = 20001) -> float:
    """The smallest population error of 1[x > t] on the interval mixture `groups` over a grid
    of `grid_points` thresholds t in [lo, hi] (`interval_mixture_error`)."""
    return float(interval_mixture_error(np.linspace(lo, hi, grid_points), groups).min())


def interval_groups(masses, lefts, rights, labels) -> tuple:
    """The mixture's groups as the (mass, left, right, label) tuples that
    `interval_mixture_error` and `sample_interval_mixture` read, one per group."""
    if not len(masses) == len(lefts) == len(rights) == len(labels):
        raise ValueError(f"masses, lefts, rights, labels have lengths {len(masses)}, "
                         f"{len(lefts)}, {len(rights)}, {len(labels)}; need one each per group")
    return tuple(zip(masses, lefts, rights, labels))


def interval_mixture_error(threshold, groups) -> np.ndarray:
    """Population 0-1 error of 1[x > t] on a mixture of uniform intervals, for an array of t.

    `groups` is a sequence of (mass, left, right, label); a label-1 group loses the fraction of
    its interval at or below t, a label-0 group the fraction above t.
    """
    t = np.asarray(threshold, np.float64)
    error = np.zeros_like(t)
    for mass, left, right, label in groups:
        below = np.clip((t - left) / (right - left), 0.0, 1.0)
        error += mass * (below if label == 1 else 1.0 - below)
    return error


def sample_interval_mixture(key: jax.Array, groups, num_seeds: int, pool_size: int):
    """Pools of `pool_size` points per seed from the interval mixture, sorted; (x, y) [S, U]."""
    masses = jnp.array([g[0] for g in groups])
    k_g, k_u = jax.random.split(key)
    group = jax.random.categorical(k_g, jnp.log(masses), shape=(num_seeds, pool_size))
    left = jnp.array([g[1] for g in groups])[group]
    right = jnp.array([g[2] for g in groups])[group]
    x = left + (right - left) * jax.random.uniform(k_u, (num_seeds, pool_size))
    y = jnp.array([g[3] for g in groups], jnp.float32)[group]
    order = jnp.argsort(x, axis=1)
    return jnp.take_along_axis(x, order, 1), jnp.take_along_axis(y, order, 1)
