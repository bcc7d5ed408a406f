"""launch.py end to end on a tiny experiment: run directory, --strict, --list, bad input."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

TINY_EXPERIMENT = '''
"""Tiny: a measured mean must stay below a threshold (launch.py tests)."""
import jax.numpy as jnp
import ml_collections
from dl_theory.experiment import ClaimSpec, Part

CLAIMS = (ClaimSpec("mean_below_threshold", "mean(values) <= threshold", "test",
                    at_most="threshold"),)
_PRESETS = {"quick": dict(samples=(1.0, 2.0, 3.0), threshold=2.5, seeds=1)}

def get_config(preset="quick"):
    if preset not in _PRESETS:
        raise ValueError(f"preset={preset!r}; known presets: {sorted(_PRESETS)}")
    return ml_collections.ConfigDict(_PRESETS[preset])

def compute_mean(config, log):
    return {"mean": float(jnp.mean(jnp.asarray(config.samples)))}

PARTS = (Part("mean", compute_mean, lambda config, m: {"mean_below_threshold": m["mean"]},
              reads=("samples",)),)
'''


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "tiny.py"
    path.write_text(TINY_EXPERIMENT)
    return path


def launch(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_run_writes_a_complete_run_directory(tiny, tmp_path):
    out = launch(f"--config={tiny}:quick", f"--workdir={tmp_path}", "--config.threshold=3.0")
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    for key in ("experiment", "preset", "config", "claims", "metrics", "figures", "env", "wall_s"):
        assert key in results
    for key in ("python", "versions", "device_kind", "device_count", "default_matmul_precision",
                "precision_policy", "seeds", "config_hash", "git"):
        assert key in results["env"]
    assert results["config"]["threshold"] == 3.0 and results["preset"] == "quick"
    claim = results["claims"][0]
    assert claim["measured"] == 2.0 and claim["holds"] is True and claim["expected"] == "<= 3"
    assert "mean_below_threshold" in out.stdout and "1/1 claims hold" in out.stdout
    assert (tmp_path / "report.md").read_text().count("mean_below_threshold") >= 2
    assert json.loads((tmp_path / "config.json").read_text())["threshold"] == 3.0


def test_rerun_reads_compiled_programs_from_the_persistent_cache(tiny, tmp_path):
    env = {**os.environ, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    receipts = []
    for run, cache in (("a", tmp_path / "cache"), ("b", tmp_path / "cache"), ("c", "false")):
        out = subprocess.run([sys.executable, str(ROOT / "launch.py"), f"--config={tiny}:quick",
                              f"--workdir={tmp_path / run}", f"--compilation_cache={cache}"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr
        receipts.append(json.loads((tmp_path / run / "results.json").read_text())["env"])
    first, second, off = (r["compilation_cache"] for r in receipts)
    assert first["dir"] == second["dir"] == str((tmp_path / "cache").resolve())
    assert first["hits"] == 0 and first["misses"] > 0
    assert second["hits"] > 0
    assert off == {"dir": None, "hits": 0, "misses": 0}


def test_strict_exits_nonzero_when_a_claim_fails(tiny, tmp_path):
    lenient = launch(f"--config={tiny}", f"--workdir={tmp_path}/a", "--config.threshold=1.5")
    strict = launch(f"--config={tiny}", f"--workdir={tmp_path}/b", "--config.threshold=1.5",
                    "--strict")
    assert lenient.returncode == 0 and strict.returncode == 1
    assert json.loads((tmp_path / "b" / "results.json").read_text())["claims"][0]["holds"] is False


@pytest.mark.parametrize("args, message", [
    (["--config=experiments/no_such_theorem.py"], "no_such_theorem"),
    (["--config={tiny}:paper"], "preset='paper'"),
    (["--config={tiny}", "--config.thresold=1"], "thresold"),
    (["--config={tiny}", "--config.threshold=abc"], "abc"),
])
def test_bad_input_is_one_clear_line_and_writes_no_results(tiny, tmp_path, args, message):
    out = launch(*[a.format(tiny=tiny) for a in args], f"--workdir={tmp_path}")
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results.json").exists()


def test_list_shows_every_experiment_with_claim_ids():
    out = launch("--list")
    assert out.returncode == 0, out.stderr
    assert "universal_approximation:" in out.stdout
    assert "barron_rate_every_dimension" in out.stdout


def test_dtypes_table_follows_the_precision_override():
    out = launch("--config=experiments/universal_approximation.py", "--dtypes",
                 "--config.precision=bfloat16")
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line}
    assert rows["Dense_0"][:3] == ["float32", "bfloat16", "float32"]  # params, acts, grads


def test_unknown_precision_is_named(tmp_path):
    out = launch("--config=experiments/universal_approximation.py", "--dtypes",
                 "--config.precision=fp8")
    assert out.returncode != 0 and "fp8" in out.stderr and "bfloat16" in out.stderr
