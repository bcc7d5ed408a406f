"""Verdicts do not depend on the machine they were computed on.

Another CPU, another thread count or another device count adds floating-point sums in another
order; a verdict that such a move can flip says nothing about the theory. Each experiment below
runs its quick preset twice more, side by side: on one core (CPU affinity {0}, so XLA's thread
pool has one thread) and on four simulated host devices pinned to the other core (`fit` then
runs data-parallel and `fit_grid` spreads members over the devices: other summation orders).
Both must end `launch.py --strict` with status 0, i.e. with every verdict equal to its spec's
expected verdict, as the experiment's own quick-run test requires of the default run.

inductive_bias is here because its invariance claim once crossed a tolerance drawn from two
seeds on another machine; information_plane because its ReLU compression measures 0.051 bits
on one device and 0.033 on four (a 35 % move, far inside its 0.5-bit bound).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXPERIMENTS = ("inductive_bias", "information_plane")
# name -> (extra XLA flags, CPUs the run may use)
VARIANTS = {
    "one_core": ("", {0}),
    "four_devices": ("--xla_force_host_platform_device_count=4", {1}),
}


def _launch(name: str, workdir: pathlib.Path, xla_flags: str, cpus: set[int]):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    usable = os.sched_getaffinity(0)
    cpus = {c for c in cpus if c in usable} or usable  # a 1-CPU machine runs both on its CPU
    return subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), f"--config=experiments/{name}.py:quick",
         f"--workdir={workdir}", "--strict"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus))


@pytest.mark.experiment
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_verdicts_are_the_same_on_one_core_and_on_four_devices(name, tmp_path):
    runs = {variant: _launch(name, tmp_path / variant, flags, cpus)
            for variant, (flags, cpus) in VARIANTS.items()}
    outputs = {variant: run.communicate(timeout=900)[0] for variant, run in runs.items()}
    for variant, run in runs.items():
        assert run.returncode == 0, f"{name} on {variant}:\n{outputs[variant][-3000:]}"
    verdicts = {}
    for variant in VARIANTS:
        payload = json.loads((tmp_path / variant / "results.json").read_text())
        assert payload["env"]["device_count"] == (4 if variant == "four_devices" else 1)
        verdicts[variant] = {c["id"]: c["holds"] for c in payload["claims"]}
    assert verdicts["one_core"] == verdicts["four_devices"]
