"""The regularisation experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "regularisation"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)
