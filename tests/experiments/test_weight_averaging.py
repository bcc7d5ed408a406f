"""The weight-averaging experiment's quick preset, end to end."""

import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

EXPERIMENT = "weight_averaging"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the randomly moved iterate, the last iterate's flatness,
    the last iterate's own gain from recomputed statistics and the constant predictor do not
    satisfy its bound."""
    assert_every_claim_has_a_failing_baseline(quick_run[0])


def test_recomputing_statistics_helps_the_swa_weights_more_than_the_last_iterate(quick_run):
    """In the ratio of seed means as in the seeds' mean log ratio; 8 batch-norm seeds."""
    swa = quick_run[0]["metrics"]["swa"]
    assert len(swa["bn_log_gain_differences"]) == 8
    assert swa["bn_stale_ratio"] > swa["bn_iterate_stale_ratio"]
    assert np.mean(swa["bn_log_gain_differences"]) > np.mean(swa["bn_iterate_log_gains"])
