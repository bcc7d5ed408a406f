"""Double descent: the test risk peaks where the model first interpolates (Belkin et al. 2019;
Nakkiran et al. 2019), exactly as Hastie, Montanari, Rosset & Tibshirani 2019 compute it.

Theorems. Hastie et al. 2019 ("Surprises in high-dimensional ridgeless least squares
interpolation", arXiv:1903.08560, Thm 1, isotropic features): for x ~ N(0, I_p),
y = x . beta + eps (||beta||^2 = r^2, Var eps = sigma^2) and the min-norm least-squares fit
pinv(X) y on n samples, as n, p -> inf with p / n -> gamma the excess test risk tends to

    R(gamma) = sigma^2 gamma / (1 - gamma)  (gamma < 1),   r^2 (1 - 1/gamma) + sigma^2 / (gamma - 1)
    (gamma > 1),

which blows up at the interpolation threshold gamma = 1 and descends a second time beyond it.
Their Thm 5 (ridge, lam > 0; `dl_theory.theory.ridgeless.ridge_risk`) is finite everywhere:
ridge damps the peak. Belkin, Hsu, Ma & Mandal 2019 (PNAS, "Reconciling modern machine-learning
practice and the classical bias-variance trade-off") and Nakkiran et al. 2019 ("Deep double
descent", arXiv:1912.02292, model-wise double descent with label noise) observe the same shape
in trained networks: test error peaks near the size at which training error first reaches zero
and falls again beyond it.

Measured. (1) Linear model: at each gamma = p / n (n fixed) the mean of ||beta_hat - beta||^2
over independent draws (`least_squares_risk_samples`), for lam = 0 and a fixed lam > 0, with
the closed forms overlaid. The agreement tolerance is justified by two stated errors, both
reported in the metrics: the finite-n gap of the asymptotic formula (exact finite-n means
`ridgeless_risk_finite`: at n = 100, |gamma - 1| >= 0.2 it is <= 5.3 %) and the Monte-Carlo
standard error of the mean (<= ~3 % at 300 trials away from the peak), so a 12 % tolerance
is ~3 standard errors above the finite-size gap; the test asserts that this justification holds
in the run. The peak at p = n is resolved, not just an arg-max on the grid's edge: the risk
at both gammas nearest 1 must exceed every other gamma's by >= 2 standard errors of the
difference (ridge, whose Thm 5 risk has no peak, is the baseline that fails this). The
closed-form tolerances are shown to discriminate: each measured curve is also compared with the
other theorem's curve (ridgeless means with Thm 5, ridge means with Thm 1), and the damping ratio
is also measured at the gamma farthest from 1, where Thm 5 says ridge barely changes the risk.
(2) One-hidden-layer ReLU MLPs of growing width on a 500-point subsample of
MNIST-1D (`load_mnist1d`) with 20 % of the training labels replaced by a different random
class, trained to convergence (full-batch Adam, squared loss on one-hot targets, as Belkin et
al.) over seeds with `fit_grid`; train and test errors vs width. The interpolation width is the
smallest width whose seed-mean training error is <= `interpolation_train_error`. Test error is
measured on 4,500 clean points (the test split plus the training points left out of the
subsample); a width's standard error combines the seed spread and the binomial error
(~0.0065 at error 0.8). The peak claim: the largest test error within one doubling of the
interpolation width exceeds the largest outside it by >= 2 standard errors (the training-error
curve, which has no peak there, is the baseline that fails it).
`config.precision` sets the MLPs' compute dtype (parameters stay float32); the linear model's
Monte-Carlo is NumPy float64 whatever it is.

Run: python launch.py --config=experiments/double_descent.py:quick --workdir=runs/dd
quick: ~80 s of CPU time on 2 cores (linear: n = 100, 300 trials per gamma; MLP: 500 train
points, widths 16..512, 4 seeds, 2,000 full-batch steps). paper: n = 400, 1,000 trials; MLP on
1,000 points, widths 4..2048, 5 seeds, 4,000 steps (~15 min). The random-ReLU-features result
of Hastie et al. (Sec. 6) is not reproduced here: its closed form needs the solution of a
quartic fixed point.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import full_batch
from dl_theory.data.mnist1d import NUM_CLASSES, load_mnist1d
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import ridgeless
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import accuracy, mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

HASTIE = "hastie2019, Thm 1"
HASTIE_RIDGE = "hastie2019, Thm 5"
NAKKIRAN = "belkin2019, Fig. 1; nakkiran2019, Sec. 5 (model-wise)"

CLAIMS = (
    ClaimSpec("ridgeless_matches_hastie",
              "The measured mean risk of min-norm least squares matches Hastie et al.'s closed "
              "form at every gamma = p/n away from the singularity (max relative deviation), "
              "and the tolerance rejects the rival Thm 5 ridge curve (baseline).",
              HASTIE, at_most="linear.max_rel_deviation"),
    ClaimSpec("ridgeless_peaks_at_interpolation",
              "The measured min-norm risk peaks at p = n: at both gammas of the grid nearest 1 "
              "it exceeds the risk at every other gamma by at least linear.min_peak_z "
              "standard errors (measured: the smallest such z).", HASTIE,
              at_least="linear.min_peak_z"),
    ClaimSpec("ridge_matches_closed_form",
              "With a ridge penalty lam > 0 the measured mean risk matches the closed form of "
              "Thm 5 at every gamma, the peak included (max relative deviation), and the "
              "tolerance rejects Thm 1's ridgeless curve (baseline).", HASTIE_RIDGE,
              at_most="linear.ridge_max_rel_deviation"),
    ClaimSpec("ridge_damps_peak",
              "Ridge damps the double-descent peak: measured max risk with ridge / measured max "
              "risk without; at the gamma farthest from 1 (baseline) the same ratio is near 1.",
              HASTIE_RIDGE, at_most="linear.max_peak_ratio"),
    ClaimSpec("mlp_peak_near_interpolation",
              "An MLP on MNIST-1D with label noise peaks near the width at which its training "
              "error first reaches zero: its largest seed-mean test error within one doubling "
              "of that width exceeds the largest outside it by at least mlp.min_peak_z "
              "standard errors (seed spread and binomial test-set error; measured: z).",
              NAKKIRAN, at_least="mlp.min_peak_z"),
    ClaimSpec("mlp_error_falls_beyond_peak",
              "Beyond the peak the MLP's test error falls again: peak test error minus the test "
              "error of the widest net (seed means).", NAKKIRAN, at_least="mlp.min_fall"),
)

_PRESETS = {
    "quick": dict(
        seeds=4, precision="float32",
        linear=dict(n=100, signal=1.0, noise=0.25, ridge_penalty=0.05, trials=300,
                    gammas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.2,
                            1.5, 2.0, 3.0, 5.0),
                    singularity_margin=0.2, max_rel_deviation=0.12,
                    ridge_max_rel_deviation=0.05, max_peak_ratio=0.5, min_peak_z=2.0, seed=0),
        mlp=dict(num_train=500, label_noise=0.2, widths=(16, 32, 64, 128, 256, 512),
                 steps=2000, interpolation_train_error=0.005, max_log2_offset=1.0,
                 min_peak_z=2.0, min_fall=0.02, subsample_seed=0,
                 optimizer=optimizer_config(name="adam", learning_rate=3e-3))),
    "paper": dict(
        seeds=5, precision="float32",
        linear=dict(n=400, signal=1.0, noise=0.25, ridge_penalty=0.05, trials=1000,
                    gammas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.05, 1.1, 1.2,
                            1.5, 2.0, 3.0, 5.0, 10.0),
                    singularity_margin=0.2, max_rel_deviation=0.06,
                    ridge_max_rel_deviation=0.03, max_peak_ratio=0.5, min_peak_z=2.0, seed=0),
        mlp=dict(num_train=1000, label_noise=0.2,
                 widths=(4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048), steps=4000,
                 interpolation_train_error=0.005, max_log2_offset=1.0, min_peak_z=2.0,
                 min_fall=0.02,
                 subsample_seed=0, optimizer=optimizer_config(name="adam", learning_rate=3e-3))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~40 s on 2 cores) or "paper" (larger n, more widths and seeds)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest MLP of the width sweep, for
    `launch.py --dtypes`; MNIST-1D inputs have 40 features."""
    cfg = config.mlp
    model = MLP(widths=(max(cfg.widths),), out_dim=NUM_CLASSES, activation="relu",
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, 40)), build_optimizer(cfg.optimizer, total_steps=cfg.steps)


def _linear(cfg) -> dict:
    """Measured mean risk and its standard error per gamma, for lam = 0 and lam = ridge_penalty,
    with the asymptotic and finite-n closed forms."""
    gammas = np.asarray(cfg.gammas, dtype=np.float64)
    ps = [int(round(g * cfg.n)) for g in gammas]
    out = {"gamma": gammas, "p": ps}
    # [2, trials] per gamma: lam = 0 and lam = ridge_penalty on the same draws.
    samples = np.stack([ridgeless.least_squares_risk_samples(
        cfg.n, p, [0.0, cfg.ridge_penalty], cfg.signal, cfg.noise, cfg.trials,
        seed=cfg.seed + 7919 * i) for i, p in enumerate(ps)], axis=1)
    for j, label in enumerate(("ridgeless", "ridge")):
        out[f"{label}_mean"] = samples[j].mean(axis=1)
        out[f"{label}_std_error"] = samples[j].std(axis=1) / np.sqrt(cfg.trials)
    out["ridgeless_theory"] = ridgeless.ridgeless_risk(gammas, cfg.signal, cfg.noise)
    out["ridgeless_finite_n"] = np.array([ridgeless.ridgeless_risk_finite(
        cfg.n, p, cfg.signal, cfg.noise) for p in ps])
    out["ridge_theory"] = ridgeless.ridge_risk(gammas, cfg.ridge_penalty, cfg.signal, cfg.noise)
    return out


def _noisy_subsample(cfg) -> tuple[dict, dict, np.ndarray]:
    """num_train MNIST-1D training points, a label_noise fraction of them relabelled to a
    uniformly drawn *different* class; a clean test set (the test split plus the training points
    left out of the subsample: 4.5x the test split, for a smaller binomial error); the mask of
    flipped labels."""
    data = load_mnist1d()
    rng = np.random.default_rng(cfg.subsample_seed)
    idx = rng.permutation(data["train"]["x"].shape[0])[:cfg.num_train]
    y = data["train"]["y"][idx].copy()
    flipped = rng.random(cfg.num_train) < cfg.label_noise
    y[flipped] = (y[flipped] + rng.integers(1, NUM_CLASSES, flipped.sum())) % NUM_CLASSES
    train = {"x": jnp.asarray(data["train"]["x"][idx]), "y": jnp.asarray(y)}
    rest = np.setdiff1d(np.arange(data["train"]["x"].shape[0]), idx)
    test = {k: jnp.asarray(np.concatenate([data["test"][k], data["train"][k][rest]]))
            for k in ("x", "y")}
    return train, test, flipped


def _one_hot_squared_error(pred_BxK, labels_B, weight_B=None):
    """Squared loss on one-hot targets (Belkin et al. 2019 train with the square loss)."""
    return mean_squared_error(pred_BxK, jax.nn.one_hot(labels_B, pred_BxK.shape[-1]), weight_B)


def _mlp(config, log) -> dict:
    """Train and test error, each [S, len(widths)], of the width sweep; the flipped fraction."""
    cfg = config.mlp
    train, test, flipped = _noisy_subsample(cfg)
    seeds = list(range(config.seeds))
    tx = build_optimizer(cfg.optimizer, total_steps=cfg.steps)
    policy = get_policy(config.precision)
    train_err, test_err = [], []
    for width in cfg.widths:
        model = MLP(widths=(width,), out_dim=NUM_CLASSES, activation="relu",
                    **policy.model_dtypes())
        states = create_train_states(model, tx, train["x"][:2], seeds, make_loss_scale(policy))
        states, history = fit_grid(
            states, train, full_batch(), loss=_one_hot_squared_error, steps=cfg.steps,
            data_seeds=seeds, eval_data=test, eval_every=cfg.steps,
            eval_metrics={"accuracy": accuracy}, accumulate_steps=cfg.optimizer.accumulate_steps,
            policy=policy, log=log, tags={"part": "mlp", "width": width},
            label=f"mlp width={width}")

        def train_accuracy(params):
            logits = model.apply({"params": params}, train["x"]).astype(jnp.float32)
            return accuracy(logits, train["y"])

        train_err.append(1.0 - np.asarray(jax.vmap(train_accuracy)(states.params)))
        test_err.append(1.0 - np.asarray(history["eval_accuracy"][:, -1]))
    return {"train_error": np.stack(train_err, 1), "test_error": np.stack(test_err, 1),
            "flipped_fraction": float(flipped.mean()), "num_test": int(test["y"].shape[0])}


def _peak_z(mean, std_error, peak_mask, *, every_inside: bool) -> float:
    """How many standard errors of their difference the mean inside `peak_mask` (its smallest
    if `every_inside`, else its largest) exceeds the largest outside it; negative when the
    curve does not peak there, nan when the mask is empty or full."""
    mean, std_error = np.asarray(mean), np.asarray(std_error)
    inside, outside = np.nonzero(peak_mask)[0], np.nonzero(~peak_mask)[0]
    if not inside.size or not outside.size:
        return float("nan")
    pick = np.argmin if every_inside else np.argmax
    top_in, top_out = inside[pick(mean[inside])], outside[np.argmax(mean[outside])]
    return float((mean[top_in] - mean[top_out]) / np.hypot(std_error[top_in], std_error[top_out]))


def _max_rel_deviation(mean, theory, mask) -> float:
    """max |mean - theory| / theory over the gammas in `mask`."""
    return float(np.max(np.abs(mean[mask] - theory[mask]) / theory[mask]))


def compute_linear(config: ml_collections.ConfigDict, log) -> dict:
    """Part "linear": the min-norm and ridge Monte-Carlo against the closed forms."""
    c = config.linear
    lin = _linear(c)
    away = np.abs(lin["gamma"] - 1.0) >= c.singularity_margin
    nearest = np.isin(np.arange(len(c.gammas)), np.argsort(np.abs(lin["gamma"] - 1.0))[:2])
    theory = lin["ridgeless_theory"]
    farthest = int(np.argmax(np.abs(np.log(lin["gamma"]))))
    return {
        **{k: np.asarray(v).tolist() for k, v in lin.items()},
        "away_from_singularity": away.tolist(),
        "finite_n_rel_gap": (np.abs(lin["ridgeless_finite_n"] - theory) / theory).tolist(),
        "ridgeless_rel_std_error": (lin["ridgeless_std_error"] / theory).tolist(),
        "ridge_theory_peak_ratio": float(lin["ridge_theory"].max() / lin["ridgeless_mean"].max()),
        "ridgeless_max_rel_deviation": _max_rel_deviation(lin["ridgeless_mean"], theory, away),
        "ridge_max_rel_deviation": _max_rel_deviation(lin["ridge_mean"], lin["ridge_theory"],
                                                      np.ones_like(away)),
        # Each curve against the other theorem's closed form: what the tolerance must reject.
        "ridgeless_vs_ridge_theory": _max_rel_deviation(lin["ridgeless_mean"],
                                                        lin["ridge_theory"], away),
        "ridge_vs_ridgeless_theory": _max_rel_deviation(lin["ridge_mean"], theory,
                                                        np.ones_like(away)),
        # Far from the singularity Thm 5 barely moves the risk: ridge's damping is the peak's.
        "far_gamma": float(lin["gamma"][farthest]),
        "far_risk_ratio": float(lin["ridge_mean"][farthest] / lin["ridgeless_mean"][farthest]),
        "peak_gamma": float(lin["gamma"][np.argmax(lin["ridgeless_mean"])]),
        **{f"{label}_peak_z": _peak_z(lin[f"{label}_mean"], lin[f"{label}_std_error"], nearest,
                                      every_inside=True) for label in ("ridgeless", "ridge")},
        "peak_ratio": float(lin["ridge_mean"].max() / lin["ridgeless_mean"].max()),
    }


def judge_linear(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Deviations from the closed forms; the peak's z, its baseline ridge's (no peak)."""
    lam = config.linear.ridge_penalty
    return {"ridgeless_matches_hastie": Measured(
                m["ridgeless_max_rel_deviation"], baseline=m["ridgeless_vs_ridge_theory"],
                baseline_name=f"the same means against Thm 5's ridge curve (lam = {lam:g})"),
            "ridgeless_peaks_at_interpolation": Measured(
                m["ridgeless_peak_z"], baseline=m["ridge_peak_z"],
                baseline_name=f"ridge, lam = {lam:g} (Thm 5: no peak)"),
            "ridge_matches_closed_form": Measured(
                m["ridge_max_rel_deviation"], baseline=m["ridge_vs_ridgeless_theory"],
                baseline_name="the same means against Thm 1's ridgeless curve (lam = 0)"),
            "ridge_damps_peak": Measured(
                m["peak_ratio"], baseline=m["far_risk_ratio"],
                baseline_name=f"the same ratio at gamma = {m['far_gamma']:g}, far from the "
                              "peak (Thm 5: ridge barely helps there)")}


def _seed_mean_std_error(error_SxW: np.ndarray, num_points: int) -> np.ndarray:
    """Standard error of each width's seed-mean error rate: the seed spread plus the binomial
    error of the one evaluation set all seeds share (chosen before any verdict was seen)."""
    mean = error_SxW.mean(0)
    return np.sqrt(error_SxW.var(0, ddof=1) / error_SxW.shape[0]
                   + mean * (1 - mean) / num_points)


def compute_mlp(config: ml_collections.ConfigDict, log) -> dict:
    """Part "mlp": the MLP width sweep on noisy MNIST-1D; interpolation and peak widths."""
    m = config.mlp
    mlp = _mlp(config, log)
    widths = np.asarray(m.widths)
    train_mean, test_mean = mlp["train_error"].mean(0), mlp["test_error"].mean(0)
    fits = np.nonzero(train_mean <= m.interpolation_train_error)[0]
    interp_width = int(widths[fits[0]]) if fits.size else None
    peak = int(np.argmax(test_mean))
    offset = abs(np.log2(widths[peak] / interp_width)) if interp_width else float("inf")
    window = (np.abs(np.log2(widths / interp_width)) <= m.max_log2_offset if interp_width
              else np.zeros(len(widths), bool))
    std_error = {key: _seed_mean_std_error(mlp[f"{key}_error"], num)
                 for key, num in (("test", mlp["num_test"]), ("train", m.num_train))}
    return {"test_std_error": std_error["test"].tolist(), "num_test": mlp["num_test"],
            "peak_z": _peak_z(test_mean, std_error["test"], window, every_inside=False),
            "train_error_peak_z": _peak_z(train_mean, std_error["train"], window,
                                          every_inside=False),
            "widths": widths.tolist(), "train_error": mlp["train_error"].tolist(),
            "test_error": mlp["test_error"].tolist(), "interpolation_width": interp_width,
            "peak_width": int(widths[peak]), "flipped_fraction": mlp["flipped_fraction"],
            "peak_log2_offset": float(offset),
            "fall_beyond_peak": float(test_mean[peak] - test_mean[-1]),
            "train_fall_beyond_peak": float(train_mean[peak] - train_mean[-1])}


PARTS = (
    Part("linear", compute_linear, judge_linear, reads=("linear",)),
    Part("mlp", compute_mlp,
         lambda config, m: {"mlp_peak_near_interpolation": Measured(
                                m["peak_z"], baseline=m["train_error_peak_z"],
                                baseline_name="the training error curve (no peak)"),
                            "mlp_error_falls_beyond_peak": Measured(
                                m["fall_beyond_peak"], baseline=m["train_fall_beyond_peak"],
                                baseline_name="the training error (zero past interpolation)")},
         reads=("seeds", "precision", "mlp")),
)


def figures(config: ml_collections.ConfigDict, measurements: dict, workdir: str) -> list[str]:
    """Measured linear risks against Hastie et al.'s closed forms; MLP errors vs width."""
    import matplotlib.pyplot as plt

    lin = {k: np.asarray(v) for k, v in measurements["linear"].items()}
    mlp = {k: np.asarray(measurements["mlp"][k]) for k in ("train_error", "test_error")}
    interp_width = measurements["mlp"]["interpolation_width"]

    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(13, 4.8))
    c = config.linear
    g = lin["gamma"]
    fine = np.concatenate([np.geomspace(g[0], 0.995, 200), np.geomspace(1.005, g[-1], 200)])
    ax_l.errorbar(g, lin["ridgeless_mean"], 2 * lin["ridgeless_std_error"], fmt="o",
                  label="min-norm LS, measured (mean +- 2 s.e.)")
    ax_l.plot(fine, ridgeless.ridgeless_risk(fine, c.signal, c.noise), "C0-",
              label="Hastie et al. Thm 1")
    ax_l.errorbar(g, lin["ridge_mean"], 2 * lin["ridge_std_error"], fmt="s", c="C1",
                  label=f"ridge lam={c.ridge_penalty:g}, measured")
    ax_l.plot(fine, ridgeless.ridge_risk(fine, c.ridge_penalty, c.signal, c.noise), "C1-",
              label="Hastie et al. Thm 5")
    ax_l.axhline(c.signal, c="gray", ls=":", label="null risk r^2")
    ax_l.axvline(1.0, c="k", lw=0.6)
    ax_l.set(xscale="log", yscale="log", xlabel="gamma = p / n", ylabel="excess test risk",
             title=f"Isotropic linear model, n={c.n}, r^2={c.signal:g}, sigma^2={c.noise:g}",
             ylim=(0.01, 50))
    ax_l.legend(fontsize=7)
    m = config.mlp
    w = np.asarray(m.widths)
    for key, style, name in (("train_error", "s--", "train"), ("test_error", "o-", "test")):
        mean = mlp[key].mean(0)
        ax_m.plot(w, mean, style, label=f"{name} error (mean of {config.seeds} seeds)")
        ax_m.fill_between(w, mlp[key].min(0), mlp[key].max(0), alpha=0.2)
    if interp_width is not None:
        ax_m.axvline(interp_width, c="k", ls=":",
                     label="interpolation width (train error ~ 0): predicted peak")
    ax_m.axhline(m.label_noise, c="gray", ls="--", lw=0.8, label="label-noise fraction")
    ax_m.set_xscale("log")
    ax_m.set_xticks(w, [str(v) for v in w], minor=False)
    ax_m.minorticks_off()
    ax_m.set(xlabel="hidden width", ylabel="classification error",
             title=f"MLP on MNIST-1D, {m.num_train} points, {m.label_noise:.0%} label noise")
    ax_m.legend(fontsize=7)
    return [report.save_figure(fig, workdir, "double_descent.png")]
