"""The curse-of-dimensionality experiment: quick preset end to end, plus its helpers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory import experiment

EXPERIMENT = "curse_of_dimensionality"


@pytest.fixture(scope="module")
def module():
    return experiment.load_experiment(EXPERIMENT)


# Measured in the quick preset: the structure-matched deep net needs ~4x more samples at d = 8
# than at d = 4 (budget exponent p ~ 2, interval above 1.5), faster than the (d - 1) node count
# (p ~ 1.2) that the claim allows; so the shallow and kernel exponents do not exceed it by the
# claimed gap either. Negative results, kept failing rather than re-tuned; this test turns red
# if one starts to hold, so that the verdict and the README are revisited then.
KNOWN_FAILING = {"deep_budget_grows_slowly_on_compositional",
                 "shallow_budget_grows_faster_than_deep", "kernel_budget_grows_faster_than_deep"}


@pytest.mark.experiment
def test_every_other_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds({**payload, "claims": [c for c in payload["claims"]
                                                    if c["id"] not in KNOWN_FAILING]})


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """On the generic target the deep net needs far more samples than the others at the
    smallest d, and there some method does reach the error level."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline({**payload, "claims": [
        c for c in payload["claims"] if c["id"] not in KNOWN_FAILING]})


@pytest.mark.experiment
def test_known_negative_results_stay_negative(quick_run):
    payload, _ = quick_run
    verdicts = {c["id"]: c["holds"] for c in payload["claims"] if c["id"] in KNOWN_FAILING}
    assert verdicts == {claim: False for claim in KNOWN_FAILING}


@pytest.mark.experiment
def test_deep_needs_fewer_samples_than_shallow_and_kernel_at_every_d(quick_run):
    payload, _ = quick_run
    m = payload["metrics"]["targets"]["compositional"]
    for d in map(str, m["dims"]):
        deep = m["deep_budget"][d][0]
        assert deep < m["shallow_budget"][d][0], d
        assert deep < m["kernel_budget"][d][0], d


@pytest.mark.experiment
def test_figure_written(quick_run):
    payload, workdir = quick_run
    assert payload["figures"] == ["curse_of_dimensionality.png"]
    assert (workdir / payload["figures"][0]).is_file()


def test_budget_interpolates_in_log_log(module):
    """Errors 0.4, 0.1 at n = 100, 400: the level 0.2 is crossed halfway in log, at n = 200."""
    n_star, status = module.budget_to_reach([50, 100, 400], [0.8, 0.4, 0.1], 0.2)
    assert status == "exact"
    np.testing.assert_allclose(n_star, 200.0, rtol=1e-9)
    assert module.budget_to_reach([50, 100], [0.8, 0.4], 0.2) == (100.0, "above_grid")
    assert module.budget_to_reach([50, 100], [0.1, 0.05], 0.2) == (50.0, "below_grid")


def test_compositional_target_is_the_tree_of_its_nodes(module):
    """d = 2 is one node sin(p a + q b + r a b): f(0) = 0 and f is bounded by 1; d = 4 depends
    on (x1, x2) only through the first node, so swapping x3, x4 with x1, x2 changes f."""
    f2 = module.compositional_tree_target(2, seed=0)
    np.testing.assert_allclose(f2.fn(jnp.zeros((1, 2))), [[0.0]], atol=1e-7)
    x = f2.sample_inputs(jax.random.PRNGKey(0), 512)
    assert float(jnp.max(jnp.abs(f2.fn(x)))) <= 1.0
    f4 = module.compositional_tree_target(4, seed=0)
    x4 = jnp.array([[0.3, -0.2, 0.9, 0.1]])
    moved = x4.at[0, 2].set(-0.5)  # a leaf of the second node
    assert float(jnp.abs(f4.fn(x4) - f4.fn(moved))[0, 0]) > 1e-3
    with pytest.raises(ValueError, match="power of two"):
        module.compositional_tree_target(6)


def test_tree_net_parameter_count_is_linear_in_d(module):
    for d in (4, 8, 16):
        net = module.TreeNet(node_width=16)
        params = net.init(jax.random.PRNGKey(0), jnp.zeros((2, d)))["params"]
        count = sum(p.size for p in jax.tree.leaves(params))
        assert count == (d - 1) * (4 * 16 + 1)
        assert net.apply({"params": params}, jnp.zeros((3, d))).shape == (3, 1)


def test_precision_reaches_the_tree_net(module):
    """Under bfloat16 every node computes in bfloat16 (biases cast too); parameters stay
    float32."""
    config = module.get_config("quick")
    config.precision = "bfloat16"
    model, x, _ = module.example_model(config)
    variables = model.init(jax.random.PRNGKey(0), x)
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype(jnp.float32)}
    assert model.apply(variables, x).dtype == jnp.bfloat16
