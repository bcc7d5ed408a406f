"""The lazy-vs-feature-learning experiment's quick preset, end to end, and its data helper."""

import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment

EXPERIMENT = "training_regimes"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim's baseline is the other scaling's measurement: mean-field slopes near 0 and
    a linearisation gap far above 0.1; the lazy net no better than its initial kernel."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    linear = next(c for c in payload["claims"] if c["id"] == "widest_net_is_linear")
    assert linear["baseline"] > 3 * linear["at_most"]


@pytest.mark.experiment
def test_ntk_changes_fall_monotonically_and_mean_field_stays_far_above(quick_run):
    """Lazy nets move less at every doubling; the muP nets move by O(1) at every width."""
    m = quick_run[0]["metrics"]["regimes"]
    lazy_kernel = np.mean(m["ntk"]["kernel_change"], axis=1)
    lazy_weights = np.mean(m["ntk"]["weight_change"], axis=1)
    assert np.all(np.diff(lazy_kernel) < 0) and np.all(np.diff(lazy_weights) < 0)
    assert np.all(np.mean(m["mean_field"]["kernel_change"], axis=1) > 10 * lazy_kernel[0])


def test_single_index_data_is_standardised_relu_of_first_coordinate():
    module = load_experiment(EXPERIMENT)
    train, test = module.single_index_data(dim=4, num_train=20000, num_test=3, seed=0)
    assert train["x"].shape == (20000, 4) and train["y"].shape == (20000, 1)
    assert test["x"].shape == (3, 4)
    z = train["x"][:, :1]
    expected = (jnp.maximum(z, 0) - 1 / np.sqrt(2 * np.pi)) / np.sqrt(0.5 - 1 / (2 * np.pi))
    np.testing.assert_allclose(train["y"], expected, rtol=1e-6)
    # Standardised with the exact moments of relu(z): sample moments agree to Monte Carlo error.
    assert abs(float(train["y"].mean())) < 0.03 and abs(float(train["y"].std()) - 1) < 0.03
