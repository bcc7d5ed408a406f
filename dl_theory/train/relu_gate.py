"""Training a single ReLU gate y = relu(w* . x): the non-gradient update and SGD, as scans.

The non-gradient update of Karmakar & Mukherjee (Neural Networks 2022, arXiv 2005.04211; the
GLMtron of Kakade et al. 2011 with mini-batches, called Neuro-Tron in the paper's earlier
versions) is

    w <- w + (eta / b) sum_i (y_i - relu(w . x_i)) x_i,

SGD on the squared loss (1/2b) sum_i (relu(w . x_i) - y_i)^2 differs by the factor
1{w . x_i > 0} (taken from `jax.grad`). The update is not a transformation of a gradient (it
needs the inputs and labels, and the loss it would descend does not exist), so it lives here as
a pure step function, not in `dl_theory.optim`.

A stream run gets its inputs for every step up front (`draw_stream`: fresh draws of a
symmetric law, the paper's online setting, or mini-batches gathered from a fixed data set),
with labels relu(w* . x) plus optional Gaussian noise and an optional poisoning attack: with
probability `attack_prob` a label gets attack_size * sign(u . x) for a fixed unit u (a
worst-case direction for the bound of `dl_theory.theory.relu_gate_bounds`). A full-batch run
iterates on one fixed data set. `lax.scan` runs the steps, vmapped over seeds; the numeric
knobs are traced, so one compiled program serves every law, step size and attack of a shape
(the random draws stay outside the scan, which keeps compilation to a fraction of a second).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.symmetric_inputs import sample_symmetric_inputs

METHODS = ("neuro_tron", "sgd")


def neuro_tron_update(w_D: jax.Array, x_BxD: jax.Array, y_B: jax.Array,
                      step_size: jax.Array) -> jax.Array:
    """One non-gradient step: w + eta * mean_i (y_i - relu(w . x_i)) x_i; shape [D]."""
    residual_B = y_B - jax.nn.relu(x_BxD @ w_D)
    return w_D + step_size * (residual_B @ x_BxD) / x_BxD.shape[0]


def squared_loss(w_D: jax.Array, x_BxD: jax.Array, y_B: jax.Array) -> jax.Array:
    """(1/2) mean_i (relu(w . x_i) - y_i)^2."""
    return 0.5 * jnp.mean((jax.nn.relu(x_BxD @ w_D) - y_B) ** 2)


def sgd_update(w_D: jax.Array, x_BxD: jax.Array, y_B: jax.Array,
               step_size: jax.Array) -> jax.Array:
    """One SGD step on `squared_loss` (relu'(0) = 0, as jax.grad takes it); shape [D]."""
    return w_D - step_size * jax.grad(squared_loss)(w_D, x_BxD, y_B)


_UPDATES = {"neuro_tron": neuro_tron_update, "sgd": sgd_update}


def gate_labels(x_BxD, w_star_D, knobs, attack_dir_D, noise_B, attack_draw_B):
    """relu(w* . x) + label_noise * noise + attack_size * sign(u . x) where
    attack_draw < attack_prob; shape [B]. `noise_B` ~ N(0, 1), `attack_draw_B` ~ U(0, 1)."""
    clean_B = jax.nn.relu(x_BxD @ w_star_D)
    poison_B = jnp.where(attack_draw_B < knobs.attack_prob,
                         knobs.attack_size * jnp.sign(x_BxD @ attack_dir_D), 0.0)
    return clean_B + knobs.label_noise * noise_B + poison_B


@dataclasses.dataclass(frozen=True)
class GateKnobs:
    """The numeric part of a run (traced: a grid of values shares one compiled program)."""

    step_size: float | jax.Array
    label_noise: float | jax.Array = 0.0
    attack_prob: float | jax.Array = 0.0
    attack_size: float | jax.Array = 0.0


jax.tree_util.register_dataclass(
    GateKnobs, data_fields=["step_size", "label_noise", "attack_prob", "attack_size"],
    meta_fields=[])


@dataclasses.dataclass(frozen=True)
class GateStream:
    """Every step's draws for S seeds: inputs [S, T, B, D], label noise and attack draws
    [S, T, B] (standard normal and uniform on [0, 1))."""

    x: jax.Array
    noise: jax.Array
    attack_draw: jax.Array


jax.tree_util.register_dataclass(GateStream, data_fields=["x", "noise", "attack_draw"],
                                 meta_fields=[])


def draw_stream(key: jax.Array, distribution: str, seeds: int, steps: int, batch: int,
                dim: int) -> GateStream:
    """Fresh inputs of the symmetric law `distribution` for every step and seed."""
    x_key, noise_key, attack_key = jax.random.split(key, 3)
    x = sample_symmetric_inputs(x_key, distribution, seeds * steps * batch, dim)
    return GateStream(x.reshape(seeds, steps, batch, dim),
                      jax.random.normal(noise_key, (seeds, steps, batch)),
                      jax.random.uniform(attack_key, (seeds, steps, batch)))


def minibatch_stream(key: jax.Array, data_SxNxD: jax.Array, size: int, steps: int,
                     batch: int) -> GateStream:
    """Mini-batches drawn with replacement from the first `size` rows of each seed's fixed
    data set (no noise, no attack)."""
    seeds = data_SxNxD.shape[0]
    index_SxTxB = jax.random.randint(key, (seeds, steps, batch), 0, size)
    x = jax.vmap(lambda data, index: data[index])(data_SxNxD, index_SxTxB)
    return GateStream(x, jnp.zeros(index_SxTxB.shape), jnp.ones(index_SxTxB.shape))


def stream_errors(method: str, knobs: GateKnobs, w0_D, w_star_D, attack_dir_D,
                  stream: GateStream) -> jax.Array:
    """|w_t - w*| for t = 0..T of one seed's run on its stream ([T, B, D] inputs);
    shape [T + 1]."""
    update = _UPDATES[method]

    def step(w_D, draws):
        x_BxD, noise_B, attack_draw_B = draws
        y_B = gate_labels(x_BxD, w_star_D, knobs, attack_dir_D, noise_B, attack_draw_B)
        w_D = update(w_D, x_BxD, y_B, knobs.step_size)
        return w_D, jnp.linalg.norm(w_D - w_star_D)

    _, errors_T = jax.lax.scan(step, w0_D, (stream.x, stream.noise, stream.attack_draw))
    return jnp.concatenate([jnp.linalg.norm(w0_D - w_star_D)[None], errors_T])


@functools.partial(jax.jit, static_argnums=0)
def stream_errors_over_seeds(method: str, knobs: GateKnobs, w0_SxD, w_star_SxD,
                             attack_dir_SxD, stream: GateStream) -> jax.Array:
    """`stream_errors` vmapped over seeds (leading axis S of every array but `knobs`);
    shape [S, T + 1]."""
    if method not in METHODS:
        raise ValueError(f"method={method!r}; allowed: {list(METHODS)}")
    run = functools.partial(stream_errors, method, knobs)
    return jax.vmap(run)(w0_SxD, w_star_SxD, attack_dir_SxD, stream)


@functools.partial(jax.jit, static_argnums=0)
def full_batch_errors_over_seeds(steps: int, step_size, w0_SxD, w_star_SxD, data_SxNxD,
                                 size) -> jax.Array:
    """The non-gradient update on the first `size` rows of each seed's fixed data set, all of
    them every step (realizable labels), for `steps` steps: |w_t - w*| for t = 0..steps,
    shape [S, steps + 1]. `size` is traced: every size <= N shares one compiled program (the
    rows past `size` get weight 0)."""

    def run(w0_D, w_star_D, data_NxD):
        weight_N = (jnp.arange(data_NxD.shape[0]) < size) / size
        y_N = jax.nn.relu(data_NxD @ w_star_D)

        def step(w_D, _):
            residual_N = y_N - jax.nn.relu(data_NxD @ w_D)
            w_D = w_D + step_size * ((weight_N * residual_N) @ data_NxD)
            return w_D, jnp.linalg.norm(w_D - w_star_D)

        _, errors_T = jax.lax.scan(step, w0_D, None, length=steps)
        return jnp.concatenate([jnp.linalg.norm(w0_D - w_star_D)[None], errors_T])

    return jax.vmap(run)(w0_SxD, w_star_SxD, data_SxNxD)


def random_problem(seeds: int, dim: int, salt: int):
    """Per-seed w* (unit), w_0 ~ N(0, I/dim), attack direction u (unit, orthogonal to w*)
    and a key for the part's draws; `salt` separates the parts' random streams."""
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(0), salt), 4)
    w_star = jax.random.normal(keys[0], (seeds, dim))
    w_star /= jnp.linalg.norm(w_star, axis=1, keepdims=True)
    w0 = jax.random.normal(keys[1], (seeds, dim)) / math.sqrt(dim)
    u = jax.random.normal(keys[2], (seeds, dim))
    u -= jnp.sum(u * w_star, axis=1, keepdims=True) * w_star
    u /= jnp.linalg.norm(u, axis=1, keepdims=True)
    return w0, w_star, u, keys[3]


def steps_above_floor(errors_SxT: np.ndarray, floor: float) -> int:
    """Number of leading steps at which every seed's error is above `floor`."""
    above = np.all(errors_SxT > floor, axis=0)
    return int(np.argmin(above)) if not above.all() else above.size
