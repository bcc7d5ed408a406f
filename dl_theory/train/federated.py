"""Federated optimisation with clients as a stacked leading axis: FedAvg, FedProx, SCAFFOLD.

One communication round (`make_round`): the server samples a fraction C of the K clients from
a key, every sampled client runs local SGD from the global model (`jax.vmap` over clients, the
local steps a `jax.lax.scan` of `optax.sgd` updates over E epochs of mini-batches of size B, or
of the full client batch when B is None), and the server replaces the global model by the
data-size-weighted mean of the returned models.

- FedAvg (McMahan et al., AISTATS 2017, Algorithm 1): the plain local loss. FedSGD is FedAvg
  with one epoch of one full-batch step.
- FedProx (Li et al., MLSys 2020, Algorithm 2): the local loss plus mu/2 |w - w_global|^2.
- SCAFFOLD (Karimireddy et al., ICML 2020, Algorithm 1, option II, global step size 1): each
  local gradient is corrected by c - c_i; after its K local steps client i sets
  c_i+ = c_i - c + (x - y_i) / (K eta_l), and the server adds to c the weighted sum of the
  sampled clients' c_i+ - c_i, each weighted by its share of all the data (the paper's
  (1/N) sum over the sample for equal sizes).

Client data are pytrees whose leaves have shape [K, n, ...] (equal client sizes n; the weights
`client_sizes` may still differ, e.g. for unequal true sizes). `loss_fn(params, batch)` is the
mean loss over a batch whose leaves have shape [b, ...].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.theory.federated_quadratics import quadratic_client_loss

METHODS = ("fedavg", "fedprox", "scaffold")


@dataclasses.dataclass(frozen=True)
class LocalRule:
    """How clients train and how many take part.

    method: one of METHODS. learning_rate: local SGD step eta_l. local_epochs: E.
    batch_size: B, or None for one full-batch step per epoch. prox_mu: FedProx's mu (ignored
    otherwise). client_fraction: C; max(1, round(C K)) clients are sampled per round.
    """

    method: str = "fedavg"
    learning_rate: float = 0.1
    local_epochs: int = 1
    batch_size: int | None = None
    prox_mu: float = 0.0
    client_fraction: float = 1.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; allowed: {METHODS}")


class ServerState(NamedTuple):
    """The global model, SCAFFOLD's server control c (zeros otherwise) and the clients'
    controls c_i (leading axis K)."""

    params: Any
    control: Any
    client_controls: Any


def init_server(params, num_clients: int) -> ServerState:
    """Global model `params`; all control variates zero (SCAFFOLD's initialisation)."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    stacked = jax.tree.map(lambda p: jnp.zeros((num_clients,) + p.shape, p.dtype), params)
    return ServerState(params, zeros, stacked)


def sampled_clients(key, num_clients: int, fraction: float) -> jax.Array:
    """Indices of the max(1, round(C K)) clients sampled without replacement this round."""
    count = max(1, round(fraction * num_clients))
    return jnp.sort(jax.random.choice(key, num_clients, (count,), replace=False))


def _batch_indices(key, client_size: int, rule: LocalRule) -> jax.Array:
    """[steps, b] example indices: E epochs of a fresh permutation cut into batches of B (the
    last partial batch dropped), or E copies of the whole client for B = None."""
    if rule.batch_size is None:
        return jnp.tile(jnp.arange(client_size), (rule.local_epochs, 1))
    per_epoch = client_size // rule.batch_size
    keys = jax.random.split(key, rule.local_epochs)
    perms = jax.vmap(lambda k: jax.random.permutation(k, client_size))(keys)
    return perms[:, :per_epoch * rule.batch_size].reshape(-1, rule.batch_size)


def local_train(loss_fn: Callable, rule: LocalRule, global_params, correction, data, key):
    """One client's local run from `global_params`; `correction` (c - c_i) is added to each
    gradient (zeros unless SCAFFOLD). Returns the local model."""
    client_size = jax.tree.leaves(data)[0].shape[0]
    indices = _batch_indices(key, client_size, rule)
    tx = optax.sgd(rule.learning_rate)
    mu = rule.prox_mu if rule.method == "fedprox" else 0.0

    def local_loss(params, batch):
        prox = sum(jnp.sum((p - g) ** 2) for p, g in
                   zip(jax.tree.leaves(params), jax.tree.leaves(global_params)))
        return loss_fn(params, batch) + 0.5 * mu * prox

    def step(carry, idx):
        params, opt_state = carry
        batch = jax.tree.map(lambda leaf: leaf[idx], data)
        grads = jax.grad(local_loss)(params, batch)
        grads = jax.tree.map(jnp.add, grads, correction)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (global_params, tx.init(global_params)), indices)
    return params


def local_steps(client_size: int, rule: LocalRule) -> int:
    """K, the number of local SGD steps per round: E full-batch steps, or E floor(n / B)."""
    if rule.batch_size is None:
        return rule.local_epochs
    return rule.local_epochs * (client_size // rule.batch_size)


def make_round(loss_fn: Callable, rule: LocalRule, client_sizes) -> Callable:
    """A jitted `round(state, client_data, key) -> state` for `rule` (see the module
    docstring); `client_sizes` [K] weight the server's averages."""
    sizes = jnp.asarray(client_sizes, jnp.float32)
    num_clients = sizes.shape[0]

    @jax.jit
    def round_fn(state: ServerState, client_data, key) -> ServerState:
        sample_key, local_key = jax.random.split(key)
        chosen = sampled_clients(sample_key, num_clients, rule.client_fraction)
        data = jax.tree.map(lambda leaf: leaf[chosen], client_data)
        old_controls = jax.tree.map(lambda c: c[chosen], state.client_controls)
        corrections = jax.tree.map(lambda c_i, c: c - c_i, old_controls,
                                   jax.tree.map(lambda c: c[None], state.control))
        keys = jax.random.split(local_key, chosen.shape[0])
        local = jax.vmap(
            lambda corr, d, k: local_train(loss_fn, rule, state.params, corr, d, k)
        )(corrections, data, keys)
        weights = sizes[chosen].astype(jax.tree.leaves(state.params)[0].dtype)

        def weighted_mean(stacked):
            return jnp.tensordot(weights / weights.sum(), stacked, axes=1)

        params = jax.tree.map(weighted_mean, local)
        if rule.method != "scaffold":
            return state._replace(params=params)
        client_size = jax.tree.leaves(client_data)[0].shape[1]
        scale = 1.0 / (local_steps(client_size, rule) * rule.learning_rate)
        new_controls = jax.tree.map(
            lambda c_i, c, x, y: c_i - c[None] + (x[None] - y) * scale,
            old_controls, state.control, state.params, local)
        share = weights / sizes.sum().astype(weights.dtype)
        control = jax.tree.map(lambda c, new, old: c + jnp.tensordot(share, new - old, axes=1),
                               state.control, new_controls, old_controls)
        client_controls = jax.tree.map(lambda all_c, new: all_c.at[chosen].set(new),
                                       state.client_controls, new_controls)
        return ServerState(params, control, client_controls)

    return round_fn


def run_rounds(round_fn: Callable, state: ServerState, client_data, key, rounds: int,
               evaluate: Callable | None = None):
    """`rounds` rounds by `lax.scan` (one compiled program); returns the final state and
    `evaluate(params)` after every round (an array [rounds, ...], or None)."""

    def body(s, k):
        s = round_fn(s, client_data, k)
        return s, (evaluate(s.params) if evaluate is not None else 0.0)

    state, trace = jax.lax.scan(body, state, jax.random.split(key, rounds))
    return state, (trace if evaluate is not None else None)


def quadratic_rounds(hessians_KxDxD, centres_KxD, method: str, learning_rate: float,
                     local_steps: int, rounds: int, prox_mu: float = 0.0) -> np.ndarray:
    """The global model [D] after `rounds` full-participation rounds of `method` (each client
    `local_steps` full-batch GD steps at `learning_rate`; FedProx with `prox_mu`) from w = 0 on
    the quadratic clients f_i(w) = 1/2 (w - b_i)^T A_i (w - b_i) of
    `dl_theory.theory.federated_quadratics` (its closed forms give the fixed point). Float64
    when the caller enables x64."""
    num_clients, dim = np.shape(centres_KxD)
    rule = LocalRule(method, learning_rate, local_steps, None, prox_mu=prox_mu)
    data = {"a": jnp.asarray(hessians_KxDxD)[:, None], "b": jnp.asarray(centres_KxD)[:, None]}
    state = init_server(jnp.zeros(dim), num_clients)
    state, _ = run_rounds(make_round(quadratic_client_loss, rule, np.ones(num_clients)), state,
                          data, jax.random.PRNGKey(0), rounds)
    return np.asarray(state.params)


def classifier_accuracy_traces(model, rule: LocalRule, learning_rates, client_data, test, *,
                               rounds: int, seeds: int) -> np.ndarray:
    """Test accuracy of the flax classifier `model` after every round, [learning rates,
    seeds, rounds]: `rounds` rounds of `rule` at each learning rate, all runs one compiled
    program (vmapped over rates and seeds). Every run starts from the same initialisation
    (key 0); seed s samples clients and batches from the s-th split of key 1. The local loss
    is the mean softmax cross-entropy of `client_data` {"x": [K, n, ...], "y": [K, n]} on
    logits cast to float32 (the model may compute in a narrower dtype; the loss reduces in
    float32); clients are weighted equally (n examples each)."""
    params = model.init(jax.random.PRNGKey(0), test["x"][:1])

    def loss(p, batch):
        logits = model.apply(p, batch["x"]).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()

    def accuracy(p):
        return jnp.mean(jnp.argmax(model.apply(p, test["x"]), -1) == test["y"])

    num_clients, client_size = jax.tree.leaves(client_data)[0].shape[:2]
    sizes = np.full(num_clients, client_size)

    def one(lr, key):
        round_fn = make_round(loss, dataclasses.replace(rule, learning_rate=lr), sizes)
        return run_rounds(round_fn, init_server(params, num_clients), client_data, key,
                          rounds, accuracy)[1]

    keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    over_seeds = jax.vmap(one, in_axes=(None, 0))
    return np.asarray(jax.jit(jax.vmap(over_seeds, in_axes=(0, None)))(
        jnp.asarray(learning_rates, jnp.float32), keys))
