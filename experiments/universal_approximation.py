"""Universal approximation (Cybenko 1989; Hornik 1991) and Barron's dimension-free rate (1993).

Theorems. Cybenko (1989, Thm 2) / Hornik (1991, Thm 1): one-hidden-layer networks with a
sigmoidal (Hornik: any bounded non-constant) activation are dense in C(K) for compact K, so
the error on a continuous target can be made as small as we like by widening the layer.
Barron (1993, Thm 1): if f has Barron constant C_f = int sup_{x in B} |omega . x| |f^(omega)|
d omega on a bounded set B, then for every probability measure mu on B and every width n
there is a sigmoidal network f_n with ||f - f_n||^2_{L2(mu)} <= (2 C_f)^2 / n, whatever the
input dimension d. tanh is sigmoidal up to an affine map (tanh z = 2 sigmoid(2z) - 1), so
the theorem covers the tanh nets trained here.

Measured. (1) Sigmoid nets of growing width on a continuous 1-D target (`smooth_1d`): test
error and relative error of the widest net. (2) tanh nets of width n on targets
f(x) = sum_k a_k cos(w_k . x + b_k) on U[-1, 1]^d with C_f = 3 for d = 2, 8, 32
(`barron_ridge`). Barron bounds the approximation error (the best width-n fit in L2(mu)), not
a test error after training on a fixed sample, so every training step draws a fresh batch
from mu (online learning of the population risk: no sample is reused, so no estimation error
can build up), and the error is the mean squared error on 16,384 further fresh points. The
remaining gap to the approximation error is the optimisation error of a finite Adam run; it
sets a floor (about 1e-4 at d = 32 with the quick budget) that the widths stay above. We
report: the fitted log-log slope of error vs width per d with a bootstrap interval over seeds
(`dl_theory.uncertainty`), the worst ratio error / Barron bound, the generalisation gap (test
error minus the mean training-batch loss of the last 10% of steps: ~0 when no estimation
error is present) and the Monte-Carlo standard error of each test error. Contrast: an n-cell
piecewise-constant approximation (Voronoi cells around n points drawn from mu, each cell
given the mean of f over it: the grid-like approximation, error ~ n^(-2/d) for Lipschitz f)
on the same targets, whose rate collapses with d — the curse that Barron's rate escapes.

Run: python launch.py --config=experiments/universal_approximation.py:quick --workdir=runs/ua
quick: ~55 s on 2 CPU cores. paper: d up to 64, widths 2..64 (beyond ~8 units per ridge the
optimisation floor, not approximation, sets the error), 5 seeds, 20k steps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.config_checks import check_choice
from dl_theory.data import synthetic
from dl_theory.experiment import ClaimSpec, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, fit_loglog_slope

CYBENKO = "Cybenko 1989, Thm 2; Hornik 1991, Thm 1"
BARRON = "Barron 1993, Thm 1"

SHARED = ("seeds", "batch_size", "num_test", "precision")  # config keys every part reads

CLAIMS = (
    ClaimSpec("error_falls_with_width",
              "On a continuous 1-D target, the test error of one-hidden-layer sigmoid nets falls "
              "at every doubling of the width (fraction of doublings that lower the seed-mean "
              "error).", CYBENKO, at_least=1.0),
    ClaimSpec("widest_net_is_accurate",
              "The widest sigmoid net reaches a small relative error (test MSE / Var f).", CYBENKO,
              at_most="cybenko.max_rel_error"),
    ClaimSpec("barron_bound_holds",
              "For every d and width n the measured squared error is below Barron's bound "
              "(2 C_f)^2 / n (worst ratio error / bound).", BARRON, at_most=1.0),
    ClaimSpec("barron_rate_every_dimension",
              "At equal Barron constant the squared error decays at least as fast as 1/n in every "
              "dimension d: the log-log slope of error vs width is <= -1 for each d (the "
              "dimension with the shallowest slope is reported).", BARRON, at_most=-1.0),
    ClaimSpec("partition_rate_cursed",
              "An n-cell piecewise-constant (grid-like) approximation of the same target in the "
              "largest d has a slope far shallower than 1/n (theory: -2/d).",
              "Barron 1993, Sec. I (lower bounds for linear methods); DeVore et al. 1989",
              at_least=-0.5),
)

_PRESETS = {
    "quick": dict(
        seeds=3, batch_size=256, num_test=16384, precision="float32",
        cybenko=dict(target="runge", activation="sigmoid", widths=(1, 2, 4, 8, 16, 32),
                     steps=3000, max_rel_error=0.01,
                     optimizer=optimizer_config(
                         name="adam", learning_rate=3e-2, schedule="cosine")),
        barron=dict(dims=(2, 8, 32), widths=(2, 4, 8, 16, 32), steps=3000, activation="tanh",
                    num_ridges=8, constant=3.0, target_seed=0, num_partition_samples=65536,
                    optimizer=optimizer_config(
                        name="adam", learning_rate=1e-2, schedule="cosine"))),
    "paper": dict(
        seeds=5, batch_size=1024, num_test=65536, precision="float32",
        cybenko=dict(target="runge", activation="sigmoid", widths=(1, 2, 4, 8, 16, 32, 64, 128),
                     steps=20000, max_rel_error=0.001,
                     optimizer=optimizer_config(
                         name="adam", learning_rate=1e-2, schedule="cosine")),
        barron=dict(dims=(2, 8, 32, 64), widths=(2, 4, 8, 16, 32, 64), steps=20000,
                    activation="tanh", num_ridges=8, constant=3.0, target_seed=0,
                    num_partition_samples=262144,
                    optimizer=optimizer_config(
                        name="adam", learning_rate=3e-3, schedule="cosine"))),
}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """What generic config checks cannot know: the Cybenko target is a known 1-D function."""
    check_choice(config, "cybenko.target", synthetic.SMOOTH_1D_NAMES)


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~1 min on 2 cores) or "paper" (the full sweep)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest Barron net, for `launch.py --dtypes`."""
    b = config.barron
    model = MLP(widths=(max(b.widths),), activation=b.activation,
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, max(b.dims))), build_optimizer(b.optimizer, total_steps=b.steps)


def _train_widths(target, part, config, log, label):
    """Test MSE, generalisation gap and Monte-Carlo standard error, each [S, len(widths)], of
    one-hidden-layer nets trained on fresh samples of `target` (config section `part`)."""
    seeds = list(range(config.seeds))
    test = target.sample(jax.random.PRNGKey(10_000), config.num_test)
    tx = build_optimizer(part.optimizer, total_steps=part.steps)
    policy = get_policy(part.get("precision") or config.precision)
    errors, gaps, std_errors = [], [], []
    for width in part.widths:
        model = MLP(widths=(width,), activation=part.activation, **policy.model_dtypes())
        states = create_train_states(model, tx, test["x"][:2], seeds, make_loss_scale(policy))
        states, history = fit_grid(
            states, None, target.sampler(config.batch_size), loss=mean_squared_error,
            steps=part.steps, data_seeds=[1000 + s for s in seeds], eval_data=test,
            eval_every=part.steps // 3, accumulate_steps=part.optimizer.accumulate_steps,
            policy=policy, log=log, tags={"part": label, "width": width},
            label=f"{label} width={width}")
        pred = jax.vmap(lambda p: model.apply({"params": p}, test["x"]))(states.params)
        sq_err = (pred.astype(jnp.float32) - test["y"][None]) ** 2
        final = history["eval_loss"][:, -1]
        errors.append(final)
        std_errors.append(np.asarray(jnp.std(sq_err, axis=(1, 2))) / np.sqrt(config.num_test))
        gaps.append(final - history["loss"][:, -max(1, part.steps // 10):].mean(axis=1))
    return np.stack(errors, 1), np.stack(gaps, 1), np.stack(std_errors, 1)


def _partition_errors(target, config) -> np.ndarray:
    """Squared L2(mu) error of n-cell piecewise-constant approximations, [S, len(widths)]:
    n centres drawn from mu, each Voronoi cell given the mean of f over it."""
    fit_key, test_key = jax.random.split(jax.random.PRNGKey(20_000))
    fit_set = target.sample(fit_key, config.barron.num_partition_samples)
    test = target.sample(test_key, config.num_test)
    out = np.zeros((config.seeds, len(config.barron.widths)))
    for s in range(config.seeds):
        for j, n in enumerate(config.barron.widths):
            centres = target.sample_inputs(jax.random.PRNGKey(30_000 + 97 * s + n), n)

            def nearest_centre(x_NxD):
                return jnp.argmin(jnp.sum((x_NxD[:, None, :] - centres[None]) ** 2, -1), 1)

            cells = nearest_centre(fit_set["x"])
            sums = jax.ops.segment_sum(fit_set["y"][:, 0], cells, num_segments=n)
            counts = jax.ops.segment_sum(jnp.ones(cells.shape), cells, num_segments=n)
            pred = (sums / jnp.maximum(counts, 1.0))[nearest_centre(test["x"])]
            out[s, j] = float(jnp.mean((pred - test["y"][:, 0]) ** 2))
    return out


def compute_cybenko(config: ml_collections.ConfigDict, log) -> dict:
    """Part "cybenko": the sigmoid width sweep on the 1-D target, and the target's variance."""
    target = synthetic.smooth_1d(config.cybenko.target)
    errors, _, _ = _train_widths(target, config.cybenko, config, log, "1-D")
    variance = float(jnp.var(target.sample(jax.random.PRNGKey(1), config.num_test)["y"]))
    return {"widths": list(config.cybenko.widths), "test_mse": errors.tolist(),
            "target_variance": variance}


def judge_cybenko(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Fraction of width doublings that lower the error; relative error of the widest net."""
    # float32, as trained: the seed mean must round exactly as it did before the JSON trip.
    mean_1d = np.asarray(m["test_mse"], dtype=np.float32).mean(axis=0)
    return {"error_falls_with_width": float(np.mean(np.diff(mean_1d) < 0)),
            "widest_net_is_accurate": float(mean_1d[-1] / m["target_variance"])}


def compute_barron(config: ml_collections.ConfigDict, log) -> dict:
    """Part "barron": tanh width sweeps and n-cell partitions on Barron targets, per d."""
    b = config.barron
    by_dim = {"test_mse": {}, "test_mse_std_error": {}, "generalisation_gap": {}, "slope": {},
              "partition_mse": {}, "partition_slope": {}}
    for d in b.dims:
        target = synthetic.barron_ridge(d, num_ridges=b.num_ridges, frequency=b.constant,
                                        seed=b.target_seed)
        errors, gaps, std_errors = _train_widths(target, b, config, log, f"d={d}")
        partition = _partition_errors(target, config)
        slope = fit_loglog_slope(b.widths, errors)
        partition_slope = fit_loglog_slope(b.widths, partition)
        for key, value in (("test_mse", errors), ("test_mse_std_error", std_errors),
                           ("generalisation_gap", gaps), ("partition_mse", partition),
                           ("slope", [slope.value, slope.lo, slope.hi]),
                           ("partition_slope", [partition_slope.value, partition_slope.lo,
                                                partition_slope.hi])):
            by_dim[key][str(d)] = np.asarray(value).tolist()
    bound = (2 * b.constant) ** 2 / np.asarray(b.widths, dtype=float)
    return {"widths": list(b.widths), "bound": bound.tolist(), **by_dim}


def judge_barron(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Worst error / bound ratio; the shallowest slope over d; the partition's slope at the
    largest d."""
    bound = np.asarray(m["bound"])
    errors = [np.asarray(e, dtype=np.float32) for e in m["test_mse"].values()]
    slopes = [Estimate(*s) for s in m["slope"].values()]
    largest_d = str(max(config.barron.dims))
    return {
        "barron_bound_holds": max(float((e.mean(0) / bound).max()) for e in errors),
        "barron_rate_every_dimension": max(slopes, key=lambda s: s.hi),
        "partition_rate_cursed": Estimate(*m["partition_slope"][largest_d]),
    }


PARTS = (
    Part("cybenko", compute_cybenko, judge_cybenko, reads=(*SHARED, "cybenko")),
    Part("barron", compute_barron, judge_barron, reads=(*SHARED, "barron")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """Error vs width in 1-D against the claimed level; Barron sweeps, partitions and bound."""
    import matplotlib.pyplot as plt

    fig, (ax_c, ax_b) = plt.subplots(1, 2, figsize=(12, 4.6))
    c = config.cybenko
    ax_c.loglog(c.widths, np.asarray(m["cybenko"]["test_mse"]).mean(0), "o-",
                label=f"{c.activation} net, target '{c.target}'")
    ax_c.axhline(m["cybenko"]["target_variance"] * c.max_rel_error, ls=":", c="gray",
                 label=f"{c.max_rel_error:g} x Var f (claimed level)")
    ax_c.set(xlabel="width n", ylabel="test MSE", title="Universal approximation (1-D)")
    ax_c.legend(fontsize=8)
    b, barron = config.barron, m["barron"]
    n = np.asarray(b.widths, dtype=float)
    for d in b.dims:
        errors = np.asarray(barron["test_mse"][str(d)])
        line, = ax_b.loglog(n, errors.mean(0), "o-", label=f"{b.activation} net, d={d}")
        ax_b.loglog(n, np.asarray(barron["partition_mse"][str(d)]).mean(0), "x--",
                    c=line.get_color(), alpha=0.6, label=f"n-cell partition, d={d}")
    ax_b.loglog(n, (2 * b.constant) ** 2 / n, "k-", lw=2, label="Barron bound (2C)^2/n")
    first = np.asarray(barron["test_mse"][str(b.dims[0])]).mean(0)[0]
    ax_b.loglog(n, first * n[0] / n, "k:", label="slope -1")
    ax_b.set(xlabel="width n  /  number of cells n", ylabel="squared L2(mu) error",
             title=f"Barron targets, C_f = {b.constant:g}")
    ax_b.legend(fontsize=7, ncol=2)
    return [report.save_figure(fig, workdir, "universal_approximation.png")]
