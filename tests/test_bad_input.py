"""A sweep of bad invocations of launch.py: each must fail fast with one clear line.

Every case is a command a user could type. It must exit non-zero with a single stderr line
(absl log records aside) that names the bad value or its full dotted config key, print no
traceback, write no results.json, and fail before training: nothing on stdout (training
prints a progress line per evaluation) and no metrics.jsonl. The divergence cases are the
exception: a legal but absurd learning rate trains until the loss stops being finite and
must then end with the one-line divergence error naming the step and the grid member.

Also a script, to compare two checkouts on the same sweep:

    python tests/test_bad_input.py [--root=/work/base]

prints each case's outcome (clean / unnamed / noisy / traceback / silent) and the counts; a case
still running after --timeout_s seconds (training a bad value) counts as silent.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile

import pytest

from dl_theory.train.concurrent_jobs import usable_cores

ROOT = pathlib.Path(__file__).resolve().parent.parent
UA = "--config=experiments/universal_approximation.py"
IB = "--config=experiments/inductive_bias.py"
LM = "--config=experiments/language_model.py"
GC = "--config=experiments/gradient_clipping.py"
BS = "--config=experiments/batch_size.py"
RG = "--config=experiments/regularisation.py"
LR = "--config=experiments/learning_rates.py"

# (case id, arguments, text the error line must contain). "{tmp}" is a fresh directory;
# "{tmp}/file" exists as a regular file; "{tmp}/broken.py" is an experiment with a syntax error.
CASES = [
    # universal_approximation
    ("ua_lr_nan", [UA, "--config.cybenko.optimizer.learning_rate=nan"],
     "cybenko.optimizer.learning_rate=nan"),
    ("ua_lr_inf", [UA, "--config.cybenko.optimizer.learning_rate=inf"],
     "cybenko.optimizer.learning_rate=inf"),
    ("ua_lr_negative", [UA, "--config.barron.optimizer.learning_rate=-0.1"],
     "barron.optimizer.learning_rate=-0.1"),
    ("ua_lr_zero", [UA, "--config.cybenko.optimizer.learning_rate=0"],
     "cybenko.optimizer.learning_rate=0"),
    ("ua_optimizer_name", [UA, "--config.cybenko.optimizer.name=adamm"],
     "cybenko.optimizer.name='adamm'"),
    ("ua_schedule_name", [UA, "--config.cybenko.optimizer.schedule=cosin"],
     "cybenko.optimizer.schedule='cosin'"),
    ("ua_weight_decay_nan", [UA, "--config.cybenko.optimizer.weight_decay=nan"],
     "cybenko.optimizer.weight_decay=nan"),
    ("ua_clip_inf", [UA, "--config.barron.optimizer.clip_global_norm=inf"],
     "barron.optimizer.clip_global_norm=inf"),
    ("ua_decay_rate_nan", [UA, "--config.cybenko.optimizer.decay_rate=nan"],
     "cybenko.optimizer.decay_rate=nan"),
    ("ua_accumulate_zero", [UA, "--config.cybenko.optimizer.accumulate_steps=0"],
     "cybenko.optimizer.accumulate_steps=0"),
    ("ua_max_rel_error_nan", [UA, "--config.cybenko.max_rel_error=nan"],
     "cybenko.max_rel_error=nan"),
    ("ua_seeds_zero", [UA, "--config.seeds=0"], "seeds=0"),
    ("ua_seeds_negative", [UA, "--config.seeds=-1"], "seeds=-1"),
    ("ua_num_test_zero", [UA, "--config.num_test=0"], "num_test=0"),
    ("ua_batch_size_zero", [UA, "--config.batch_size=0"], "batch_size=0"),
    ("ua_steps_zero", [UA, "--config.cybenko.steps=0"], "cybenko.steps=0"),
    ("ua_steps_negative", [UA, "--config.cybenko.steps=-5"], "cybenko.steps=-5"),
    ("ua_width_fraction", [UA, "--config.cybenko.widths=(2.5,)"], "cybenko.widths"),
    ("ua_width_string", [UA, "--config.cybenko.widths=('8',)"], "cybenko.widths"),
    ("ua_widths_empty", [UA, "--config.cybenko.widths=()"], "cybenko.widths"),
    ("ua_dims_zero", [UA, "--config.barron.dims=(0, 2)"], "barron.dims"),
    ("ua_precision_name", [UA, "--config.precision=float13"], "precision='float13'"),
    ("ua_activation_name", [UA, "--config.cybenko.activation=relux"],
     "cybenko.activation='relux'"),
    ("ua_target_name", [UA, "--config.cybenko.target=nope"], "cybenko.target='nope'"),
    ("ua_seeds_fraction", [UA, "--config.seeds=2.5"], "seeds"),
    ("ua_unknown_key", [UA, "--config.cybenko.stepz=3"], "stepz"),
    ("ua_unknown_preset", [UA + ":fast"], "preset='fast'"),
    # inductive_bias
    ("ib_steps_zero", [IB, "--config.steps=0"], "steps=0"),
    ("ib_steps_negative", [IB, "--config.steps=-3"], "steps=-3"),
    ("ib_seeds_zero", [IB, "--config.seeds=0"], "seeds=0"),
    ("ib_batch_size_negative", [IB, "--config.batch_size=-1"], "batch_size=-1"),
    ("ib_zero_channels", [IB, "--config.models.cnn.channels=(25, 0, 25)"],
     "models.cnn.channels"),
    ("ib_num_heads_zero", [IB, "--config.models.transformer.num_heads=0"],
     "models.transformer.num_heads=0"),
    ("ib_mlp_width_fraction", [IB, "--config.models.mlp.widths=(100, 2.5)"],
     "models.mlp.widths"),
    ("ib_invariance_z_nan", [IB, "--config.invariance_z=nan"], "invariance_z=nan"),
    ("ib_margin_inf", [IB, "--config.min_cnn_margin=inf"], "min_cnn_margin=inf"),
    ("ib_num_samples_zero", [IB, "--config.data.num_samples=0"], "data.num_samples=0"),
    ("ib_lr_nan", [IB, "--config.optimizer.learning_rate=nan"], "optimizer.learning_rate=nan"),
    ("ib_precision_name", [IB, "--config.precision=fp8"], "precision='fp8'"),
    ("ib_readout_name", [IB, "--config.models.gru.readout=max"], "models.gru.readout='max'"),
    # language_model
    ("lm_head_dim_zero", [LM, "--config.head_dim=0"], "head_dim=0"),
    ("lm_head_dim_indivisible", [LM, "--config.head_dim=5"], "head_dim=5"),
    ("lm_min_margin_bits_nan", [LM, "--config.min_margin_bits=nan"], "min_margin_bits=nan"),
    ("lm_zero_layers", [LM, "--config.sizes=((16, 0),)"], "sizes"),
    ("lm_seq_len_zero", [LM, "--config.seq_len=0"], "seq_len=0"),
    ("lm_num_val_windows_zero", [LM, "--config.num_val_windows=0"], "num_val_windows=0"),
    ("lm_weight_decay_negative", [LM, "--config.optimizer.weight_decay=-1"],
     "optimizer.weight_decay=-1"),
    ("lm_num_prompts_zero", [LM, "--config.sampling.num_prompts=0"],
     "sampling.num_prompts=0"),
    ("lm_mlp_ratio_zero", [LM, "--config.mlp_ratio=0"], "mlp_ratio=0"),
    # the training-technique experiments (split from training_techniques)
    ("tt_clipping_lr_nan", [GC, "--config.clipping.optimizer.learning_rate=nan"],
     "clipping.optimizer.learning_rate=nan"),
    ("tt_max_rel_error_nan", [BS, "--config.minibatch.max_rel_error=nan"],
     "minibatch.max_rel_error=nan"),
    ("tt_dropout_above_one", [RG, "--config.regularisation.dropout_rate=1.5"],
     "regularisation.dropout_rate=1.5"),
    ("tt_num_test_zero", [GC, "--config.task.num_test=0"], "task.num_test=0"),
    ("tt_float16_without_loss_scaling", [GC, "--config.precision=float16"],
     "precision='float16'; allowed here: ['bfloat16', 'float32']"),
    ("tt_batch_sizes_zero", [BS, "--config.minibatch.batch_sizes=(0, 1)"],
     "minibatch.batch_sizes"),
    ("tt_seeds_zero", [RG, "--config.seeds=0"], "seeds=0"),
    ("tt_factor_nan", [LR, "--config.step_size.factors=(nan, 1.1)"], "step_size.factors"),
    # the command line, the experiment file and the workdir
    ("unknown_experiment", ["--config=experiments/no_such_theorem.py"], "no_such_theorem"),
    ("config_syntax_error", ["--config={tmp}/broken.py"], "broken.py"),
    ("workdir_is_a_file", [UA, "--workdir={tmp}/file"], "file"),
    ("workdir_under_a_file", [UA, "--workdir={tmp}/file/run"], "file"),
    ("config_value_not_a_number", [UA, "--config.seeds=abc"], "abc"),
    ("unknown_flag", [UA, "--strictt"], "strictt"),
    ("positional_argument", [UA, "extra"], "extra"),
]

# Legal values whose runs diverge: they train, then must stop with the divergence error.
DIVERGENCE_CASES = [
    ("ua_lr_huge", [UA, "--config.cybenko.optimizer.learning_rate=1e6"], "loss diverged"),
]

# A case still running after this long is reported, not waited for.
LAUNCH_TIMEOUT_S = 600
_ABSL_LOG_RECORD = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")
BROKEN_EXPERIMENT = '"""An experiment file with a syntax error."""\ndef get_config(preset:\n'


def _setup(tmp: pathlib.Path) -> None:
    (tmp / "file").write_text("not a directory\n")
    (tmp / "broken.py").write_text(BROKEN_EXPERIMENT)


def launch(args: list[str], tmp: pathlib.Path, root: pathlib.Path = ROOT,
           timeout_s: float = LAUNCH_TIMEOUT_S):
    """Runs launch.py of checkout `root` with `args` ({tmp} filled in; a workdir under `tmp`
    unless given) and returns the completed process."""
    args = [a.format(tmp=tmp) for a in args]
    if not any(a.startswith("--workdir") for a in args):
        args.append(f"--workdir={tmp}/run")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, str(root / "launch.py"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def error_lines(stderr: str) -> list[str]:
    """stderr without absl log records (jax's INFO line about a missing TPU and the like)."""
    return [line for line in stderr.splitlines()
            if line.strip() and not _ABSL_LOG_RECORD.match(line)]


def classify(out, tmp: pathlib.Path, message: str) -> str:
    """clean (non-zero exit, one line naming `message`, no traceback, no results), unnamed
    (the same, but the line does not name the key or value), noisy (several lines, or
    results written), traceback, or silent (exit status 0)."""
    if out.returncode == 0:
        return "silent"
    if "Traceback" in out.stderr:
        return "traceback"
    lines = error_lines(out.stderr)
    if len(lines) != 1 or any(tmp.rglob("results.json")):
        return "noisy"
    return "clean" if message in lines[0] else "unnamed"


def _assert_one_clear_line(out, tmp, message):
    lines = error_lines(out.stderr)
    assert out.returncode != 0, out.stdout[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1, out.stderr
    assert message in lines[0], lines[0]
    assert not list(tmp.rglob("results.json"))


def run_cases(cases, root: pathlib.Path, base: pathlib.Path,
              timeout_s: float = LAUNCH_TIMEOUT_S,
              workers: int | None = None) -> dict:
    """Case id -> (completed process, or None if still running after `timeout_s`; its
    directory under `base`), each case in a fresh directory, `workers` launches at a time
    (default: one per usable core; a launch that fails before training is mostly Python
    start-up and imports on one core)."""
    def one(case):
        name, args, _ = case
        tmp = base / name
        tmp.mkdir(parents=True)
        _setup(tmp)
        try:
            return name, (launch(args, tmp, root, timeout_s), tmp)
        except subprocess.TimeoutExpired:
            return name, (None, tmp)

    with concurrent.futures.ThreadPoolExecutor(workers or usable_cores()) as pool:
        return dict(pool.map(one, cases))


@pytest.fixture(scope="module")
def launched(request, tmp_path_factory):
    """The bad-input cases this session selected, launched once, concurrently: case id ->
    (completed process, its directory)."""
    selected = {item.callspec.params["case"] for item in request.session.items
                if item.originalname == "test_bad_input_fails_before_training_with_one_clear_line"}
    return run_cases([c for c in CASES if c[0] in selected], ROOT,
                     tmp_path_factory.mktemp("bad_input"))


@pytest.mark.parametrize("case, args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_before_training_with_one_clear_line(case, args, message, launched):
    out, tmp = launched[case]
    assert out is not None, f"{case}: still running after {LAUNCH_TIMEOUT_S} s"
    _assert_one_clear_line(out, tmp, message)
    assert out.stdout == "", out.stdout  # no training progress: it failed before training
    assert not list(tmp.rglob("metrics.jsonl"))


@pytest.mark.experiment
@pytest.mark.parametrize("case, args, message", DIVERGENCE_CASES,
                         ids=[c[0] for c in DIVERGENCE_CASES])
def test_divergence_ends_with_one_line_naming_step_and_member(case, args, message, tmp_path):
    _setup(tmp_path)
    out = launch(args, tmp_path)
    _assert_one_clear_line(out, tmp_path, message)
    assert re.search(r"step \d+ in grid member \d+", out.stderr), out.stderr


def test_a_coordinator_that_never_starts_ends_launch_with_one_line(tmp_path):
    """Process 1 of 2 joins 127.0.0.1:PORT where no process 0 ever listens: the join
    watchdog ends it at --distributed_timeout_s with one line, before XLA's abort."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = launch([UA, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                  "--process_id=1", "--distributed_timeout_s=3"], tmp_path)
    lines = error_lines(out.stderr)
    assert out.returncode == 2 and len(lines) == 1, out.stderr[-3000:]
    assert f"process 1 of 2 waited 3 s at 127.0.0.1:{port}" in lines[0]
    assert "DEADLINE_EXCEEDED" not in out.stderr and out.stdout == ""


def _sweep(root: pathlib.Path, workers: int, timeout_s: float) -> None:
    counts = collections.Counter()
    with tempfile.TemporaryDirectory() as base:
        cases = CASES + DIVERGENCE_CASES
        launched = run_cases(cases, root, pathlib.Path(base), timeout_s, workers)
        for name, _, message in cases:
            out, tmp = launched[name]
            if out is None:
                outcome, last = "silent", f"still training after {timeout_s} s"
            else:
                lines = error_lines(out.stderr)
                outcome, last = classify(out, tmp, message), (lines[-1] if lines else "")[:150]
            counts[outcome] += 1
            print(f"{outcome:9} {name:28} {last}", flush=True)
    print(f"{len(cases)} cases against {root}: " + ", ".join(
        f"{counts[k]} {k}" for k in ("clean", "unnamed", "noisy", "traceback", "silent")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=str(ROOT), help="checkout whose launch.py to run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout_s", type=float, default=180,
                        help="a case still running after this long counts as silent")
    options = parser.parse_args()
    _sweep(pathlib.Path(options.root).resolve(), options.workers, options.timeout_s)
