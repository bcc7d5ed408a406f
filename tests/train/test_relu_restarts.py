"""Adam restarts of a one-hidden-layer ReLU net: converge on a realizable case, and the vmapped
batch of restarts gives what each run alone gives."""

import numpy as np
import pytest

from dl_theory.theory.exact_erm import net_loss
from dl_theory.train.relu_restarts import adam_restarts, restarts_above_optimum


def _starts(rng, restarts):
    return {"w": rng.normal(size=(restarts, 1, 1)), "b": rng.normal(size=(restarts, 1)) * 0.1,
            "v": np.abs(rng.normal(size=(restarts, 1))) + 0.5}


def test_realizable_single_unit_is_fitted_from_a_live_start():
    """y = 2 relu(x): a start with the unit active on the positive points reaches loss ~0."""
    x = np.linspace(-1, 1, 11)[:, None]
    y = 2.0 * np.maximum(x[:, 0], 0.0)
    starts = {"w": np.array([[[1.0]]]), "b": np.array([[0.1]]), "v": np.array([[1.0]])}
    final = adam_restarts(x, y, starts, steps=2000, learning_rate=0.05)
    assert net_loss(x, y, final["w"][0], final["b"][0], final["v"][0]) < 1e-8


def test_batch_of_restarts_equals_each_run_alone():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 1))
    y = rng.normal(size=8)
    starts = _starts(rng, 3)
    batch = adam_restarts(x, y, starts, steps=200, learning_rate=0.02)
    for r in range(3):
        alone = adam_restarts(x, y, {k: v[r:r + 1] for k, v in starts.items()}, steps=200,
                              learning_rate=0.02)
        for key in ("w", "b", "v"):
            np.testing.assert_allclose(batch[key][r], alone[key][0], rtol=1e-5, atol=1e-6)


def test_bad_steps_are_refused():
    with pytest.raises(ValueError, match="steps=0"):
        adam_restarts(np.zeros((2, 1)), np.zeros(2), _starts(np.random.default_rng(0), 1),
                      steps=0, learning_rate=0.1)


def test_restarts_above_optimum_counts_misses_over_data_sets():
    """Excess over the optimum compared with tol * scale per data set (strictly above)."""
    losses = [[1.0, 1.05, 1.2], [2.0, 2.5]]
    assert restarts_above_optimum(losses, [1.0, 2.0], [1.0, 4.0], 0.1) == (2, 5)
    assert restarts_above_optimum(losses, [1.0, 2.0], [1.0, 4.0], 0.15) == (1, 5)  # 0.5 < 0.6
    assert restarts_above_optimum(losses, [1.0, 2.0], [1.0, 4.0], 0.0) == (3, 5)
