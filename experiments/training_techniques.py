"""Training techniques, each doing what its paper says: step size, adaptive optimizers,
mini-batches, clipping, accumulation, SWA, early stopping / dropout / L2, the LR finder and
the gradient noise scale.

Statements and what is measured (each part is tiny; `config.<part>` holds every knob).
1. Step size (Nesterov 2004, Sec. 1.2.3; Thm 2.1.15). Gradient descent on a quadratic with
   Hessian eigenvalues lambda_i <= L moves each eigen-coordinate by (1 - lr lambda_i) per step:
   it converges iff lr < 2/L. Linear regression with a diagonal design (H = diag(lambda)) is
   trained by full-batch GD at lr = 0.9 * 2/L and 1.1 * 2/L (threshold from both sides: the
   loss ratio after `divergence_steps`), and the steps to reach `tolerance` x the initial loss
   at 0.01 * 2/L and at 1/L are compared with the same ratio from the closed form
   (`dl_theory.theory.quadratic.gd_loss_curve`; asymptotically ~ 1 / 0.02 = 50).
2. Adaptive optimizers (Duchi et al. 2011 Adagrad; Tieleman & Hinton 2012 RMSProp; Zeiler
   2012 Adadelta; Kingma & Ba 2015 Adam): per-coordinate step sizes undo ill-conditioning that
   is aligned with the coordinate axes. Quadratic with condition number `condition_number`,
   axis-aligned and in a random rotation (same spectrum); GD at its best rate among multiples
   of 1/L up to 2/(L + mu) vs each method at its best rate from a grid (final loss after
   `steps`, seed mean).
   Claimed: on the aligned problem Adagrad, RMSProp and Adam end lower than GD; the advantage
   of the momentum-free diagonal methods (Adagrad, RMSProp) shrinks under rotation; Adadelta
   at Zeiler's rate 1 (optax defaults rho = 0.9, eps = 1e-6) starts slowly: its first steps
   are ~sqrt(eps) per coordinate, so it needs more steps than GD to cut the loss 10-fold (its
   final loss is reported as measured, whichever way it goes).
3. Mini-batches (e.g. Bottou, Curtis & Nocedal 2018, Sec. 4): a batch of B examples drawn with
   replacement has E|g_B - G|^2 = tr(Sigma)/B. Measured on a small MLP at initialisation:
   the log-log slope of the variance against B (bootstrap over independent draw sets) and the
   relative error against tr(Sigma)/B from the per-example gradients.
4. Clipping (Pascanu, Mikolov & Bengio 2013, Sec. 3.2; Zhang et al. 2020, Thm 3): a deep
   ReLU net whose weights start `weight_scale` x too large has gradients of ~1e3; SGD diverges
   at a rate that clipped SGD (global norm <= c) trains with. The clipped update norm, taken
   from the optimizer's output, never exceeds lr * c.
5. Accumulation (optax.MultiSteps): k micro-batches of b give the update of one batch of k b
   (Adam; max abs parameter difference after N updates, vs the difference to batch b alone).
6. SWA (Izmailov et al. 2018, Alg. 1, Sec. 3.2-3.4): with a high constant SWA rate, the running
   average of the iterates has a lower test loss than the last iterate of the same run, and is
   flatter: the mean training-loss increase under random perturbations of norm `radius`
   (`dl_theory.theory.flatness`) is smaller. With batch norm, the averaged weights with the
   running statistics of the trajectory are worse than with statistics recomputed for them
   (`recompute_batch_stats`), which restore the gain over the last iterate.
7. Regularisation (Prechelt 1998 early stopping; Srivastava et al. 2014 dropout; Krogh &
   Hertz 1992 L2): an over-parameterised MLP on a small noisy regression; generalisation gap
   = test loss - train loss (eval mode), for plain, early-stopped (on a validation set),
   dropout and L2 training (plain SGD, for which decoupled weight decay is exactly the L2
   penalty's gradient); each regularised gap is below the plain one.
8. LR finder (Smith 2017, Sec. 3.3): an SGD sweep over a log grid of rates (`fit_grid` with one
   rate per member) marks the rates whose training loss falls below `converged_fraction` of
   its start; `lr_find`'s suggestion lies inside that range (position in log rate, 0..1).
9. Noise scale (McCandlish et al. 2018, App. A.1): `find_batch_size(mode="noise_scale")` on
   Gaussian linear regression with known noise against B_simple = ((d+1)|delta|^2 +
   d sigma^2)/|delta|^2 (`dl_theory.theory.quadratic`), within `max_rel_error`.

Caveat (SWA on the plain MLP): the gains are small here (test-loss ratio ~0.95, flatness
~0.91 with 2 seeds) and depend on the SWA rate: at 0.1 the test loss still fell (0.96) but
the flatness ratio was 1.05; at 0.2 flatness fell to 0.22 but the test loss rose (1.08). The
batch-norm effects are large and robust.

Run: python launch.py --config=experiments/training_techniques.py:quick --workdir=runs/tt
quick: 60 s of CPU time on 2 cores (211 s wall with the machine at load 12). paper: 5 seeds,
more steps and draws, larger grids; the published settings (CIFAR/ImageNet for SWA) are
beyond a 2-core CPU.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from dl_theory import report
from dl_theory.data import synthetic
from dl_theory.data.batching import full_batch, minibatches
from dl_theory.experiment import ClaimSpec, Result, check, config_from_presets
from dl_theory.models.mlp import MLP, Perceptron
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.swa import swa_state
from dl_theory.theory.flatness import perturbed_loss_increase
from dl_theory.theory.quadratic import (
    first_step_below,
    gd_loss_curve,
    linear_regression_noise_scale,
    minibatch_gradient_variance,
)
from dl_theory.train.batch_size import find_batch_size
from dl_theory.train.batch_stats import recompute_batch_stats
from dl_theory.train.early_stopping import EarlyStopping
from dl_theory.train.finders import lr_find
from dl_theory.train.fit import fit, fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import create_train_state, create_train_states, set_hyperparams
from dl_theory.uncertainty import fit_loglog_slope

NESTEROV = "Nesterov 2004, Sec. 1.2.3, Thm 2.1.15"
ADAPTIVE = "Duchi et al. 2011; Tieleman & Hinton 2012; Kingma & Ba 2015"
SWA = "Izmailov et al. 2018, Alg. 1, Sec. 3"
REGULARISATION = "Prechelt 1998; Srivastava et al. 2014; Krogh & Hertz 1992"

CLAIMS = (
    ClaimSpec("gd_converges_below_2_over_L",
              "GD at lr = 0.9 * 2/L on a quadratic converges: loss ratio after the divergence "
              "budget is tiny.", NESTEROV),
    ClaimSpec("gd_diverges_above_2_over_L",
              "GD at lr = 1.1 * 2/L on the same quadratic diverges: loss ratio after the same "
              "budget is huge.", NESTEROV),
    ClaimSpec("small_lr_slowdown_matches_closed_form",
              "Steps to reach the tolerance at 0.01 * 2/L over steps at 1/L, measured / closed "
              "form of GD on the quadratic.", NESTEROV),
    ClaimSpec("adaptive_beat_gd_when_axis_aligned",
              "On an axis-aligned quadratic with condition number ~1e3, Adagrad, RMSProp and "
              "Adam at tuned rates end below GD at its tuned rate (worst final-loss ratio).",
              ADAPTIVE),
    ClaimSpec("diagonal_advantage_shrinks_under_rotation",
              "The advantage of the momentum-free diagonal methods (Adagrad, RMSProp) over GD is "
              "smaller when the same spectrum is rotated (least ratio rotated-ratio / "
              "aligned-ratio).", "Duchi et al. 2011, Sec. 1; Tieleman & Hinton 2012"),
    ClaimSpec("adadelta_default_starts_slowly",
              "Adadelta at Zeiler's rate 1 needs more steps than GD to cut the loss 10-fold "
              "(ratio of steps).", "Zeiler 2012, Sec. 3 (first steps ~ sqrt(eps))"),
    ClaimSpec("minibatch_variance_slope",
              "The variance of the minibatch gradient falls as 1/B: log-log slope near -1.",
              "Bottou, Curtis & Nocedal 2018, Sec. 4"),
    ClaimSpec("minibatch_variance_closed_form",
              "The variance of the minibatch gradient equals tr(Sigma)/B for sampling with "
              "replacement (worst relative error over B).", "variance of a mean of i.i.d. draws"),
    ClaimSpec("unclipped_sgd_diverges",
              "SGD on a badly scaled deep ReLU net diverges without clipping (fraction of seeds "
              "whose loss ends non-finite or above its start).", "Pascanu et al. 2013, Sec. 3"),
    ClaimSpec("clipped_sgd_trains",
              "The same run with global-norm clipping trains: final training loss / loss of the "
              "constant predictor (worst seed).", "Zhang et al. 2020, Thm 3"),
    ClaimSpec("clipped_update_within_bound",
              "The clipped update norm never exceeds lr * c (max ratio over steps and seeds).",
              "Pascanu et al. 2013, Alg. 1"),
    ClaimSpec("accumulation_equals_large_batch",
              "k accumulated micro-batches give the same parameters as one batch k times larger "
              "(max abs difference after N updates).", "optax.MultiSteps"),
    ClaimSpec("swa_lower_test_loss",
              "The SWA average reaches a lower test loss than the last iterate of the same run "
              "(ratio of seed means).", SWA),
    ClaimSpec("swa_flatter",
              "The SWA average is flatter: smaller mean training-loss increase under random "
              "perturbations of a fixed norm (ratio SWA / last iterate).", SWA + ", Fig. 5"),
    ClaimSpec("swa_bn_needs_recomputed_stats",
              "With batch norm, the SWA weights with the trajectory's running statistics have a "
              "higher test loss than with recomputed statistics (ratio).", SWA + ".2"),
    ClaimSpec("swa_bn_recomputed_beats_iterate",
              "With recomputed statistics the SWA weights beat the last iterate (test-loss "
              "ratio).", SWA + ".2"),
    ClaimSpec("early_stopping_shrinks_gap",
              "Early stopping gives a smaller generalisation gap than plain training (ratio).",
              "Prechelt 1998"),
    ClaimSpec("dropout_shrinks_gap",
              "Dropout gives a smaller generalisation gap than plain training (ratio).",
              "Srivastava et al. 2014"),
    ClaimSpec("l2_shrinks_gap",
              "An L2 penalty gives a smaller generalisation gap than plain training (ratio).",
              "Krogh & Hertz 1992"),
    ClaimSpec("lr_finder_suggestion_converges",
              "lr_find's suggestion lies inside the range of rates where training converges "
              "(position in log rate: 0 = lowest, 1 = highest convergent rate).",
              "Smith 2017, Sec. 3.3"),
    ClaimSpec("noise_scale_matches_closed_form",
              "The measured noise-scale batch size on Gaussian linear regression matches "
              "B_simple = ((d+1)|delta|^2 + d sigma^2)/|delta|^2 (relative error).",
              "McCandlish et al. 2018, App. A.1"),
)

_TASK = dict(dim=8, teacher_width=16, noise_std=0.5, teacher_seed=0, num_test=2048)
_ADAPTIVE_RATES = dict(sgd=(0.5, 1.0, 1.998), adam=(1e-3, 1e-2, 1e-1), rmsprop=(1e-3, 1e-2, 1e-1),
                       adagrad=(1e-1, 1.0, 3.0), adadelta=(1.0, 3.0, 10.0))
_PRESETS = {
    "quick": dict(
        seeds=2, task=_TASK,
        step_size=dict(dim=20, condition_number=10.0, steps=2500, divergence_steps=100,
                       factors=(0.9, 1.1), small_factor=0.01, tolerance=1e-3,
                       max_converged_ratio=1e-6, min_diverged_ratio=1e6),
        adaptive=dict(dim=20, condition_number=1e3, steps=1000, rates=_ADAPTIVE_RATES,
                      adadelta_default_rate=1.0),
        minibatch=dict(num_train=512, width=16, batch_sizes=(1, 2, 4, 8, 16, 32, 64),
                       num_draws=256, draw_sets=3, max_rel_error=0.1),
        clipping=dict(num_train=256, widths=(32, 32, 32, 32), weight_scale=2.0, batch_size=32,
                      steps=1000, optimizer=optimizer_config(name="sgd", learning_rate=0.02,
                                                             clip_global_norm=1.0)),
        accumulation=dict(num_train=256, widths=(32, 32), micro_batch=8, accumulate_steps=4,
                          updates=25, max_abs_diff=1e-5,
                          optimizer=optimizer_config(name="adam", learning_rate=1e-2)),
        swa=dict(num_train=256, widths=(64, 64), batch_size=8, steps=1600, radii=(0.5, 1.0, 2.0),
                 radius=1.0, num_directions=32,
                 optimizer=optimizer_config(name="sgd", learning_rate=0.1, swa=dict(
                     start_step=800, frequency=5, learning_rate=0.05)),
                 bn_swa_learning_rate=0.3),
        regularisation=dict(num_train=64, num_val=64, widths=(128, 128), steps=800,
                            eval_every=10, patience=10, dropout_rate=0.5, l2=3e-2,
                            optimizer=optimizer_config(name="sgd", learning_rate=0.01)),
        lr_finder=dict(num_train=256, widths=(32, 32), batch_size=32, steps=200,
                       rates=tuple(float(r) for r in np.logspace(-3, 1, 9)),
                       converged_fraction=0.5, min_lr=1e-4, max_lr=10.0, num_steps=100,
                       optimizer=optimizer_config(name="sgd", learning_rate=0.1)),
        noise_scale=dict(dim=16, num_train=8192, noise_std=1.0, delta_norm=1.0,
                         small_batch_size=8, big_batch_size=256, num_draws=256,
                         max_rel_error=0.1),
    ),
}
_PRESETS["paper"] = {
    **_PRESETS["quick"], "seeds": 5,
    "adaptive": {**_PRESETS["quick"]["adaptive"], "steps": 5000, "rates": dict(
        sgd=(0.5, 1.0, 1.5, 1.998), adam=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
        rmsprop=(1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
        adagrad=(1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0), adadelta=(1.0, 3.0, 10.0, 30.0))},
    "minibatch": {**_PRESETS["quick"]["minibatch"], "num_draws": 2048, "draw_sets": 5},
    "swa": {**_PRESETS["quick"]["swa"], "steps": 10000,
            "optimizer": optimizer_config(name="sgd", learning_rate=0.1, swa=dict(
                start_step=5000, frequency=5, learning_rate=0.05))},
    "regularisation": {**_PRESETS["quick"]["regularisation"], "widths": (256, 256),
                       "steps": 3000},
    "noise_scale": {**_PRESETS["quick"]["noise_scale"], "num_draws": 2048},
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests; every part tiny) or "paper" (more seeds, steps and draws)."""
    return config_from_presets(_PRESETS, preset)


# --- shared data ---------------------------------------------------------------------------

def _noisy_task(task, num_train: int, num_test: int, seed: int):
    """Train and test sets of a random ReLU teacher (unit output variance) plus Gaussian label
    noise of std task.noise_std: y = f(x) + sigma eps, x ~ N(0, I_dim)."""
    target = synthetic.teacher_network(task.dim, width=task.teacher_width,
                                       seed=task.teacher_seed)
    train, test = target.split(num_train, num_test, seed=seed)
    noise_key = jax.random.PRNGKey(10_000 + seed)
    for i, split in enumerate((train, test)):
        split["y"] = split["y"] + task.noise_std * jax.random.normal(
            jax.random.fold_in(noise_key, i), split["y"].shape)
    return train, test


def _quadratic_regression(eigenvalues_D, rotation_DxD, w_star_D):
    """Rows X = diag(sqrt(D lambda / 2)) R^T and y = X w*, so that mean((X w - y)^2) =
    1/2 (w - w*)^T H (w - w*) with H = R diag(lambda) R^T: a quadratic with a chosen spectrum."""
    dim = len(eigenvalues_D)
    x = np.diag(np.sqrt(dim * np.asarray(eigenvalues_D) / 2.0)) @ rotation_DxD.T
    return {"x": jnp.asarray(x, jnp.float32), "y": jnp.asarray(x @ w_star_D[:, None], jnp.float32)}


def _mse_of(model, params, model_state, data):
    """Eval-mode mean squared error of one model on `data`."""
    pred = model.apply({"params": params, **model_state}, data["x"], train=False)
    return mean_squared_error(pred, data["y"])


def _members_mse(model, params, model_state, data) -> np.ndarray:
    """Eval-mode MSE of every member of a stacked grid, shape [G]."""
    return np.asarray(jax.vmap(lambda p, s: _mse_of(model, p, s, data))(params, model_state))


def _with(optimizer: ml_collections.ConfigDict, **changes) -> ml_collections.ConfigDict:
    """A copy of an optimizer config with some keys changed (swa={...} updates the SWA part)."""
    copy = ml_collections.ConfigDict(optimizer.to_dict())
    swa = changes.pop("swa", {})
    copy.update(changes)
    copy.swa.update(swa)
    return copy


# --- 1. step size ----------------------------------------------------------------------------

def _step_size(config, log) -> dict:
    c = config.step_size
    eig = np.logspace(0.0, -np.log10(c.condition_number), c.dim)
    top = float(eig.max())
    w_star = np.random.default_rng(c.dim).normal(size=c.dim)
    data = _quadratic_regression(eig, np.eye(c.dim), w_star)
    rates = [f * 2.0 / top for f in c.factors] + [c.small_factor * 2.0 / top, 1.0 / top]
    tx = build_optimizer(optimizer_config(name="sgd", learning_rate=rates[0]), c.steps)
    states = create_train_states(Perceptron(use_bias=False), tx, data["x"][:1], [0] * len(rates))
    states = set_hyperparams(states, learning_rate=rates)
    error = np.asarray(states.params["Dense_0"]["kernel"][0, :, 0], np.float64) - w_star
    _, history = fit_grid(states, data, full_batch(), loss=mean_squared_error, steps=c.steps,
                          data_seeds=[0] * len(rates), log=log, tags={"part": "step_size"},
                          label="step size", allow_nonfinite=True)
    loss = np.asarray(history["loss"], np.float64)  # loss[:, t] = f(w_t)
    closed = np.stack([gd_loss_curve(eig, error, lr, c.steps - 1) for lr in rates])
    ratio = loss[:2, c.divergence_steps] / loss[:2, 0]

    def steps_to_tol(curve):
        step = first_step_below(curve, c.tolerance * curve[0])
        return np.inf if step is None else float(step)

    measured_slowdown = steps_to_tol(loss[2]) / steps_to_tol(loss[3])
    closed_slowdown = steps_to_tol(closed[2]) / steps_to_tol(closed[3])
    return {"rates": rates, "L": top, "loss": loss, "closed": closed,
            "converged_ratio": float(ratio[0]), "diverged_ratio": float(ratio[1]),
            "steps_small": steps_to_tol(loss[2]), "steps_one_over_L": steps_to_tol(loss[3]),
            "slowdown": measured_slowdown, "closed_slowdown": closed_slowdown,
            "slowdown_vs_closed": measured_slowdown / closed_slowdown}


# --- 2. adaptive optimizers ------------------------------------------------------------------

def _adaptive(config, log) -> dict:
    c = config.adaptive
    eig = np.logspace(0.0, -np.log10(c.condition_number), c.dim)
    rng = np.random.default_rng(c.dim + 1)
    rotation, _ = np.linalg.qr(rng.normal(size=(c.dim, c.dim)))
    w_star = rng.normal(size=c.dim)
    problems = [_quadratic_regression(eig, np.eye(c.dim), w_star),
                _quadratic_regression(eig, rotation, w_star)]
    seeds = list(range(config.seeds))
    out = {}
    for name, grid in c.rates.items():
        # GD's rates are multiples of 1/L: 1/L is the textbook step, 2/(L + mu) ~ 2/L the
        # worst-case optimum (Nesterov 2004, Thm 2.1.15); the best of them is GD's "tuned" rate.
        scale = 1.0 / eig.max() if name == "sgd" else 1.0
        rates = [scale * float(r) for r in grid]
        members = [(p, r, s) for p in range(2) for r in rates for s in seeds]
        data = {k: jnp.stack([problems[p][k] for p, _, _ in members]) for k in ("x", "y")}
        tx = build_optimizer(optimizer_config(name=name, learning_rate=rates[0]), c.steps)
        states = create_train_states(Perceptron(use_bias=False), tx, data["x"][0, :1],
                                     [s for _, _, s in members])
        states = set_hyperparams(states, learning_rate=[r for _, r, _ in members])
        _, history = fit_grid(states, data, full_batch(), loss=mean_squared_error,
                              steps=c.steps, data_seeds=[s for _, _, s in members], data_axis=0,
                              log=log, tags={"part": "adaptive", "optimizer": name},
                              label=f"adaptive {name}", allow_nonfinite=True)
        loss = np.asarray(history["loss"], np.float64).reshape(2, len(rates), len(seeds), -1)
        curves = np.where(np.isfinite(loss), loss, np.inf).mean(axis=2)  # [2, R, T]
        best = np.argmin(curves[:, :, -1], axis=1)
        out[name] = {"rates": rates, "curves": curves, "best_rate": [rates[i] for i in best],
                     "final": [float(curves[p, best[p], -1]) for p in range(2)]}
    default = float(c.adadelta_default_rate)
    if default not in out["adadelta"]["rates"]:
        raise ValueError(f"adaptive.adadelta_default_rate={default} must be one of "
                         f"adaptive.rates.adadelta={out['adadelta']['rates']}")
    default_curve = out["adadelta"]["curves"][0, out["adadelta"]["rates"].index(default)]
    gd_curve = out["sgd"]["curves"][0, 0]

    def steps_to_tenth(curve):  # censored at the budget: a lower bound if never reached
        step = first_step_below(curve, 0.1 * curve[0])
        return float(len(curve) if step is None else max(step, 1))

    gd = out["sgd"]["final"]
    out["ratio_to_gd"] = {n: [out[n]["final"][p] / gd[p] for p in range(2)]
                          for n in c.rates if n != "sgd"}
    out["adadelta_default_final"] = float(default_curve[-1])
    out["adadelta_default_curve"] = default_curve
    out["adadelta_slow_start"] = steps_to_tenth(default_curve) / steps_to_tenth(gd_curve)
    return out


# --- 3. mini-batch gradient variance ---------------------------------------------------------

def _minibatch(config) -> dict:
    c = config.minibatch
    train, _ = _noisy_task(config.task, c.num_train, 1, seed=1)
    model = MLP(widths=(c.width,), activation="tanh")
    params = model.init(jax.random.PRNGKey(0), train["x"][:1])["params"]

    def flat_grad(batch):
        grads = jax.grad(lambda p: _mse_of(model, p, {}, batch))(params)
        return ravel_pytree(grads)[0]

    per_example = np.asarray(jax.vmap(lambda x, y: flat_grad({"x": x[None], "y": y[None]}))(
        train["x"], train["y"]), np.float64)
    full = np.asarray(flat_grad(train), np.float64)
    # The gradient of a batch's mean loss is the mean of its examples' gradients, so a batch
    # drawn with replacement (as `minibatches` draws) is a mean of rows of per_example.
    rng = np.random.default_rng(1)
    variance = np.zeros((c.draw_sets, len(c.batch_sizes)))
    for j, size in enumerate(c.batch_sizes):
        idx = rng.integers(0, c.num_train, size=(c.draw_sets, c.num_draws, size))
        sq = np.sum((per_example[idx].mean(axis=2) - full) ** 2, axis=-1)
        variance[:, j] = sq.mean(axis=1)
    exact = np.asarray([minibatch_gradient_variance(per_example, b) for b in c.batch_sizes])
    return {"batch_sizes": list(c.batch_sizes), "variance": variance, "exact": exact,
            "slope": fit_loglog_slope(c.batch_sizes, variance),
            "max_rel_error": float(np.max(np.abs(variance.mean(0) / exact - 1.0)))}


# --- 4. clipping -----------------------------------------------------------------------------

def _sgd_with_update_norms(model, optimizer, data, c, seeds):
    """Losses and update norms |u_t| (the optimizer's output), each [S, steps], of minibatch
    training from initial weights scaled by c.weight_scale; one lax.scan, vmapped over seeds."""
    tx = build_optimizer(optimizer, c.steps)
    sample = minibatches(c.batch_size)

    def run(seed):
        params = model.init(jax.random.PRNGKey(seed), data["x"][:1])["params"]
        params = jax.tree.map(lambda p: c.weight_scale * p, params)
        key = jax.random.PRNGKey(1000 + seed)

        def body(carry, t):
            params, opt_state = carry
            batch = sample(data, jax.random.fold_in(key, t))
            loss, grads = jax.value_and_grad(lambda p: _mse_of(model, p, {}, batch))(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (
                loss, optax.global_norm(updates))

        return jax.lax.scan(body, (params, tx.init(params)), jnp.arange(c.steps))[1]

    losses, norms = jax.jit(jax.vmap(run))(jnp.asarray(seeds))
    return np.asarray(losses, np.float64), np.asarray(norms, np.float64)


def _clipping(config) -> dict:
    c = config.clipping
    train, _ = _noisy_task(config.task, c.num_train, 1, seed=2)
    model = MLP(widths=tuple(c.widths), activation="relu")
    seeds = list(range(config.seeds))
    clipped, clipped_norms = _sgd_with_update_norms(model, c.optimizer, train, c, seeds)
    plain, _ = _sgd_with_update_norms(model, _with(c.optimizer, clip_global_norm=0.0), train, c,
                                      seeds)
    tail = max(1, c.steps // 10)
    diverged = ~np.isfinite(plain[:, -1]) | (plain[:, -1] > plain[:, 0])
    baseline = float(jnp.var(train["y"]))  # loss of the best constant predictor
    bound = c.optimizer.learning_rate * c.optimizer.clip_global_norm
    return {"clipped_loss": clipped, "plain_loss": plain, "constant_predictor_loss": baseline,
            "diverged_fraction": float(diverged.mean()),
            "clipped_final_ratio": float(np.max(clipped[:, -tail:].mean(1)) / baseline),
            "max_update_ratio": float(np.max(clipped_norms) / bound)}


# --- 5. accumulation -------------------------------------------------------------------------

def _accumulation(config) -> dict:
    c = config.accumulation
    train, _ = _noisy_task(config.task, c.num_train, 1, seed=3)
    model = MLP(widths=tuple(c.widths), activation="tanh")
    k = c.accumulate_steps

    def train_params(accumulate, batch_size):
        tx = build_optimizer(_with(c.optimizer, accumulate_steps=accumulate), c.updates)
        state = create_train_state(model, tx, train["x"][:1], seed=0)
        state, _ = fit(state, train, minibatches(batch_size), loss=mean_squared_error,
                       steps=c.updates * accumulate, accumulate_steps=accumulate, verbose=False)
        return ravel_pytree(state.params)[0]

    accumulated = train_params(k, k * c.micro_batch)
    large = train_params(1, k * c.micro_batch)
    small = train_params(1, c.micro_batch)
    return {"max_abs_diff": float(jnp.max(jnp.abs(accumulated - large))),
            "small_batch_max_abs_diff": float(jnp.max(jnp.abs(small - large)))}


# --- 6. SWA ----------------------------------------------------------------------------------

# No `from __future__ import annotations` in this file: flax turns modules into dataclasses,
# which resolve string annotations through sys.modules, where a file-loaded experiment is not.
class BatchNormMLP(nn.Module):
    """Dense -> BatchNorm -> ReLU per hidden width, then a Dense read-out; [B, D] -> [B, 1].

    Batch statistics in float32 (flax BatchNorm computes them in float32 for float32 inputs);
    running averages with `momentum` (Ioffe & Szegedy 2015).
    """

    widths: tuple[int, ...]
    momentum: float = 0.9
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        h = x_BxD
        for width in self.widths:
            h = nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype)(h)
            h = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                             dtype=jnp.float32, param_dtype=self.param_dtype)(h)
            h = nn.relu(h).astype(self.dtype)
        return nn.Dense(1, dtype=self.dtype, param_dtype=self.param_dtype)(h)


def _train_swa(model, optimizer, train, test, c, seeds, log, label):
    """(states, SWA-averaged params) of one SWA run per seed, as one fit_grid program."""
    tx = build_optimizer(optimizer, c.steps)
    states = create_train_states(model, tx, train["x"][:2], seeds)
    states, _ = fit_grid(states, train, minibatches(c.batch_size), loss=mean_squared_error,
                         steps=c.steps, data_seeds=[500 + s for s in seeds], eval_data=test,
                         eval_every=c.steps // 2, log=log, tags={"part": label}, label=label)
    average = swa_state(states.opt_state)
    if int(np.min(average.num_averaged)) == 0:
        raise ValueError(f"swa.optimizer.swa.start_step={optimizer.swa.start_step} is beyond "
                         f"swa.steps={c.steps}: nothing was averaged")
    return states, average.average


def _swa(config, log) -> dict:
    c = config.swa
    train, test = _noisy_task(config.task, c.num_train, config.task.num_test, seed=4)
    seeds = list(range(config.seeds))
    model = MLP(widths=tuple(c.widths), activation="relu")
    states, average = _train_swa(model, c.optimizer, train, test, c, seeds, log, "swa")
    test_iterate = _members_mse(model, states.params, states.model_state, test)
    test_swa = _members_mse(model, average, states.model_state, test)

    def flatness(params):
        key = jax.random.PRNGKey(7)
        return jax.vmap(lambda p: perturbed_loss_increase(
            lambda q: _mse_of(model, q, {}, train), p, c.radii, key, c.num_directions))(params)

    flat_iterate, flat_swa = (np.asarray(flatness(p)) for p in (states.params, average))
    at = list(c.radii).index(c.radius)

    bn_model = BatchNormMLP(widths=tuple(c.widths))
    bn_optimizer = _with(c.optimizer, swa=dict(learning_rate=c.bn_swa_learning_rate))
    bn_states, bn_average = _train_swa(bn_model, bn_optimizer, train, test, c, seeds, log,
                                       "swa batch norm")
    bn_iterate = _members_mse(bn_model, bn_states.params, bn_states.model_state, test)
    bn_stale = _members_mse(bn_model, bn_average, bn_states.model_state, test)
    batches = [{"x": train["x"][i:i + c.batch_size]}
               for i in range(0, c.num_train - c.batch_size + 1, c.batch_size)]
    bn_recomputed = []
    for g in range(len(seeds)):
        state, params = (jax.tree.map(lambda a: a[g], t) for t in (bn_states, bn_average))
        stats = recompute_batch_stats(state, params, batches, momentum=bn_model.momentum)
        bn_recomputed.append(float(_mse_of(bn_model, params, stats, test)))
    bn_recomputed = np.asarray(bn_recomputed)
    return {"test_iterate": test_iterate, "test_swa": test_swa, "radii": list(c.radii),
            "flat_iterate": flat_iterate, "flat_swa": flat_swa,
            "test_ratio": float(test_swa.mean() / test_iterate.mean()),
            "flat_ratio": float(flat_swa[:, at].mean() / flat_iterate[:, at].mean()),
            "bn_iterate": bn_iterate, "bn_stale": bn_stale, "bn_recomputed": bn_recomputed,
            "bn_stale_ratio": float(bn_stale.mean() / bn_recomputed.mean()),
            "bn_recomputed_ratio": float(bn_recomputed.mean() / bn_iterate.mean())}


# --- 7. early stopping, dropout, L2 ----------------------------------------------------------

def _regularisation(config, log) -> dict:
    c = config.regularisation
    train, test = _noisy_task(config.task, c.num_train, config.task.num_test, seed=5)
    val, _ = _noisy_task(config.task, c.num_val, 1, seed=6)
    seeds = list(range(config.seeds))
    if c.optimizer.name != "sgd":
        raise ValueError(f"regularisation.optimizer.name={c.optimizer.name!r}; must be 'sgd', "
                         "for which decoupled weight decay is exactly the L2 penalty")
    plain_model = MLP(widths=tuple(c.widths), activation="relu")
    dropout_model = MLP(widths=tuple(c.widths), activation="relu", dropout_rate=c.dropout_rate)
    tx = build_optimizer(c.optimizer, c.steps)
    out = {}
    # Plain and L2 as one grid: for plain SGD the decoupled decay theta <- theta - lr wd theta
    # is the gradient step of the penalty (wd / 2) |theta|^2, so weight_decay = l2 per member.
    for names, model in ((("plain", "l2"), plain_model), (("dropout",), dropout_model)):
        states = create_train_states(model, tx, train["x"][:2], seeds * len(names))
        decay = [c.l2 if name == "l2" else 0.0 for name in names for _ in seeds]
        states, _ = fit_grid(set_hyperparams(states, weight_decay=decay), train, full_batch(),
                             loss=mean_squared_error, steps=c.steps,
                             data_seeds=seeds * len(names), log=log,
                             tags={"part": "regularisation", "variant": "+".join(names)},
                             label=f"regularisation {'+'.join(names)}")
        train_loss = _members_mse(model, states.params, states.model_state, train)
        test_loss = _members_mse(model, states.params, states.model_state, test)
        for i, name in enumerate(names):
            part = slice(i * len(seeds), (i + 1) * len(seeds))
            out[name] = (train_loss[part], test_loss[part])
    early = []
    for seed in seeds:
        state = create_train_state(plain_model, tx, train["x"][:2], seed)
        state, _ = fit(state, train, full_batch(), loss=mean_squared_error, steps=c.steps,
                       eval_data=val, eval_every=c.eval_every, data_seed=seed,
                       early_stopping=EarlyStopping(patience=c.patience), log=log,
                       tags={"part": "regularisation", "variant": "early_stopping"},
                       label="regularisation early stopping", verbose=False)
        early.append((float(_mse_of(plain_model, state.params, {}, train)),
                      float(_mse_of(plain_model, state.params, {}, test)), int(state.step)))
    out["early_stopping"] = tuple(np.asarray(v) for v in zip(*early))
    gaps = {name: float(np.mean(v[1] - v[0])) for name, v in out.items()}
    return {"train": {n: v[0] for n, v in out.items()}, "test": {n: v[1] for n, v in out.items()},
            "gap": gaps, "stopped_at": out["early_stopping"][2],
            "gap_ratio": {n: gaps[n] / gaps["plain"] for n in gaps if n != "plain"}}


# --- 8. LR finder ----------------------------------------------------------------------------

def _lr_finder(config, log) -> dict:
    c = config.lr_finder
    train, _ = _noisy_task(config.task, c.num_train, 1, seed=7)
    model = MLP(widths=tuple(c.widths), activation="tanh")
    rates = [float(r) for r in c.rates]
    tx = build_optimizer(c.optimizer, c.steps)
    states = set_hyperparams(create_train_states(model, tx, train["x"][:2], [0] * len(rates)),
                             learning_rate=rates)
    _, history = fit_grid(states, train, minibatches(c.batch_size), loss=mean_squared_error,
                          steps=c.steps, data_seeds=[0] * len(rates), log=log,
                          tags={"part": "lr_finder"}, label="lr sweep", allow_nonfinite=True)
    loss = np.asarray(history["loss"], np.float64)
    final = loss[:, -max(1, c.steps // 10):].mean(axis=1)
    converged = np.isfinite(final) & (final <= c.converged_fraction * loss[:, 0])
    found = lr_find(create_train_state(model, tx, train["x"][:2], 0), train,
                    minibatches(c.batch_size), loss=mean_squared_error, min_lr=c.min_lr,
                    max_lr=c.max_lr, num_steps=c.num_steps)
    if converged.any() and found.suggestion is not None:
        low, high = min(np.asarray(rates)[converged]), max(np.asarray(rates)[converged])
        position = float(np.log(found.suggestion / low) / np.log(high / low))
    else:
        low = high = position = float("nan")
    return {"rates": rates, "final": final, "initial": loss[:, 0], "converged": converged,
            "range": (low, high), "found": found, "position": position}


# --- 9. noise scale --------------------------------------------------------------------------

def _noise_scale(config) -> dict:
    c = config.noise_scale
    x_key, noise_key = jax.random.split(jax.random.PRNGKey(8))
    x = jax.random.normal(x_key, (c.num_train, c.dim))
    data = {"x": x, "y": c.noise_std * jax.random.normal(noise_key, (c.num_train, 1))}  # w* = 0
    delta = jnp.full((c.dim, 1), c.delta_norm / np.sqrt(c.dim), jnp.float32)
    state = create_train_state(Perceptron(use_bias=False),
                               build_optimizer(optimizer_config(name="sgd")), x[:1], 0)
    state = state.replace(params={"Dense_0": {"kernel": delta}})
    found = find_batch_size(state, data, loss=mean_squared_error, mode="noise_scale",
                            small_batch_size=c.small_batch_size,
                            big_batch_size=c.big_batch_size, num_draws=c.num_draws)
    closed = linear_regression_noise_scale(c.dim, c.delta_norm ** 2, c.noise_std ** 2)
    return {"b_simple": found.b_simple, "b_simple_stderr": found.b_simple_stderr,
            "closed_form": closed, "running": found.b_simple_running_K,
            "rel_error": abs(found.b_simple - closed) / closed}


# --- figures ---------------------------------------------------------------------------------

def _curves_figure(step, adaptive, batch, clip, reg, noise, workdir) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    ax = axes[0, 0]
    labels = ["0.9 x 2/L", "1.1 x 2/L", "0.01 x 2/L", "1/L"]
    t = np.arange(1, step["loss"].shape[1] + 1)
    for i, label in enumerate(labels):
        line, = ax.loglog(t, step["loss"][i] / step["loss"][i, 0], label=f"lr = {label}")
        ax.loglog(t, step["closed"][i] / step["closed"][i, 0], ls="--", c=line.get_color(),
                  lw=0.8)
    ax.set(xlabel="GD step + 1", ylabel="f(w_t) / f(w_0)", ylim=(1e-16, 1e20),
           title="Step size on a quadratic (dashed: closed form)")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for name, part in adaptive.items():
        if not isinstance(part, dict) or "curves" not in part:
            continue
        for p, style in ((0, "-"), (1, ":")):
            curve = part["curves"][p, part["rates"].index(part["best_rate"][p])]
            ax.loglog(np.arange(1, curve.size + 1), np.maximum(curve, 1e-18), ls=style,
                      label=f"{name} lr={part['best_rate'][p]:.3g}" if p == 0 else None)
    ax.loglog(np.arange(1, adaptive["adadelta_default_curve"].size + 1),
              adaptive["adadelta_default_curve"], "k-.", lw=0.8, label="adadelta lr=1 (Zeiler)")
    ax.set(xlabel="step", ylabel="loss", title="kappa = 1e3: aligned (solid), rotated (dotted)")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    sizes = np.asarray(batch["batch_sizes"])
    ax.loglog(sizes, batch["variance"].T, "o", c="C0", alpha=0.5)
    ax.loglog(sizes, batch["exact"], "k-", label="tr(Sigma) / B")
    ax.set(xlabel="batch size B", ylabel="E|g_B - G|^2",
           title=f"Minibatch gradient variance\nslope {batch['slope']}")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    for s in range(clip["clipped_loss"].shape[0]):
        ax.semilogy(clip["clipped_loss"][s], c="C0", label="clipped" if s == 0 else None)
        ax.semilogy(clip["plain_loss"][s], c="C3", label="unclipped (NaN = diverged)"
                    if s == 0 else None)
    ax.axhline(clip["constant_predictor_loss"], c="gray", ls=":", label="Var y")
    ax.set(xlabel="SGD step", ylabel="minibatch loss", title="Badly scaled deep ReLU net")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    names = list(reg["gap"])
    pos = np.arange(len(names))
    ax.bar(pos - 0.2, [reg["train"][n].mean() for n in names], 0.4, label="train")
    ax.bar(pos + 0.2, [reg["test"][n].mean() for n in names], 0.4, label="test")
    ax.set_xticks(pos, names)
    ax.set(ylabel="MSE (eval mode)", title="Over-parameterised MLP, 64 noisy examples")
    ax.legend(fontsize=8)
    ax = axes[1, 2]
    ax.semilogx(np.arange(1, noise["running"].size + 1), noise["running"], label="running estimate")
    ax.axhline(noise["closed_form"], c="k", ls="--", label="closed form B_simple")
    ax.set(xlabel="draws", ylabel="B_simple", title="Noise scale, linear regression")
    ax.legend(fontsize=8)
    return report.save_figure(fig, workdir, "training_techniques_curves.png")


def _lr_figure(lr, workdir) -> str:
    import matplotlib.pyplot as plt

    from dl_theory.train.finders import plot_lr_find

    fig, (ax_find, ax_sweep) = plt.subplots(1, 2, figsize=(12, 4.5))
    plot_lr_find(lr["found"], ax_find)
    ratio = lr["final"] / lr["initial"]
    ax_sweep.loglog(lr["rates"], np.where(np.isfinite(ratio), ratio, 1e6), "o-",
                    label="final / initial training loss")
    for ax in (ax_find, ax_sweep):
        if np.isfinite(lr["range"][0]):
            ax.axvspan(*lr["range"], color="C2", alpha=0.12, label="converges (SGD sweep)")
        if lr["found"].suggestion is not None:
            ax.axvline(lr["found"].suggestion, c="C1")
    ax_sweep.set(xlabel="learning rate", ylabel="loss ratio (diverged: 1e6)",
                 title="SGD sweep with fit_grid")
    ax_sweep.legend(fontsize=8)
    ax_find.legend(fontsize=7)
    return report.save_figure(fig, workdir, "training_techniques_lr_range.png")


def _swa_figure(swa, workdir) -> str:
    import matplotlib.pyplot as plt

    fig, (ax_flat, ax_bar) = plt.subplots(1, 2, figsize=(12, 4.5))
    radii = np.asarray(swa["radii"])
    ax_flat.plot(radii, swa["flat_iterate"].mean(0), "o-", label="last iterate")
    ax_flat.plot(radii, swa["flat_swa"].mean(0), "s-", label="SWA average")
    ax_flat.set(xlabel="perturbation norm rho", ylabel="mean train-loss increase",
                title="Flatness (random directions)")
    ax_flat.legend(fontsize=8)
    names = ["iterate", "SWA", "BN iterate", "BN SWA, stale stats", "BN SWA, recomputed"]
    values = [swa[k] for k in ("test_iterate", "test_swa", "bn_iterate", "bn_stale",
                               "bn_recomputed")]
    ax_bar.bar(range(5), [v.mean() for v in values], yerr=[v.std() for v in values])
    ax_bar.set_xticks(range(5), names, rotation=20, fontsize=8)
    ax_bar.set(ylabel="test MSE", title="SWA vs last iterate (same run)")
    return report.save_figure(fig, workdir, "training_techniques_swa.png")


# --- run -------------------------------------------------------------------------------------

def _plain(value):
    """Arrays -> lists, recursively, for the JSON metrics."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def run(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Runs the nine parts, checks the claims, draws the figures."""
    log = MetricsLog.in_workdir(workdir)
    step, adaptive = _step_size(config, log), _adaptive(config, log)
    batch, clip, accum = _minibatch(config), _clipping(config), _accumulation(config)
    swa, reg = _swa(config, log), _regularisation(config, log)
    lr, noise = _lr_finder(config, log), _noise_scale(config)
    ratio = adaptive["ratio_to_gd"]
    claims = [
        check(CLAIMS[0], step["converged_ratio"], at_most=config.step_size.max_converged_ratio),
        check(CLAIMS[1], step["diverged_ratio"], at_least=config.step_size.min_diverged_ratio),
        # Both counts come from the same trajectory up to float32 rounding; +-1 step on the
        # fast run (~20 steps) is 5%.
        check(CLAIMS[2], step["slowdown_vs_closed"], at_least=0.95, at_most=1.05),
        check(CLAIMS[3], max(ratio[n][0] for n in ("adagrad", "rmsprop", "adam")), at_most=1.0),
        check(CLAIMS[4], min(ratio[n][1] / ratio[n][0] for n in ("adagrad", "rmsprop")),
              at_least=1.0),
        check(CLAIMS[5], adaptive["adadelta_slow_start"], at_least=1.0),
        check(CLAIMS[6], batch["slope"], at_least=-1.1, at_most=-0.9),
        check(CLAIMS[7], batch["max_rel_error"], at_most=config.minibatch.max_rel_error),
        check(CLAIMS[8], clip["diverged_fraction"], at_least=1.0),
        check(CLAIMS[9], clip["clipped_final_ratio"], at_most=1.0),
        # The norm of a clipped float32 vector can exceed c by a rounding of ~1e-7.
        check(CLAIMS[10], clip["max_update_ratio"], at_most=1.0 + 1e-6),
        check(CLAIMS[11], accum["max_abs_diff"], at_most=config.accumulation.max_abs_diff),
        check(CLAIMS[12], swa["test_ratio"], at_most=1.0),
        check(CLAIMS[13], swa["flat_ratio"], at_most=1.0),
        check(CLAIMS[14], swa["bn_stale_ratio"], at_least=1.0),
        check(CLAIMS[15], swa["bn_recomputed_ratio"], at_most=1.0),
        check(CLAIMS[16], reg["gap_ratio"]["early_stopping"], at_most=1.0),
        check(CLAIMS[17], reg["gap_ratio"]["dropout"], at_most=1.0),
        check(CLAIMS[18], reg["gap_ratio"]["l2"], at_most=1.0),
        check(CLAIMS[19], lr["position"], at_least=0.0, at_most=1.0),
        check(CLAIMS[20], noise["rel_error"], at_most=config.noise_scale.max_rel_error),
    ]
    figures = [_curves_figure(step, adaptive, batch, clip, reg, noise, workdir),
               _lr_figure(lr, workdir), _swa_figure(swa, workdir)]
    found = lr.pop("found")
    metrics = {
        "step_size": {k: v for k, v in step.items() if k not in ("loss", "closed")},
        "adaptive": {n: ({k: v for k, v in p.items() if k != "curves"} if isinstance(p, dict)
                         and "curves" in p else p) for n, p in adaptive.items()
                     if n != "adadelta_default_curve"},
        "minibatch": {**batch, "slope": [batch["slope"].value, batch["slope"].lo,
                                         batch["slope"].hi]},
        "clipping": {k: v for k, v in clip.items() if not k.endswith("_loss")
                     or k == "constant_predictor_loss"},
        "accumulation": accum, "swa": swa, "regularisation": reg,
        "lr_finder": {**lr, "suggestion": found.suggestion, "usable_range": found.usable_range,
                      "stability_bound": found.stability_bound},
        "noise_scale": {k: v for k, v in noise.items() if k != "running"},
    }
    return Result(claims=claims, metrics=_plain(metrics), figures=figures)
