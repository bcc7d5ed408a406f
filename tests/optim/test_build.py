"""build_optimizer: registry, schedules against closed forms, clear errors."""

import math

import jax.numpy as jnp
import ml_collections
import pytest

from dl_theory.optim import BASE_OPTIMIZERS, build_optimizer, build_schedule, current_hyperparam


def cfg(**kw):
    return ml_collections.ConfigDict(kw)


@pytest.mark.parametrize("name", sorted(BASE_OPTIMIZERS))
def test_every_registered_optimizer_builds_and_steps(name):
    tx = build_optimizer(cfg(name=name, learning_rate=0.1))
    params = {"w": jnp.ones(3)}
    updates, state = tx.update({"w": jnp.ones(3)}, tx.init(params), params)
    assert updates["w"].shape == (3,)
    assert float(current_hyperparam(state)) == pytest.approx(0.1)


def test_cosine_schedule_matches_closed_form():
    schedule = build_schedule(cfg(learning_rate=1.0, schedule="cosine"), total_steps=100)
    for step in (0, 25, 50, 100):
        assert float(schedule(step)) == pytest.approx(0.5 * (1 + math.cos(math.pi * step / 100)),
                                                      abs=1e-6)


def test_inverse_sqrt_schedule_is_alpha_over_sqrt_t_from_the_first_update():
    schedule = build_schedule(cfg(learning_rate=0.5, schedule="inverse_sqrt"))
    assert [float(schedule(count)) for count in (0, 3, 99)] == pytest.approx(
        [0.5, 0.5 / 2, 0.5 / 10], rel=1e-6)


def test_sgd_under_inverse_sqrt_takes_steps_alpha_over_sqrt_t():
    tx = build_optimizer(cfg(name="sgd", learning_rate=0.5, schedule="inverse_sqrt"))
    params = jnp.zeros(())
    state, steps = tx.init(params), []
    for _ in range(4):
        updates, state = tx.update(jnp.ones(()), state, params)
        steps.append(-float(updates))
    assert steps == pytest.approx([0.5 / math.sqrt(t) for t in (1, 2, 3, 4)], rel=1e-6)


def test_sgd_step_is_minus_lr_times_gradient():
    tx = build_optimizer(cfg(name="sgd", learning_rate=0.3))
    params = {"w": jnp.array([1.0, 2.0])}
    updates, _ = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
    assert updates["w"].tolist() == pytest.approx([-0.3, 0.3])


@pytest.mark.parametrize("kw, match", [
    (dict(name="adamax2", learning_rate=0.1), "known"),
    (dict(name="adam", learning_rate=-1.0), "learning_rate"),
    (dict(name="adam", learning_rate=0.1, schedule="warmup_zigzag"), "schedule"),
    (dict(name="adam", learning_rate=0.1, schedule="cosine"), "decay_steps"),
    (dict(name="adam", learning_rate=math.nan, schedule="inverse_sqrt"),
     r"optimizer.learning_rate=nan"),
])
def test_bad_config_is_named(kw, match):
    with pytest.raises(ValueError, match=match):
        build_optimizer(cfg(**kw))
