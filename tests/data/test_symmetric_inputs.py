"""The symmetric input laws: their second moments, bounds, and the unknown-name error."""

import jax
import numpy as np
import pytest

from dl_theory.data.symmetric_inputs import MIXTURE_MEAN, sample_symmetric_inputs
from dl_theory.user_errors import ConfigError


@pytest.mark.parametrize("name", ["gaussian", "uniform_cube", "two_cluster_mixture"])
def test_each_law_is_centred_with_the_stated_covariance(name):
    x = np.asarray(sample_symmetric_inputs(jax.random.PRNGKey(0), name, 100_000, 3), np.float64)
    expected = np.eye(3)
    if name == "two_cluster_mixture":
        expected[0, 0] += MIXTURE_MEAN**2
    # Standard errors: 4e-3 (mean) and <= 1.5e-2 (covariance entries) at 1e5 draws.
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=0.02)
    np.testing.assert_allclose(x.T @ x / len(x), expected, atol=0.06)


def test_uniform_cube_is_bounded_and_the_mixture_is_not_gaussian():
    cube = sample_symmetric_inputs(jax.random.PRNGKey(1), "uniform_cube", 10_000, 2)
    assert float(np.max(np.abs(cube))) <= np.sqrt(3.0)
    mix = np.asarray(sample_symmetric_inputs(jax.random.PRNGKey(2), "two_cluster_mixture",
                                             100_000, 2), np.float64)[:, 0]
    # Kurtosis E x^4 / (E x^2)^2 of N(+-m, 1): (m^4 + 6 m^2 + 3) / (1 + m^2)^2 = 2.04 at
    # m = 1.5 (a Gaussian's is 3); its sampling error at 1e5 draws is ~0.01.
    kurtosis = np.mean(mix**4) / np.mean(mix**2) ** 2
    m2 = MIXTURE_MEAN**2
    assert abs(kurtosis - (m2**2 + 6 * m2 + 3) / (1 + m2) ** 2) < 0.05


def test_unknown_law_names_the_value_and_the_known_ones():
    with pytest.raises(ConfigError, match="distribution='cauchy'; allowed: "):
        sample_symmetric_inputs(jax.random.PRNGKey(0), "cauchy", 4, 2)
