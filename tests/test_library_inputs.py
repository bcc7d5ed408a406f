"""The library's constructors and loaders refuse bad values with a UserError naming them."""

import math
import os
import stat

import ml_collections
import numpy as np
import pytest

from dl_theory import receipt, report
from dl_theory.data.npz import load_npz
from dl_theory.models.conv import CNN
from dl_theory.models.mlp import MLP
from dl_theory.models.recurrent import SequenceClassifier
from dl_theory.models.transformer import CausalLM, TransformerClassifier
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.build import validate_optimizer_config
from dl_theory.user_errors import ConfigError, DataError, DataKeyError, UserError


@pytest.mark.parametrize("key, value", [
    ("learning_rate", math.nan), ("learning_rate", math.inf), ("weight_decay", math.nan),
    ("clip_global_norm", math.inf), ("clip_value", math.nan), ("decay_rate", math.nan),
    ("step_factor", math.inf), ("l2", -1.0), ("final_lr_fraction", 1.5),
    ("accumulate_steps", 0), ("warmup_steps", -1), ("decay_steps", 2.5),
])
def test_optimizer_refuses_non_finite_and_out_of_range_values(key, value):
    # A fresh ConfigDict: optimizer_config's fields are typed (an int field refuses 2.5).
    config = ml_collections.ConfigDict({**optimizer_config().to_dict(), key: value})
    with pytest.raises(ConfigError, match=f"optimizer.{key}={value!r}; allowed"):
        build_optimizer(config, total_steps=10)


def test_optimizer_errors_list_every_problem_with_the_section_prefix():
    config = optimizer_config(name="adamm", learning_rate=math.nan,
                              swa=dict(learning_rate=math.inf, frequency=0))
    with pytest.raises(ConfigError) as info:
        validate_optimizer_config(config, prefix="part.optimizer")
    text = str(info.value)
    for part in ("part.optimizer.name='adamm'", "part.optimizer.learning_rate=nan",
                 "part.optimizer.swa.learning_rate=inf", "part.optimizer.swa.frequency=0"):
        assert part in text, text
    validate_optimizer_config(optimizer_config())  # the defaults are legal


@pytest.mark.parametrize("build, message", [
    (lambda: MLP(widths=(2.5,)), "MLP: widths=(2.5,)"),
    (lambda: MLP(widths=("8",)), "MLP: widths=('8',)"),
    (lambda: MLP(widths=(4, 0)), "MLP: widths=(4, 0)"),
    (lambda: MLP(widths=(4,), out_dim=0), "MLP: out_dim=0"),
    (lambda: CausalLM(10, d_model=16, num_heads=2, num_layers=0), "CausalLM: num_layers=0"),
    (lambda: CausalLM(10, d_model=16, num_heads=0), "CausalLM: num_heads=0"),
    (lambda: CausalLM(10, d_model=16, num_heads=3), "num_heads must divide"),
    (lambda: TransformerClassifier(3, d_model=0), "TransformerClassifier: d_model=0"),
    (lambda: CNN(3, channels=(8, 0)), "CNN: channels=(8, 0)"),
    (lambda: CNN(3, channels=(8,), kernel_size=0), "CNN: kernel_size=0"),
    (lambda: SequenceClassifier(3, hidden=0), "SequenceClassifier: hidden=0"),
])
def test_models_refuse_non_integer_and_zero_sizes_at_construction(build, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build()


def test_models_accept_legal_sizes_including_numpy_integers():
    MLP(widths=(np.int64(4), 2))
    MLP(widths=())  # a perceptron
    CausalLM(10, d_model=16, num_heads=2, num_layers=1)


@pytest.mark.parametrize("x, y, message", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), np.zeros(2), r"x has 1 non-finite values.*\(0, 1\)"),
    (np.zeros((2, 2)), np.array([0.0, np.inf]), "y has 1 non-finite"),
    (np.zeros((0, 3)), np.zeros(0), "no examples"),
    (np.array([["a", "b"], ["c", "d"]]), np.zeros(2), "x has dtype <U1; allowed: numbers"),
])
def test_npz_loader_refuses_non_finite_empty_and_non_numeric_data(tmp_path, x, y, message):
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError, match=message):
        load_npz(tmp_path / "d.npz")


def test_npz_errors_are_user_errors_of_the_expected_builtin_kinds(tmp_path):
    np.savez(tmp_path / "d.npz", inputs=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(DataKeyError) as info:
        load_npz(tmp_path / "d.npz")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UserError)
    assert str(info.value) == info.value.args[0]  # the message itself, not KeyError's repr
    with pytest.raises(FileNotFoundError) as info:
        load_npz(tmp_path / "absent.npz")
    assert isinstance(info.value, UserError)


def test_receipt_records_cpu_threads_xla_flags_and_devices(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    env = receipt.environment_receipt('{"a": 1}', precision="float32", seeds=2)
    assert env["threads"]["cpu_count"] == os.cpu_count()
    assert env["threads"]["usable_cpus"] == len(os.sched_getaffinity(0))
    assert env["threads"]["settings"]["OMP_NUM_THREADS"] == "3"
    assert env["threads"]["settings"]["XLA_FLAGS"] == os.environ.get("XLA_FLAGS")
    assert env["xla_flags"] == os.environ.get("XLA_FLAGS", "")
    assert env["cpu_model"] and isinstance(env["cpu_model"], str)
    import jax
    assert env["device_count"] == jax.device_count()
    assert env["local_device_count"] == jax.local_device_count()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_run_files_get_the_users_umask_permissions(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        report.write_atomic(tmp_path / "results.json", "{}\n")
        report.write_atomic(tmp_path / "config.json", ml_collections.ConfigDict(
            dict(a=1)).to_json())
    finally:
        os.umask(old)
    for name in ("results.json", "config.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
