"""Optimizer links against closed forms: clipping, SWA, schedules, penalties, weight decay."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_theory.optim import (
    averaged_params,
    build_optimizer,
    build_schedule,
    current_hyperparam,
    optimizer_config,
)


def run(tx, grads_seq, params):
    state = tx.init(params)
    history = []
    for grads in grads_seq:
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append((updates, params))
    return history, state


def test_clipped_update_norm_never_exceeds_the_bound():
    tx = build_optimizer(optimizer_config(name="sgd", learning_rate=1.0, clip_global_norm=0.5))
    grads = [{"w": jax.random.normal(jax.random.PRNGKey(i), (10,)) * 10.0 ** (i % 4)}
             for i in range(20)]
    history, _ = run(tx, grads, {"w": jnp.zeros(10)})
    norms = [float(optax.global_norm(u)) for u, _ in history]
    assert max(norms) <= 0.5 + 1e-6 and min(norms) < 0.5  # small gradients pass unclipped


def test_clip_by_value_bounds_every_entry():
    tx = build_optimizer(optimizer_config(name="sgd", learning_rate=1.0, clip_value=0.1))
    history, _ = run(tx, [{"w": jnp.array([-3.0, 0.05, 7.0])}], {"w": jnp.zeros(3)})
    np.testing.assert_allclose(history[0][0]["w"], [0.1, -0.05, -0.1], rtol=1e-6)


def test_swa_average_is_the_mean_of_the_snapshots_it_took():
    tx = build_optimizer(optimizer_config(name="sgd", learning_rate=0.1,
                                          swa=dict(start_step=3, frequency=2)))
    grads = [{"w": jnp.full(2, float(i))} for i in range(1, 10)]
    history, state = run(tx, grads, {"w": jnp.zeros(2)})
    snapshots = [history[i][1]["w"] for i in (2, 4, 6, 8)]  # after updates 3, 5, 7, 9
    np.testing.assert_allclose(averaged_params(state, {"w": jnp.zeros(2)})["w"],
                               np.mean(snapshots, axis=0), rtol=1e-6)


def test_swa_learning_rate_takes_over_at_start_and_cycles():
    config = optimizer_config(name="sgd", learning_rate=1.0,
                              swa=dict(start_step=4, frequency=2, learning_rate=0.4,
                                       min_learning_rate=0.2))
    tx = build_optimizer(config)
    _, state = run(tx, [{"w": jnp.ones(1)}] * 4, {"w": jnp.zeros(1)})
    lrs = []
    for _ in range(4):
        _, state = tx.update({"w": jnp.ones(1)}, state, {"w": jnp.zeros(1)})
        lrs.append(float(current_hyperparam(state)))  # the rate the update just used
    # Updates 5..8 are SWA updates i = 1..4; eq. 2 of Izmailov et al. with c = 2:
    # t = (mod(i - 1, c) + 1) / c = 1/2, 1, 1/2, 1 -> 0.3, 0.2, 0.3, 0.2.
    assert lrs == pytest.approx([0.3, 0.2, 0.3, 0.2])


@pytest.mark.parametrize("schedule, extra, step, expected", [
    ("linear", dict(final_lr_fraction=0.1), 50, 1.0 - 0.9 * 0.5),
    ("exponential", dict(decay_rate=0.5), 50, 0.5 ** 0.5),
    ("step", dict(boundaries=(30, 60), step_factor=0.1), 45, 0.1),
    ("step", dict(boundaries=(30, 60), step_factor=0.1), 75, 0.01),
    ("cosine", {}, 50, 0.5),
    ("warmup_cosine", dict(warmup_steps=10), 5, 0.5),
    ("warmup_cosine", dict(warmup_steps=10), 55, 0.5),
    ("one_cycle", dict(pct_start=0.3), 30, 1.0),
    ("inverse_sqrt", {}, 99, 0.1),
])
def test_schedules_match_closed_forms(schedule, extra, step, expected):
    config = optimizer_config(learning_rate=1.0, schedule=schedule, **extra)
    assert float(build_schedule(config, total_steps=100)(step)) == pytest.approx(expected, rel=1e-5)


def test_warmup_counts_updates_not_micro_batches():
    config = optimizer_config(name="sgd", learning_rate=1.0, schedule="warmup_cosine",
                              warmup_steps=4, decay_steps=100, accumulate_steps=3)
    tx = build_optimizer(config)
    _, state = run(tx, [{"w": jnp.ones(1)}] * 6, {"w": jnp.zeros(1)})  # 6 micro = 2 updates
    # The second update used lr(1) = 1/4 of the peak: warm-up advanced by updates, not by the
    # 6 micro-batches (which would give lr(5) past the 4-update warm-up).
    assert float(current_hyperparam(state)) == pytest.approx(0.25)


def test_l2_and_decoupled_weight_decay_closed_forms():
    params, grads = {"w": jnp.array([2.0])}, [{"w": jnp.array([0.0])}]
    l2 = run(build_optimizer(optimizer_config(name="sgd", learning_rate=0.1, l2=0.5)), grads,
             params)[0]
    wd = run(build_optimizer(optimizer_config(name="sgd", learning_rate=0.1, weight_decay=0.5)),
             grads, params)[0]
    l1 = run(build_optimizer(optimizer_config(name="sgd", learning_rate=0.1, l1=0.5)), grads,
             params)[0]
    assert float(l2[0][1]["w"][0]) == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)
    assert float(wd[0][1]["w"][0]) == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)
    assert float(l1[0][1]["w"][0]) == pytest.approx(2.0 - 0.1 * 0.5)
    # Under Adam they differ: L2 is rescaled by the adaptive denominator, decay is not.
    adam_l2 = run(build_optimizer(optimizer_config(name="adam", learning_rate=0.1, l2=0.5)),
                  grads, params)[0]
    adam_wd = run(build_optimizer(optimizer_config(name="adam", learning_rate=0.1,
                                                   weight_decay=0.5)), grads, params)[0]
    assert float(adam_l2[0][1]["w"][0]) == pytest.approx(2.0 - 0.1, rel=1e-4)
    assert float(adam_wd[0][1]["w"][0]) == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)


@pytest.mark.parametrize("overrides, match", [
    (dict(clip_global_norm=1.0, clip_value=0.5), "contradictory"),
    (dict(accumulate_steps=0), "accumulate_steps"),
    (dict(name="adamx"), "known"),
    (dict(schedule="step"), "boundaries"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_bad_settings_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        build_optimizer(optimizer_config(**overrides), total_steps=10)


def test_unknown_key_is_named():
    config = optimizer_config()
    config.unlock()
    config.clip_norm = 1.0
    with pytest.raises(ValueError, match="clip_norm"):
        build_optimizer(config)


def test_averaged_params_before_any_snapshot_is_an_error():
    tx = build_optimizer(optimizer_config(swa=dict(start_step=5)))
    with pytest.raises(ValueError, match="no snapshot"):
        averaged_params(tx.init({"w": jnp.zeros(1)}), {"w": jnp.zeros(1)})
    assert math.isfinite(0.0)
