"""The depth-separation experiment's quick preset, end to end."""

import pytest
from harness import assert_every_claim_holds

EXPERIMENT = "depth_separation"
pytestmark = pytest.mark.experiment


def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


def test_construction_pieces_double_with_each_layer(quick_run):
    metrics = quick_run[0]["metrics"]["construction"]
    assert metrics["construction_pieces"] == [2**k for k in metrics["construction_ks"]]


def test_least_squares_fit_is_exact_with_one_kink_per_breakpoint(quick_run):
    """With 2**k units whose kinks sit on the tent map's breakpoints the fit is exact."""
    metrics = quick_run[0]["metrics"]["nets"]
    assert metrics["lstsq_units"][-1] == 2 ** quick_run[0]["config"]["k"]
    assert metrics["lstsq_l1"][-1] < 1e-6
