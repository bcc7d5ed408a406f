"""The error-decomposition experiment: quick preset end to end, plus its decomposition."""

import jax
import numpy as np
import pytest
from harness import (
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
    run_quick_preset,
)

from dl_theory import experiment
from dl_theory.train.precision import dtype_table

EXPERIMENT = "error_decomposition"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: the estimation error does not fall with width, the ERM's
    risk (floor included) falls slower than n^-1/2, the narrowest student's optimisation share
    exceeds 0.1 and its own bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)
    claims = {c["id"]: c for c in payload["claims"]}
    shrink = claims["optimisation_shrinks_with_width"]
    assert shrink["measured"] == claims["optimisation_small_for_wide_nets"]["measured"]
    assert shrink["measured"] < shrink["at_most"] < shrink["baseline"]


@pytest.mark.experiment
def test_figure_written_and_terms_consistent(quick_run):
    """risk of the ERM proxy = approximation + estimation, for every width, seed and n."""
    payload, workdir = quick_run
    assert (workdir / payload["figures"][0]).is_file()
    m = payload["metrics"]["decomposition"]
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


def test_bfloat16_policy_reaches_the_example_student():
    """`launch.py --dtypes` model under precision=bfloat16: float32 parameters, gradients and
    optimizer state, bfloat16 activations (shapes only, nothing trains)."""
    module = experiment.load_experiment(EXPERIMENT)
    config = module.get_config("quick")
    assert config.precision == "float32"  # the default leaves every measurement unchanged
    config.precision = "bfloat16"
    model, x_example, tx = module.example_model(config)
    rows = dtype_table(model, model.init(jax.random.PRNGKey(0), x_example), x_example, tx)
    column = {key: {row[key] for row in rows} - {"-"} for key in rows[0] if key != "layer"}
    assert column["params"] == {"float32"} and column["gradients"] == {"float32"}, rows
    assert column["activations"] == {"bfloat16"}, rows
    assert not any("bfloat16" in dtypes for dtypes in column["optimizer"]), rows


@pytest.mark.experiment
def test_precision_reaches_the_trained_students(tmp_path):
    """A shrunken preset in float32 and in bfloat16: the risks of the trained students differ
    (the knob reaches the training grid) and stay finite and close."""
    small = {"widths": (2, 8), "sample_sizes": (64, 128), "estimation_width": 8,
             "data_seeds": 2, "restarts": 2, "num_test": 512, "steps": 100}
    runs = {precision: run_quick_preset(EXPERIMENT, tmp_path / precision,
                                        {**small, "precision": precision})
            for precision in ("float32", "bfloat16")}
    assert runs["bfloat16"]["env"]["precision_policy"] == "bfloat16"
    risks = {p: np.asarray(r["metrics"]["decomposition"]["mean_risk"]["8"])
             for p, r in runs.items()}
    assert np.all(np.isfinite(risks["bfloat16"]))
    assert not np.array_equal(risks["float32"], risks["bfloat16"])
    np.testing.assert_allclose(risks["bfloat16"], risks["float32"], rtol=0.2)
