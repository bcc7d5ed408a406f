"""The error-decomposition experiment: quick preset end to end, plus its decomposition."""

import numpy as np
import pytest
from harness import assert_every_claim_holds

from dl_theory import experiment

EXPERIMENT = "error_decomposition"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_figure_written_and_terms_consistent(quick_run):
    """risk of the ERM proxy = approximation + estimation, for every width, seed and n."""
    payload, workdir = quick_run
    assert (workdir / payload["figures"][0]).is_file()
    m = payload["metrics"]
    for i, w in enumerate(m["widths"]):
        erm = np.asarray(m["erm_risk"][str(w)])
        est = np.asarray(m["estimation"][str(w)])
        np.testing.assert_allclose(erm, est + m["approximation"][i], rtol=1e-5, atol=1e-7)


def test_decompose_on_hand_made_risks():
    """D = 1 seed, R = 2 restarts, K = 2 sizes (+ online column)."""
    module = experiment.load_experiment(EXPERIMENT)
    test = np.array([[[0.5, 0.3, 0.10],
                      [0.4, 0.2, 0.08]]])
    train = np.array([[[0.1, 0.25],
                       [0.2, 0.15]]])
    terms = module.decompose(test, train)
    assert terms["approximation"] == 0.08
    np.testing.assert_allclose(terms["erm_risk"], [[0.5, 0.2]])  # restart 0 for n1, 1 for n2
    np.testing.assert_allclose(terms["estimation"], [[0.42, 0.12]])
    np.testing.assert_allclose(terms["optimisation"], [[0.05, 0.05]])
    np.testing.assert_allclose(terms["mean_risk"], [[0.45, 0.25]])
