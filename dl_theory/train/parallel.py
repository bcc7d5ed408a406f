"""Data parallelism with `jax.jit` and `NamedSharding` over a device `Mesh`, on one or many hosts.

Synchronous data-parallel SGD (e.g. Goyal et al. 2017, "Accurate, Large Minibatch SGD"): the
batch's leading axis is split over the mesh axis "data", parameters and optimizer state are
replicated, and XLA's SPMD partitioner inserts the all-reduce of the gradient, so

    grad (1/B) sum_i l_i  =  (1/n) sum_d grad (1/(B/n)) sum_{i in shard d} l_i

and n devices follow the 1-device trajectory to float tolerance (only the summation order
differs). The same functions shard the leading member axis of a stacked seed grid
(`create_train_states`) instead, one slice of members per device. A mesh may have a second
"model" axis (size 1 here) for parameter sharding later.

The same code runs on 1 device, on N simulated CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=N`, set before jax is imported) and on
several processes after `initialize_distributed`; there each process feeds its own rows
(`process_shard`) and `shard_batch` assembles the global batch without gathering it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None, axis_names: Sequence[str] = (DATA_AXIS,),
              axis_sizes: Sequence[int] | None = None) -> Mesh:
    """A mesh over the first `num_devices` of `jax.devices()` (default: all, on all hosts).

    `axis_sizes` defaults to every device on the first axis and 1 on the others, e.g.
    axis_names=("data", "model") gives shape [num_devices, 1]. Devices keep `jax.devices()`
    order (process 0's first), the order in which `process_shard` hands out rows.
    """
    devices = jax.devices()
    num_devices = len(devices) if num_devices is None else num_devices
    if not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices={num_devices}; between 1 and the {len(devices)} "
                         f"available devices ({devices[0].platform})")
    axis_names = tuple(axis_names)
    if len(set(axis_names)) != len(axis_names) or not axis_names:
        raise ValueError(f"axis_names={axis_names}; need distinct names, at least one")
    if axis_sizes is None:
        axis_sizes = (num_devices,) + (1,) * (len(axis_names) - 1)
    axis_sizes = tuple(int(size) for size in axis_sizes)
    if len(axis_sizes) != len(axis_names) or int(np.prod(axis_sizes)) != num_devices:
        raise ValueError(f"axis_sizes={axis_sizes} for axis_names={axis_names}: need one size "
                         f"per name, with product num_devices={num_devices}")
    return Mesh(np.asarray(devices[:num_devices]).reshape(axis_sizes), axis_names)


def data_sharding(mesh: Mesh, axis: str = DATA_AXIS) -> NamedSharding:
    """Leading array axis split over mesh axis `axis`, the rest replicated."""
    if axis not in mesh.axis_names:
        raise ValueError(f"axis={axis!r}; mesh axes: {list(mesh.axis_names)}")
    return NamedSharding(mesh, PartitionSpec(axis))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of the mesh."""
    return NamedSharding(mesh, PartitionSpec())


def _check_divisible(tree: Any, divisor: int, leaf_kind: str, size_kind: str, by: str,
                     allow_scalars: bool = False) -> None:
    """A clear error naming the first leaf whose leading size `divisor` does not divide."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = np.shape(leaf)
        if allow_scalars and not shape:
            continue
        if not shape or shape[0] % divisor:
            size = shape[0] if shape else "none (a scalar)"
            raise ValueError(f"{leaf_kind} {jax.tree_util.keystr(path)} has {size_kind} {size}, "
                             f"not divisible by {by}")


def shard_batch(batch: Any, mesh: Mesh, axis: str = DATA_AXIS) -> Any:
    """The global batch, leading axis split over `axis`, from this process's rows.

    On one process `batch` is the whole batch; on P processes each passes its own rows
    (`process_shard`) and the global leading size is P times the local one. That size must
    be divisible by the devices along `axis` (clear error, before anything compiles).
    Scalar leaves (e.g. a micro-batch "normalizer") are replicated.
    """
    sharding, replicated = data_sharding(mesh, axis), replicated_sharding(mesh)
    local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)
    per_process = mesh.shape[axis] * local_devices // mesh.devices.size
    by = f"the {per_process} devices of mesh axis {axis!r}"
    if jax.process_count() > 1:
        by += f" on process {jax.process_index()} (local rows)"
    _check_divisible(batch, per_process, "batch leaf", "batch size", by, allow_scalars=True)

    def put(x):
        return jax.make_array_from_process_local_data(sharding if np.ndim(x) else replicated, x)

    return jax.tree.map(put, batch)


def shard_sampler(sample_batch: Callable[[Any, jax.Array], Any], mesh: Mesh,
                  axis: str = DATA_AXIS) -> Callable[[Any, jax.Array], Any]:
    """`sample_batch` (a `dl_theory.data.batching` sampler) whose batches are split over
    `axis` inside the compiled program (`with_sharding_constraint`; scalars replicated).

    With a replicated state and data set (`replicate`), `fit(state, data,
    shard_sampler(minibatches(B), mesh), ...)` is data-parallel with no change to `fit`:
    every device draws the same indices, keeps its B/n rows, and XLA all-reduces the
    gradient. B must be divisible by the n devices along `axis`.
    """
    sharding, replicated = data_sharding(mesh, axis), replicated_sharding(mesh)

    def constrain(x):
        return jax.lax.with_sharding_constraint(x, sharding if x.ndim else replicated)

    def sample(data: Any, key: jax.Array) -> Any:
        batch = sample_batch(data, key)
        _check_divisible(batch, mesh.shape[axis], "batch leaf", "batch size",
                         f"the {mesh.shape[axis]} devices of mesh axis {axis!r}",
                         allow_scalars=True)
        return jax.tree.map(constrain, batch)

    return sample


def replicate(tree: Any, mesh: Mesh) -> Any:
    """`tree` copied to every device of `mesh` (parameters, optimizer state, a shared data
    set). On several processes every process must pass the same values."""
    return jax.device_put(tree, replicated_sharding(mesh))


def shard_grid(states: Any, mesh: Mesh, axis: str = DATA_AXIS) -> Any:
    """Stacked grid states (leading member axis G, e.g. from `create_train_states`) with the
    members split over mesh axis `axis`: each device trains G/n members.

    G must be divisible by the n devices: a clear error otherwise. Padding with dummy
    members is left to the caller, because their losses would enter every summary.
    """
    _check_divisible(states, mesh.shape[axis], "grid leaf", "member count",
                     f"the {mesh.shape[axis]} devices of mesh axis {axis!r}")
    return jax.device_put(states, data_sharding(mesh, axis))


def initialize_distributed(coordinator_address: str | None = None,
                           num_processes: int | None = None, process_id: int | None = None,
                           *, timeout_s: int = 60, heartbeat_timeout_s: int = 100,
                           cpu_collectives: str = "gloo") -> None:
    """`jax.distributed.initialize` with every wait on a peer bounded by `timeout_s`.

    coordinator_address is "host:port" of process 0; all None: detected from the cluster
    environment (SLURM, Open MPI, TPU). Call before any other JAX computation. Joining and
    shutting down wait at most `timeout_s` seconds for the other processes, and a peer
    silent for `heartbeat_timeout_s` seconds counts as dead. When a peer never joins, XLA
    would terminate this process (SIGABRT and a C++ stack trace, "DEADLINE_EXCEEDED ...
    RegisterTask": fatal in XLA, not a Python exception) about 6 s after timeout_s; a
    watchdog ends it first, at timeout_s, with one line on stderr naming this process, the
    address and how long it waited, and exit status `JOIN_TIMEOUT_EXIT_STATUS`. On CPU,
    cross-process collectives use `cpu_collectives` ("gloo", JAX's default, or "mpi").
    """
    given = (coordinator_address, num_processes, process_id)
    if any(v is None for v in given) and any(v is not None for v in given):
        raise ValueError(f"coordinator_address={coordinator_address!r}, num_processes="
                         f"{num_processes!r}, process_id={process_id!r}: give all three, or "
                         "none to detect them from the cluster environment")
    if coordinator_address is not None:
        host, _, port = coordinator_address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"coordinator_address={coordinator_address!r}; need 'host:port'")
        if not (isinstance(num_processes, int) and num_processes >= 1):
            raise ValueError(f"num_processes={num_processes!r}; must be an integer >= 1")
        if not (isinstance(process_id, int) and 0 <= process_id < num_processes):
            raise ValueError(f"process_id={process_id!r}; must be in [0, {num_processes})")
    for name, value in (("timeout_s", timeout_s), ("heartbeat_timeout_s", heartbeat_timeout_s)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; must be an integer number of seconds >= 1")
    jax.config.update("jax_cpu_collectives_implementation", cpu_collectives)
    joined = _start_join_watchdog(coordinator_address, num_processes, process_id, timeout_s)
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id,
                                   initialization_timeout=timeout_s,
                                   heartbeat_timeout_seconds=heartbeat_timeout_s,
                                   shutdown_timeout_seconds=timeout_s)
        joined.set()
    except (RuntimeError, ValueError) as error:
        joined.set()
        raise RuntimeError(f"initialize_distributed(coordinator_address="
                           f"{coordinator_address!r}, num_processes={num_processes}, "
                           f"process_id={process_id}) failed: {error}") from error


JOIN_TIMEOUT_EXIT_STATUS = 2


def _start_join_watchdog(coordinator_address, num_processes, process_id,
                         timeout_s: int) -> threading.Event:
    """An event to set once joined; unless it is set within `timeout_s`, a daemon thread
    prints one line and ends the process (os._exit: the main thread is blocked inside XLA,
    where no Python exception can reach it)."""
    joined = threading.Event()
    who = ("this process" if process_id is None
           else f"process {process_id} of {num_processes}")
    where = coordinator_address or "the coordinator the cluster environment names"

    def watch():
        if not joined.wait(timeout_s):
            print(f"initialize_distributed: {who} waited {timeout_s} s at {where} and not "
                  f"every process joined (a peer never started, or cannot reach that "
                  f"address); start all {num_processes or 'P'} processes with the same "
                  "--coordinator_address, or raise --distributed_timeout_s",
                  file=sys.stderr, flush=True)
            os._exit(JOIN_TIMEOUT_EXIT_STATUS)

    threading.Thread(target=watch, name="join-watchdog", daemon=True).start()
    return joined


def process_shard(data: Any, process_index: int | None = None,
                  process_count: int | None = None) -> Any:
    """This process's contiguous slice of a data set (a tree of arrays sharing their leading
    axis N): rows [p N/P, (p+1) N/P) for process p of P (default: this process).

    With a mesh from `make_mesh` (devices in process order), `shard_batch` of these slices
    is the global array of `data`. N must be divisible by P: a clear error otherwise.
    """
    p = jax.process_index() if process_index is None else process_index
    num = jax.process_count() if process_count is None else process_count
    if not 0 <= p < num:
        raise ValueError(f"process_index={p}; must be in [0, process_count={num})")
    _check_divisible(data, num, "data leaf", "row count", f"the {num} processes")
    return jax.tree.map(lambda x: x[p * (x.shape[0] // num):(p + 1) * (x.shape[0] // num)], data)
