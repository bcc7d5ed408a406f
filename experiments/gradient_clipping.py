"""Gradient clipping: a badly scaled deep ReLU net, SGD with and without global-norm clipping.

4. Clipping (Pascanu, Mikolov & Bengio 2013, Sec. 3.2; Zhang et al. 2020, Thm 3): a deep
   ReLU net whose weights start `weight_scale` x too large has gradients of ~1e3; SGD diverges
   at a rate that clipped SGD (global norm <= c) trains with. The clipped update norm, taken
   from the optimizer's output, never exceeds lr * c.

Baselines, measured in the same run and rejected by each claim's bound: the clipped run's own
divergence fraction (0); the untrained net's loss (first minibatch, before any step) against
the constant predictor; the unclipped update norm against lr * c.

Run: python launch.py --config=experiments/gradient_clipping.py:quick --workdir=runs/gc
Split from the former training_techniques experiment (same parts, claims and numbers).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dl_theory import report
from dl_theory.config_checks import check_precision_without_loss_scaling
from dl_theory.data.batching import minibatches
from dl_theory.data.synthetic import noisy_teacher_task
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.variants import optimizer_variant
from dl_theory.train.evaluate import model_mse
from dl_theory.train.precision import get_policy

CLAIMS = (
    ClaimSpec("unclipped_sgd_diverges",
              "SGD on a badly scaled deep ReLU net diverges without clipping (fraction of seeds "
              "whose loss ends non-finite or above its start); with clipping, none does.",
              "pascanu2013, Sec. 3",
              at_least=1.0),
    ClaimSpec("clipped_sgd_trains",
              "The same run with global-norm clipping trains: final training loss / loss of the "
              "constant predictor (worst seed), which the untrained net exceeds.",
              "zhang2020, Thm 3",
              at_most=1.0),
    # The norm of a clipped float32 vector can exceed c by a rounding of ~1e-7.
    ClaimSpec("clipped_update_within_bound",
              "The clipped update norm never exceeds lr * c (max ratio over steps and seeds); "
              "the unclipped update does.",
              "pascanu2013, Alg. 1",
              at_most=1.0 + 1e-6),
)

TASK = dict(dim=8, teacher_width=16, noise_std=0.5, teacher_seed=0, num_test=2048)
_PRESETS = {
    "quick": dict(
        seeds=2, task=TASK, precision="float32",
        clipping=dict(num_train=256, widths=(32, 32, 32, 32), weight_scale=2.0, batch_size=32,
                      steps=1000, optimizer=optimizer_config(name="sgd", learning_rate=0.02,
                                                             clip_global_norm=1.0)),
    ),
}
_PRESETS["paper"] = {**_PRESETS["quick"], "seeds": 5}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """No float16: the hand-written SGD loop has no loss scaling."""
    check_precision_without_loss_scaling(config)


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests; one tiny part) or "paper" (more seeds, steps and draws)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the badly scaled ReLU net, for `launch.py --dtypes`."""
    c = config.clipping
    model = MLP(widths=tuple(c.widths), activation="relu",
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, config.task.dim)), build_optimizer(c.optimizer, c.steps)


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
            loss, grads = jax.value_and_grad(lambda p: model_mse(model, p, {}, batch))(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (
                loss, optax.global_norm(updates))

        return jax.lax.scan(body, (params, tx.init(params)), jnp.arange(c.steps))[1]

    losses, norms = jax.jit(jax.vmap(run))(jnp.asarray(seeds))
    return np.asarray(losses, np.float64), np.asarray(norms, np.float64)


def compute_clipping(config, log) -> dict:
    """Part "clipping": SGD with and without global-norm clipping on a badly scaled net."""
    c = config.clipping
    train, _ = noisy_teacher_task(config.task, c.num_train, 1, seed=2)
    # The hand-written SGD loop below applies the policy through the model's dtypes alone
    # (parameters and so gradients stay float32); it has no loss scaling, so validate_config
    # refuses float16.
    model = MLP(widths=tuple(c.widths), activation="relu",
                **get_policy(config.precision).model_dtypes())
    seeds = list(range(config.seeds))
    clipped, clipped_norms = _sgd_with_update_norms(model, c.optimizer, train, c, seeds)
    unclipped = optimizer_variant(c.optimizer, clip_global_norm=0.0)
    plain, plain_norms = _sgd_with_update_norms(model, unclipped, train, c, seeds)
    tail = max(1, c.steps // 10)

    def diverged(loss):
        return ~np.isfinite(loss[:, -1]) | (loss[:, -1] > loss[:, 0])

    baseline = float(jnp.var(train["y"]))  # loss of the best constant predictor
    bound = c.optimizer.learning_rate * c.optimizer.clip_global_norm
    return {"clipped_loss": clipped, "plain_loss": plain, "constant_predictor_loss": baseline,
            "diverged_fraction": float(diverged(plain).mean()),
            "clipped_diverged_fraction": float(diverged(clipped).mean()),
            "clipped_final_ratio": float(np.max(clipped[:, -tail:].mean(1)) / baseline),
            "untrained_ratio": float(np.max(clipped[:, 0]) / baseline),
            "max_update_ratio": float(np.max(clipped_norms) / bound),
            # Over the finite steps: the diverged runs' last norms are inf or NaN.
            "unclipped_max_update_ratio": float(
                np.max(plain_norms[np.isfinite(plain_norms)]) / bound)}


def judge_clipping(config, m: dict) -> dict:
    """Divergence, training and update norm of clipped SGD, each against its unclipped or
    untrained counterpart."""
    return {"unclipped_sgd_diverges": Measured(
                m["diverged_fraction"], baseline=m["clipped_diverged_fraction"],
                baseline_name="clipped SGD"),
            "clipped_sgd_trains": Measured(
                m["clipped_final_ratio"], baseline=m["untrained_ratio"],
                baseline_name="untrained net (first minibatch)"),
            "clipped_update_within_bound": Measured(
                m["max_update_ratio"], baseline=m["unclipped_max_update_ratio"],
                baseline_name="unclipped SGD update")}


PARTS = (
    Part("clipping", compute_clipping, judge_clipping,
         reads=("seeds", "precision", "task", "clipping")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Training loss with and without clipping, against the constant predictor."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    clip = {**m["clipping"], "clipped_loss": np.asarray(m["clipping"]["clipped_loss"]),
            "plain_loss": np.asarray(m["clipping"]["plain_loss"], dtype=float)}
    for s in range(clip["clipped_loss"].shape[0]):
        ax.semilogy(clip["clipped_loss"][s], c="C0", label="clipped" if s == 0 else None)
        ax.semilogy(clip["plain_loss"][s], c="C3", label="unclipped (NaN = diverged)"
                    if s == 0 else None)
    ax.axhline(clip["constant_predictor_loss"], c="gray", ls=":", label="Var y")
    ax.set(xlabel="SGD step", ylabel="minibatch loss", title="Badly scaled deep ReLU net")
    ax.legend(fontsize=8)
    return [report.save_figure(fig, workdir, "gradient_clipping.png")]
