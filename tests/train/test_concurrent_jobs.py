"""Independent training jobs run at the same time give exactly what they give in turn, compile
nothing twice, see the caller's Flax interceptors and report the first failure."""

import collections
import json

import chex
import flax.linen as nn
import ml_collections
import numpy as np
import pytest
from jax import monitoring

from dl_theory.data import batching, synthetic
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.train import interceptors
from dl_theory.train.concurrent_jobs import run_jobs
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import create_train_states

# One event per program built, whether XLA compiles it or the persistent cache has it.
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_counts: collections.Counter = collections.Counter()
monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kwargs: _counts.update([name]))


def _job(width, log=None):
    """One experiment-style job: its own model, optimizer, initialisation and grid."""
    train, test = synthetic.teacher_network(3, width=8).split(64, 32, seed=0)

    def run():
        tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
        states = create_train_states(MLP(widths=(width,)), tx, train["x"][:1], [0, 1])
        return fit_grid(states, train, batching.minibatches(16), loss=mean_squared_error,
                        steps=20, eval_every=10, eval_data=test, data_seeds=[0, 1], log=log,
                        tags={"width": width}, verbose=False)

    return run


def test_concurrent_jobs_equal_the_jobs_in_turn_and_compile_as_much():
    run_jobs([_job(20)])  # the programs every width shares
    _counts.clear()
    run_jobs([_job(21), _job(22), _job(23)], workers=1)
    built_in_turn = _counts[_LOWER]
    _counts.clear()
    # New widths: every program is built again, now by two threads at once.
    at_once = run_jobs([_job(24), _job(25), _job(26)], workers=2)
    assert _counts[_LOWER] == built_in_turn > 0, (built_in_turn, dict(_counts))
    in_turn = run_jobs([_job(24), _job(25), _job(26)], workers=1)
    for (state, history), (other_state, other_history) in zip(at_once, in_turn, strict=True):
        chex.assert_trees_all_equal(state, other_state)
        for key in history:
            np.testing.assert_array_equal(history[key], other_history[key])
    # Results come in the order of the jobs.
    assert [s.params["Dense_0"]["kernel"].shape[-1] for s, _ in at_once] == [24, 25, 26]


def test_jobs_share_a_metrics_log(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    run_jobs([_job(9, log), _job(10, log)], workers=2)
    log.close()
    records = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert sorted((r["width"], r["step"]) for r in records) == [(9, 10), (9, 20), (10, 10),
                                                                (10, 20)]


def test_worker_threads_see_the_callers_interceptors():
    def double(next_fun, args, kwargs, context):
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(double):
        seen = run_jobs([interceptors.active] * 3, workers=2)
    assert seen == [(double,)] * 3
    assert run_jobs([interceptors.active] * 2, workers=2) == [()] * 2


def test_the_first_failing_job_raises_and_bad_workers_are_refused():
    def fail(message):
        def job():
            raise ValueError(message)
        return job

    with pytest.raises(ValueError, match="first"):
        run_jobs([lambda: 1, fail("first"), fail("second")], workers=2)
    with pytest.raises(ValueError, match="workers=0"):
        run_jobs([lambda: 1], workers=0)
    assert run_jobs([], workers=2) == []
