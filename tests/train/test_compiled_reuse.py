"""Compiled programs are reused across fit / fit_grid calls, and never shared by calls that
differ; concurrent grid members give exactly what each member gives alone."""

import collections

import chex
import flax.linen as nn
import jax
import ml_collections
import numpy as np
import pytest
from jax import monitoring

from dl_theory.data import batching, synthetic
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.train import fit as fit_lib
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import ModuleApply, create_train_state, create_train_states

_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_COMPILE = "/jax/core/compile/backend_compile_duration"
_counts: collections.Counter = collections.Counter()
monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kwargs: _counts.update([name]))


def _data():
    return synthetic.teacher_network(3, width=8).split(64, 32, seed=0)


def _sweep(train, test, width, seeds=(0, 1, 2), **kwargs):
    """What an experiment does per call: fresh model, optimizer, sampler and state."""
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
    states = create_train_states(MLP(widths=(width,)), tx, train["x"][:1], list(seeds))
    return fit_lib.fit_grid(states, train, batching.minibatches(16), loss=mean_squared_error,
                            steps=20, eval_every=10, eval_data=test, data_seeds=list(seeds),
                            verbose=False, **kwargs)


@pytest.mark.parametrize("strategy", ["sequential", "vmap"])
def test_second_identical_call_traces_and_compiles_nothing(strategy):
    train, test = _data()
    first_state, first = _sweep(train, test, 6, strategy=strategy)
    _counts.clear()
    second_state, second = _sweep(train, test, 6, strategy=strategy)
    assert _counts[_TRACE] == 0 and _counts[_COMPILE] == 0, dict(_counts)
    chex.assert_trees_all_equal(second_state.params, first_state.params)
    np.testing.assert_array_equal(second["eval_loss"], first["eval_loss"])
    _counts.clear()
    _sweep(train, test, 7, strategy=strategy)  # a new width is a new program
    assert _counts[_COMPILE] > 0


def test_fit_reuses_its_program_across_calls():
    train, test = _data()

    def run():
        tx = build_optimizer(ml_collections.ConfigDict(dict(name="sgd", learning_rate=0.1)))
        state = create_train_state(MLP(widths=(5,)), tx, train["x"][:1], seed=0)
        return fit_lib.fit(state, train, batching.full_batch(), loss=mean_squared_error,
                           steps=10, eval_data=test, verbose=False)

    run()
    _counts.clear()
    run()
    assert _counts[_TRACE] == 0 and _counts[_COMPILE] == 0, dict(_counts)


def test_calls_that_differ_never_share_a_program():
    train, test = _data()
    _, small_batches = _sweep(train, test, 6)
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
    states = create_train_states(MLP(widths=(6,)), tx, train["x"][:1], [0, 1, 2])
    _, large_batches = fit_lib.fit_grid(states, train, batching.minibatches(32),
                                        loss=mean_squared_error, steps=20, eval_every=10,
                                        eval_data=test, data_seeds=[0, 1, 2], verbose=False)
    assert not np.array_equal(small_batches["loss"], large_batches["loss"])
    other_lr = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=2e-2)))
    assert other_lr is not tx
    assert build_optimizer(ml_collections.ConfigDict(dict(name="adam",
                                                          learning_rate=1e-2))) is tx
    assert ModuleApply(MLP(widths=(6,))) == ModuleApply(MLP(widths=(6,)))
    assert ModuleApply(MLP(widths=(6,))) != ModuleApply(MLP(widths=(7,)))
    assert ModuleApply(MLP(widths=(6,))) != ModuleApply(MLP(widths=(6,), activation="tanh"))
    assert batching.minibatches(16) == batching.minibatches(16) != batching.minibatches(32)


def test_concurrent_members_equal_each_member_trained_alone():
    train, test = _data()
    seeds = [0, 1, 2, 3, 4]
    both_cores, history = _sweep(train, test, 32, seeds=seeds, strategy="sequential",
                                 workers=2)
    one_core, one_history = _sweep(train, test, 32, seeds=seeds, strategy="sequential",
                                   workers=1)
    chex.assert_trees_all_equal(both_cores, one_core)
    for key in history:
        np.testing.assert_array_equal(history[key], one_history[key])
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
    for g, seed in enumerate(seeds):
        alone, alone_history = fit_lib.fit(
            create_train_state(MLP(widths=(32,)), tx, train["x"][:1], seed), train,
            batching.minibatches(16), loss=mean_squared_error, steps=20, eval_every=10,
            data_seed=seed, verbose=False)
        chex.assert_trees_all_equal(jax.tree.map(lambda a, g=g: a[g], both_cores.params),
                                    alone.params)
        np.testing.assert_array_equal(history["loss"][g], alone_history["loss"])


def test_concurrent_members_compile_each_program_once():
    """The chunk is compiled ahead of the members, not by each worker thread: a new width
    costs as many compilations with two workers as with one."""
    train, test = _data()
    _sweep(train, test, 5, strategy="sequential")  # what every width shares is compiled now
    _counts.clear()
    _sweep(train, test, 11, strategy="sequential", workers=2)
    two_workers = _counts[_COMPILE]
    _counts.clear()
    _sweep(train, test, 13, strategy="sequential", workers=1)
    assert two_workers == _counts[_COMPILE] > 0, (two_workers, dict(_counts))


def test_grid_initialisation_equals_member_by_member_initialisation():
    x = np.ones((2, 3), np.float32)
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
    grid = create_train_states(MLP(widths=(9, 4), dropout_rate=0.1), tx, x, [3, 5])
    for g, seed in enumerate([3, 5]):
        alone = create_train_state(MLP(widths=(9, 4), dropout_rate=0.1), tx, x, seed)
        chex.assert_trees_all_equal(jax.tree.map(lambda a, g=g: a[g], grid), alone)


def test_deep_stacks_are_initialised_op_by_op_with_the_compiled_bits():
    """A deep stack of equal layers skips the compiled init (cheaper op by op) and gets the
    very bits the compiled program gives; a net without repeated shapes is compiled."""
    from dl_theory.models.residual import ResidualMLP
    from dl_theory.train import state as state_lib

    x = np.ones((2, 5), np.float32)
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="momentum", learning_rate=0.1)))
    deep = ResidualMLP(3, width=6, depth=12)
    assert state_lib._repeats_shapes(deep, x)
    assert not state_lib._repeats_shapes(MLP(widths=(9, 4)), x)
    programs = state_lib._init_one._cache_size()
    grid = create_train_states(deep, tx, x, [3, 5])
    assert state_lib._init_one._cache_size() == programs
    for g, seed in enumerate([3, 5]):
        compiled = state_lib._init_one(x, state_lib._seed_keys(np.int32(seed)), None,
                                       model=deep, tx=tx, active=())
        chex.assert_trees_all_equal(jax.tree.map(lambda a, g=g: a[g], grid), compiled)


def _double_dense(next_fun, args, kwargs, context):
    """An interceptor that changes the computation: every Dense output doubled."""
    out = next_fun(*args, **kwargs)
    return 2 * out if context.method_name == "__call__" and context.module.name == "Dense_0" \
        else out


def test_flax_interceptors_are_part_of_the_key_and_reach_worker_threads():
    train, test = _data()
    _, plain = _sweep(train, test, 6, strategy="sequential", workers=2)
    with nn.intercept_methods(_double_dense):
        _, intercepted = _sweep(train, test, 6, strategy="sequential", workers=2)
        _, alone = _sweep(train, test, 6, strategy="sequential", workers=1)
    assert not np.array_equal(plain["loss"], intercepted["loss"])
    np.testing.assert_array_equal(intercepted["loss"], alone["loss"])
    _, plain_again = _sweep(train, test, 6, strategy="sequential", workers=2)
    np.testing.assert_array_equal(plain_again["loss"], plain["loss"])


def test_a_crowded_process_drops_its_programs_and_trains_the_same_numbers(monkeypatch):
    """Past the memory-map budget (XLA:CPU maps each program into dozens of regions; a
    process over `vm.max_map_count` segfaults in the next compilation) every cached program
    is dropped: the next call compiles again and gives the same bits."""
    from dl_theory.train import program_memory

    train, test = _data()
    first_state, first = _sweep(train, test, 6)
    regions = program_memory.mapped_regions()
    assert regions is not None and regions > 0
    assert not program_memory.release_if_crowded()  # far below half the limit here
    monkeypatch.setattr(program_memory, "max_map_count", lambda: regions // 2)
    _counts.clear()
    second_state, second = _sweep(train, test, 6)  # fit drops the cache first
    assert _counts[_COMPILE] > 0, dict(_counts)
    chex.assert_trees_all_equal(second_state.params, first_state.params)
    np.testing.assert_array_equal(second["eval_loss"], first["eval_loss"])
