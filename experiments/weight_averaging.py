"""Stochastic weight averaging (SWA): the average of the iterates against the last iterate.

6. SWA (Izmailov et al. 2018, Alg. 1, Sec. 3.2-3.4): with a high constant SWA rate, the running
   average of the iterates has a lower test loss than the last iterate of the same run, and is
   flatter: the mean training-loss increase under random perturbations of norm `radius`
   (`dl_theory.theory.flatness`) is smaller. With batch norm, the averaged weights with the
   running statistics of the trajectory are worse than with statistics recomputed for them
   (`recompute_batch_stats`), which restore the gain over the last iterate.
Caveat (SWA on the plain MLP): the gains are small here (test-loss ratio ~0.95, flatness
~0.91 with 2 seeds) and depend on the SWA rate: at 0.1 the test loss still fell (0.96) but
the flatness ratio was 1.05; at 0.2 flatness fell to 0.22 but the test loss rose (1.08). The
batch-norm effects are large and robust.

Run: python launch.py --config=experiments/weight_averaging.py:quick --workdir=runs/swa
Split from the former training_techniques experiment (same parts, claims and numbers).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.data.synthetic import noisy_teacher_task
from dl_theory.experiment import ClaimSpec, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.swa import swa_state
from dl_theory.optim.variants import optimizer_variant
from dl_theory.theory.flatness import perturbed_loss_increase
from dl_theory.train.batch_stats import recompute_batch_stats
from dl_theory.train.evaluate import members_mse, model_mse
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

SWA = "izmailov2018, Alg. 1, Sec. 3"

CLAIMS = (
    ClaimSpec("swa_lower_test_loss",
              "The SWA average reaches a lower test loss than the last iterate of the same run "
              "(ratio of seed means).", SWA,
              at_most=1.0),
    ClaimSpec("swa_flatter",
              "The SWA average is flatter: smaller mean training-loss increase under random "
              "perturbations of a fixed norm (ratio SWA / last iterate).", SWA + ", Fig. 5",
              at_most=1.0),
    ClaimSpec("swa_bn_needs_recomputed_stats",
              "With batch norm, the SWA weights with the trajectory's running statistics have a "
              "higher test loss than with recomputed statistics (ratio).", SWA + ".2",
              at_least=1.0),
    ClaimSpec("swa_bn_recomputed_beats_iterate",
              "With recomputed statistics the SWA weights beat the last iterate (test-loss "
              "ratio).", SWA + ".2",
              at_most=1.0),
)

TASK = dict(dim=8, teacher_width=16, noise_std=0.5, teacher_seed=0, num_test=2048)
_PRESETS = {
    "quick": dict(
        seeds=2, task=TASK, precision="float32",
        swa=dict(num_train=256, widths=(64, 64), batch_size=8, steps=1600, radii=(0.5, 1.0, 2.0),
                 radius=1.0, num_directions=32,
                 optimizer=optimizer_config(name="sgd", learning_rate=0.1, swa=dict(
                     start_step=800, frequency=5, learning_rate=0.05)),
                 bn_swa_learning_rate=0.3),
    ),
}
_PRESETS["paper"] = {
    **_PRESETS["quick"], "seeds": 5,
    "swa": {**_PRESETS["quick"]["swa"], "steps": 10000,
            "optimizer": optimizer_config(name="sgd", learning_rate=0.1, swa=dict(
                start_step=5000, frequency=5, learning_rate=0.05))},
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests; one small part) or "paper" (more seeds, steps and draws)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the SWA MLP without batch norm (whose statistics are
    float32 by design), for `launch.py --dtypes`."""
    c = config.swa
    model = MLP(widths=tuple(c.widths), activation="relu",
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, config.task.dim)), build_optimizer(c.optimizer, c.steps)


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


def _train_swa(model, optimizer, train, test, c, seeds, policy, log, label):
    """(states, SWA-averaged params) of one SWA run per seed, as one fit_grid program."""
    tx = build_optimizer(optimizer, c.steps)
    states = create_train_states(model, tx, train["x"][:2], seeds, make_loss_scale(policy))
    states, _ = fit_grid(states, train, minibatches(c.batch_size), loss=mean_squared_error,
                         steps=c.steps, data_seeds=[500 + s for s in seeds], eval_data=test,
                         eval_every=c.steps // 2, policy=policy, log=log, tags={"part": label},
                         label=label)
    average = swa_state(states.opt_state)
    if int(np.min(average.num_averaged)) == 0:
        raise ValueError(f"swa.optimizer.swa.start_step={optimizer.swa.start_step} is beyond "
                         f"swa.steps={c.steps}: nothing was averaged")
    return states, average.average


def compute_swa(config, log) -> dict:
    """Part "swa": SWA vs the last iterate, without and with batch norm."""
    c = config.swa
    train, test = noisy_teacher_task(config.task, c.num_train, config.task.num_test, seed=4)
    seeds = list(range(config.seeds))
    policy = get_policy(config.precision)
    model = MLP(widths=tuple(c.widths), activation="relu", **policy.model_dtypes())
    states, average = _train_swa(model, c.optimizer, train, test, c, seeds, policy, log, "swa")
    test_iterate = members_mse(model, states.params, states.model_state, test)
    test_swa = members_mse(model, average, states.model_state, test)

    def flatness(params):
        key = jax.random.PRNGKey(7)
        return jax.vmap(lambda p: perturbed_loss_increase(
            lambda q: model_mse(model, q, {}, train), p, c.radii, key, c.num_directions))(params)

    flat_iterate, flat_swa = (np.asarray(flatness(p)) for p in (states.params, average))
    at = list(c.radii).index(c.radius)

    bn_model = BatchNormMLP(widths=tuple(c.widths), **policy.model_dtypes())
    bn_optimizer = optimizer_variant(c.optimizer, swa=dict(learning_rate=c.bn_swa_learning_rate))
    bn_states, bn_average = _train_swa(bn_model, bn_optimizer, train, test, c, seeds, policy,
                                       log, "swa batch norm")
    bn_iterate = members_mse(bn_model, bn_states.params, bn_states.model_state, test)
    bn_stale = members_mse(bn_model, bn_average, bn_states.model_state, test)
    batches = [{"x": train["x"][i:i + c.batch_size]}
               for i in range(0, c.num_train - c.batch_size + 1, c.batch_size)]
    bn_recomputed = []
    for g in range(len(seeds)):
        state, params = (jax.tree.map(lambda a: a[g], t) for t in (bn_states, bn_average))
        stats = recompute_batch_stats(state, params, batches, momentum=bn_model.momentum)
        bn_recomputed.append(float(model_mse(bn_model, params, stats, test)))
    bn_recomputed = np.asarray(bn_recomputed)
    return {"test_iterate": test_iterate, "test_swa": test_swa, "radii": list(c.radii),
            "flat_iterate": flat_iterate, "flat_swa": flat_swa,
            "test_ratio": float(test_swa.mean() / test_iterate.mean()),
            "flat_ratio": float(flat_swa[:, at].mean() / flat_iterate[:, at].mean()),
            "bn_iterate": bn_iterate, "bn_stale": bn_stale, "bn_recomputed": bn_recomputed,
            "bn_stale_ratio": float(bn_stale.mean() / bn_recomputed.mean()),
            "bn_recomputed_ratio": float(bn_recomputed.mean() / bn_iterate.mean())}


PARTS = (
    Part("swa", compute_swa,
         lambda config, m: {"swa_lower_test_loss": m["test_ratio"],
                            "swa_flatter": m["flat_ratio"],
                            "swa_bn_needs_recomputed_stats": m["bn_stale_ratio"],
                            "swa_bn_recomputed_beats_iterate": m["bn_recomputed_ratio"]},
         reads=("seeds", "precision", "task", "swa")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Flatness of SWA vs the last iterate; test losses with and without batch norm."""
    import matplotlib.pyplot as plt

    swa = {k: (np.asarray(v) if isinstance(v, list) and k != "radii" else v)
           for k, v in m["swa"].items()}
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
    return [report.save_figure(fig, workdir, "weight_averaging.png")]
