"""The representation_learning experiment's quick preset, end to end, and its config checks."""

import re

import numpy as np
import pytest
from harness import (
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
    set_dotted,
)

from dl_theory import experiment
from dl_theory.config_checks import validate_experiment_config
from dl_theory.user_errors import ConfigError

EXPERIMENT = "representation_learning"
MODULE = experiment.load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the trained CNN's probe is far from 32 %, the permuted-
    label CNN's last layer is no better than random or raw, a random linear map of x is no
    better than x, and the random CNN's accuracy does not grow with depth."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_probes_converged_and_learned_features_win_at_every_layer(quick_run):
    payload, _ = quick_run
    m = payload["metrics"]["probes"]
    assert m["largest_probe_grad_norm"] < 0.05
    trained, random = np.asarray(m["accuracy"]["trained_cnn"]), np.asarray(
        m["accuracy"]["random_cnn"])
    assert np.all(trained > random)
    # A random linear map of x spans at most x's 40 directions: the same accuracy as raw to
    # about one test-set standard error.
    assert np.all(np.abs(np.asarray(m["accuracy"]["random_linear_map"]) - m["accuracy"]["raw"])
                  < 0.02)


@pytest.mark.parametrize("overrides, message", [
    ({"probe.l2": 0.0}, "probe.l2=0.0; allowed: a number > 0"),
    ({"cnn.channels": (8,)}, "cnn.channels=(8,); allowed: two or more layers"),
])
def test_bad_config_is_refused_before_compilation(overrides, message):
    config = set_dotted(MODULE.get_config("quick"), overrides)
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_experiment_config(MODULE, config, "quick")


def test_dft_magnitudes_are_shift_invariant():
    x = np.random.default_rng(0).normal(size=(2, 40)).astype(np.float32)
    np.testing.assert_allclose(MODULE.dft_magnitudes(np.roll(x, 7, axis=1)),
                               MODULE.dft_magnitudes(x), rtol=1e-4, atol=1e-4)
    assert MODULE.dft_magnitudes(x).shape == (2, 21)
