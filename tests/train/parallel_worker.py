"""Subprocess side of tests/train/test_parallel.py: the device count of a JAX process is fixed
when jax starts, so multi-device and multi-process runs happen in fresh interpreters.

python parallel_worker.py devices OUT        (under --xla_force_host_platform_device_count=4)
python parallel_worker.py process OUT PORT ID    (one of two processes, one CPU device each)
python parallel_worker.py lone PORT TIMEOUT ID   (process ID of 2 whose peer never comes)

The test imports this file too, for the 1-device results (`references`).
"""

import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.data import batching
from dl_theory.models.mlp import MLP
from dl_theory.train import parallel
from dl_theory.train.checkpoint import Checkpointer
from dl_theory.train.fit import fit, fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import create_train_state, create_train_states
from dl_theory.train.step import make_train_step

STEPS = 5
SEEDS = (0, 1, 2, 3)


def problem():
    """(model, tx, data): a 2-layer MLP, Adam and 32 noisy samples of sin(x_0)."""
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 3))
    data = {"x": x, "y": jnp.sin(x[:, :1]) + 0.1 * x[:, 1:2]}
    return MLP(widths=(16,), out_dim=1), optax.adam(1e-2), data


def init_state(model, tx, x_example):
    """create_train_state with seed 0, compiled (eager flax init dispatches op by op)."""
    return jax.jit(lambda x: create_train_state(model, tx, x, 0))(x_example)


def init_grid(model, tx, x_example):
    """create_train_states for SEEDS, compiled."""
    return jax.jit(lambda x: create_train_states(model, tx, x, SEEDS))(x_example)


def train_steps(state, batch, in_shardings=None, out_shardings=None):
    """STEPS train steps on one fixed batch, jitted (with the shardings, if given)."""
    step = make_train_step(mean_squared_error)
    kwargs = {} if in_shardings is None else dict(in_shardings=in_shardings,
                                                  out_shardings=out_shardings)
    jitted = jax.jit(step, **kwargs)
    for _ in range(STEPS):
        state, _ = jitted(state, batch)
    return state, jitted


def fit_steps(state, data):
    """fit on minibatches of 16 (drawn inside the compiled scan), 2 * STEPS steps."""
    return fit(state, data, batching.minibatches(16), loss=mean_squared_error,
               steps=2 * STEPS, verbose=False)[0]


def fit_grid_steps(states, data):
    """fit_grid of the SEEDS members on minibatches of 8, 2 * STEPS steps."""
    return fit_grid(states, data, batching.minibatches(8), loss=mean_squared_error,
                    steps=2 * STEPS, data_seeds=SEEDS, verbose=False)[0]


def flat_params(params, prefix):
    """{prefix/Dense_0/kernel: array, ...} on the host; of a replicated array spanning
    several processes, this process's copy."""

    def host(leaf):
        return np.asarray(leaf if leaf.is_fully_addressable else leaf.addressable_data(0))

    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return {"/".join([prefix] + [str(k.key) for k in path]): host(leaf) for path, leaf in leaves}


def references():
    """The 1-device (unsharded) results that run_devices reproduces on 4 devices."""
    model, tx, data = problem()
    state, states = init_state(model, tx, data["x"][:1]), init_grid(model, tx, data["x"][:1])
    return {**flat_params(state.params, "init"),
            **flat_params(train_steps(state, data)[0].params, "step"),
            **flat_params(fit_steps(state, data).params, "fit"),
            **flat_params(fit_grid_steps(states, data).params, "fit_grid")}


def run_devices(out):
    model, tx, data = problem()
    mesh = parallel.make_mesh()
    report = {"num_devices": len(jax.devices()), "out": str(out)}
    rep, by_data = parallel.replicated_sharding(mesh), parallel.data_sharding(mesh)

    state = parallel.replicate(init_state(model, tx, data["x"][:1]), mesh)
    batch = parallel.shard_batch(data, mesh)
    report["batch_shard_rows"] = [s.data.shape[0] for s in batch["x"].addressable_shards]
    trained, jitted = train_steps(state, batch, (rep, by_data), (rep, rep))
    report["all_reduce"] = "all-reduce" in jitted.lower(state, batch).compile().as_text()
    report["params_spec"] = str(trained.params["Dense_0"]["kernel"].sharding.spec)
    arrays = flat_params(trained.params, "step")
    # fit sees 4 devices and runs data-parallel by itself: plain state, data and sampler.
    fitted = fit_steps(init_state(model, tx, data["x"][:1]), data)
    # Saved from 4 devices (replicated arrays); test_parallel restores it on 1 device.
    Checkpointer(f"{out}/checkpoint").save(int(fitted.step), {"train": fitted},
                                           {"step": int(fitted.step)})
    arrays.update(flat_params(fitted.params, "fit"))
    try:
        parallel.shard_batch({"x": data["x"][:6], "y": data["y"][:6]}, mesh)
    except ValueError as error:
        report["indivisible_batch"] = str(error)

    # fit_grid shards the 4 members over the 4 devices by itself.
    states = init_grid(model, tx, data["x"][:1])
    fitted = fit_grid_steps(states, data)
    kernel = fitted.params["Dense_0"]["kernel"]
    report["grid_shard_members"] = [s.data.shape[0] for s in kernel.addressable_shards]
    arrays.update(flat_params(fitted.params, "fit_grid"))
    six = jax.tree.map(lambda a: jnp.concatenate([a, a[:2]]), states)
    try:
        parallel.shard_grid(six, mesh)
    except ValueError as error:
        report["indivisible_grid"] = str(error)
    np.savez(f"{out}/arrays.npz", **arrays)
    with open(f"{out}/report.json", "w") as f:
        json.dump(report, f)


def run_process(out, port, process_id):
    parallel.initialize_distributed(f"127.0.0.1:{port}", 2, process_id, timeout_s=30)
    model, tx, data = problem()
    mesh = parallel.make_mesh()
    rep, by_data = parallel.replicated_sharding(mesh), parallel.data_sharding(mesh)
    state = parallel.replicate(init_state(model, tx, data["x"][:1]), mesh)
    batch = parallel.shard_batch(parallel.process_shard(data), mesh)
    state, _ = train_steps(state, batch, (rep, by_data), (rep, rep))
    arrays = flat_params(state.params, "step")
    arrays["local_rows"] = np.asarray(batch["x"].addressable_data(0))
    arrays["num_global_devices"] = np.asarray(len(jax.devices()))
    np.savez(f"{out}/process{process_id}.npz", **arrays)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "devices":
        run_devices(sys.argv[2])
    elif mode == "process":
        run_process(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "lone":
        parallel.initialize_distributed(f"127.0.0.1:{sys.argv[2]}", 2, int(sys.argv[4]),
                                        timeout_s=int(sys.argv[3]))
        print("joined without the peer", flush=True)
    else:
        raise ValueError(f"mode={mode!r}; known: ['devices', 'lone', 'process']")
