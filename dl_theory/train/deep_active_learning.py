"""Pool-based active learning of a small MLP classifier with batch acquisition, over seeds.

The setting of Munjal et al. (2022): a small labelled start, then rounds that retrain the model
from scratch on the labelled set and label a batch of the pool, chosen either by uncertainty
(the smallest softmax margin, top-1 minus top-2 probability: Settles 2009, Section 3.1) or at
random. Shapes are fixed: the labelled set is a buffer of the final budget's size with a mask,
so a round is one step of a `lax.scan` and the seeds are a `vmap`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.models.mlp import MLP
from dl_theory.train.precision import POLICIES, Policy

STRATEGIES = ("uncertainty", "random")


def softmax_margin(logits_NxC: jax.Array) -> jax.Array:
    """Top-1 minus top-2 softmax probability per row, in float32; [N]. Small = uncertain."""
    top2 = jax.lax.top_k(jax.nn.softmax(logits_NxC.astype(jnp.float32)), 2)[0]
    return top2[:, 0] - top2[:, 1]


def mlp_classifier(widths, num_classes: int, policy: Policy = POLICIES["float32"]) -> MLP:
    """The MLP that `run_mlp_queries` retrains every round, in `policy`'s dtypes."""
    return MLP(widths=tuple(widths), out_dim=num_classes, **policy.model_dtypes())


def _train(model, key, x_LxD, y_L, mask_L, steps, learning_rate):
    """A fresh model trained full-batch (Adam) on the masked buffer; returns params."""
    params = model.init(key, x_LxD[:1])
    tx = optax.adam(learning_rate)

    def loss(p):
        logits = model.apply(p, x_LxD).astype(jnp.float32)  # the loss reduces in float32
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y_L)
        return jnp.sum(mask_L * losses) / jnp.maximum(mask_L.sum(), 1.0)

    def step(carry, _):
        p, s = carry
        updates, s = tx.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
    return params


def _seed_loop(key, order_U, x_UxD, y_U, x_test, y_test, *, model, num_start, batch, rounds,
               steps, learning_rate, strategy):
    """One seed: test accuracies after num_start + r batch labels, r = 0..rounds; [rounds + 1]."""
    budget = num_start + rounds * batch
    buffer0 = order_U[:budget]  # random sampling labels the seed's order; others overwrite

    def fit_and_score(buffer, n, round_key):
        mask = (jnp.arange(budget) < n).astype(jnp.float32)
        params = _train(model, round_key, x_UxD[buffer], y_U[buffer], mask, steps,
                        learning_rate)
        accuracy = jnp.mean(jnp.argmax(model.apply(params, x_test), -1) == y_test)
        return params, accuracy

    def round_(buffer, r):
        n = num_start + r * batch
        params, accuracy = fit_and_score(buffer, n, jax.random.fold_in(key, r))
        if strategy == "uncertainty":
            labelled = jnp.zeros(order_U.shape[0], bool).at[buffer].set(
                jnp.arange(budget) < n)
            score = jnp.where(labelled, -jnp.inf, -softmax_margin(model.apply(params, x_UxD)))
            chosen = jax.lax.top_k(score, batch)[1]
            buffer = jax.lax.dynamic_update_slice(buffer, chosen.astype(buffer.dtype), (n,))
        return buffer, accuracy

    buffer, accuracies = jax.lax.scan(round_, buffer0, jnp.arange(rounds))
    _, last = fit_and_score(buffer, budget, jax.random.fold_in(key, rounds))
    return jnp.concatenate([accuracies, last[None]])


def run_mlp_queries(key, x_UxD, y_U, x_test, y_test, *, num_seeds: int, widths, num_start: int,
                    batch: int, rounds: int, steps: int, learning_rate: float,
                    strategy: str, policy: Policy = POLICIES["float32"]) -> np.ndarray:
    """Test accuracy per seed after num_start + r * batch labels, r = 0..rounds; [S, R + 1].

    Seed s draws its labelling order (and so its labelled start, shared by both strategies)
    and its initialisations from `fold_in(key, s)`; the pool and test set are shared. The
    MLP computes in `policy`'s dtypes (`mlp_classifier`); losses and margins are float32.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r}; known: {STRATEGIES}")
    model = mlp_classifier(widths, int(np.max(y_U)) + 1, policy)
    x_UxD, y_U, x_test, y_test = (jnp.asarray(a) for a in (x_UxD, y_U, x_test, y_test))
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(jnp.arange(num_seeds))
    orders = jax.vmap(lambda k: jax.random.permutation(k, x_UxD.shape[0]))(
        jax.vmap(lambda k: jax.random.fold_in(k, 10**6))(keys))

    def one(k, order):
        return _seed_loop(k, order, x_UxD, y_U, x_test, y_test, model=model,
                          num_start=num_start, batch=batch, rounds=rounds, steps=steps,
                          learning_rate=learning_rate, strategy=strategy)

    return np.asarray(jax.jit(jax.vmap(one))(keys, orders), np.float64)


def accuracy_by_strategy(key, data, **knobs) -> dict[str, np.ndarray]:
    """`run_mlp_queries` on `data` ({"train": {"x", "y"}, "test": {"x", "y"}}: the train split
    is the pool) for each of STRATEGIES from the same key, so the seeds share their labelled
    start and initialisations: strategy -> test accuracy [S, R + 1]."""
    pool, test = data["train"], data["test"]
    return {s: run_mlp_queries(key, pool["x"], pool["y"], test["x"], test["y"], strategy=s,
                               **knobs) for s in STRATEGIES}
