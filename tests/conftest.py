"""Test-suite set-up: runs before any test module imports jax."""

import os

# A persistent compilation cache: experiments compiled in one test (or a subprocess) are
# reused by the next. Harmless on a fresh clone; saves minutes on a re-run.
_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".jax_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402

# Silent broadcasting of rank-mismatched arrays hides shape bugs; make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")

import pytest  # noqa: E402
from harness import run_quick_preset  # noqa: E402


@pytest.fixture(scope="session")
def quick_results(tmp_path_factory):
    """Experiment name -> (payload, workdir) of its quick preset, run at most once per test
    session: the experiment's own test module and the protocol-level checks over every
    experiment (tests/experiments/test_claim_margins.py) share the run."""
    runs = {}

    def get(name: str):
        if name not in runs:
            workdir = tmp_path_factory.mktemp(name)
            runs[name] = run_quick_preset(name, workdir), workdir
        return runs[name]

    return get


@pytest.fixture(scope="module")
def quick_run(request, quick_results):
    """The quick preset of the experiment named by the test module's EXPERIMENT, run once per
    session: (payload, workdir)."""
    return quick_results(request.module.EXPERIMENT)
