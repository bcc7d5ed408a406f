"""Smooth targets on the cube [-1, 1]^d with and without compositional structure (Poggio et al.
2017): a binary tree of 2-variable functions, and a generic smooth random-feature draw.

Moved from experiments/curse_of_dimensionality.py (unchanged), so that the experiment file
stays under the house limit of ~400 lines.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.synthetic import Target


def check_power_of_two(dim: int) -> None:
    """Raises unless `dim` is a power of two >= 2 (the leaves of a binary tree)."""
    if dim < 2 or dim & (dim - 1):
        raise ValueError(f"dim={dim}; a binary tree needs a power of two >= 2")


def uniform_cube(dim: int):
    """sample_inputs(key, num) -> [num, dim] uniform on [-1, 1]^dim."""
    return lambda key, num: jax.random.uniform(key, (num, dim), minval=-1.0, maxval=1.0)


def compositional_tree_target(dim: int, seed: int = 0) -> Target:
    """f = binary tree of g_j(a, b) = sin(p_j a + q_j b + r_j a b) on U[-1, 1]^dim; [N, dim] ->
    [N, 1]. Level l has dim / 2^(l+1) nodes; leaves pair (x_1, x_2), (x_3, x_4), ...
    (Poggio et al. 2017, Fig. 1c: the hierarchically local compositional functions)."""
    check_power_of_two(dim)
    rng = np.random.default_rng(seed)
    levels = []
    width = dim // 2
    while width >= 1:
        signs = rng.choice([-1.0, 1.0], size=(2, width))
        levels.append((jnp.asarray(signs[0] * rng.uniform(1, 2, width), jnp.float32),
                       jnp.asarray(signs[1] * rng.uniform(1, 2, width), jnp.float32),
                       jnp.asarray(rng.uniform(-1, 1, width), jnp.float32)))
        width //= 2

    def fn(x_NxD):
        h = x_NxD
        for p, q, r in levels:
            a, b = h[:, 0::2], h[:, 1::2]
            h = jnp.sin(p[None] * a + q[None] * b + r[None] * a * b)
        return h

    return Target(name=f"tree_d{dim}", dim=dim, fn=fn, sample_inputs=uniform_cube(dim))


def generic_smooth_target(dim: int, *, num_features: int, bandwidth: float,
                          seed: int = 0) -> Target:
    """f(x) = sqrt(2/F) sum_k a_k cos(omega_k . x + b_k), omega_k ~ N(0, bandwidth^2 I),
    a_k ~ N(0, 1), b_k ~ U[0, 2 pi]: a random-feature draw of a GP with kernel
    exp(-bandwidth^2 ||x - x'||^2 / 2) (Rahimi & Recht 2007) on U[-1, 1]^dim; [N, dim] -> [N, 1]."""
    if dim < 1 or num_features < 1 or bandwidth <= 0:
        raise ValueError(f"generic_smooth_target(dim={dim}, num_features={num_features}, "
                         f"bandwidth={bandwidth}): all must be positive")
    rng = np.random.default_rng(10_000 + seed)
    omega = jnp.asarray(bandwidth * rng.normal(size=(dim, num_features)), jnp.float32)
    phase = jnp.asarray(rng.uniform(0, 2 * np.pi, num_features), jnp.float32)
    amp = jnp.asarray(rng.normal(size=(num_features, 1)) * math.sqrt(2.0 / num_features),
                      jnp.float32)

    def fn(x_NxD):
        return jnp.cos(x_NxD @ omega + phase[None]) @ amp

    return Target(name=f"generic_d{dim}", dim=dim, fn=fn, sample_inputs=uniform_cube(dim))
