"""The sequence-memory experiment's quick preset end to end, and its gate initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from harness import assert_every_claim_has_a_failing_baseline, assert_every_claim_holds

from dl_theory.experiment import load_experiment

EXPERIMENT = "sequence_memory"
sm = load_experiment(EXPERIMENT)


@pytest.mark.experiment
def test_baselines_fail_the_bounds_their_claims_pass(quick_run):
    """Each claim could have failed: its control (the RNN and the gated cells at the shortest
    delay, the untrained transformer) misses the bound."""
    payload, _ = quick_run
    assert_every_claim_has_a_failing_baseline(payload)


@pytest.mark.experiment
def test_every_claim_holds(quick_run):
    payload, _ = quick_run
    assert_every_claim_holds(payload)


@pytest.mark.experiment
def test_every_architecture_recalls_at_the_shortest_delay(quick_run):
    """The task is learnable: at the shortest delay no architecture is limited by memory."""
    metrics = quick_run[0]["metrics"]
    accuracies = {**metrics["recurrent"]["accuracy"],
                  "transformer": metrics["transformer"]["accuracy"]}
    assert sorted(accuracies) == sorted(sm.ARCHITECTURES)
    for architecture, acc in accuracies.items():
        assert np.mean(acc[0]) > 0.9, architecture


@pytest.mark.parametrize("architecture, gate", [("lstm", "hf"), ("gru", "iz")])
def test_memory_gate_bias_is_log_length_and_nothing_else_changes(architecture, gate):
    config = sm.get_config("quick")
    model = sm.build_model(config, architecture, seq_len=20)
    params = model.init(jax.random.key(0), jnp.zeros((2, 20), jnp.int32))["params"]
    opened = sm.open_memory_gates(params, architecture, seq_len=20)
    cell = opened["encoder"]["layer_0"]
    np.testing.assert_allclose(cell[gate]["bias"], np.log(20.0), rtol=1e-6)
    # sigmoid(log T) = T / (T + 1) of the memory kept per step.
    np.testing.assert_allclose(jax.nn.sigmoid(cell[gate]["bias"]), 20 / 21, rtol=1e-6)
    flat_before = jax.tree_util.tree_flatten_with_path(params)[0]
    flat_after = dict(jax.tree_util.tree_flatten_with_path(opened)[0])
    changed = [jax.tree_util.keystr(p) for p, leaf in flat_before
               if not np.array_equal(leaf, flat_after[p])]
    assert changed == [f"['encoder']['layer_0']['{gate}']['bias']"]


def test_vanilla_rnn_and_transformer_parameters_are_untouched():
    config = sm.get_config("quick")
    for architecture in ("rnn", "transformer"):
        model = sm.build_model(config, architecture, seq_len=8)
        params = model.init(jax.random.key(0), jnp.zeros((2, 8), jnp.int32))["params"]
        assert sm.open_memory_gates(params, architecture, seq_len=8) is params


def test_unknown_architecture_is_refused():
    with pytest.raises(ValueError, match="architecture='mamba'"):
        sm.build_model(sm.get_config("quick"), "mamba", seq_len=8)
