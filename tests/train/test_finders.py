"""LR range test and batch-size finders: against 2/L on a quadratic, a memory budget, and the
closed-form gradient noise scale of linear regression."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from dl_theory.data import batching
from dl_theory.models.mlp import MLP, Perceptron
from dl_theory.optim import build_optimizer
from dl_theory.train import batch_size, finders
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import create_train_state, set_hyperparams


def sgd(lr=0.1):
    return build_optimizer(ml_collections.ConfigDict(dict(name="sgd", learning_rate=lr)))


def quadratic_problem(n=64):
    """A linear model on fixed data: mse(w) = (1/N) |X w - y|^2 is a quadratic with Hessian
    H = (2/N) X^T X, so L = lambda_max(H) is known exactly and GD is stable iff lr < 2/L."""
    x = jax.random.normal(jax.random.PRNGKey(0), (n, 3)) * jnp.array([[2.0, 1.0, 0.5]])
    y = x @ jnp.array([[1.0], [-1.0], [0.5]]) + 0.1 * jax.random.normal(jax.random.PRNGKey(1),
                                                                           (n, 1))
    data = {"x": x, "y": y}
    curvature = float(np.linalg.eigvalsh(2.0 / n * np.asarray(x.T @ x, np.float64)).max())
    return data, curvature


def linear_state(data, tx):
    return create_train_state(Perceptron(use_bias=False), tx, data["x"][:1], seed=0)


@pytest.fixture(scope="module")
def quadratic_sweep():
    """(state, its params copied before the sweep, lr_find result, L) on the quadratic."""
    data, curvature = quadratic_problem()
    state = linear_state(data, sgd())
    before = jax.tree.map(np.array, state.params)
    result = finders.lr_find(state, data, batching.full_batch(), loss=mean_squared_error)
    return state, before, result, curvature


def test_lr_find_on_a_quadratic_stays_below_the_stability_bound(quadratic_sweep):
    state, before, result, curvature = quadratic_sweep
    bound = 2.0 / curvature
    assert result.stability_bound == pytest.approx(bound, rel=1e-3)
    assert result.diverged and result.lrs_T.size < 100  # max_lr = 10 is far beyond 2/L
    lo, hi = result.usable_range
    # The steepest fall happens where GD is well inside its stable range; lr/100 would be a
    # heuristic that never fires, so the suggestion is also bounded from below.
    assert bound / 100 < result.suggestion < bound
    assert lo <= result.suggestion <= hi <= bound
    assert result.smoothed_T[np.searchsorted(result.lrs_T, hi)] < 0.2 * result.initial_loss
    # The caller's state is untouched (not donated, not updated).
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(state.params))
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, state.params), before)


def test_lr_find_sets_the_rate_under_gradient_accumulation():
    data, curvature = quadratic_problem()
    tx = optax.MultiSteps(sgd(), every_k_schedule=2).gradient_transformation()
    result = finders.lr_find(linear_state(data, tx), data, batching.full_batch(),
                             loss=mean_squared_error, num_steps=120)
    # Two micro-steps per update: the rate must reach the optimizer, or nothing diverges.
    assert result.diverged
    assert result.suggestion < result.usable_range[1] <= 2.0 / curvature


def test_lr_find_suggestion_trains_faster_than_a_tiny_rate_on_minibatches():
    x = jax.random.normal(jax.random.PRNGKey(2), (512, 4))
    data = {"x": x, "y": jnp.sin(x[:, :1] * 2.0) + 0.5 * x[:, 1:2]}
    model = MLP(widths=(16,), activation="tanh")
    state = create_train_state(model, sgd(), x[:1], seed=0)
    result = finders.lr_find(state, data, batching.minibatches(32), loss=mean_squared_error)
    lo, hi = result.usable_range
    assert lo <= result.suggestion <= hi < result.lr_at_min
    # The curvature cross-check: the suggestion is inside GD's stable range at the start.
    assert result.suggestion < result.stability_bound
    # Two copies of the same initial state, one at the suggestion and one 30 times lower.
    pair = set_hyperparams(jax.tree.map(lambda a: jnp.stack([a, a]), state),
                           learning_rate=[result.suggestion, result.suggestion / 30])
    _, history = fit_grid(pair, data, batching.minibatches(32), loss=mean_squared_error,
                          steps=200, data_seeds=[0, 0], verbose=False)
    final = history["loss"][:, -50:].mean(axis=1)
    assert np.all(np.isfinite(final)) and final[0] < 0.8 * final[1]


def test_plot_lr_find_writes_a_figure(quadratic_sweep, tmp_path):
    result = quadratic_sweep[2]
    path = tmp_path / "lr_find.png"
    ax = finders.plot_lr_find(result, path)
    assert path.stat().st_size > 1000
    assert ax.get_xscale() == "log" and len(ax.get_lines()) == 4  # 2 curves, 2 markers


@pytest.mark.parametrize("kwargs, name", [
    (dict(min_lr=1.0, max_lr=1.0), "min_lr"), (dict(min_lr=0.0), "min_lr"),
    (dict(num_steps=1), "num_steps"), (dict(smoothing=1.0), "smoothing"),
    (dict(window=4), "window"), (dict(diverge_factor=1.0), "diverge_factor")])
def test_lr_find_rejects_bad_arguments(kwargs, name):
    data, _ = quadratic_problem()
    with pytest.raises(ValueError, match=name):
        finders.lr_find(linear_state(data, sgd()), data, batching.full_batch(),
                        loss=mean_squared_error, **kwargs)


@pytest.mark.parametrize("tx, message", [
    (optax.sgd(0.1), "exactly one learning rate"),
    (optax.inject_hyperparams(optax.sgd)(learning_rate=optax.cosine_decay_schedule(0.1, 10)),
     "constant learning rate")])
def test_lr_find_needs_one_constant_injected_rate(tx, message):
    data, _ = quadratic_problem()
    with pytest.raises(ValueError, match=message):
        finders.lr_find(linear_state(data, tx), data, batching.full_batch(),
                        loss=mean_squared_error)


def small_state_and_data():
    """A tiny model: each probe of the memory search is one compilation (~0.5 s on CPU)."""
    x = jax.random.normal(jax.random.PRNGKey(3), (32, 16))
    data = {"x": x, "y": x[:, :2]}
    return create_train_state(Perceptron(out_dim=2), sgd(), x[:1], seed=0), data


def test_memory_mode_finds_the_largest_batch_within_the_budget():
    state, data = small_state_and_data()
    budget = batch_size.step_memory_bytes(state, data, loss=mean_squared_error, batch_size=100)
    result = batch_size.find_batch_size(state, data, loss=mean_squared_error, mode="memory",
                                     memory_limit_bytes=budget, max_batch_size=1024,
                                     multiple_of=16)
    size = result.batch_size
    assert result.method == "analysis" and result.outcome[size] == "ran"
    sizes = sorted(result.predicted_bytes)
    predicted = np.array([result.predicted_bytes[s] for s in sizes])
    assert np.all(np.diff(predicted) > 0)  # the batch is an argument: bytes grow with it
    assert size == 96 and result.predicted_bytes[size] <= budget
    # Bisection is exact: the next multiple is over budget, and so is doubling.
    assert result.outcome[size + 16] == "over budget"
    assert batch_size.step_memory_bytes(state, data, loss=mean_squared_error,
                                     batch_size=2 * size) > budget


def fake_out_of_memory_above(limit, monkeypatch):
    real = batch_size._run_step

    def run_step(compiled, state, batch):
        if batch["x"].shape[0] > limit:
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying "
                                             "to allocate")
        real(compiled, state, batch)

    monkeypatch.setattr(batch_size, "_run_step", run_step)


def test_memory_mode_falls_back_to_trial_runs_without_a_prediction(monkeypatch):
    state, data = small_state_and_data()
    fake_out_of_memory_above(40, monkeypatch)
    monkeypatch.setattr(batch_size, "_peak_bytes", lambda compiled: None)
    result = batch_size.max_batch_size_in_memory(state, data, loss=mean_squared_error,
                                              max_batch_size=256, multiple_of=8)
    assert result.method == "trial" and result.batch_size == 40
    assert result.outcome[40] == "ran" and result.outcome[48] == "out of memory"


def test_memory_mode_never_returns_a_size_that_failed_to_run(monkeypatch):
    state, data = small_state_and_data()
    fake_out_of_memory_above(40, monkeypatch)  # the analysis is optimistic beyond 40
    result = batch_size.max_batch_size_in_memory(state, data, loss=mean_squared_error,
                                              memory_limit_bytes=1 << 40, max_batch_size=256,
                                              multiple_of=8)
    assert result.method == "analysis" and result.batch_size == 40
    assert result.outcome[40] == "ran" and "out of memory" in result.outcome.values()


def test_memory_and_mode_arguments_are_checked():
    state, data = small_state_and_data()
    with pytest.raises(ValueError, match="mode='speed'"):
        batch_size.find_batch_size(state, data, loss=mean_squared_error, mode="speed")
    with pytest.raises(ValueError, match="memory_limit_bytes"):
        batch_size.max_batch_size_in_memory(state, data, loss=mean_squared_error,
                                         method="analysis")
    with pytest.raises(ValueError, match="method='guess'"):
        batch_size.max_batch_size_in_memory(state, data, loss=mean_squared_error, method="guess")
    with pytest.raises(ValueError, match="small_batch_size"):
        batch_size.critical_batch_size(state, data, loss=mean_squared_error, small_batch_size=8,
                                    big_batch_size=8)


def test_noise_scale_matches_linear_regression_in_closed_form():
    """Linear regression y = w*.x + sigma eps, x ~ N(0, I_d), eps ~ N(0, 1), model w.x, loss
    l = (w.x - y)^2. With delta = w - w* and r = delta.x - sigma eps the per-example gradient
    is g = 2 r x, so
        G = E g = 2 E[x x^T] delta = 2 delta,                  |G|^2 = 4 |delta|^2,
        E|g|^2 = 4 (E[(delta.x)^2 |x|^2] + sigma^2 E|x|^2) = 4 ((d + 2)|delta|^2 + d sigma^2)
    (E[x_i x_j |x|^2] = (d + 2) delta_ij for a standard Gaussian), hence
        tr Sigma = E|g|^2 - |G|^2 = 4 ((d + 1)|delta|^2 + d sigma^2),
        B_simple = ((d + 1)|delta|^2 + d sigma^2) / |delta|^2   (= 9 for d = 4, |delta| = 1,
    sigma = 1). The finder samples the N examples with replacement, so it is unbiased for
    the empirical versions of these (brute force over all N per-example gradients), which
    differ from the population values by O(1/sqrt(N)).
    """
    d, n, sigma = 4, 100_000, 1.0
    kx, ke = jax.random.split(jax.random.PRNGKey(4))
    x = jax.random.normal(kx, (n, d))
    y = sigma * jax.random.normal(ke, (n, 1))  # w* = 0
    w = jnp.array([[0.5], [-0.5], [0.5], [0.5]])  # |delta| = 1
    data = {"x": x, "y": y}
    state = linear_state(data, sgd())
    state = state.replace(params={"Dense_0": {"kernel": w}})
    result = batch_size.find_batch_size(state, data, loss=mean_squared_error, mode="noise_scale",
                                     small_batch_size=4, big_batch_size=128, num_draws=1000)

    g_NxD = 2.0 * np.asarray((x @ w - y), np.float64) * np.asarray(x, np.float64)
    mean_D, sq_N = g_NxD.mean(axis=0), np.sum(g_NxD ** 2, axis=1)
    grad_sq_emp = float(mean_D @ mean_D)
    trace_emp = float(sq_N.mean()) - grad_sq_emp
    # This data set vs. the population closed form, within 4 standard errors of the
    # empirical quantity (delta method: its influence function over the N examples).
    infl_grad_sq_N = 2.0 * (g_NxD - mean_D) @ mean_D
    infl_trace_N = (sq_N - sq_N.mean()) - infl_grad_sq_N
    infl_ratio_N = infl_trace_N / grad_sq_emp - trace_emp * infl_grad_sq_N / grad_sq_emp ** 2
    for emp, closed, infl_N in ((grad_sq_emp, 4.0, infl_grad_sq_N),
                                (trace_emp, 4.0 * ((d + 1) + d * sigma ** 2), infl_trace_N),
                                (trace_emp / grad_sq_emp, 9.0, infl_ratio_N)):
        assert abs(emp - closed) < 4 * infl_N.std() / np.sqrt(n)
    # The estimator against its exact target, within 4 standard errors (its own delta-method
    # error for the ratio; the per-draw spread for the two means), which must be small.
    assert result.b_simple_stderr < 0.1 * 9.0
    assert abs(result.b_simple - trace_emp / grad_sq_emp) < 4 * result.b_simple_stderr
    for estimate_K, exact in ((result.trace_sigma_K, trace_emp),
                              (result.grad_sq_norm_K, grad_sq_emp)):
        stderr = estimate_K.std(ddof=1) / np.sqrt(estimate_K.size)
        assert abs(estimate_K.mean() - exact) < 4 * stderr
    assert result.batch_size == round(result.b_simple)
    assert result.b_simple_running_K[-1] == pytest.approx(result.b_simple)
