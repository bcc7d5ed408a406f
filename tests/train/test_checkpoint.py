"""Checkpointer: a damaged newest checkpoint is skipped, named, and an older one restored."""

import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.train.checkpoint import Checkpointer, NoRestorableCheckpointError


def _state(step):
    return {"w": jnp.arange(6.0) * step, "b": jnp.full((2,), float(step))}


def _save_steps(directory, steps):
    checkpointer = Checkpointer(directory, keep=5)
    for step in steps:
        checkpointer.save(step, _state(step), {"step": step})
    checkpointer.close()


def _corrupt(step_dir: pathlib.Path) -> None:
    """Truncates every data file of a finalised checkpoint, as a disk error or a copy cut
    short would: the directory looks complete, its contents do not read."""
    files = [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert files
    for path in files:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def test_corrupt_newest_checkpoint_falls_back_to_the_newest_that_restores(tmp_path, capfd):
    _save_steps(tmp_path, (10, 20, 30))
    _corrupt(tmp_path / "latest" / "30")
    checkpointer = Checkpointer(tmp_path, keep=5)
    assert checkpointer.latest_step() == 30
    state, extra = checkpointer.restore_latest(_state(0))
    np.testing.assert_array_equal(state["w"], np.arange(6.0) * 20)
    assert extra["step"] == 20
    err = capfd.readouterr().err
    assert "step 30" in err and "resumed from step 20" in err
    assert checkpointer.latest_step() == 20  # the damaged one is gone: later saves succeed
    checkpointer.save(30, _state(31), {"step": 30})
    state, extra = checkpointer.restore_latest(_state(0))
    assert extra["step"] == 30 and float(state["b"][0]) == 31.0
    checkpointer.close()


def test_no_restorable_checkpoint_names_every_step(tmp_path):
    _save_steps(tmp_path, (1, 2))
    for step in (1, 2):
        _corrupt(tmp_path / "latest" / str(step))
    checkpointer = Checkpointer(tmp_path, keep=5)
    with pytest.raises(NoRestorableCheckpointError, match=r"step 2: .*step 1: "):
        checkpointer.restore_latest(_state(0))
    checkpointer.close()


def test_intact_checkpoints_restore_the_newest_silently(tmp_path, capfd):
    _save_steps(tmp_path, (5, 6))
    checkpointer = Checkpointer(tmp_path, keep=5)
    _, extra = checkpointer.restore_latest(_state(0))
    assert extra["step"] == 6 and "does not restore" not in capfd.readouterr().err
    assert Checkpointer(tmp_path / "empty").restore_latest(_state(0)) is None
    checkpointer.close()
