"""The linear-regions experiment: quick preset end to end, and its precision keys."""

import jax
import jax.numpy as jnp
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory import experiment
from dl_theory.theory import regions

EXPERIMENT = "linear_regions"


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_every_claim_records_a_baseline_its_bound_rejects(quick_run):
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


def test_maximum_attaining_controls_are_counted_exactly(quick_run):
    """Zigzag nets at N = 32: (32 / L)**L - 1 breakpoints for L = 1 and 4, ratio 4095 / 31; the
    sawtooth with one layer fewer has half of 2**L pieces."""
    claims = {c["id"]: c for c in quick_run[0]["claims"]}
    assert claims["line_count_independent_of_depth"]["baseline"] == pytest.approx(4095 / 31)
    assert claims["sawtooth_attains_exponential"]["baseline"] == 0.5
    assert claims["trained_line_count_linear_in_neurons"]["baseline"] == pytest.approx(
        4.0, abs=0.01)


def test_counts_never_exceed_the_maxima(quick_run):
    """Exact counts of any net obey the deterministic bounds: pieces <= (2m)^L on a segment and
    regions <= Serra's maximum on a slice (a violation means a counting bug)."""
    payload, _ = quick_run
    line, slices = payload["metrics"]["line"], payload["metrics"]["slice"]
    for depth, rows in line["line_breakpoints_init"].items():
        for j, n in enumerate(line["line_neurons"]):
            bound = regions.telgarsky_pieces_bound(n // int(depth), int(depth))
            assert max(r[j] for r in rows) + 1 <= bound
    for depth, rows in slices["slice_regions_init"].items():
        for j, n in enumerate(slices["slice_neurons"]):
            assert max(r[j] for r in rows) <= regions.serra_upper_bound(2, [n // int(depth)]
                                                                       * int(depth))


@pytest.mark.experiment
def test_random_nets_grow_like_hanin_rolnick_and_the_maxima_fail_the_restated_claims(quick_run):
    """The deepest random nets grow like N (line) and N^2 (slice); the zigzag control of the
    same architecture has exactly (N/L)^L pieces (slope 4) and Serra's maximum grows like N^7.9:
    both fail the bound that the random nets pass."""
    payload, _ = quick_run
    claims = {c["id"]: c for c in payload["claims"]}
    line = claims["line_count_grows_far_slower_than_maximum"]
    assert 0.9 < line["measured"] < 1.2 and line["interval"][1] <= 2.5, line
    assert line["baseline"] == pytest.approx(4.0, abs=0.01) and line["baseline_holds"] is False
    control = payload["metrics"]["line"]["zigzag_control_breakpoints"]
    assert control == [(n // 4) ** 4 - 1 for n in payload["config"]["line"]["control_neurons"]]
    plane = claims["slice_regions_grow_far_slower_than_maximum"]
    assert 1.8 < plane["measured"] < 2.4 and plane["interval"][1] <= 5.0, plane
    assert plane["baseline"] == pytest.approx(7.85, abs=0.01) and plane["baseline_holds"] is False


def test_precision_reaches_the_trained_net_and_train_precision_overrides_it():
    module = experiment.load_experiment(EXPERIMENT)
    config = module.get_config("quick")
    config.precision = "bfloat16"
    model, x, _ = module.example_model(config)
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    assert (model.dtype, out.dtype) == (jnp.bfloat16, jnp.bfloat16)
    config.train.precision = "float16"  # a part-level override wins over the top-level key
    assert module.example_model(config)[0].dtype == jnp.float16
