"""Tests for dl_theory/theory/mutual_information.py: exact discrete values and a Gaussian MI."""

import numpy as np
import pytest

from dl_theory.theory import mutual_information as mi


def test_entropy_of_balanced_symbols_and_of_rows():
    np.testing.assert_allclose(mi.entropy(np.arange(16) % 4), 2.0, rtol=1e-12)
    np.testing.assert_allclose(mi.entropy(np.arange(16) % 4, unit="nats"), np.log(4), rtol=1e-12)
    rows = np.array([[0, 1], [0, 1], [1, 0], [1, 0], [1, 1], [1, 1], [1, 1], [1, 1]])
    np.testing.assert_allclose(mi.entropy(rows), 1.5, rtol=1e-12)  # p = (1/4, 1/4, 1/2)


def test_mutual_information_of_function_and_of_independent_variables():
    x = np.arange(64) % 8
    np.testing.assert_allclose(mi.mutual_information(x, x), 3.0, rtol=1e-12)
    # Y = f(X) deterministic: I(X;Y) = H(Y) = 2 bits.
    np.testing.assert_allclose(mi.mutual_information(x, x % 4), 2.0, rtol=1e-12)
    # Every (a, b) pair equally often: the empirical joint is the product of its marginals.
    a, b = np.meshgrid(np.arange(4), np.arange(3), indexing="ij")
    np.testing.assert_allclose(mi.mutual_information(a.ravel(), b.ravel()), 0.0, atol=1e-12)


def test_binned_mi_of_correlated_gaussians_and_its_bin_dependence():
    # I = -1/2 log(1 - rho^2) = 0.5108 nats at rho = 0.8.
    rho, expected = 0.8, -0.5 * np.log(1 - 0.8**2)
    z = np.random.default_rng(0).standard_normal((100_000, 2))
    a, b = z[:, 0], rho * z[:, 0] + np.sqrt(1 - rho**2) * z[:, 1]
    # 50 bins over [-4, 4] at N = 1e5: discretisation loss and plug-in bias roughly cancel
    # (measured error 0.001 nats).
    estimate = mi.binned_mutual_information(a, b, 50, (-4.0, 4.0), unit="nats")
    assert abs(estimate - expected) < 0.02
    # The estimator's fragility: coarse bins lose information, fine bins at small N add bias.
    coarse = mi.binned_mutual_information(a, b, 10, (-4.0, 4.0), unit="nats")
    fine = mi.binned_mutual_information(a[:20_000], b[:20_000], 100, (-4.0, 4.0), unit="nats")
    assert coarse < expected - 0.05
    assert fine > expected + 0.05


def test_binned_i_xt_grows_from_zero_to_log_n_with_finer_bins():
    # 64 distinct inputs through an injective T: nested bins (powers of 2 on one range)
    # refine each other, so H(bin(T)) is non-decreasing, from 0 up to log2(64) = 6 bits
    # (reached at 2^16 bins: cubing packs the inputs near 0 to within 4e-6).
    t = np.linspace(-1.0, 1.0, 64)[:, None] ** 3
    y = (t[:, 0] > 0).astype(int)
    values = [mi.binned_information_plane(t, y, 2**k, (-1.0, 1.0))[0] for k in range(0, 17)]
    assert values[0] == 0.0
    np.testing.assert_allclose(values[-1], 6.0, rtol=1e-12)
    # 1e-12: equal partitions may sum their probabilities in a different order.
    assert all(later >= earlier - 1e-12 for earlier, later in zip(values, values[1:]))
    assert values[8] < 5.5  # 256 bins still merge the inputs crowded near 0


def test_binned_information_plane_of_label_copying_layer():
    # T encodes Y and nothing else: I(X;T) = H(T) = H(Y) = 1 bit and I(T;Y) = 1 bit.
    y = np.arange(40) % 2
    t = np.stack([np.tanh(2.0 * y - 1.0), -np.tanh(2.0 * y - 1.0)], axis=1)
    i_xt, i_ty = mi.binned_information_plane(t, y, num_bins=30, value_range=(-1.0, 1.0))
    np.testing.assert_allclose([i_xt, i_ty], [1.0, 1.0], rtol=1e-12)


def test_kde_bounds_on_separated_clusters_identical_points_and_distinct_points():
    rng = np.random.default_rng(1)
    y = np.arange(200) % 2
    # Two clusters 10 apart, 0.001 wide, noise variance 0.1: T' carries the label and nearly
    # nothing else (within-cluster spread adds about 3 * 2e-6 / 0.2 nats to I(X;T')).
    t = 10.0 * y[:, None] + 0.001 * rng.standard_normal((200, 3))
    for bound in ("upper", "lower"):
        i_xt, i_ty = mi.kde_information_plane(t, y, noise_variance=0.1, bound=bound)
        np.testing.assert_allclose([i_xt, i_ty], [1.0, 1.0], atol=1e-4)
    zero_xt, zero_ty = mi.kde_information_plane(np.ones((50, 4)), np.arange(50) % 5)
    np.testing.assert_allclose([zero_xt, zero_ty], [0.0, 0.0], atol=1e-12)
    # 32 points 100 apart with tiny noise: I(X;T') -> log2(32) = 5 bits.
    spread = 100.0 * np.arange(32, dtype=float)[:, None]
    np.testing.assert_allclose(mi.kde_information_plane(spread, np.zeros(32))[0], 5.0, atol=1e-9)


def test_kde_lower_below_upper_and_falling_with_noise():
    rng = np.random.default_rng(2)
    t = np.tanh(rng.standard_normal((300, 5)))
    y = rng.integers(0, 3, size=300)
    variances = [1e-3, 1e-2, 1e-1, 1.0]
    upper = [mi.kde_information_plane(t, y, v, "upper")[0] for v in variances]
    lower = [mi.kde_information_plane(t, y, v, "lower")[0] for v in variances]
    assert all(lo <= up for lo, up in zip(lower, upper))
    assert all(later < earlier for earlier, later in zip(upper, upper[1:]))
    assert upper[0] <= np.log2(300) + 1e-9


def test_kde_chunked_pairwise_sum_matches_full_matrix():
    # 1500 rows span two chunks of 1024.
    rng = np.random.default_rng(3)
    t = rng.standard_normal((1500, 2))
    y = rng.integers(0, 2, size=1500)
    sq = np.sum((t[:, None, :] - t[None, :, :]) ** 2, axis=-1)

    def pairwise(d2):
        logits = -d2 / (2 * 0.1)
        peak = logits.max(axis=1, keepdims=True)
        return -np.mean(peak[:, 0] + np.log(np.mean(np.exp(logits - peak), axis=1)))

    expected_xt = pairwise(sq)
    expected_ty = expected_xt - sum(np.mean(y == k) * pairwise(sq[np.ix_(y == k, y == k)])
                                    for k in (0, 1))
    got = mi.kde_information_plane(t, y, noise_variance=0.1, unit="nats")
    np.testing.assert_allclose(got, [expected_xt, expected_ty], rtol=1e-9)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unit='dits'"):
        mi.entropy(np.zeros(3), unit="dits")
    with pytest.raises(ValueError, match="bound='middle'"):
        mi.kde_information_plane(np.zeros((3, 1)), np.zeros(3), bound="middle")
    with pytest.raises(ValueError, match="num_bins=0"):
        mi.bin_activations(np.zeros(3), 0)
    with pytest.raises(ValueError, match="rows"):
        mi.mutual_information(np.zeros(3), np.zeros(4))
