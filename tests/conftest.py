"""Test-suite set-up: runs before any test module imports jax."""

import os

# A persistent compilation cache: experiments compiled in one test (or a subprocess) are
# reused by the next. Harmless on a fresh clone; saves minutes on a re-run.
_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".jax_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402
from harness import make_jax_strict  # noqa: E402
from quick_presets import QuickPresets, background_workers, preset_names  # noqa: E402

make_jax_strict()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Test modules that read quick presets run after all the others, so that background
    workers (tests/quick_presets.py) run presets while the test process runs the rest.
    Runs last, after `-m` and `-k` have deselected: a module whose reading tests are all
    deselected reads nothing and keeps its place among the others."""
    reading = {item.module for item in items if preset_names([item])}
    items.sort(key=lambda item: getattr(item, "module", None) in reading)


@pytest.fixture(scope="session", autouse=True)
def quick_presets(request, tmp_path_factory):
    """The session's quick presets (tests/quick_presets.py), set up before its first test so
    that background workers start at once on the presets its tests will read, from the last
    one read backwards."""
    names = preset_names(request.session.items)
    presets = QuickPresets(names, tmp_path_factory, background_workers(len(names)))
    yield presets
    presets.close()


@pytest.fixture(scope="session")
def quick_results(quick_presets):
    """Experiment name -> (payload, workdir) of its quick preset, run at most once per test
    session: the experiment's own test module and the protocol-level checks over every
    experiment (tests/experiments/test_claim_margins.py) share the run."""
    return quick_presets.get


@pytest.fixture(scope="module")
def quick_run(request, quick_results):
    """The quick preset of the experiment named by the test module's EXPERIMENT, run once per
    session: (payload, workdir)."""
    return quick_results(request.module.EXPERIMENT)
