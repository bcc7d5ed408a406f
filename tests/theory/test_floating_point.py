"""Unit roundoff, the zero threshold, cast errors and the underflow fraction."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory import floating_point as fp


@pytest.mark.parametrize("dtype, bits", [(jnp.float32, 24), (jnp.float16, 11),
                                         (jnp.bfloat16, 8)])
def test_unit_roundoff_is_two_to_minus_significant_bits(dtype, bits):
    assert fp.unit_roundoff(dtype) == 2.0**-bits


def test_zero_threshold_is_where_float16_rounds_to_zero():
    assert fp.zero_threshold(jnp.float16) == 2.0**-25
    x = jnp.array([2.0**-25, 2.0**-25 * (1 + 2.0**-10), 2.0**-24], jnp.float32)
    np.testing.assert_array_equal(x.astype(jnp.float16).astype(jnp.float32),
                                  [0.0, 2.0**-24, 2.0**-24])
    assert fp.zero_threshold(jnp.bfloat16) < 2.0**-126


def test_cast_errors_zero_for_representable_values_and_flag_range_failures():
    exact = jnp.array([1.0, -0.5, 3.0, 2.0**-14, 65504.0], jnp.float32)
    np.testing.assert_array_equal(fp.cast_relative_errors(exact, jnp.float16), 0.0)
    errors = fp.cast_relative_errors(jnp.array([1e-9, 1e6], jnp.float32), jnp.float16)
    assert errors[0] == 1.0 and np.isinf(errors[1])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_round_to_nearest_error_reaches_but_never_exceeds_the_unit_roundoff(dtype):
    # Within float16's normal range for float16, the whole float32 range for bfloat16.
    max_log2 = 14 if dtype == jnp.float16 else 120
    x = fp.log_uniform_values(jax.random.PRNGKey(1), 200_000, max_log2 - 0.5)
    x = x[jnp.abs(x) >= 2.0**-14] if dtype == jnp.float16 else x
    errors = fp.cast_relative_errors(x, dtype)
    u = fp.unit_roundoff(dtype)
    assert errors.max() <= u and errors.max() > 0.99 * u


def test_truncation_chops_toward_zero_with_error_up_to_twice_the_unit_roundoff():
    # 1 + 2^-7 - 2^-16 lies just below bfloat16's next value after 1 (spacing 2^-7): rounding
    # goes up to 1 + 2^-7, the chop down to 1.
    x = jnp.array([1.0 + 2.0**-7 - 2.0**-16, -3.0, 1.0 + 2.0**-7], jnp.float32)
    chopped = fp.truncation_relative_errors(x, jnp.bfloat16)
    assert chopped[0] == pytest.approx((2.0**-7 - 2.0**-16) / (1.0 + 2.0**-7 - 2.0**-16))
    assert chopped[1] == 0.0 and chopped[2] == 0.0
    assert fp.cast_relative_errors(x, jnp.bfloat16)[0] < fp.unit_roundoff(jnp.bfloat16)
    sample = fp.log_uniform_values(jax.random.PRNGKey(2), 200_000, 100.0)
    errors = fp.truncation_relative_errors(sample, jnp.bfloat16)
    u = fp.unit_roundoff(jnp.bfloat16)
    assert 1.9 * u < errors.max() < 2 * u
    with pytest.raises(ValueError, match="dtype=float32"):
        fp.truncation_relative_errors(x, jnp.float32)


def test_log_uniform_values_cover_the_requested_binades():
    x = np.asarray(fp.log_uniform_values(jax.random.PRNGKey(0), 10_000, 20.0))
    exponents = np.log2(np.abs(x))
    assert exponents.min() >= -20 and exponents.max() <= 20
    assert exponents.min() < -19 and exponents.max() > 19
    assert 0.45 < np.mean(x > 0) < 0.55
    with pytest.raises(ValueError, match="max_log2=130"):
        fp.log_uniform_values(jax.random.PRNGKey(0), 4, 130)


def test_underflow_fraction_counts_zeros_among_nonzero_reference_entries():
    reference = {"a": np.array([1.0, 0.0, 2.0]), "b": np.array([[3.0, 4.0]])}
    low = {"a": np.array([0.0, 0.0, 2.0]), "b": np.array([[0.0, 4.0]])}
    assert fp.underflow_fraction(reference, low) == 2 / 4  # the reference zero is not counted
    assert fp.underflow_fraction({"a": np.zeros(3)}, {"a": np.zeros(3)}) == 0.0
    with pytest.raises(ValueError, match="same tree structure"):
        fp.underflow_fraction(reference, {"a": low["a"]})


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype=int32"):
        fp.unit_roundoff(jnp.int32)


def test_next_float_up_moves_each_float_leaf_by_one_ulp_and_leaves_integers():
    tree = {"w": jnp.asarray([1.0, -2.0, 0.0], jnp.float32), "n": jnp.asarray([3], jnp.int32)}
    moved = fp.next_float_up(tree)
    assert moved["w"].tolist() == [1.0 + 2.0**-23, -2.0 + 2.0**-23, float(jnp.finfo(jnp.float32)
                                                                         .smallest_subnormal)]
    assert moved["n"].tolist() == [3]
