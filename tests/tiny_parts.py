"""A tiny protocol-v2 experiment (three parts, four claims) for the protocol's own tests."""

import pathlib

TINY_PARTS_EXPERIMENT = '''
"""Tiny v2: means of three lists of numbers against thresholds (protocol tests)."""
import os
import time

import ml_collections
import numpy as np

from dl_theory.experiment import ClaimSpec, Measured, Part

CLAIMS = (
    ClaimSpec("a_mean_small", "mean(a) <= a_max", "test", at_most="a_max"),
    ClaimSpec("b_mean_large", "mean(b) >= 1", "test", at_least=1.0),
    ClaimSpec("c_within_spread", "mean(c) within its own measured spread of 2", "test"),
    ClaimSpec("c_is_negative", "mean(c) < 0 (known not to hold)", "test", at_most=0.0,
              expected_holds=False, why="c is positive by construction"),
)
_PRESETS = {"quick": dict(a=(1.0, 2.0), a_max=2.0, b=(1.0, 3.0), c=(2.0, 2.5), fail_in="",
                          wait_for="", seeds=1, precision="float32")}


def get_config(preset="quick"):
    return ml_collections.ConfigDict(_PRESETS[preset])


def _mean(config, log, key):
    if config.get("fail_in") == key:
        raise RuntimeError(f"part {key} fails on purpose")
    for step, value in enumerate(config[key]):
        log.write({"label": key, "step": step, "value": float(value)})
    return {"mean": float(np.mean(config[key])), "values": list(config[key])}


def _spread(m):
    return 2 * max(abs(v) for v in m["values"])


def compute_b(config, log):
    while config.wait_for and not os.path.exists(config.wait_for):
        time.sleep(0.05)  # a test kills the run here, between part a and part c
    return _mean(config, log, "b")


PARTS = (
    Part("a", lambda config, log: _mean(config, log, "a"),
         lambda config, m: {"a_mean_small": m["mean"]}, reads=("a", "fail_in")),
    Part("b", compute_b, lambda config, m: {"b_mean_large": m["mean"]},
         reads=("b", "wait_for")),
    Part("c", lambda config, log: _mean(config, log, "c"),
         lambda config, m: {"c_within_spread": Measured(m["mean"], at_most=_spread(m)),
                            "c_is_negative": m["mean"]}, reads=("c", "fail_in")),
)
'''


def write_tiny_experiment(directory: pathlib.Path, name: str = "tiny_parts") -> pathlib.Path:
    """Writes the tiny experiment as `directory/name.py` and returns its path."""
    path = directory / f"{name}.py"
    path.write_text(TINY_PARTS_EXPERIMENT)
    return path
