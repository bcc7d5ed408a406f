"""The one entry point: run an experiment, or list them.

  python launch.py --config=experiments/universal_approximation.py:quick --workdir=runs/ua
  python launch.py --config=experiments/universal_approximation.py --config.seeds=5 --strict
  python launch.py --list
"""

from __future__ import annotations

import datetime
import pathlib
import sys

from absl import app, flags
from ml_collections import config_flags

from dl_theory import experiment, report

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/NAME.py[:PRESET]; override any key with --config.KEY=VALUE.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/NAME-PRESET-TIME).")
_STRICT = flags.DEFINE_bool("strict", False, "Exit with status 1 if any claim does not hold.")
_LIST = flags.DEFINE_bool("list", False, "List the experiments with their claims and exit.")


def _list_experiments() -> None:
    for name, path in experiment.available_experiments().items():
        module = experiment.load_experiment(str(path))
        print(f"{name}: {experiment.summary_line(module)}")
        for spec in module.CLAIMS:
            print(f"    {spec.id}  ({spec.source})")


def _preset_of(config_arg: str) -> tuple[str, str]:
    path, _, preset = config_arg.partition(":")
    return path, preset or "quick"


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if _LIST.value:
        _list_experiments()
        return 0
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/NAME.py[:PRESET] is required (or --list)")
    path, preset = _preset_of(config_flags.get_config_filename(flags.FLAGS["config"]))
    module = experiment.load_experiment(path)
    workdir = _WORKDIR.value or str(pathlib.Path("runs") / (
        f"{pathlib.Path(path).stem}-{preset}-{datetime.datetime.now():%Y%m%d-%H%M%S}"))
    report.prepare_workdir(workdir, _CONFIG.value)
    payload = experiment.run_experiment(module, _CONFIG.value, workdir, preset)
    report.write_report(payload, workdir)
    print(report.verdict_table(payload))
    print(f"run directory: {workdir}")
    if _STRICT.value and not all(c["holds"] for c in payload["claims"]):
        return 1
    return 0


def _one_line(error: BaseException) -> str:
    """ml_collections wraps a KeyError (whose str() is a quoted repr) in an AttributeError."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _check_config_argument(argv: list[str]) -> None:
    """Loads the experiment and its preset before absl parses flags, so that an unknown
    experiment or preset is reported in one line (absl would print the loader's traceback)."""
    for arg in argv[1:]:
        if arg.startswith("--config="):
            path, preset = _preset_of(arg.split("=", 1)[1])
            experiment.load_experiment(path).get_config(preset)


def _run() -> None:
    try:
        _check_config_argument(sys.argv)
        app.run(main)
    except (ValueError, FileNotFoundError, KeyError, TypeError, AttributeError) as e:
        # Bad input found while parsing flags or loading the experiment: one line, no traceback.
        sys.exit(f"launch.py: error: {_one_line(e)}")


if __name__ == "__main__":
    _run()
