"""Data-parallel step time on 1, 2, 4 devices at a fixed global batch (strong scaling).

For each N in `--devices`, this file re-executes itself in a subprocess with
`XLA_FLAGS=--xla_force_host_platform_device_count=N` (the flag must be set before jax starts,
hence a fresh process) and `--worker_devices=N`. The worker builds a mesh of N devices
(`dl_theory.train.parallel.make_mesh`), replicates a `CausalLM` train state, splits the global
batch of `--batch_size` sequences over the "data" axis (`shard_batch`), and times the jitted
`make_train_step` (XLA inserts the gradient all-reduce): compilation and `--warmup` steps
excluded, `--steps` steps ending in `block_until_ready`. Prints the step time per N and the
speed-up over N = 1. On a CPU the N simulated devices share the same cores, so the speed-up
measures partitioning overhead, not added hardware. Not a test: run it by hand.

  python benchmarks/scaling.py
  python benchmarks/scaling.py --devices=1,2,4,8 --batch_size=64
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import app, flags

_DEVICES = flags.DEFINE_list("devices", ["1", "2", "4"], "Device counts to measure.")
_WORKER = flags.DEFINE_integer("worker_devices", 0, "Internal: run one measurement on this "
                               "many devices and print it as JSON.")
_D_MODEL = flags.DEFINE_integer("d_model", 64, "Model width.")
_NUM_LAYERS = flags.DEFINE_integer("num_layers", 2, "Transformer blocks.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 64, "Tokens per sequence.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Global batch (sequences), fixed across N.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
_VOCAB = 128


def worker(num_devices: int) -> dict:
    """One measurement on `num_devices` devices (this process must see exactly that many)."""
    import jax
    import ml_collections

    from dl_theory.models.transformer import CausalLM
    from dl_theory.optim import build_optimizer
    from dl_theory.train.losses import softmax_cross_entropy
    from dl_theory.train.parallel import make_mesh, replicate, shard_batch
    from dl_theory.train.state import create_train_state
    from dl_theory.train.step import make_train_step

    if jax.device_count() != num_devices:
        raise RuntimeError(f"worker expected {num_devices} devices, sees {jax.device_count()}")
    mesh = make_mesh(num_devices)
    model = CausalLM(vocab_size=_VOCAB, d_model=_D_MODEL.value, num_heads=4,
                     num_layers=_NUM_LAYERS.value, mlp_dim=4 * _D_MODEL.value,
                     max_len=_SEQ_LEN.value)
    tokens = jax.random.randint(jax.random.PRNGKey(0), (_BATCH.value, _SEQ_LEN.value + 1), 0,
                                _VOCAB)
    batch = shard_batch({"x": tokens[:, :-1], "y": tokens[:, 1:]}, mesh)
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-3)))
    state = replicate(create_train_state(model, tx, tokens[:1, :-1], 0), mesh)
    start = time.perf_counter()
    step = jax.jit(make_train_step(softmax_cross_entropy)).lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    for _ in range(_WARMUP.value):
        state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    start = time.perf_counter()
    for _ in range(_STEPS.value):
        state, metrics = step(state, batch)
    jax.block_until_ready((state, metrics))
    return {"devices": num_devices, "step_s": (time.perf_counter() - start) / _STEPS.value,
            "compile_s": compile_s, "loss": float(metrics["loss"])}


def launch(num_devices: int) -> dict:
    """Runs `worker(num_devices)` in a fresh process with N simulated host devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        f" --xla_force_host_platform_device_count={num_devices}").strip()
    passed = [f"--{name}={flags.FLAGS[name].value}" for name in
              ("d_model", "num_layers", "seq_len", "batch_size", "steps", "warmup")]
    done = subprocess.run([sys.executable, os.path.abspath(__file__),
                           f"--worker_devices={num_devices}", *passed],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker on {num_devices} devices failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _WORKER.value:
        print(json.dumps(worker(_WORKER.value)), flush=True)
        return
    counts = [int(n) for n in _DEVICES.value]
    if any(n < 1 or _BATCH.value % n for n in counts):
        raise app.UsageError(f"--devices={counts}: each must be >= 1 and divide "
                             f"--batch_size={_BATCH.value}")
    print(f"CausalLM d_model={_D_MODEL.value} layers={_NUM_LAYERS.value} "
          f"seq_len={_SEQ_LEN.value}, global batch {_BATCH.value} sequences (fixed); "
          f"{_WARMUP.value} warm-up + {_STEPS.value} timed steps; simulated CPU devices")
    results = [launch(n) for n in counts]
    base = next((r["step_s"] for r in results if r["devices"] == 1), results[0]["step_s"])
    for r in results:
        print(f"{r['devices']} device(s): {r['step_s'] * 1e3:8.2f} ms/step  "
              f"speed-up {base / r['step_s']:.2f}x  (compile {r['compile_s']:.1f} s, "
              f"final loss {r['loss']:.4f})")


if __name__ == "__main__":
    app.run(main)
