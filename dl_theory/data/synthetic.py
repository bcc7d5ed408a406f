"""Synthetic regression targets, each a pure function with its input distribution.

- `smooth_1d`: continuous functions on [-1, 1] (universal approximation, Cybenko 1989).
- `barron_ridge`: f(x) = sum_k a_k cos(w_k . x + b_k) on the cube [-1, 1]^d, whose Barron
  constant C_f = int sup_x |omega . x| |f^(omega)| d omega = sum_k |a_k| ||w_k||_1 is known
  exactly (Barron 1993, eq. (3) with B the cube: sup_{x in B} |omega . x| = ||omega||_1).
- `teacher_network`: a random ReLU network on Gaussian inputs (teacher-student set-ups).
- `badly_scaled_sparse_regression`: a sparse linear model on features whose scales span many
  decades (an ill-conditioned lasso; numpy arrays, float64).

A `Target` draws train/test arrays deterministically from a seed, or fresh samples every
training step (`Target.sampler`), which removes estimation error from a measurement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, Sampler


@dataclasses.dataclass(frozen=True)
class Target:
    """y = fn(x) with x ~ `sample_inputs(key, n)`; fn maps [N, dim] -> [N, 1]."""

    name: str
    dim: int
    fn: Callable[[jax.Array], jax.Array]
    sample_inputs: Callable[[jax.Array, int], jax.Array]
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def sample(self, key: jax.Array, num: int) -> Batch:
        """`num` fresh examples {"x": [num, dim], "y": [num, 1]}."""
        x = self.sample_inputs(key, num)
        return {"x": x, "y": self.fn(x)}

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[Batch, Batch]:
        """Independent train and test sets drawn from `seed` (same seed, same arrays)."""
        train_key, test_key = jax.random.split(jax.random.PRNGKey(seed))
        return self.sample(train_key, num_train), self.sample(test_key, num_test)

    def sampler(self, batch_size: int) -> Sampler:
        """A batch sampler that ignores the data argument and draws `batch_size` fresh
        examples every step (online learning on the population)."""
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; must be >= 1")
        return _OnlineSampler(self, batch_size)


@dataclasses.dataclass(frozen=True, eq=False)
class _OnlineSampler:
    """`Target.sampler`: equal to another for the same Target object (identity: a Target's
    functions may close over arrays, which have no value equality) and the same batch size,
    so that repeated training calls on one target reuse their compiled program."""

    target: Target
    batch_size: int

    def __call__(self, data: Batch, key: jax.Array) -> Batch:
        del data
        return self.target.sample(key, self.batch_size)

    def __eq__(self, other) -> bool:
        return (isinstance(other, _OnlineSampler) and other.target is self.target
                and other.batch_size == self.batch_size)

    def __hash__(self) -> int:
        return hash((id(self.target), self.batch_size))


def _uniform_cube(dim: int) -> Callable[[jax.Array, int], jax.Array]:
    return lambda key, num: jax.random.uniform(key, (num, dim), minval=-1.0, maxval=1.0)


_SMOOTH_1D: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sine": lambda x: jnp.sin(3.0 * jnp.pi * x),
    "runge": lambda x: 1.0 / (1.0 + 25.0 * x**2),
    "bump": lambda x: jnp.exp(-8.0 * x**2) * jnp.cos(4.0 * jnp.pi * x),
    "abs": jnp.abs,  # continuous but not differentiable at 0
}


SMOOTH_1D_NAMES = tuple(sorted(_SMOOTH_1D))  # the names `smooth_1d` knows


def smooth_1d(name: str) -> Target:
    """A continuous function on [-1, 1] with uniform inputs: one of `sorted(_SMOOTH_1D)`."""
    if name not in _SMOOTH_1D:
        raise ValueError(f"smooth_1d target {name!r}; known: {sorted(_SMOOTH_1D)}")
    fn = _SMOOTH_1D[name]
    return Target(name=name, dim=1, fn=fn, sample_inputs=_uniform_cube(1))


def barron_ridge(dim: int, *, num_ridges: int = 8, frequency: float = 3.0,
                 support: int = 2, seed: int = 0) -> Target:
    """f(x) = sum_k a_k cos(w_k . x + b_k) on x ~ U[-1, 1]^dim, with Barron constant `frequency`.

    Each w_k has `min(support, dim)` non-zero entries at random coordinates, random signs
    and ||w_k||_1 = frequency; sum_k |a_k| = 1. Hence C_f = sum_k |a_k| ||w_k||_1 =
    `frequency` for every dim, and each ridge's projection w_k . x has the same
    distribution for every dim, so targets of different dimension are equally hard
    one-dimensionally while being genuinely dim-variate in sum (different ridges use
    different coordinates). Barron (1993, Thm 1): the best width-n sigmoidal network has
    ||f - f_n||^2_{L2(mu)} <= (2 C_f)^2 / n.
    """
    if dim < 1 or num_ridges < 1 or support < 1 or frequency <= 0:
        raise ValueError(f"barron_ridge(dim={dim}, num_ridges={num_ridges}, support={support}, "
                         f"frequency={frequency}): all must be positive")
    k_coord, k_mag, k_sign, k_amp, k_phase = jax.random.split(jax.random.PRNGKey(seed), 5)
    s = min(support, dim)
    coords = jnp.argsort(jax.random.uniform(k_coord, (num_ridges, dim)), axis=1)[:, :s]
    magnitudes = jax.random.dirichlet(k_mag, jnp.ones(s), (num_ridges,)) * frequency
    signs = jnp.where(jax.random.bernoulli(k_sign, 0.5, (num_ridges, s)), 1.0, -1.0)
    w_KxD = jnp.zeros((num_ridges, dim)).at[jnp.arange(num_ridges)[:, None], coords].set(
        magnitudes * signs)
    amplitudes = jax.random.normal(k_amp, (num_ridges,))
    a_K = amplitudes / jnp.sum(jnp.abs(amplitudes))
    b_K = jax.random.uniform(k_phase, (num_ridges,), maxval=2.0 * jnp.pi)

    def fn(x_NxD):
        return jnp.cos(x_NxD @ w_KxD.T + b_K[None, :]) @ a_K[:, None]

    barron_constant = float(jnp.sum(jnp.abs(a_K) * jnp.sum(jnp.abs(w_KxD), axis=1)))
    return Target(name=f"barron_ridge_d{dim}", dim=dim, fn=fn, sample_inputs=_uniform_cube(dim),
                  info={"barron_constant": barron_constant, "num_ridges": num_ridges})


def teacher_network(dim: int, *, width: int = 32, depth: int = 2, seed: int = 0) -> Target:
    """A random ReLU teacher y = W_L relu(... relu(W_1 x + b_1) ...) on x ~ N(0, I_dim).

    Weights ~ N(0, 2 / fan_in) (He et al. 2015), biases ~ N(0, 0.1^2), so activations keep
    unit scale with depth; the output is scaled to unit variance on 4096 reference inputs.
    """
    if dim < 1 or width < 1 or depth < 1:
        raise ValueError(f"teacher_network(dim={dim}, width={width}, depth={depth}): "
                         "all must be >= 1")
    keys = jax.random.split(jax.random.PRNGKey(seed), 2 * depth + 2)
    sizes = [dim] + [width] * depth + [1]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(keys[2 * i], (fan_in, fan_out)) * jnp.sqrt(2.0 / fan_in)
        b = 0.1 * jax.random.normal(keys[2 * i + 1], (fan_out,))
        layers.append((w, b))

    def raw(x_NxD):
        h = x_NxD
        for w, b in layers[:-1]:
            h = jax.nn.relu(h @ w + b[None, :])
        w, b = layers[-1]
        return h @ w + b[None, :]

    def sample_inputs(key, num):
        return jax.random.normal(key, (num, dim))

    scale = 1.0 / jnp.std(raw(sample_inputs(keys[-1], 4096)))
    return Target(name=f"teacher_d{dim}_w{width}_L{depth}", dim=dim,
                  fn=lambda x: raw(x) * scale, sample_inputs=sample_inputs,
                  info={"width": width, "depth": depth})


def noisy_teacher_task(task, num_train: int, num_test: int, seed: int) -> tuple[Batch, Batch]:
    """Train and test sets of a random ReLU teacher (unit output variance) plus Gaussian label
    noise of std task.noise_std: y = f(x) + sigma eps, x ~ N(0, I_dim). `task` has dim,
    teacher_width, noise_std and teacher_seed (the training-technique experiments' `task`)."""
    target = teacher_network(task.dim, width=task.teacher_width, seed=task.teacher_seed)
    train, test = target.split(num_train, num_test, seed=seed)
    noise_key = jax.random.PRNGKey(10_000 + seed)
    for i, split in enumerate((train, test)):
        split["y"] = split["y"] + task.noise_std * jax.random.normal(
            jax.random.fold_in(noise_key, i), split["y"].shape)
    return train, test


def badly_scaled_sparse_regression(num_examples: int, dim: int, num_nonzero: int,
                                   scale_decades: float, seed: int):
    """(x [N, dim], y [N]) in float64: feature j is Gaussian times 10^u_j, u_j uniform on
    [-scale_decades / 2, scale_decades / 2], and y = x . w_true + 0.1 noise, where w_true has
    `num_nonzero` non-zero entries (the first ones, Gaussian over their feature's scale, so
    every term of x . w_true is of order 1): the Hessian x^T x / N is as ill-conditioned as
    the scales are spread."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-scale_decades / 2, scale_decades / 2, dim)
    x = rng.normal(size=(num_examples, dim)) * scales
    w_true = np.zeros(dim)
    w_true[:num_nonzero] = rng.normal(size=num_nonzero) / scales[:num_nonzero]
    y = x @ w_true + 0.1 * rng.normal(size=num_examples)
    return x, y
