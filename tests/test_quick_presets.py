"""The test suite's quick-preset workers (tests/quick_presets.py): a preset run in a worker
gives the results it gives in the test process, a failure there fails the reader with the
worker's traceback, a dead worker is reported, and modules that read presets run last."""

import json
import types

import pytest
from quick_presets import WORKERS_VARIABLE, QuickPresets, background_workers, preset_names


def _fake_item(module, fixtures, params=None):
    item = types.SimpleNamespace(module=module, fixturenames=fixtures)
    if params is not None:
        item.callspec = types.SimpleNamespace(params=params)
    return item


def test_preset_names_follow_the_order_the_tests_read_them():
    depth = types.SimpleNamespace(EXPERIMENT="depth_separation")
    plain = types.SimpleNamespace()
    items = [_fake_item(plain, ["tmp_path"]),
             _fake_item(depth, ["quick_run"]),
             _fake_item(plain, ["quick_results"], {"name": "no_free_lunch"}),
             _fake_item(plain, ["quick_results"], {"name": "depth_separation"})]
    assert preset_names(items) == ["depth_separation", "no_free_lunch"]


def test_worker_count_is_one_fewer_than_the_presets_at_most(monkeypatch):
    monkeypatch.setenv(WORKERS_VARIABLE, "5")
    assert background_workers(3) == 2
    assert background_workers(1) == 0
    monkeypatch.setenv(WORKERS_VARIABLE, "two")
    with pytest.raises(ValueError, match=f"{WORKERS_VARIABLE}='two'"):
        background_workers(3)


def test_modules_that_read_presets_run_after_the_others(request):
    items = request.session.items
    reading = {item.module for item in items if preset_names([item])}
    in_reading_module = [item.module in reading for item in items]
    assert in_reading_module == sorted(in_reading_module), (
        "a module that reads a quick preset runs before one that does not")


def _wait_for_worker(presets: QuickPresets, name: str) -> None:
    with presets._changed:
        presets._changed.wait_for(lambda: name in presets._worker_outcomes)


@pytest.mark.experiment
def test_a_preset_run_in_a_worker_gives_the_results_of_one_run_here(tmp_path_factory):
    name = "no_free_lunch"
    in_worker = QuickPresets([name], tmp_path_factory, workers=1)
    try:
        _wait_for_worker(in_worker, name)
        worker_payload, worker_dir = in_worker.get(name)
    finally:
        in_worker.close()
    assert in_worker._worker_outcomes[name] is None
    payload, workdir = QuickPresets([name], tmp_path_factory, workers=0).get(name)
    assert worker_dir != workdir
    for key in ("claims", "metrics", "figures"):  # not wall_s, nor env's cache counts
        assert json.dumps(worker_payload[key]) == json.dumps(payload[key]), key


def test_a_preset_failing_in_a_worker_fails_its_reader_with_the_traceback(tmp_path_factory):
    presets = QuickPresets(["no_such_experiment"], tmp_path_factory, workers=1)
    try:
        _wait_for_worker(presets, "no_such_experiment")
        with pytest.raises(pytest.fail.Exception) as failure:
            presets.get("no_such_experiment")
    finally:
        presets.close()
    message = str(failure.value)
    assert "failed in a background worker" in message
    assert "Traceback" in message and "FileNotFoundError" in message


def test_a_dead_worker_is_reported_and_the_presets_it_left_run_here(tmp_path_factory):
    # The worker takes the last name and is killed long before it has imported jax.
    presets = QuickPresets(["no_such_a", "no_such_b"], tmp_path_factory, workers=1)
    try:
        presets._workers[0].kill()
        _wait_for_worker(presets, "no_such_b")
        with pytest.raises(pytest.fail.Exception, match="worker process ended with status -9"):
            presets.get("no_such_b")
        with pytest.raises(FileNotFoundError, match="'no_such_a' not found"):
            presets.get("no_such_a")  # raised here, in the test process
    finally:
        presets.close()
