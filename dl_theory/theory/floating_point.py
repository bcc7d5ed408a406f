"""Rounding and range of binary floating-point formats (IEEE 754; bfloat16).

A format with p significant bits (`jnp.finfo(dtype).nmant + 1`, the leading bit implicit)
rounds a real x in its normal range to nearest, ties to even, with relative error at most
half a unit in the last place:

    |fl(x) - x| <= u |x|,   u = 2^-p   (the unit roundoff; Higham 2002, Thm 2.2)

so u = 2^-24 for float32, 2^-11 for float16 and 2^-8 for bfloat16 (Kalamkar et al. 2019).
The range is set by the exponent bits: float16's smallest subnormal is 2^-24 and anything of
magnitude at most half of it rounds to zero (Micikevicius et al. 2018, Sec. 3.2), while
bfloat16 keeps float32's 8 exponent bits (smallest normal 2^-126).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _float_dtype(dtype: Any) -> jnp.dtype:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype={dtype}; need a floating-point dtype")
    return dtype


def unit_roundoff(dtype: Any) -> float:
    """u = 2^-p with p = nmant + 1 significant bits: the largest relative error of rounding to
    nearest in the normal range (2^-8 for bfloat16, 2^-11 for float16, 2^-24 for float32)."""
    return 2.0 ** -(jnp.finfo(_float_dtype(dtype)).nmant + 1)


def zero_threshold(dtype: Any) -> float:
    """The largest magnitude that rounding to `dtype` sends to zero: half the smallest subnormal
    (a tie, which goes to the even neighbour 0); 2^-25 for float16."""
    return float(jnp.finfo(_float_dtype(dtype)).smallest_subnormal) / 2


def log_uniform_values(key: jax.Array, num: int, max_log2: float) -> jax.Array:
    """float32 values +-2^e with e ~ U(-max_log2, max_log2) and a fair random sign; shape [num].

    A continuous exponent spreads the significands over [1, 2) too, so the sample exercises
    every binade of the range and every rounding position within a binade.
    """
    if not 0 < max_log2 < 126:
        raise ValueError(f"max_log2={max_log2}; need 0 < max_log2 < 126 (float32's normal range)")
    sign_key, exponent_key = jax.random.split(key)
    exponent = jax.random.uniform(exponent_key, (num,), minval=-max_log2, maxval=max_log2)
    sign = jnp.where(jax.random.bernoulli(sign_key, 0.5, (num,)), 1.0, -1.0)
    return (sign * jnp.exp2(exponent)).astype(jnp.float32)


def cast_relative_errors(x_N: jax.Array, dtype: Any) -> np.ndarray:
    """|fl(x) - x| / |x| of the cast of float32 values x [N] (non-zero) to `dtype`; shape [N].

    1.0 where fl(x) = 0 (underflow), inf where fl(x) overflows to infinity.
    """
    x_N = jnp.asarray(x_N, jnp.float32)
    cast_N = x_N.astype(_float_dtype(dtype)).astype(jnp.float32)
    return np.asarray(jnp.abs(cast_N - x_N) / jnp.abs(x_N))


def truncation_relative_errors(x_N: jax.Array, dtype: Any) -> np.ndarray:
    """|chop(x) - x| / |x| for float32 values x [N] (non-zero) whose significand is cut to the
    p significant bits of `dtype`, rounding toward zero (float32's exponent range kept); [N].

    The nearest wrong variant of round-to-nearest: its relative error reaches almost 2u = 2^-(p-1)
    (2^-7 for bfloat16, whose cast is exactly this chop of float32's low 16 bits).
    """
    dtype = _float_dtype(dtype)
    dropped = jnp.finfo(jnp.float32).nmant - jnp.finfo(dtype).nmant
    if dropped <= 0:
        raise ValueError(f"dtype={dtype}; need fewer significant bits than float32")
    x_N = jnp.asarray(x_N, jnp.float32)
    bits = jax.lax.bitcast_convert_type(x_N, jnp.uint32)
    mask = jnp.uint32((0xFFFFFFFF << int(dropped)) & 0xFFFFFFFF)
    chopped_N = jax.lax.bitcast_convert_type(bits & mask, jnp.float32)
    return np.asarray(jnp.abs(chopped_N - x_N) / jnp.abs(x_N))


def underflow_fraction(reference: Any, low: Any) -> float:
    """Among the non-zero entries of the pytree `reference` (exact, e.g. float32 gradients),
    the fraction whose counterpart in `low` (same structure) is exactly zero; 0 if none."""
    ref_leaves, low_leaves = jax.tree.leaves(reference), jax.tree.leaves(low)
    if len(ref_leaves) != len(low_leaves) or any(
            np.shape(a) != np.shape(b) for a, b in zip(ref_leaves, low_leaves)):
        raise ValueError("reference and low need the same tree structure and leaf shapes")
    ref = np.concatenate([np.asarray(a, np.float32).ravel() for a in ref_leaves])
    low = np.concatenate([np.asarray(b, np.float32).ravel() for b in low_leaves])
    nonzero = ref != 0
    return float(np.sum((low == 0) & nonzero) / max(int(nonzero.sum()), 1))


def next_float_up(tree: Any) -> Any:
    """Every floating-point leaf of a pytree moved one unit in the last place toward +inf (its
    dtype's next representable value): the smallest change an initialisation can undergo."""
    return jax.tree.map(lambda a: jnp.nextafter(a, jnp.asarray(jnp.inf, a.dtype))
                        if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)
