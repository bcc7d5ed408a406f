"""Accumulation, early stopping, checkpoint/resume and SWA batch statistics inside fit."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.data import batching
from dl_theory.models.mlp import MLP
from dl_theory.optim import averaged_params, build_optimizer, optimizer_config
from dl_theory.train import fit as fit_lib
from dl_theory.train.batch_stats import recompute_batch_stats
from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import create_train_state


def regression(n=64, seed=0, masked=False):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 4))
    data = {"x": x, "y": jnp.sin(x[:, :1]) + 0.1 * x[:, 1:2]}
    if masked:  # unequal real counts per micro-batch: 16 real examples in the first quarter
        data["weight"] = (jnp.arange(n) % 4 == 0).astype(jnp.float32).at[:16].set(1.0)
    return data


@pytest.mark.parametrize("name", ["sgd", "adam"])
@pytest.mark.parametrize("masked", [False, True])
def test_k_micro_batches_equal_one_large_batch(name, masked):
    data, model = regression(masked=masked), MLP(widths=(8,), activation="tanh")
    results = []
    for k in (1, 4):
        tx = build_optimizer(optimizer_config(name=name, learning_rate=0.05, accumulate_steps=k))
        state = create_train_state(model, tx, data["x"][:1], seed=0)
        state, _ = fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error,
                               steps=3 * k, accumulate_steps=k, verbose=False)
        results.append(state.params)
    chex.assert_trees_all_close(results[0], results[1], rtol=1e-5, atol=1e-6)


def test_indivisible_accumulation_is_named():
    data = regression(n=30)
    tx = build_optimizer(optimizer_config(name="sgd", accumulate_steps=4))
    state = create_train_state(MLP(widths=(4,)), tx, data["x"][:1], seed=0)
    with pytest.raises(ValueError, match="accumulate_steps=4"):
        fit_lib.fit(state, data, batching.full_batch(), loss=mean_squared_error, steps=4,
                    accumulate_steps=4, verbose=False)


def test_early_stopping_stops_at_the_right_evaluation_on_a_scripted_metric():
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    script = [1.0, 0.8, 0.78, 0.79]
    decisions = [stopper.update(v, step) for step, v in enumerate(script)]
    # 0.78 and 0.79 do not beat 0.8 by 0.05 -> stop at index 3; best stays at index 1.
    assert [stop for _, stop in decisions] == [False, False, False, True]
    assert stopper.best_step == 1 and stopper.stopped_step == 3


def test_early_stopping_in_fit_restores_the_best_state():
    train, test = regression(n=16, seed=1), regression(n=256, seed=2)
    tx = build_optimizer(optimizer_config(name="adam", learning_rate=0.03))
    state = create_train_state(MLP(widths=(256, 256)), tx, train["x"][:1], seed=0)
    stopper = EarlyStopping(patience=3)
    best, history = fit_lib.fit(state, train, batching.full_batch(), loss=mean_squared_error,
                                steps=3000, eval_data=test, eval_every=25,
                                early_stopping=stopper, verbose=False)
    assert history["stopped_step"] is not None and history["stopped_step"] < 3000
    best_index = list(history["eval_step"]).index(history["best_step"])
    assert history["eval_loss"][best_index] == pytest.approx(float(np.min(history["eval_loss"])))
    assert int(best.step) == history["best_step"]


class _Crash(MetricsLog):
    """A log that dies at `at_step`, after the checkpoint of the previous evaluation."""

    def __init__(self, path, at_step):
        super().__init__(path)
        self.at_step = at_step

    def write(self, record):
        if record["step"] == self.at_step:
            raise KeyboardInterrupt("simulated kill")
        super().write(record)


def test_killed_and_resumed_run_ends_with_the_uninterrupted_parameters(tmp_path):
    data, test = regression(n=128), regression(n=64, seed=3)
    config = optimizer_config(name="adam", learning_rate=0.01, schedule="cosine",
                              swa=dict(start_step=40, frequency=5))
    model = MLP(widths=(16,), activation="tanh", dropout_rate=0.1)

    def run(directory, log=None):
        tx = build_optimizer(config, total_steps=100)
        state = create_train_state(model, tx, data["x"][:1], seed=0)
        return fit_lib.fit(state, data, batching.minibatches(16), loss=mean_squared_error,
                           steps=100, eval_data=test, eval_every=10,
                           early_stopping=EarlyStopping(patience=1000),
                           checkpointer=Checkpointer(directory, keep=2), checkpoint_every=20,
                           log=log, verbose=False)

    uninterrupted, full_history = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", log=_Crash(tmp_path / "m.jsonl", at_step=70))
    assert Checkpointer(tmp_path / "b").latest_step() == 60
    resumed, history = run(tmp_path / "b")
    chex.assert_trees_all_equal(resumed.params, uninterrupted.params)
    chex.assert_trees_all_equal(averaged_params(resumed.opt_state, resumed.params),
                                averaged_params(uninterrupted.opt_state, uninterrupted.params))
    chex.assert_trees_all_equal(resumed.rng, uninterrupted.rng)
    assert history.keys() == full_history.keys()
    for key, value in full_history.items():  # values and dtypes (float32 stays float32)
        np.testing.assert_array_equal(history[key], value, err_msg=key)
        assert np.asarray(history[key]).dtype == np.asarray(value).dtype, key
    assert history["loss"].dtype == np.float32


def test_half_written_checkpoint_is_never_restored(tmp_path):
    data = regression()
    tx = build_optimizer(optimizer_config(name="sgd"))
    state = create_train_state(MLP(widths=(4,)), tx, data["x"][:1], seed=0)
    checkpointer = Checkpointer(tmp_path, keep=3)
    checkpointer.save(10, {"train": state}, {"step": 10})
    # What orbax leaves behind when killed mid-save: a temporary directory, never renamed.
    partial = tmp_path / "latest" / "20.orbax-checkpoint-tmp-1234567"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\x00" * 10)
    fresh = Checkpointer(tmp_path, keep=3)
    assert fresh.latest_step() == 10
    restored, extra = fresh.restore_latest({"train": state})
    assert extra["step"] == 10
    chex.assert_trees_all_equal(restored["train"].params, state.params)


def test_best_checkpoint_is_kept_by_metric(tmp_path):
    data = regression()
    tx = build_optimizer(optimizer_config(name="sgd"))
    state = create_train_state(MLP(widths=(4,)), tx, data["x"][:1], seed=0)
    checkpointer = Checkpointer(tmp_path, keep=1, best_metric="eval_loss")
    for step, loss in [(1, 3.0), (2, 1.0), (3, 2.0)]:
        checkpointer.save(step, {"train": state}, {"step": step}, {"eval_loss": loss})
    assert checkpointer.latest_step() == 3
    assert checkpointer.restore_best({"train": state})[1]["step"] == 2


class _BatchNormNet(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        x = nn.Dense(3)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.Dense(1)(x)


def test_recomputed_batch_stats_are_the_exact_mean_of_batch_statistics():
    data = regression(n=96)
    tx = build_optimizer(optimizer_config(name="sgd"))
    state = create_train_state(_BatchNormNet(), tx, data["x"][:2], seed=0)
    batches = [{"x": data["x"][i:i + 32]} for i in (0, 32, 64)]
    stats = recompute_batch_stats(state, state.params, batches)["batch_stats"]["BatchNorm_0"]
    kernel, bias = state.params["Dense_0"]["kernel"], state.params["Dense_0"]["bias"]
    hidden = [b["x"] @ kernel + bias[None, :] for b in batches]
    np.testing.assert_allclose(stats["mean"], np.mean([h.mean(0) for h in hidden], 0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stats["var"], np.mean([h.var(0) for h in hidden], 0),
                               rtol=1e-4, atol=1e-5)
