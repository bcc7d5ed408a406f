"""SGD on the weight-tied ReLU autoencoder's squared loss over fresh sparse-coding samples
(Rangamani et al. 2018): does training from a perturbed dictionary move toward it?

One compiled `lax.scan` over steps; every step draws a fresh batch y = A* x* (online learning
of the population loss, whose gradient at A* the paper bounds) and applies optax.sgd. Under a
precision policy the autoencoder's forward pass computes in the policy's compute dtype; W, its
gradient and the SGD update stay float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.data.sparse_coding import coherence, sparse_coding_batch, two_ortho_dictionary
from dl_theory.models.tied_autoencoder import TiedReLUAutoencoder, squared_loss
from dl_theory.theory.sparse_coding import columnwise_distance, rows_at_distance, theorem_bias
from dl_theory.theory.sparse_coding_sweeps import random_unit_rows, support_size
from dl_theory.train.precision import POLICIES, Policy


def sgd_on_fresh_samples(w_HxN, dictionary, key, *, steps: int, batch: int, k: int,
                         low: float, high: float, bias: float, learning_rate: float,
                         dtype=None):
    """(final W, mean row-normalised column-wise distance to A* after every step [steps]); the
    autoencoder computes in `dtype` (None: W's)."""
    tx = optax.sgd(learning_rate)
    a_HxN = dictionary.T

    def step(carry, index):
        w, opt_state = carry
        _, y = sparse_coding_batch(jax.random.fold_in(key, index), dictionary, batch, k,
                                   low, high)
        grads = jax.grad(squared_loss)(w, y, bias, dtype)
        updates, opt_state = tx.update(grads, opt_state, w)
        w = optax.apply_updates(w, updates)
        unit = w / jnp.linalg.norm(w, axis=1, keepdims=True)
        return (w, opt_state), jnp.mean(jnp.linalg.norm(unit - a_HxN, axis=1))

    @jax.jit
    def run(w):
        (w, _), distances = jax.lax.scan(step, (w, tx.init(w)), jnp.arange(steps))
        return w, distances

    return run(w_HxN)


def training_problem(c, values) -> dict:
    """The training part's setting (config section `c`, code values `values`): the two-ortho
    dictionary A* [n, 2n] (float32), h = 2n, k = round(h^p), the bias eps = 2 m1 k mu/sqrt(n)
    and the SGD step c.step_scale * h / (k m2) (every row's gradient carries P(i in S) = k / h
    and the code's second moment m2)."""
    dictionary = jnp.asarray(two_ortho_dictionary(c.n), jnp.float32)
    h, mu = dictionary.shape[1], coherence(two_ortho_dictionary(c.n))
    k = support_size(h, c.p)
    m1 = (values.low + values.high) / 2.0
    m2 = (values.low**2 + values.low * values.high + values.high**2) / 3.0
    return {"dictionary": dictionary, "h": h, "k": k, "bias": theorem_bias(k, m1, 0.0, mu),
            "learning_rate": c.step_scale * h / (k * m2)}


def autoencoder(c, values, policy: Policy = POLICIES["float32"]) -> TiedReLUAutoencoder:
    """The autoencoder that `train_from_perturbation` trains, in `policy`'s dtypes."""
    problem = training_problem(c, values)
    return TiedReLUAutoencoder(code_dim=problem["h"], bias=problem["bias"],
                               **policy.model_dtypes())


def train_from_perturbation(c, values, key: jax.Array, log=None,
                            policy: Policy = POLICIES["float32"]) -> dict:
    """SGD (c.steps steps of c.batch fresh samples, `training_problem`'s step, bias and
    dictionary) from unit-row W at column-wise distance c.start and from a random unit-row W,
    the autoencoder computing in `policy`'s compute dtype. Distances are of the row-normalised
    W (mean over rows)."""
    problem = training_problem(c, values)
    dictionary, h, k, bias = (problem[name] for name in ("dictionary", "h", "k", "bias"))
    settings = dict(steps=c.steps, batch=c.batch, k=k, low=values.low, high=values.high,
                    bias=bias, learning_rate=problem["learning_rate"],
                    dtype=policy.compute_dtype)
    out = {"h": h, "k": k, "bias": bias, "learning_rate": settings["learning_rate"]}
    starts = {"": rows_at_distance(jax.random.fold_in(key, 1), dictionary, c.start),
              "random_": random_unit_rows(jax.random.fold_in(key, 2), h, c.n)}
    for prefix, w0 in starts.items():
        w, distances = sgd_on_fresh_samples(w0, dictionary, jax.random.fold_in(key, 3),
                                            **settings)
        out[prefix + "initial"] = float(np.mean(columnwise_distance(w0, dictionary,
                                                                    normalise=True)))
        out[prefix + "final"] = float(np.mean(columnwise_distance(w, dictionary,
                                                                  normalise=True)))
        out[prefix + "trajectory"] = np.asarray(distances)[:: max(1, c.steps // 50)].tolist()
        out[prefix + "row_norm"] = float(np.mean(np.linalg.norm(np.asarray(w), axis=1)))
        if log is not None:
            log.write({"step": c.steps, f"{prefix}distance": out[prefix + "final"]})
    return out
