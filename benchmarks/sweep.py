"""Seed-grid training vs a plain per-model jitted loop, in one process.

Workload (issue 3): widths 8..1024 x 5 seeds, 2,000 Adam steps on 1,024 points in 8-D
(full batch), one-hidden-layer tanh MLP, MSE. Three ways, timed end to end (compilation
included, since a sweep pays for it):
  loop  a jitted train step called once per step, per model (the plain way);
  sequential  fit_grid(strategy="sequential"): one compiled scan per model, a call per chunk;
  vmap  fit_grid(strategy="vmap"): one program per width, seeds batched together.
Prints each time and the ratio loop / grid. Not a test: run it by hand.

  python benchmarks/sweep.py                 # the issue's workload
  python benchmarks/sweep.py --steps=200     # a quicker look
"""

from __future__ import annotations

import time

import jax
import ml_collections
import numpy as np
from absl import app, flags

from dl_theory.data import batching, synthetic
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import create_train_state, create_train_states
from dl_theory.train.step import make_train_step

_WIDTHS = flags.DEFINE_list("widths", ["8", "32", "128", "512", "1024"], "Hidden widths.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Seeds per width.")
_STEPS = flags.DEFINE_integer("steps", 2000, "Adam steps per model.")
_POINTS = flags.DEFINE_integer("points", 1024, "Training points (full batch).")
_DIM = flags.DEFINE_integer("dim", 8, "Input dimension.")


def _setup(width):
    model = MLP(widths=(width,), activation="tanh")
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-3)))
    return model, tx


def time_loop(data, widths, seeds, steps) -> tuple[float, float]:
    """Per-model jitted step in a Python loop; returns (seconds, final mean loss)."""
    start, losses = time.perf_counter(), []
    for width in widths:
        model, tx = _setup(width)
        step = jax.jit(make_train_step(mean_squared_error))
        for seed in seeds:
            state = create_train_state(model, tx, data["x"][:1], seed)
            for _ in range(steps):
                state, metrics = step(state, data)
            losses.append(float(metrics["loss"]))
    return time.perf_counter() - start, float(np.mean(losses))


def time_grid(data, widths, seeds, steps, strategy) -> tuple[float, float]:
    """fit_grid per width; returns (seconds, final mean loss)."""
    start, losses = time.perf_counter(), []
    for width in widths:
        model, tx = _setup(width)
        states = create_train_states(model, tx, data["x"][:1], seeds)
        _, history = fit_grid(states, data, batching.full_batch(), loss=mean_squared_error,
                              steps=steps, data_seeds=seeds, strategy=strategy, verbose=False)
        losses.extend(history["loss"][:, -1].tolist())
    return time.perf_counter() - start, float(np.mean(losses))


def main(argv):
    del argv
    widths, seeds = [int(w) for w in _WIDTHS.value], list(range(_SEEDS.value))
    data = synthetic.teacher_network(_DIM.value).split(_POINTS.value, 1, seed=0)[0]
    print(f"devices: {jax.devices()}; widths {widths} x {len(seeds)} seeds x {_STEPS.value} "
          f"steps, {_POINTS.value} points in {_DIM.value}-D")
    results = {"loop": time_loop(data, widths, seeds, _STEPS.value)}
    for strategy in ("sequential", "vmap"):
        results[strategy] = time_grid(data, widths, seeds, _STEPS.value, strategy)
    for name, (seconds, loss) in results.items():
        print(f"{name:5s} {seconds:8.2f} s   final loss {loss:.4g}")
    for strategy in ("sequential", "vmap"):
        print(f"speed-up of fit_grid({strategy}) over the per-model loop: "
              f"{results['loop'][0] / results[strategy][0]:.2f}x")


if __name__ == "__main__":
    app.run(main)
