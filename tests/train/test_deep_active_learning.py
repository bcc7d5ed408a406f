"""Batch active learning of an MLP: the uncertainty score and the shared labelled start."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.train import deep_active_learning as deep
from dl_theory.train.precision import get_policy


def test_softmax_margin_by_hand():
    """Logits (log 0.6, log 0.3, log 0.1) -> 0.6 - 0.3; equal logits -> 0."""
    logits = jnp.log(jnp.array([[0.6, 0.3, 0.1], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(deep.softmax_margin(logits), [0.3, 0.0], atol=1e-6)


def test_both_strategies_share_the_start_and_labelled_data_help():
    """Round 0 is the same model on the same labelled start for both strategies; on two
    separated classes the accuracy after the budget is above the start's for both."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    x = (rng.normal(size=(200, 4)) + 3.0 * (2 * y[:, None] - 1)).astype(np.float32)
    kwargs = dict(num_seeds=2, widths=(8,), num_start=2, batch=4, rounds=2, steps=50,
                  learning_rate=1e-2)
    runs = {s: deep.run_mlp_queries(jax.random.PRNGKey(0), x[:150], y[:150], x[150:],
                                    y[150:], strategy=s, **kwargs) for s in deep.STRATEGIES}
    np.testing.assert_array_equal(runs["uncertainty"][:, 0], runs["random"][:, 0])
    for accuracy in runs.values():
        assert accuracy.shape == (2, 3) and np.all(accuracy[:, -1] >= 0.9)


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="strategy='entropy'"):
        deep.run_mlp_queries(jax.random.PRNGKey(0), np.zeros((4, 2)), np.array([0, 1, 0, 1]),
                             np.zeros((2, 2)), np.array([0, 1]), num_seeds=1, widths=(2,),
                             num_start=1, batch=1, rounds=1, steps=1, learning_rate=0.1,
                             strategy="entropy")


def test_accuracy_by_strategy_runs_each_strategy_on_the_pool_and_policy_sets_the_dtypes():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    x = (rng.normal(size=(60, 4)) + 3.0 * (2 * y[:, None] - 1)).astype(np.float32)
    data = {"train": {"x": x[:40], "y": y[:40]}, "test": {"x": x[40:], "y": y[40:]}}
    kwargs = dict(num_seeds=2, widths=(8,), num_start=2, batch=2, rounds=1, steps=5,
                  learning_rate=1e-2)
    runs = deep.accuracy_by_strategy(jax.random.PRNGKey(0), data, **kwargs)
    for strategy, accuracy in runs.items():
        np.testing.assert_array_equal(accuracy, deep.run_mlp_queries(
            jax.random.PRNGKey(0), x[:40], y[:40], x[40:], y[40:], strategy=strategy, **kwargs))
    model = deep.mlp_classifier((8,), 2, get_policy("bfloat16"))
    assert model.dtype == jnp.bfloat16 and model.param_dtype == jnp.float32
