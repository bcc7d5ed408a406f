"""Hand-set networks equal their closed forms and meet the error bounds their proofs state."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import constructions
from dl_theory.theory import regions

_ZERO, _ONE = np.zeros(1), np.ones(1)


def _apply(net_and_vars, x):
    module, variables = net_and_vars
    return np.asarray(module.apply(variables, jnp.asarray(x), train=False))


def test_relu_net_layout_and_train_kwarg():
    module = constructions.ReluNet(widths=(4, 3, 2))
    variables = module.init(jax.random.PRNGKey(0), jnp.ones((5, 6)))
    shapes = {k: v["kernel"].shape for k, v in variables["params"].items()}
    assert shapes == {"Dense_0": (6, 4), "Dense_1": (4, 3), "Dense_2": (3, 2)}
    out = module.apply(variables, jnp.ones((5, 6)), train=True)
    assert out.shape == (5, 2) and out.dtype == jnp.float32


def test_sawtooth_reference_is_zero_one_at_dyadic_points():
    k = 6
    x = np.arange(2**k + 1) / 2**k
    np.testing.assert_array_equal(np.asarray(constructions.sawtooth(jnp.asarray(x), k)),
                                  np.arange(2**k + 1) % 2)


@pytest.mark.parametrize("k", range(1, 11))
def test_sawtooth_net_equals_tent_composition_with_2_pow_k_pieces(k):
    with jax.enable_x64(True):
        net = constructions.sawtooth_net(k, dtype=jnp.float64)
        x = np.concatenate([np.arange(2**12 + 1) / 2**12,
                            np.random.default_rng(k).uniform(0.0, 1.0, 1000)])
        out = _apply(net, x[:, None])[:, 0]
        ref = np.asarray(constructions.sawtooth(jnp.asarray(x), k))
    np.testing.assert_allclose(out, ref, rtol=0.0, atol=1e-12)
    assert net[0].widths == (2,) * k + (1,)
    pieces = regions.segment_pieces(regions.dense_params_to_layers(net[1]), _ZERO, _ONE)
    assert pieces.num_linear_pieces == pieces.num_activation_pieces == 2**k
    np.testing.assert_allclose(pieces.linear_breaks, np.arange(2**k + 1) / 2**k, atol=1e-12)


@pytest.mark.parametrize("width, depth", [(2, 3), (3, 2), (4, 3), (8, 2)])
def test_zigzag_net_has_width_pow_depth_pieces_with_breaks_on_the_grid(width, depth):
    net = constructions.zigzag_net(width, depth)
    assert net[0].widths == (width,) * depth + (1,)
    pieces = regions.segment_pieces(regions.dense_params_to_layers(net[1]), _ZERO, _ONE)
    assert pieces.num_linear_pieces == width**depth
    np.testing.assert_allclose(pieces.linear_breaks, np.arange(width**depth + 1) / width**depth,
                               atol=1e-9)


def test_zigzag_of_width_two_is_the_sawtooth():
    x = np.linspace(0.0, 1.0, 257)[:, None]
    np.testing.assert_array_equal(_apply(constructions.zigzag_net(2, 5), x),
                                  _apply(constructions.sawtooth_net(5), x))


@pytest.mark.parametrize("m", range(0, 9))
def test_yarotsky_square_sup_error_is_exactly_2_pow_minus_2m_minus_2(m):
    # The grid j / 2**12 holds every worst point (2j + 1) / 2**(m + 1) for m <= 11.
    x = np.arange(2**12 + 1) / 2**12
    with jax.enable_x64(True):
        out = _apply(constructions.yarotsky_square_net(m, dtype=jnp.float64), x[:, None])[:, 0]
        ref = np.asarray(constructions.yarotsky_square(jnp.asarray(x), m))
    err = out - x**2
    eps = constructions.yarotsky_square_error(m)
    assert eps == 2.0 ** (-2 * m - 2)
    np.testing.assert_allclose(out, ref, rtol=0.0, atol=1e-14)
    assert err.min() >= -1e-15
    assert abs(err.max() - eps) <= 1e-12 * eps
    midpoints = (2 * np.arange(2**m) + 1) / 2 ** (m + 1)
    np.testing.assert_allclose(err[np.searchsorted(x, midpoints)], eps, rtol=1e-12)


@pytest.mark.parametrize("m", [1, 4, 8])
def test_yarotsky_square_net_has_width_3_and_2_pow_m_pieces(m):
    module, variables = constructions.yarotsky_square_net(m)
    assert module.widths == (3,) * m + (1,)
    layers = regions.dense_params_to_layers(variables)
    assert regions.count_linear_pieces(layers, _ZERO, _ONE) == 2**m


@pytest.mark.parametrize("m", [0, 1, 3, 6])
def test_yarotsky_product_error_within_minus_eps_two_eps_on_square(m):
    g = np.linspace(-1.0, 1.0, 161)
    pts = np.concatenate([np.stack(np.meshgrid(g, g), -1).reshape(-1, 2),
                          np.random.default_rng(m).uniform(-1.0, 1.0, (4000, 2))])
    with jax.enable_x64(True):
        out = _apply(constructions.yarotsky_product_net(m, dtype=jnp.float64), pts)[:, 0]
    err = out - pts[:, 0] * pts[:, 1]
    eps = constructions.yarotsky_square_error(m)
    assert constructions.yarotsky_product_error_bound(m) == 2 * eps
    assert err.min() >= -eps * (1 + 1e-9) and err.max() <= 2 * eps * (1 + 1e-9)
    # The bound is not loose by more than a factor 2 on this grid.
    assert np.abs(err).max() >= eps


def test_yarotsky_monomial_error_within_bound_and_falls_with_m():
    x = np.linspace(-1.0, 1.0, 2001)
    for p in (2, 3, 5):
        errs = []
        for m in (2, 4, 6):
            with jax.enable_x64(True):
                out = _apply(constructions.yarotsky_monomial_net(p, m, dtype=jnp.float64),
                             x[:, None])[:, 0]
            errs.append(np.abs(out - x**p).max())
            assert errs[-1] <= constructions.yarotsky_monomial_error_bound(p, m) * (1 + 1e-9)
        assert errs[0] > errs[1] > errs[2] > 0


def test_monomial_of_degree_one_is_identity():
    x = np.linspace(-1.0, 1.0, 11)
    np.testing.assert_allclose(_apply(constructions.yarotsky_monomial_net(1, 3), x[:, None])[:, 0],
                               x, atol=1e-7)


def test_hat_net_equals_hat_everywhere():
    x = np.append(np.linspace(-2.0, 2.0, 4001), 0.3)
    with jax.enable_x64(True):
        out = _apply(constructions.hat_net(0.3, 0.25, dtype=jnp.float64), x[:, None])[:, 0]
        ref = np.asarray(constructions.hat(jnp.asarray(x), 0.3, 0.25))
    np.testing.assert_allclose(out, ref, atol=1e-14)
    assert out[-1] == 1.0 and np.all(ref[np.abs(x - 0.3) >= 0.25] == 0.0)


def test_bump_net_is_l1_cone_with_compact_support():
    center, w = [0.2, -0.4, 0.1], 0.6
    pts = np.random.default_rng(0).uniform(-1.5, 1.5, (20000, 3))
    with jax.enable_x64(True):
        net = constructions.bump_net(center, w, dtype=jnp.float64)
        out = _apply(net, pts)[:, 0]
        peak = _apply(net, np.array([center]))[0, 0]
    l1 = np.abs(pts - np.array(center)).sum(axis=1)
    np.testing.assert_allclose(out, np.maximum(0.0, 1.0 - l1 / w), atol=1e-14)
    assert peak == 1.0 and np.all(out[l1 >= w] == 0.0) and np.all(out[l1 < w] > 0.0)
    assert net[0].widths == (9, 1, 1)


@pytest.mark.parametrize("build", [lambda: constructions.sawtooth_net(0),
                                   lambda: constructions.yarotsky_square_net(-1),
                                   lambda: constructions.yarotsky_monomial_net(0, 2),
                                   lambda: constructions.hat_net(0.0, 0.0),
                                   lambda: constructions.bump_net([], 1.0),
                                   lambda: constructions.zigzag_net(1, 3),
                                   lambda: constructions.zigzag_net(4, 0)])
def test_bad_arguments_raise_value_error(build):
    with pytest.raises(ValueError):
        build()


def test_relu_net_rejects_empty_widths():
    with pytest.raises(ValueError, match="widths"):
        constructions.ReluNet(widths=())
