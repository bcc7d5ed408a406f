"""Data parallelism: 4 simulated CPU devices, and 2 processes, reproduce 1-device training.

A JAX process's device count is fixed at start-up, so the multi-device and multi-process runs
are subprocesses (tests/train/parallel_worker.py); this process (1 device) computes the
1-device results they must match.
"""

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.train import parallel
from dl_theory.train.checkpoint import Checkpointer

WORKER = Path(__file__).with_name("parallel_worker.py")
# Summation order differs across devices (all-reduce of partial gradients), nothing else.
RTOL, ATOL = 1e-5, 1e-6


def load_worker():
    spec = importlib.util.spec_from_file_location("parallel_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker_env(devices=None):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    if devices is not None:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def spawn(*args, devices=None):
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)],
                            env=worker_env(devices), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(processes, timeout):
    """Waits for every process (killing all of them past `timeout` seconds); their
    (stdout, stderr) texts."""
    deadline, outputs = time.monotonic() + timeout, []
    try:
        for proc in processes:
            outputs.append(proc.communicate(timeout=max(deadline - time.monotonic(), 1)))
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outputs


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_same_params(arrays, reference, prefix):
    keys = sorted(k for k in reference if k.startswith(prefix + "/"))
    assert len(keys) == 4  # Dense_0 and Dense_1, kernel and bias
    for key in keys:
        np.testing.assert_allclose(arrays[key], reference[key], rtol=RTOL, atol=ATOL,
                                   err_msg=key)


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    """(report, arrays) of the 4-device run, and the 1-device reference computed here while
    the subprocess runs."""
    assert len(jax.devices()) == 1
    out = tmp_path_factory.mktemp("four_devices")
    proc = spawn("devices", out, devices=4)
    try:
        reference = load_worker().references()
    finally:
        ((_, stderr),) = finish([proc], timeout=240)
    assert (out / "report.json").exists(), stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    with np.load(out / "arrays.npz") as arrays:
        return report, dict(arrays), reference


@pytest.fixture(scope="module")
def reference(four_devices):
    return four_devices[2]


def test_data_parallel_steps_on_4_devices_match_1_device(four_devices, reference):
    report, arrays, _ = four_devices
    assert report["num_devices"] == 4 and report["batch_shard_rows"] == [8, 8, 8, 8]
    assert report["all_reduce"] and report["params_spec"] == "P()"
    assert_same_params(arrays, reference, "step")
    moved = np.abs(reference["step/Dense_0/kernel"] - reference["init/Dense_0/kernel"]).max()
    assert moved > 1e-2  # the steps did train


def test_fit_on_4_devices_runs_data_parallel_and_matches_1_device(four_devices, reference):
    assert_same_params(four_devices[1], reference, "fit")


def test_checkpoint_written_on_4_devices_restores_on_1(four_devices):
    report, arrays, _ = four_devices
    worker = load_worker()
    model, tx, data = worker.problem()
    like = worker.init_state(model, tx, data["x"][:1])
    out = Path(report["out"])
    restored, extra = Checkpointer(out / "checkpoint").restore_latest({"train": like})
    assert extra["step"] == int(restored["train"].step) > 0
    assert_same_params(worker.flat_params(restored["train"].params, "fit"), arrays, "fit")


def test_batch_not_divisible_by_the_devices_is_a_clear_error(four_devices):
    assert four_devices[0]["indivisible_batch"] == (
        "batch leaf ['x'] has batch size 6, not divisible by the 4 devices of mesh axis 'data'")


def test_seed_grid_sharded_over_4_devices_equals_the_unsharded_grid(four_devices, reference):
    report, arrays, _ = four_devices
    assert report["grid_shard_members"] == [1, 1, 1, 1]
    assert arrays["fit_grid/Dense_0/kernel"].shape == (4, 3, 16)
    assert_same_params(arrays, reference, "fit_grid")
    assert report["indivisible_grid"] == (
        "grid leaf .step has member count 6, not divisible by the 4 devices of mesh axis 'data'")


def test_two_processes_each_feeding_half_the_batch_train_like_one(tmp_path, reference):
    port = free_port()
    processes = [spawn("process", tmp_path, port, i) for i in range(2)]
    outputs = finish(processes, timeout=180)
    for i, proc in enumerate(processes):
        assert proc.returncode == 0, f"process {i}:\n{outputs[i][1][-3000:]}"
    results = [dict(np.load(tmp_path / f"process{i}.npz")) for i in range(2)]
    data = load_worker().problem()[2]
    for i, result in enumerate(results):
        assert int(result["num_global_devices"]) == 2
        np.testing.assert_array_equal(result["local_rows"], data["x"][16 * i:16 * (i + 1)])
        assert_same_params(result, reference, "step")


@pytest.mark.parametrize("process_id", [0, 1])
def test_a_peer_that_never_joins_ends_the_process_with_one_line_at_the_timeout(process_id):
    port = free_port()
    proc = spawn("lone", port, 2, process_id)
    ((stdout, stderr),) = finish([proc], timeout=90)
    assert proc.returncode == parallel.JOIN_TIMEOUT_EXIT_STATUS, stderr[-3000:]
    assert "joined without the peer" not in stdout
    lines = [line for line in stderr.splitlines() if line.strip()
             and not re.match(r"^[IWEF]\d{4} ", line)]  # absl log records aside
    assert len(lines) == 1, stderr[-3000:]
    assert f"process {process_id} of 2 waited 2 s at 127.0.0.1:{port}" in lines[0]
    # The watchdog ended it, not XLA's abort (which comes ~6 s after the timeout).
    assert "DEADLINE_EXCEEDED" not in stderr and "Check failure" not in stderr


def test_make_mesh_shapes_and_errors():
    mesh = parallel.make_mesh(axis_names=("data", "model"))
    assert dict(mesh.shape) == {"data": 1, "model": 1}
    with pytest.raises(ValueError, match=r"num_devices=2; between 1 and the 1 available"):
        parallel.make_mesh(num_devices=2)
    with pytest.raises(ValueError, match=r"axis_sizes=\(2,\) for axis_names=\('data',\)"):
        parallel.make_mesh(axis_sizes=(2,))
    with pytest.raises(ValueError, match=r"axis='model'; mesh axes: \['data'\]"):
        parallel.data_sharding(parallel.make_mesh(), "model")


def test_shard_batch_on_one_device_keeps_values_and_replicates_scalars():
    mesh = parallel.make_mesh()
    batch = {"x": jnp.arange(6.0).reshape(3, 2), "normalizer": jnp.float32(3.0)}
    sharded = parallel.shard_batch(batch, mesh)
    np.testing.assert_array_equal(sharded["x"], batch["x"])
    assert sharded["x"].sharding.spec == jax.sharding.PartitionSpec("data")
    assert sharded["normalizer"].sharding.spec == jax.sharding.PartitionSpec()


def test_process_shard_gives_contiguous_equal_slices():
    data = {"x": np.arange(12).reshape(6, 2), "y": np.arange(6)}
    shards = [parallel.process_shard(data, p, 3) for p in range(3)]
    np.testing.assert_array_equal(np.concatenate([s["x"] for s in shards]), data["x"])
    np.testing.assert_array_equal(shards[1]["y"], [2, 3])
    np.testing.assert_array_equal(parallel.process_shard(data)["y"], data["y"])
    with pytest.raises(ValueError, match=r"data leaf \['x'\] has row count 6, not divisible "
                                         r"by the 4 processes"):
        parallel.process_shard(data, 0, 4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(coordinator_address="127.0.0.1:1234"), "give all three, or none"),
    (dict(coordinator_address="127.0.0.1", num_processes=2, process_id=0), "need 'host:port'"),
    (dict(coordinator_address="h:1", num_processes=2, process_id=2), r"process_id=2; must be "
                                                                      r"in \[0, 2\)"),
    (dict(coordinator_address="h:1", num_processes=2, process_id=0, timeout_s=0),
     "timeout_s=0; must be an integer"),
])
def test_initialize_distributed_rejects_bad_arguments_before_joining(kwargs, message):
    with pytest.raises(ValueError, match=message):
        parallel.initialize_distributed(**kwargs)
