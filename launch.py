"""The one entry point: run an experiment, or list them.

  python launch.py --config=experiments/universal_approximation.py:quick --workdir=runs/ua
  python launch.py --config=experiments/universal_approximation.py --config.seeds=5 --strict
  python launch.py --list
  python launch.py --config=experiments/half_precision.py --dtypes    # per-layer dtype table

On several hosts, start the same command on each with --coordinator_address=HOST:PORT
--num_processes=P --process_id=I (or --distributed to detect them from SLURM / Open MPI);
every process trains its share, process 0 alone writes the run directory.
"""

from __future__ import annotations

import datetime
import pathlib
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from dl_theory import experiment, report
from dl_theory.train import compilation_cache, parallel, precision

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/NAME.py[:PRESET]; override any key with --config.KEY=VALUE.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/NAME-PRESET-TIME).")
_STRICT = flags.DEFINE_bool("strict", False, "Exit with status 1 if any claim does not hold.")
_LIST = flags.DEFINE_bool("list", False, "List the experiments with their claims and exit.")
_DTYPES = flags.DEFINE_bool("dtypes", False, "Print the per-layer dtype table (params, "
                            "activations, gradients, optimizer state) of the experiment's "
                            "example model under its config's precision policy, and exit.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 for "
                                   "multi-host runs.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (hosts).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in [0, P).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-host run whose "
                                 "coordinates jax.distributed detects from the cluster.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None, "Directory of JAX's persistent compilation cache, so a rerun "
    f"skips compilation (default: $JAX_COMPILATION_CACHE_DIR or {compilation_cache.DEFAULT_DIR}"
    "); --compilation_cache=false turns it off.")
_DISTRIBUTED_TIMEOUT = flags.DEFINE_integer("distributed_timeout_s", 300, "Seconds to wait "
                                            "for the other processes before failing.")


def _list_experiments() -> None:
    for name, path in experiment.available_experiments().items():
        module = experiment.load_experiment(str(path))
        print(f"{name}: {experiment.summary_line(module)}")
        for spec in module.CLAIMS:
            print(f"    {spec.id}  ({spec.source})")


def _preset_of(config_arg: str) -> tuple[str, str]:
    path, _, preset = config_arg.partition(":")
    return path, preset or "quick"


def _join_processes() -> None:
    if _COORDINATOR.value is None and _NUM_PROCESSES.value is None and not _DISTRIBUTED.value:
        return
    parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                    timeout_s=_DISTRIBUTED_TIMEOUT.value)


def _print_dtypes(module, config) -> None:
    if not hasattr(module, "example_model"):
        raise ValueError(f"experiment {module.__name__!r} defines no example_model(config); "
                         "--dtypes needs it")
    model, x_example, tx = module.example_model(config)
    variables = model.init(jax.random.PRNGKey(0), x_example)
    print(precision.format_dtype_table(precision.dtype_table(model, variables, x_example, tx)))


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    compilation_cache.enable(_COMPILATION_CACHE.value)
    if _LIST.value:
        _list_experiments()
        return 0
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/NAME.py[:PRESET] is required (or --list)")
    path, preset = _preset_of(config_flags.get_config_filename(flags.FLAGS["config"]))
    module = experiment.load_experiment(path)
    if _DTYPES.value:
        _print_dtypes(module, _CONFIG.value)
        return 0
    _join_processes()
    writer = jax.process_index() == 0
    workdir = _WORKDIR.value or str(pathlib.Path("runs") / (
        f"{pathlib.Path(path).stem}-{preset}-{datetime.datetime.now():%Y%m%d-%H%M%S}"))
    if writer:
        report.prepare_workdir(workdir, _CONFIG.value)
    payload = experiment.run_experiment(module, _CONFIG.value, workdir, preset)
    if not writer:
        return 0
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
