"""Batch size: minibatch gradient variance, gradient accumulation and the gradient noise scale.

3. Mini-batches (e.g. Bottou, Curtis & Nocedal 2018, Sec. 4): a batch of B examples drawn with
   replacement has E|g_B - G|^2 = tr(Sigma)/B. Measured on a small MLP at initialisation:
   the log-log slope of the variance against B (bootstrap over independent draw sets) and the
   relative error against tr(Sigma)/B from the per-example gradients.
5. Accumulation (optax.MultiSteps): k micro-batches of b give the update of one batch of k b
   (Adam; max abs parameter difference after N updates, vs the difference to batch b alone).
9. Noise scale (McCandlish et al. 2018, App. A.1): `find_batch_size(mode="noise_scale")` on
   Gaussian linear regression with known noise against B_simple = ((d+1)|delta|^2 +
   d sigma^2)/|delta|^2 (`dl_theory.theory.quadratic`), within `max_rel_error`.

Baselines, measured in the same run and rejected by each claim's bound: the slope of batches of
one example repeated B times (no independence, no 1/B); the measured variance against the
without-replacement formula (N-B)/(N-1) tr(Sigma)/B; one micro-batch per update instead of the
accumulated mean; B_simple against the label-noise-only formula d sigma^2/|delta|^2.

Run: python launch.py --config=experiments/batch_size.py:quick --workdir=runs/bs
Split from the former training_techniques experiment (same parts, claims and numbers).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.flatten_util import ravel_pytree

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.data.synthetic import noisy_teacher_task
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP, Perceptron
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.variants import optimizer_variant
from dl_theory.theory.quadratic import (
    linear_regression_noise_scale,
    minibatch_gradient_variance,
)
from dl_theory.train.batch_size import find_batch_size
from dl_theory.train.evaluate import model_mse
from dl_theory.train.fit import fit
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_state
from dl_theory.uncertainty import Estimate, fit_loglog_slope

CLAIMS = (
    ClaimSpec("minibatch_variance_slope",
              "The variance of the minibatch gradient falls as 1/B: log-log slope near -1 "
              "(batches of one example repeated B times stay flat).",
              "bottou2018, Sec. 4",
              at_least=-1.1, at_most=-0.9),
    ClaimSpec("minibatch_variance_closed_form",
              "The variance of the minibatch gradient equals tr(Sigma)/B for sampling with "
              "replacement (worst relative error over B), not the without-replacement "
              "(N-B)/(N-1) tr(Sigma)/B.",
              "wasserman2004, Ch. 3 (variance of a mean of i.i.d. draws)",
              at_most="minibatch.max_rel_error"),
    ClaimSpec("accumulation_equals_large_batch",
              "k accumulated micro-batches give the same parameters as one batch k times larger "
              "(max abs difference after N updates; one micro-batch alone does not).",
              "optax, optax.MultiSteps",
              at_most="accumulation.max_abs_diff"),
    ClaimSpec("noise_scale_matches_closed_form",
              "The measured noise-scale batch size on Gaussian linear regression matches "
              "B_simple = ((d+1)|delta|^2 + d sigma^2)/|delta|^2 (relative error), not the "
              "label-noise-only d sigma^2/|delta|^2.",
              "mccandlish2018, App. A.1",
              at_most="noise_scale.max_rel_error"),
)

TASK = dict(dim=8, teacher_width=16, noise_std=0.5, teacher_seed=0, num_test=2048)
_PRESETS = {
    "quick": dict(
        task=TASK, precision="float32",
        minibatch=dict(num_train=512, width=16, batch_sizes=(1, 2, 4, 8, 16, 32, 64),
                       num_draws=256, draw_sets=3, max_rel_error=0.1),
        accumulation=dict(num_train=256, widths=(32, 32), micro_batch=8, accumulate_steps=4,
                          updates=25, max_abs_diff=1e-5,
                          optimizer=optimizer_config(name="adam", learning_rate=1e-2)),
        noise_scale=dict(dim=16, num_train=8192, noise_std=1.0, delta_norm=1.0,
                         small_batch_size=8, big_batch_size=256, num_draws=256,
                         max_rel_error=0.1),
    ),
}
_PRESETS["paper"] = {
    **_PRESETS["quick"],
    "minibatch": {**_PRESETS["quick"]["minibatch"], "num_draws": 2048, "draw_sets": 5},
    "noise_scale": {**_PRESETS["quick"]["noise_scale"], "num_draws": 2048},
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests; every part tiny) or "paper" (more seeds, steps and draws)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the accumulation MLP, for `launch.py --dtypes`."""
    c = config.accumulation
    model = MLP(widths=tuple(c.widths), activation="tanh",
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, config.task.dim)), build_optimizer(c.optimizer, c.updates)


def _as_list(estimate: Estimate) -> list[float]:
    return [estimate.value, estimate.lo, estimate.hi]


def compute_minibatch(config, log) -> dict:
    """Part "minibatch": the variance of minibatch gradients against tr(Sigma)/B."""
    c = config.minibatch
    train, _ = noisy_teacher_task(config.task, c.num_train, 1, seed=1)
    model = MLP(widths=(c.width,), activation="tanh",
                **get_policy(config.precision).model_dtypes())
    params = model.init(jax.random.PRNGKey(0), train["x"][:1])["params"]

    def flat_grad(batch):
        grads = jax.grad(lambda p: model_mse(model, p, {}, batch))(params)
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
    # Control for the slope (own generator, so the draws above are unchanged): batches of one
    # example repeated B times, i.e. the independence the 1/B law rests on removed.
    control_rng = np.random.default_rng(2)
    repeated = np.zeros_like(variance)
    for j in range(len(c.batch_sizes)):
        idx = control_rng.integers(0, c.num_train, size=(c.draw_sets, c.num_draws))
        repeated[:, j] = np.sum((per_example[idx] - full) ** 2, axis=-1).mean(axis=1)
    exact = np.asarray([minibatch_gradient_variance(per_example, b) for b in c.batch_sizes])
    # The rival closed form: sampling without replacement shrinks the variance by (N-B)/(N-1).
    sizes = np.asarray(c.batch_sizes)
    without_replacement = exact * (c.num_train - sizes) / (c.num_train - 1)
    return {"batch_sizes": list(c.batch_sizes), "variance": variance, "exact": exact,
            "slope": _as_list(fit_loglog_slope(c.batch_sizes, variance)),
            "max_rel_error": float(np.max(np.abs(variance.mean(0) / exact - 1.0))),
            "repeated_example_slope": _as_list(fit_loglog_slope(c.batch_sizes, repeated)),
            "max_rel_error_without_replacement": float(
                np.max(np.abs(variance.mean(0) / without_replacement - 1.0)))}


def compute_accumulation(config, log) -> dict:
    """Part "accumulation": k micro-batches under MultiSteps vs one batch k times larger."""
    c = config.accumulation
    train, _ = noisy_teacher_task(config.task, c.num_train, 1, seed=3)
    policy = get_policy(config.precision)
    model = MLP(widths=tuple(c.widths), activation="tanh", **policy.model_dtypes())
    k = c.accumulate_steps

    def train_params(accumulate, batch_size):
        tx = build_optimizer(optimizer_variant(c.optimizer, accumulate_steps=accumulate), c.updates)
        state = create_train_state(model, tx, train["x"][:1], 0, make_loss_scale(policy))
        state, _ = fit(state, train, minibatches(batch_size), loss=mean_squared_error,
                       steps=c.updates * accumulate, accumulate_steps=accumulate,
                       policy=policy, verbose=False)
        return ravel_pytree(state.params)[0]

    accumulated = train_params(k, k * c.micro_batch)
    large = train_params(1, k * c.micro_batch)
    small = train_params(1, c.micro_batch)
    return {"max_abs_diff": float(jnp.max(jnp.abs(accumulated - large))),
            "small_batch_max_abs_diff": float(jnp.max(jnp.abs(small - large)))}


def compute_noise_scale(config, log) -> dict:
    """Part "noise_scale": find_batch_size's B_simple vs the closed form."""
    c = config.noise_scale
    x_key, noise_key = jax.random.split(jax.random.PRNGKey(8))
    x = jax.random.normal(x_key, (c.num_train, c.dim))
    data = {"x": x, "y": c.noise_std * jax.random.normal(noise_key, (c.num_train, 1))}  # w* = 0
    delta = jnp.full((c.dim, 1), c.delta_norm / np.sqrt(c.dim), jnp.float32)
    # find_batch_size takes no policy: the model's dtypes alone set its compute precision.
    policy = get_policy(config.precision)
    state = create_train_state(Perceptron(use_bias=False, **policy.model_dtypes()),
                               build_optimizer(optimizer_config(name="sgd")), x[:1], 0,
                               make_loss_scale(policy))
    state = state.replace(params={"Dense_0": {"kernel": delta}})
    found = find_batch_size(state, data, loss=mean_squared_error, mode="noise_scale",
                            small_batch_size=c.small_batch_size,
                            big_batch_size=c.big_batch_size, num_draws=c.num_draws)
    closed = linear_regression_noise_scale(c.dim, c.delta_norm ** 2, c.noise_std ** 2)
    # The rival: the label noise alone, d sigma^2/|delta|^2, without the gradient noise that
    # the random design adds at delta != 0 (the (d+1)|delta|^2 term).
    label_noise_only = c.dim * c.noise_std ** 2 / c.delta_norm ** 2
    return {"b_simple": found.b_simple, "b_simple_stderr": found.b_simple_stderr,
            "closed_form": closed, "running": found.b_simple_running_K,
            "rel_error": abs(found.b_simple - closed) / closed,
            "label_noise_only": label_noise_only,
            "rel_error_label_noise_only": abs(found.b_simple - label_noise_only)
            / label_noise_only}


def judge_minibatch(config, m: dict) -> dict:
    """The 1/B slope against the repeated-example control's; the closed form with replacement
    against the measurement's error from the without-replacement formula."""
    return {"minibatch_variance_slope": Measured(
                Estimate(*m["slope"]), baseline=m["repeated_example_slope"][0],
                baseline_name="batches of one example repeated B times"),
            "minibatch_variance_closed_form": Measured(
                m["max_rel_error"], baseline=m["max_rel_error_without_replacement"],
                baseline_name="without-replacement formula (N-B)/(N-1) tr(Sigma)/B")}


PARTS = (
    Part("minibatch", compute_minibatch, judge_minibatch,
         reads=("precision", "task", "minibatch")),
    Part("accumulation", compute_accumulation,
         lambda config, m: {"accumulation_equals_large_batch": Measured(
             m["max_abs_diff"], baseline=m["small_batch_max_abs_diff"],
             baseline_name="one micro-batch per update instead of the accumulated mean")},
         reads=("precision", "task", "accumulation")),
    Part("noise_scale", compute_noise_scale,
         lambda config, m: {"noise_scale_matches_closed_form": Measured(
             m["rel_error"], baseline=m["rel_error_label_noise_only"],
             baseline_name="label-noise-only formula d sigma^2/|delta|^2")},
         reads=("precision", "noise_scale")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Minibatch variance against tr(Sigma)/B; the running noise-scale estimate."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    batch = {**m["minibatch"], "variance": np.asarray(m["minibatch"]["variance"]),
             "slope": Estimate(*m["minibatch"]["slope"])}
    noise = {**m["noise_scale"], "running": np.asarray(m["noise_scale"]["running"])}
    ax = axes[0]
    sizes = np.asarray(batch["batch_sizes"])
    ax.loglog(sizes, batch["variance"].T, "o", c="C0", alpha=0.5)
    ax.loglog(sizes, batch["exact"], "k-", label="tr(Sigma) / B")
    ax.set(xlabel="batch size B", ylabel="E|g_B - G|^2",
           title=f"Minibatch gradient variance\nslope {batch['slope']}")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.semilogx(np.arange(1, noise["running"].size + 1), noise["running"], label="running estimate")
    ax.axhline(noise["closed_form"], c="k", ls="--", label="closed form B_simple")
    ax.set(xlabel="draws", ylabel="B_simple", title="Noise scale, linear regression")
    ax.legend(fontsize=8)
    return [report.save_figure(fig, workdir, "batch_size.png")]
