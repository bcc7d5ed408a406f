"""The measurements of experiments/sparse_coding_autoencoder.py (Rangamani et al. 2018):
support recovery over sparsities, and Monte Carlo expected gradients over code dimensions and
distances from the dictionary. Every sample comes from `jax.random.fold_in` of one key, so
each number is a pure function of the config and the seed.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.sparse_coding import coherence, sparse_coding_batch, two_ortho_dictionary
from dl_theory.theory.sparse_coding import (
    expected_gradient_norm,
    rows_at_distance,
    support_recovery,
    theorem_bias,
)


def support_size(h: int, p: float) -> int:
    """k = h^p rounded to the nearest integer, at least 1."""
    return max(1, int(round(h**p)))


def random_unit_rows(key: jax.Array, h: int, n: int) -> jax.Array:
    """A random W [h, n] with unit rows: the matched-norm random dictionary."""
    w = jax.random.normal(key, (h, n))
    return w / jnp.linalg.norm(w, axis=1, keepdims=True)


def _recovery_rate(w, dictionary, key, c, values, k, bias) -> tuple[float, float]:
    """(fraction of exact supports, mean number of wrong units) over c.samples fresh samples."""
    exact = wrong = 0.0
    for b in range(c.samples // c.batch):
        codes, y = sparse_coding_batch(jax.random.fold_in(key, b), dictionary, c.batch, k,
                                       values.low, values.high)
        ok, units = support_recovery(w, codes, y, bias)
        exact, wrong = exact + float(jnp.sum(ok)), wrong + float(jnp.sum(units))
    num = (c.samples // c.batch) * c.batch
    return exact / num, wrong / num


def recovery_sweep(c, values, key: jax.Array) -> dict:
    """Exact support recovery at W = A*^T with eps = 2 m1 k mu/sqrt(n), for every p of
    c.p_values (A* the two-ortho dictionary of size c.n x 2 c.n); at c.p also with eps = 0 and
    at a random unit-row W. `p_deterministic` / `p_collapse` are the p where k mu/sqrt(n)
    reaches a1 / (2 m1 + a2) (recovery certain below) and a1 / (2 m1) (bias = a1)."""
    dictionary = jnp.asarray(two_ortho_dictionary(c.n), jnp.float32)
    h, mu = dictionary.shape[1], coherence(two_ortho_dictionary(c.n))
    m1 = (values.low + values.high) / 2.0
    out = {"h": h, "incoherence": mu, "p": [], "k": [], "bias": [], "rate": [],
           "wrong_units": []}
    for i, p in enumerate(c.p_values):
        k = support_size(h, p)
        bias = theorem_bias(k, m1, 0.0, mu)
        rate, wrong = _recovery_rate(dictionary.T, dictionary, jax.random.fold_in(key, i), c,
                                     values, k, bias)
        for name, value in (("p", p), ("k", k), ("bias", bias), ("rate", rate),
                            ("wrong_units", wrong)):
            out[name].append(value)
    k = support_size(h, c.p)
    bias = theorem_bias(k, m1, 0.0, mu)
    regime_key = jax.random.fold_in(key, c.p_values.index(c.p))  # the same samples as above
    out["rate_zero_bias"], out["wrong_units_zero_bias"] = _recovery_rate(
        dictionary.T, dictionary, regime_key, c, values, k, 0.0)
    w_random = random_unit_rows(jax.random.fold_in(key, 10_000), h, c.n)
    out["rate_random"], out["wrong_units_random"] = _recovery_rate(
        w_random, dictionary, regime_key, c, values, k, bias)
    out["p_deterministic"] = math.log(values.low / ((2 * m1 + values.high) * mu)) / math.log(h)
    out["p_collapse"] = math.log(values.low / (2 * m1 * mu)) / math.log(h)
    return out


def _norms(w, dictionary, key, num_batches, batch, k, values, bias, h) -> dict:
    """Per-row RMS expected-gradient norms (full, tangent) and noise at W, from fresh samples."""
    batches = (sparse_coding_batch(jax.random.fold_in(key, b), dictionary, batch, k,
                                   values.low, values.high)[1] for b in range(num_batches))
    stats = expected_gradient_norm(w, batches, bias)
    scale = math.sqrt(h)
    return {part: {"norm": s["norm"] / scale, "squared": s["squared"] / h,
                   "noise": s["noise"] / scale} for part, s in stats.items()}


def gradient_scan(c, values, key: jax.Array) -> dict:
    """For h = 2n over c.n_values (k = h^p, eps = 2 m1 k mu/sqrt(n)): per-row RMS expected
    gradient norms at A*, at distance c.far and c.far / 2, in c.replicates independent Monte
    Carlo replicates of c.samples_per_unit * h samples; and, at the second-largest h, the
    norms over c.distances (the figure)."""
    m1 = (values.low + values.high) / 2.0
    per_h, sweep = [], None
    for index, n in enumerate(c.n_values):
        dictionary = jnp.asarray(two_ortho_dictionary(n), jnp.float32)
        h, mu = 2 * n, coherence(two_ortho_dictionary(n))
        k = support_size(h, c.p)
        bias = theorem_bias(k, m1, 0.0, mu)
        num_batches = max(1, c.samples_per_unit * h // c.batch)
        h_key = jax.random.fold_in(key, index)
        points = {"at": dictionary.T,
                  "far": rows_at_distance(jax.random.fold_in(h_key, 1), dictionary, c.far),
                  "half": rows_at_distance(jax.random.fold_in(h_key, 2), dictionary, c.far / 2)}
        reps = [{name: _norms(w, dictionary, jax.random.fold_in(h_key, 100 + r), num_batches,
                              c.batch, k, values, bias, h) for name, w in points.items()}
                for r in range(c.replicates)]
        row = {"n": n, "h": h, "k": k, "bias": bias, "k_mu": k * mu,
               "samples": num_batches * c.batch * c.replicates,
               "radial_prediction": 2.0 * (k / h) * m1 * bias,
               "at_full": [rep["at"]["full"]["norm"] for rep in reps],
               "far_tangent": [rep["far"]["tangent"]["norm"] for rep in reps]}
        for part, suffix in (("full", "full"), ("tangent", "tangent")):
            ratio_at = [rep["at"][part]["norm"] / rep["far"][part]["norm"] for rep in reps]
            ratio_half = [rep["half"][part]["norm"] / rep["far"][part]["norm"] for rep in reps]
            pooled = {name: math.sqrt(max(np.mean([rep[name][part]["squared"] for rep in reps]),
                                          0.0)) for name in points}
            row[f"ratio_{suffix}"] = ratio_at
            row[f"ratio_half_{suffix}" if part == "tangent" else "ratio_half"] = ratio_half
            row[f"norm_{suffix}"] = pooled
            row[f"noise_{suffix}"] = {name: float(np.mean([rep[name][part]["noise"]
                                                           for rep in reps])) / math.sqrt(
                c.replicates) for name in points}
        row["pooled_ratio_full"] = row["norm_full"]["at"] / row["norm_full"]["far"]
        row["pooled_ratio_half"] = row["norm_full"]["half"] / row["norm_full"]["far"]
        row["pooled_ratio_tangent"] = row["norm_tangent"]["at"] / row["norm_tangent"]["far"]
        row["pooled_ratio_half_tangent"] = (row["norm_tangent"]["half"]
                                            / row["norm_tangent"]["far"])
        per_h.append(row)
        if index == len(c.n_values) - 2 or len(c.n_values) == 1:
            sweep = {"h": h, "distance": list(c.distances), "full": [], "tangent": [],
                     "noise": [], "radial_prediction": 2.0 * (k / h) * m1 * bias}
            for j, distance in enumerate(c.distances):
                w = rows_at_distance(jax.random.fold_in(h_key, 1000 + j), dictionary, distance)
                norms = _norms(w, dictionary, jax.random.fold_in(h_key, 2000 + j),
                               num_batches * c.replicates, c.batch, k, values, bias, h)
                sweep["full"].append(norms["full"]["norm"])
                sweep["tangent"].append(norms["tangent"]["norm"])
                sweep["noise"].append(norms["full"]["noise"])
    return {"per_h": per_h, "distance_sweep": sweep}
