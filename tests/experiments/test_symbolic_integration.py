"""The symbolic_integration experiment: its shipped data, then its quick preset end to end."""

import dataclasses

import pytest
from harness import (
    assert_config_refused,
    assert_every_claim_has_a_failing_baseline,
    assert_every_claim_holds,
)

from dl_theory import experiment
from dl_theory.data import symbolic

EXPERIMENT = "symbolic_integration"


def _quick_datasets():
    """(method, generation config, seed, count) of every dataset the quick preset reads."""
    module = experiment.load_experiment(EXPERIMENT)
    config = module.get_config("quick")
    c, generation = config.integration, module._generation(config.integration)
    for method, sizes, seed in (("bwd", c.pool_sizes, config.seed),
                                ("fwd", c.fwd_sizes, config.seed + 1)):
        for num_ops, count in zip(c.ops, sizes):
            yield method, dataclasses.replace(generation, num_ops=num_ops), seed, count


def test_quick_data_ship_with_the_package_and_nothing_else_does():
    names = {symbolic.cache_file_name(*dataset) for dataset in _quick_datasets()}
    assert names == {path.name for path in symbolic.SHIPPED_DIR.iterdir()}


@pytest.mark.parametrize("dataset", list(_quick_datasets()),
                         ids=lambda d: f"{d[0]}-n{d[1].num_ops}")
def test_shipped_data_are_what_the_generator_makes(dataset):
    """The first pairs of each shipped dataset, regenerated from its seed (pair i depends on
    (seed, i) only, so the first k of a longer run are the run of k)."""
    shipped = symbolic._read_dataset(symbolic.SHIPPED_DIR / symbolic.cache_file_name(*dataset))
    method, config, seed, _ = dataset
    assert symbolic.generate_pairs(method, config, seed, 12).pairs == shipped.pairs[:12]


def test_mismatched_sizes_are_refused():
    assert_config_refused(EXPERIMENT, {"integration.fwd_sizes": (10, 10)},
                          "integration.fwd_sizes=(10, 10); allowed: one size per entry")


@pytest.mark.experiment
def test_every_claim_has_its_expected_verdict(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """The unlabelled count, the count-blind sampler, the infix round trip, the trivial
    answers, beam size 1, two halves of one test set and shuffled lengths all fail."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_every_answer_was_checked_by_sympy_and_the_test_set_is_unseen(quick_run):
    payload, workdir = quick_run
    m = payload["metrics"]["integration"]
    counts = m["verifier_counts"]
    assert counts["correct"] > 0 and counts["wrong"] > 0
    assert len(m["bwd"]["greedy"]) == 300 and len(m["fwd"]["beam"]) > 200
    assert m["bwd_test_in_train"] == 0 and m["fwd_dropped_as_seen"] > 0
    assert (workdir / "accuracy_vs_length.png").is_file()
