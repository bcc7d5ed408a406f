"""launch.py's boundary: user errors are one line, any other exception keeps its traceback."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

EXPERIMENT = '''
"""Boundary test experiment: its part raises what config.raise_kind names."""
import ml_collections
from dl_theory.experiment import ClaimSpec, Part
from dl_theory.train.fit import NonFiniteLossError
from dl_theory.user_errors import ConfigError, DataError

CLAIMS = (ClaimSpec("trivial", "1 <= 1", "test", at_most=1.0),)

def get_config(preset="quick"):
    return ml_collections.ConfigDict(dict(raise_kind="none", seeds=1))

def _lookup(table):
    return table["missing_key"]  # a bug: KeyError

def compute(config, log):
    if config.raise_kind == "key_error":
        _lookup({})
    if config.raise_kind == "value_error":
        raise ValueError("an internal invariant broke")
    if config.raise_kind == "config_error":
        raise ConfigError("part.threshold=-1; allowed: numbers >= 0")
    if config.raise_kind == "data_error":
        raise DataError("'d.npz': x has 3 non-finite values; drop or impute those rows")
    if config.raise_kind == "divergence":
        raise NonFiniteLossError("grid: loss became non-finite at step 7 in grid member 2")
    return {"value": 1.0}

PARTS = (Part("boundary", compute, lambda config, m: {"trivial": m["value"]},
              reads=("raise_kind",)),)
'''


@pytest.fixture(scope="module")
def experiment_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("exp") / "boundary.py"
    path.write_text(EXPERIMENT)
    return path


def _launch(experiment_file, tmp_path, kind):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"),
                           f"--config={experiment_file}", f"--config.raise_kind={kind}",
                           f"--workdir={tmp_path}/run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("kind, message", [
    ("key_error", "KeyError: 'missing_key'"),
    ("value_error", "ValueError: an internal invariant broke"),
])
def test_a_bug_inside_run_keeps_its_full_traceback(experiment_file, tmp_path, kind, message):
    out = _launch(experiment_file, tmp_path, kind)
    assert out.returncode != 0
    assert "Traceback (most recent call last)" in out.stderr
    assert f'{experiment_file}", line' in out.stderr  # the file and line of the bug
    assert out.stderr.rstrip().endswith(message)
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize("kind, message", [
    ("config_error", "launch.py: error: part.threshold=-1; allowed: numbers >= 0"),
    ("data_error", "launch.py: error: 'd.npz': x has 3 non-finite values"),
    ("divergence", "launch.py: error: grid: loss became non-finite at step 7 in grid member 2"),
])
def test_a_user_error_inside_run_is_one_line(experiment_file, tmp_path, kind, message):
    out = _launch(experiment_file, tmp_path, kind)
    lines = [line for line in out.stderr.splitlines() if line.startswith("launch.py")]
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert lines == [lines[0]] and lines[0].startswith(message)


def test_a_clean_run_still_succeeds(experiment_file, tmp_path):
    out = _launch(experiment_file, tmp_path, "none")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "results.json").is_file()
