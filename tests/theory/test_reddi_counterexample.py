"""Reddi et al.'s online sequence: projected steps, regret against x* = -1, and its limit."""

import numpy as np
import optax
import pytest

from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory.reddi_counterexample import average_regret, online_run, regret_limit


def test_sgd_takes_the_sequences_gradients_and_is_projected_onto_the_interval():
    """x_1 = 1; gradient C = 3 at t = 1 moves x to 0.97, gradient -1 at t = 2 to 0.98; a step
    of 1 from x = -0.5 with gradient C = 3 would reach -3.5 and is clipped to -1."""
    xs, losses = online_run(optax.sgd(0.01), C=3.0, x_init=1.0, rounds=3)
    np.testing.assert_allclose(xs, [1.0, 0.97, 0.98], rtol=1e-6)
    np.testing.assert_allclose(losses, [3.0, -0.97, -0.98], rtol=1e-6)
    xs, _ = online_run(optax.sgd(1.0), C=3.0, x_init=-0.5, rounds=2)
    np.testing.assert_array_equal(xs, [-0.5, -1.0])


@pytest.mark.parametrize("C", [3.0, 5.0])
def test_average_regret_is_zero_at_the_optimum_and_the_limit_at_plus_one(C):
    rounds = 30
    t = np.arange(1, rounds + 1)
    gradients = np.where(t % 3 == 1, C, -1.0)
    np.testing.assert_allclose(average_regret(-gradients, C), 0.0, atol=1e-12)
    at_plus_one = average_regret(gradients, C)
    # Every full period of 3 rounds at x = +1 costs 2 (C - 2).
    np.testing.assert_allclose(at_plus_one[2::3], regret_limit(C), rtol=1e-12)
    assert regret_limit(C) == pytest.approx(2 * (C - 2) / 3)


def test_adam_drifts_to_plus_one_and_amsgrad_to_minus_one():
    """Thm 1's parameters (beta1 = 0, beta2 = 1 / (1 + C^2), alpha / sqrt(t)), C = 3, as the
    experiment builds them; 3,000 rounds suffice for both to reach their ends."""
    C, b2 = 3.0, 1.0 / 10.0
    kwargs = dict(adam=dict(b1=0.0, b2=b2, eps=1e-8),
                  amsgrad=dict(b1=0.0, b2=b2, eps=1e-8, bias_correction_mu=False,
                               bias_correction_nu=False))
    ends = {}
    for name, kw in kwargs.items():
        tx = build_optimizer(optimizer_config(name=name, learning_rate=0.5,
                                              schedule="inverse_sqrt", kwargs=kw))
        xs, _ = online_run(tx, C, 1.0, 3000)
        ends[name] = float(xs[-3:].mean())
    assert ends["adam"] > 0.9 and ends["amsgrad"] < -0.9, ends
