"""Input distributions symmetric about the origin (x and -x equally likely), Gaussian or not.

Karmakar & Mukherjee (Neural Networks 2022, arXiv 2005.04211) train a ReLU gate on inputs
whose law is symmetric, with a positive definite second moment and finite fourth moments;
Gaussianity is not needed. These are the laws `experiments/relu_gate_training.py` uses:

- `gaussian`: N(0, I).
- `uniform_cube`: uniform on [-sqrt(3), sqrt(3)]^dim (unit variance per coordinate; bounded,
  lighter-tailed than the Gaussian).
- `two_cluster_mixture`: s * m + z with s = +-1 a fair sign, z ~ N(0, I) and the mean
  m = MIXTURE_MEAN * e_1: a bimodal, anisotropic mixture (covariance I + |m|^2 e_1 e_1^T).

Every sampler maps (key, num, dim) -> [num, dim] float32 and is a pure function of the key.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from dl_theory.user_errors import ConfigError

MIXTURE_MEAN = 1.5  # |m|: covariance eigenvalues 1 and 1 + 1.5^2 = 3.25


def _gaussian(key: jax.Array, num: int, dim: int) -> jax.Array:
    return jax.random.normal(key, (num, dim))


def _uniform_cube(key: jax.Array, num: int, dim: int) -> jax.Array:
    half_width = jnp.sqrt(3.0)
    return jax.random.uniform(key, (num, dim), minval=-half_width, maxval=half_width)


def _two_cluster_mixture(key: jax.Array, num: int, dim: int) -> jax.Array:
    sign_key, noise_key = jax.random.split(key)
    sign_N = jax.random.rademacher(sign_key, (num,), dtype=jnp.float32)
    mean_D = jnp.zeros(dim).at[0].set(MIXTURE_MEAN)
    return sign_N[:, None] * mean_D[None, :] + jax.random.normal(noise_key, (num, dim))


SYMMETRIC_SAMPLERS = {
    "gaussian": _gaussian,
    "uniform_cube": _uniform_cube,
    "two_cluster_mixture": _two_cluster_mixture,
}


def check_distribution(name: str, key: str) -> None:
    """Raises ConfigError naming the config `key` when `name` is not a known distribution."""
    if name not in SYMMETRIC_SAMPLERS:
        raise ConfigError(f"{key}={name!r}; allowed: {sorted(SYMMETRIC_SAMPLERS)}")


def sample_symmetric_inputs(key: jax.Array, name: str, num: int, dim: int) -> jax.Array:
    """`num` draws of the symmetric law `name` in R^dim, shape [num, dim] float32."""
    check_distribution(name, "distribution")
    return SYMMETRIC_SAMPLERS[name](key, num, dim)
