"""Training helpers for the tent map: first-layer kinks land inside [0, 1]."""

import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.models.mlp import MLP
from dl_theory.train.state import create_train_states
from dl_theory.train.tent_map import spread_first_layer_kinks, tent_target


def test_spread_kinks_lie_in_the_unit_interval_and_differ_across_seeds():
    tx = optax.adam(1e-2)
    states = create_train_states(MLP(widths=(16,)), tx, jnp.zeros((2, 1)), [0, 1])
    spread = spread_first_layer_kinks(states, tx, scale=4.0, seed=7919)
    dense = spread.params["Dense_0"]
    kinks_SxM = -np.asarray(dense["bias"]) / np.asarray(dense["kernel"])[:, 0, :]
    assert np.all((kinks_SxM >= 0.0) & (kinks_SxM <= 1.0))
    assert not np.allclose(kinks_SxM[0], kinks_SxM[1])
    np.testing.assert_allclose(dense["kernel"], 4.0 * states.params["Dense_0"]["kernel"])


def test_tent_target_is_the_k_fold_tent_map():
    x = jnp.array([[0.0], [0.125], [0.25], [0.5]])
    np.testing.assert_allclose(tent_target(2).fn(x)[:, 0], [0.0, 0.5, 1.0, 0.0])
