"""The one entry point: run an experiment, or list them.

  python launch.py --config=experiments/universal_approximation.py:quick --workdir=runs/ua
  python launch.py --config=experiments/universal_approximation.py --config.seeds=5 --strict
  python launch.py --config=experiments/universal_approximation.py --parts=barron --rerun
  python launch.py --list
  python launch.py --all --preset=quick --workdir=runs/suite   # every experiment, one page
  python launch.py --all --only=depth_separation,no_free_lunch --workdir=runs/suite
  python launch.py --report=runs/suite                          # rebuild index.html, report.md
  python launch.py --config=experiments/half_precision.py --dtypes    # per-layer dtype table

On several hosts, start the same command on each with --coordinator_address=HOST:PORT
--num_processes=P --process_id=I (or --distributed to detect them from SLURM / Open MPI);
every process trains its share, process 0 alone writes the run directory.

A rerun into the same --workdir skips the parts whose config and code are unchanged
(dl_theory.parts); the layout of the run directory is in dl_theory.run_directory.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import jax
from absl import app, flags
from ml_collections import config_flags

from dl_theory import config_checks, experiment, report, report_page, run_directory, suite
from dl_theory.train import compilation_cache, parallel, precision
from dl_theory.user_errors import ConfigError, UserError, WorkdirError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "experiments/NAME.py[:PRESET]; override any key with --config.KEY=VALUE.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default "
                                "runs/NAME-PRESET-TIME-PID, never shared by two launches).")
_STRICT = flags.DEFINE_bool("strict", False, "Exit with status 1 if any verdict differs from "
                            "the expected one (a claim that fails, or a known negative result "
                            "that holds).")
_PARTS = flags.DEFINE_list("parts", None, "Run only these parts (comma-separated names, see "
                           "--list); the others come from the workdir's cache when valid.")
_RERUN = flags.DEFINE_bool("rerun", False, "Recompute the selected parts even when their "
                           "config and code are unchanged since the run in --workdir.")
_LIST = flags.DEFINE_bool("list", False, "List the experiments with their claims and exit.")
_ALL = flags.DEFINE_bool("all", False, "Run every experiment (or --only) one after another "
                         "into WORKDIR/NAME/ and write the suite page WORKDIR/index.html; a "
                         "rerun skips what is complete and resumes the rest.")
_ONLY = flags.DEFINE_list("only", None, "With --all: only these experiments (comma-separated "
                          "names, see --list).")
_PRESET = flags.DEFINE_string("preset", "quick", "With --all: the preset of every experiment.")
_REPORT = flags.DEFINE_string("report", None, "Rebuild index.html and report.md of this suite "
                              "directory from its run directories, and exit.")
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
        print(f"    parts: {', '.join(part.name for part in module.PARTS)}")
        for spec in module.CLAIMS:
            negative = "" if spec.expected_holds else f"  expected NOT to hold: {spec.why}"
            print(f"    {spec.id}  {spec.bound_text()}  ({spec.source}){negative}")


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
        raise ConfigError(f"experiment {module.__name__!r} defines no example_model(config); "
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
    if _REPORT.value is not None:
        print(report_page.summary_line(report_page.write_page(_REPORT.value)))
        return 0
    if _ALL.value:
        return _run_suite()
    if _CONFIG.value is None:
        raise app.UsageError("--config=experiments/NAME.py[:PRESET] is required (or --list, "
                             "--all, --report)")
    path, preset = _preset_of(config_flags.get_config_filename(flags.FLAGS["config"]))
    module = experiment.load_experiment(path)
    config_checks.validate_experiment_config(module, _CONFIG.value, preset)
    if _DTYPES.value:
        _print_dtypes(module, _CONFIG.value)
        return 0
    _join_processes()
    writer = jax.process_index() == 0
    workdir = _WORKDIR.value
    if workdir is None and writer:
        workdir = run_directory.default_workdir(pathlib.Path(path).stem, preset)
    if writer:
        _check_workdir(workdir)
    payload = run_directory.run(module, _CONFIG.value, workdir, preset,
                                selected_parts=_PARTS.value, rerun=_RERUN.value, writer=writer)
    if not writer:
        return 0
    print(report.verdict_table(payload))
    print(f"run directory: {workdir}")
    if _STRICT.value and report.surprises(payload):
        return 1
    return 0


def _run_suite() -> int:
    """--all: the suite into --workdir (default runs/suite), then its page; --strict exits 1
    on a surprise or a failed experiment."""
    workdir = _WORKDIR.value or "runs/suite"
    _check_workdir(workdir)
    try:
        names = suite.select_experiments(_ONLY.value)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    suite.run_suite(workdir, _PRESET.value, names, rerun=_RERUN.value)
    summary = report_page.write_page(workdir)
    print(report_page.summary_line(summary))
    print(f"page: {pathlib.Path(workdir) / 'index.html'}")
    return 1 if _STRICT.value and (summary["unexpected"] or summary["failed"]) else 0


def _check_workdir(workdir: str) -> None:
    """Creates `workdir` and writes a file into it, or raises `WorkdirError` saying why not."""
    try:
        pathlib.Path(workdir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=workdir):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise WorkdirError(f"--workdir={workdir}: {reason} ({error.filename or workdir}); "
                           "give a directory you can write, or a new path") from error


def _one_line(error: BaseException) -> str:
    """The error's message on one line. ml_collections wraps a KeyError (whose str() is a
    quoted repr) in an AttributeError, and an OSError around the loader's error."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split())


def _check_config_argument(argv: list[str]) -> None:
    """Loads the experiment and its preset before absl parses flags, so that an unknown
    experiment or preset, or an experiment file that does not import, is reported in one
    line (absl would print the loader's traceback)."""
    for arg in argv[1:]:
        if arg.startswith("--config="):
            path, preset = _preset_of(arg.split("=", 1)[1])
            try:
                config = experiment.load_experiment(path).get_config(preset)
            except (FileNotFoundError, ValueError, AttributeError) as error:
                raise ConfigError(_one_line(error)) from error
            _check_override_keys(config, argv)


def _check_override_keys(config, argv: list[str]) -> None:
    """Every --config.KEY=VALUE names a key of the config, or a one-line error gives the
    full dotted key and the keys known at that level (ml_collections names only the last
    part)."""
    for arg in argv[1:]:
        if not arg.startswith("--config."):
            continue
        dotted = arg[len("--config."):].split("=", 1)[0]
        node = config
        for depth, part in enumerate(dotted.split(".")):
            if not hasattr(node, "keys") or part not in node:
                known = sorted(node.keys()) if hasattr(node, "keys") else []
                where = ".".join(dotted.split(".")[:depth]) or "the top level"
                raise ConfigError(f"--config.{dotted}: unknown config key {part!r} at "
                                  f"{where}; known there: {known}")
            node = node[part]


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag or --config override (unknown key, wrong type)
    or a stray positional argument raised as a `ConfigError` (absl would print it on two
    lines, with its usage text, or a traceback)."""
    try:
        remaining = flags.FLAGS(argv)
    except (flags.Error, ValueError, TypeError, KeyError, AttributeError, OSError) as error:
        raise ConfigError(_one_line(error)) from error
    if len(remaining) > 1:
        raise ConfigError(f"unexpected arguments {remaining[1:]}; every option is a flag "
                          "(--name=value); see --helpshort")
    return remaining


def _run() -> None:
    """main() with the boundary between user errors and bugs: a `UserError` (bad flag,
    config value, data file or workdir, a diverged run) exits with one line naming the value
    and a remedy; any other exception is a bug and keeps its full traceback."""
    try:
        _check_config_argument(sys.argv)
        app.run(main, flags_parser=_parse_flags)
    except UserError as error:
        sys.exit(f"launch.py: error: {_one_line(error)}")


if __name__ == "__main__":
    _run()
