"""The suite runner: one experiment after another, a crash recorded and passed over, a rerun
that skips what is complete, progress with an estimate, and launch.py's suite flags."""

import json
import pathlib
import subprocess
import sys

import jax
import pytest
from tiny_suite import build_small_suite, write_variants

from dl_theory import run_directory, suite

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture()
def small_suite(tmp_path, monkeypatch):
    cleared = []
    monkeypatch.setattr(jax, "clear_caches", lambda: cleared.append(True))
    suite_dir, record = build_small_suite(tmp_path)
    return suite_dir, record, cleared


def test_a_crash_is_recorded_with_its_traceback_and_the_suite_goes_on(small_suite):
    suite_dir, record, cleared = small_suite
    states = {name: entry["state"] for name, entry in record["experiments"].items()}
    assert states == {"good": "complete", "surprising": "complete", "broken": "failed"}
    assert "RuntimeError: part a fails on purpose" in record["experiments"]["broken"]["traceback"]
    assert run_directory.read_status(suite_dir / "broken") == "failed"
    assert "fails on purpose" in (suite_dir / "broken" / "status").read_text()
    assert record["experiments"]["surprising"]["surprises"] == ["a_mean_small"]
    on_disk = json.loads((suite_dir / suite.SUITE_FILE).read_text())
    assert on_disk["experiments"]["good"]["claims_hold"] == 3
    assert len(cleared) == 3  # jax.clear_caches() after every experiment, the failed one too


def test_rerun_skips_complete_experiments_and_estimates_from_last_times(small_suite, capsys):
    suite_dir, first, _ = small_suite
    capsys.readouterr()
    paths = [str(suite_dir.parent / "experiments" / f"{n}.py")
             for n in ("good", "surprising", "broken")]
    second = suite.run_suite(suite_dir, "quick", paths)
    out = capsys.readouterr().out
    assert second["experiments"]["good"]["skipped"] is True
    assert second["experiments"]["surprising"]["skipped"] is True
    assert second["experiments"]["broken"]["state"] == "failed"  # retried, fails again
    assert "good: complete for this config and code, skipped" in out
    assert "[parts]" not in out.split("broken: started")[0]  # nothing recomputed before it
    last = first["experiments"]["good"]["wall_s"]
    assert f"it took {last:.0f} s last time" in out
    assert second["experiments"]["good"]["wall_s"] == last  # kept for the next estimate


def test_changed_config_or_code_is_not_up_to_date(tmp_path):
    from dl_theory import experiment

    suite_dir, _ = build_small_suite(tmp_path)
    module = experiment.load_experiment(str(tmp_path / "experiments" / "good.py"))
    config = module.get_config("quick")
    assert suite.is_up_to_date(module, config, suite_dir / "good", "quick")
    config.b = (5.0, 6.0)
    assert not suite.is_up_to_date(module, config, suite_dir / "good", "quick")
    assert not suite.is_up_to_date(module, module.get_config("quick"), suite_dir / "good",
                                   "paper")


def test_an_experiment_that_does_not_import_is_failed_on_the_page(tmp_path):
    from dl_theory import report_page

    bad = tmp_path / "unloadable.py"
    bad.write_text("def broken(:\n")
    record = suite.run_suite(tmp_path / "suite", "quick", [str(bad)])
    assert record["experiments"]["unloadable"]["state"] == "failed"
    assert "syntax error" in record["experiments"]["unloadable"]["traceback"]
    summary = report_page.write_page(tmp_path / "suite")
    assert summary["failed"] == ["unloadable"]
    assert "syntax error" in (tmp_path / "suite" / "index.html").read_text()


def test_only_names_an_unknown_experiment():
    with pytest.raises(ValueError, match=r"no_such_theorem.*known: \[.*depth_separation"):
        suite.select_experiments(["no_such_theorem"])
    assert suite.select_experiments(["no_free_lunch"]) == ["no_free_lunch"]
    assert suite.select_experiments(None) == sorted(suite.select_experiments(None))


def _launch(*args):
    return subprocess.run([sys.executable, str(ROOT / "launch.py"), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_launch_all_runs_the_suite_and_writes_the_page(tmp_path):
    paths = write_variants(tmp_path)
    out = _launch("--all", f"--only={paths[0]},{paths[2]}", f"--workdir={tmp_path}/suite")
    assert out.returncode == 0, out.stderr
    assert "suite: 2 experiments (1 failed), 4 claims: 3 held, 1 expected negative" in out.stdout
    assert (tmp_path / "suite" / "index.html").is_file()
    strict = _launch("--all", f"--only={paths[0]},{paths[2]}", f"--workdir={tmp_path}/suite",
                     "--strict")
    assert strict.returncode == 1  # a failed experiment fails --strict
    assert "good: complete for this config and code, skipped" in strict.stdout


def test_launch_bad_suite_input_is_one_line(tmp_path):
    out = _launch("--all", "--only=no_such_theorem", f"--workdir={tmp_path}")
    assert out.returncode != 0 and "no_such_theorem" in out.stderr
    assert "Traceback" not in out.stderr
    missing = _launch(f"--report={tmp_path}/nowhere")
    assert missing.returncode != 0 and "no such suite directory" in missing.stderr
    assert "Traceback" not in missing.stderr
