"""Approximation, estimation and optimisation error, measured one by one on a teacher target.

Theory. Bottou & Bousquet (2008, "The tradeoffs of large scale learning", eq. (3)); see also the
survey of Suh & Cheng (2024, "A survey on statistical theory of deep learning", Sec. 2): the
excess risk of the network f~_n that training returns from n samples splits as

    R(f~_n) - R* = [R(f*_F) - R*]          approximation: best net of the class F (width w)
                 + [R(f^_n) - R(f*_F)]     estimation: empirical risk minimiser on n samples
                 + [R(f~_n) - R(f^_n)]     optimisation: what training leaves on the table.

Approximation error falls as the class grows (the classes are nested). Its rate is not 1/w here:
Barron's (1993) 1/w needs a finite Barron constant, which a ReLU teacher (kinks: |omega|^{-2}
Fourier tails) does not have; for targets of Sobolev smoothness s in d dimensions width-w shallow
nets reach ~ w^{-2s/d}, about w^{-0.375} for s ~ 3/2 (piecewise-linear), d = 8, a heuristic
drawn in the figure, not a claim.
estimation error falls as n grows, at least like n^{-1/2} (uniform convergence / Rademacher
bounds, Bartlett & Mendelson 2002; ~ p/n in the parametric regime); for wide nets the
optimisation error is small (over-parameterised landscapes have no bad local minima in practice;
Du et al. 2019, Allen-Zhu et al. 2019).

Set-up. Teacher: `synthetic.teacher_network` (Gaussian inputs in d = 8, two ReLU layers of width
32, unit output variance), noiseless, so R* = 0 and R is the test MSE on `num_test` fresh points.
Students: one hidden ReLU layer of width w (mis-specified in depth, so R(f*_F) > 0). For each w,
one `fit_grid` program trains D data seeds x R restarts x (every n, plus one online member) with
Adam on minibatches: members with a sample size draw their batches from their own first n
samples (minimising the empirical risk R^_n); online members draw fresh samples every step.

How each term is estimated:
- Approximation A(w) = min over the R online restarts of the test risk (fresh samples every
  step: unlimited data, no estimation error; the min over restarts removes most optimisation
  error; what remains is a floor of the finite step budget).
- ERM f^_n: among the R restarts on the same n samples, the one with the smallest final
  empirical risk R^_n (full training set). Estimation E(w, n) = R(f^_n) - A(w), per data seed.
- Optimisation O(w, n) = mean over restarts of R^_n(f_r) - min_r R^_n(f_r): how far a typical run
  is from the best run in the objective that training minimises (the empirical risk); per data
  seed. Its share of the error is O / (mean over restarts of R(f_r)).
Rates are `fit_loglog_slope` fits with bootstrap intervals over data seeds.

Controls (baselines each claim's bound rejects, from the same run). Approximation: the
estimation error at the smallest n against width, the term Bottou & Bousquet's trade-off says
grows with the class (its slope). Estimation: the slope of the ERM's risk R(f^_n) itself, whose
approximation floor keeps it from falling like n^{-1/2}. Optimisation: the narrowest student's
share; the widest's share must lie below it by 2 standard errors of the difference (data-seed
spread of the per-seed shares, the house's 2-s.e. rule).
`config.precision` sets the students' compute dtype (parameters and optimizer state stay
float32); their risks are reduced in float32. Under float32 (the presets) every number is
bit-identical to the code before the knob existed.

Run: python launch.py --config=experiments/error_decomposition.py:quick --workdir=runs/ed
quick: widths 2..128, n = 64..1024, 3 data seeds x 3 restarts, 2000 steps; 33 s of CPU, 112 s
wall at load 13 on the shared 2 cores. paper: widths 2..256, n = 64..16384, 5 data seeds x 8
restarts, 10k steps (closest to Bottou & Bousquet's trade-off curves a 2-core CPU runs in
~30 min; not run here).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data import synthetic
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, fit_loglog_slope, standard_error

BOTTOU = "bottou2008, eq. (3); suh2024, Sec. 2"

CLAIMS = (
    ClaimSpec("approximation_falls_with_width",
              "The approximation error A(w) (best online-trained student) falls with the width: "
              "log-log slope of A vs w < 0 (whole interval; the rate itself is reported), "
              "while the estimation error at the smallest n, the trade-off's other term, "
              "does not (baseline).",
              BOTTOU, at_most=0.0),
    ClaimSpec("estimation_falls_with_n",
              "The estimation error R(f^_n) - A(w) at the reference width falls with n at least "
              "like n^{-1/2}: log-log slope <= -0.5 (whole interval); the ERM's risk itself, "
              "approximation floor included, falls slower (baseline).",
              BOTTOU + "; bartlett2002", at_most=-0.5),
    ClaimSpec("optimisation_small_for_wide_nets",
              "For the widest student the optimisation error is a small share of the error: "
              "max over n of mean_seeds O / mean risk <= 0.1 (the narrowest's share is not).",
              BOTTOU + "; du2019", at_most="max_optimisation_share"),
    ClaimSpec("optimisation_shrinks_with_width",
              "The optimisation error's share (max over n) is smaller for the widest than for "
              "the narrowest student by more than 2 standard errors of their difference (data-"
              "seed spread): measured the widest's share, bound the narrowest's minus 2 s.e."
              " (so the narrowest's own share, the baseline, fails it).", BOTTOU),
)

_PRESETS = {
    "quick": dict(
        input_dim=8, teacher=dict(width=32, depth=2, seed=0),
        widths=(2, 8, 32, 128), sample_sizes=(64, 128, 256, 512, 1024),
        estimation_width=32, data_seeds=3, restarts=3, num_test=8192, batch_size=64,
        steps=2000, precision="float32", max_optimisation_share=0.1,
        optimizer=optimizer_config(name="adam", learning_rate=3e-3, schedule="cosine")),
    "paper": dict(
        input_dim=8, teacher=dict(width=32, depth=2, seed=0),
        widths=(2, 4, 8, 16, 32, 64, 128, 256),
        sample_sizes=(64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384),
        estimation_width=32, data_seeds=5, restarts=8, num_test=32768, batch_size=128,
        steps=10000, precision="float32", max_optimisation_share=0.1,
        optimizer=optimizer_config(name="adam", learning_rate=3e-3, schedule="cosine")),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (wider, more samples, more restarts)."""
    config = config_from_presets(_PRESETS, preset, PARTS)
    if config.estimation_width not in config.widths:
        raise ValueError(f"estimation_width={config.estimation_width}; must be one of "
                         f"widths={tuple(config.widths)}")
    return config


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest student, for `launch.py --dtypes`."""
    model = MLP(widths=(max(config.widths),), activation="relu",
                **get_policy(config.precision).model_dtypes())
    return (model, jnp.zeros((2, config.input_dim)),
            build_optimizer(config.optimizer, total_steps=config.steps))


def _mixed_sampler(teacher: synthetic.Target, batch_size: int):
    """Per member: n > 0 -> minibatch (with replacement) from its first n samples (ERM);
    n == 0 -> `batch_size` fresh teacher samples (online: the population risk)."""

    def sample(data, key):
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(data["n"], 1))
        fresh = teacher.sample(key, batch_size)
        online = data["n"] == 0
        return {"x": jnp.where(online, fresh["x"], data["x"][idx]),
                "y": jnp.where(online, fresh["y"], data["y"][idx])}

    return sample


def _train_width(width, teacher, train, test, config, log) -> dict:
    """Test risk [D, R, K + 1] (last: online) and empirical risk [D, R, K] of every member."""
    sizes = list(config.sample_sizes)
    d_seeds, restarts = config.data_seeds, config.restarts
    members = [(s, r, n) for s in range(d_seeds) for r in range(restarts) for n in sizes + [0]]
    data = {"x": jnp.stack([train[s]["x"] for s, _, _ in members]),
            "y": jnp.stack([train[s]["y"] for s, _, _ in members]),
            "n": jnp.asarray([n for _, _, n in members], jnp.int32)}
    policy = get_policy(config.precision)
    model = MLP(widths=(width,), activation="relu", **policy.model_dtypes())
    tx = build_optimizer(config.optimizer, total_steps=config.steps)
    states = create_train_states(model, tx, test["x"][:2],
                                 [1000 * r + 7 * s + n for s, r, n in members],
                                 make_loss_scale(policy))
    states, _ = fit_grid(states, data, _mixed_sampler(teacher, config.batch_size),
                         loss=mean_squared_error, steps=config.steps, data_axis=0,
                         data_seeds=[97 * s + 13 * r + n for s, r, n in members],
                         policy=policy, log=log, tags={"width": width}, label=f"width={width}",
                         verbose=False)

    def predict(params, x):
        # Risks reduce in float32 whatever the compute dtype (a no-op under float32).
        return policy.cast_to_output(model.apply({"params": params},
                                                 policy.cast_to_compute(x)))

    def risks(params, x, y, n):
        weight = (jnp.arange(x.shape[0]) < n).astype(jnp.float32)
        train_risk = mean_squared_error(predict(params, x), y, weight)
        test_risk = mean_squared_error(predict(params, test["x"]), test["y"])
        return test_risk, train_risk

    test_risk, train_risk = jax.vmap(risks)(states.params, data["x"], data["y"], data["n"])
    shape = (d_seeds, restarts, len(sizes) + 1)
    return {"test": np.asarray(test_risk).reshape(shape),
            "train": np.asarray(train_risk).reshape(shape)[..., :-1]}


def decompose(test_DxRxK1: np.ndarray, train_DxRxK: np.ndarray) -> dict:
    """The three terms from one width's risks (see the module docstring); shapes [D, R, K + 1]
    (last column: online members) and [D, R, K]. Returns approximation (scalar), erm_risk,
    estimation, optimisation, mean_risk (each [D, K])."""
    approximation = float(test_DxRxK1[..., -1].min())
    test = test_DxRxK1[..., :-1]
    best = np.argmin(train_DxRxK, axis=1)  # [D, K]: the ERM proxy among restarts
    erm_risk = np.take_along_axis(test, best[:, None, :], axis=1)[:, 0, :]
    return {"approximation": approximation, "erm_risk": erm_risk,
            "estimation": erm_risk - approximation,
            "optimisation": train_DxRxK.mean(axis=1) - train_DxRxK.min(axis=1),
            "mean_risk": test.mean(axis=1)}


def _optimisation_share(terms: dict) -> float:
    """max over n of (seed-mean optimisation error) / (seed-mean risk)."""
    return float(np.max(terms["optimisation"].mean(0) / terms["mean_risk"].mean(0)))


def _optimisation_share_std_error(terms: dict) -> float:
    """Standard error over data seeds of the share O / risk at the n where the seed-mean share
    peaks (the n `_optimisation_share` reports)."""
    at = int(np.argmax(terms["optimisation"].mean(0) / terms["mean_risk"].mean(0)))
    per_seed = terms["optimisation"][:, at] / terms["mean_risk"][:, at]
    return standard_error(per_seed)


def _slope_or_none(x_K, y_SxK) -> list[float] | None:
    """[value, lo, hi] of the log-log slope, or None when some y <= 0 (no rate)."""
    if not np.all(np.asarray(y_SxK) > 0):
        return None
    slope = fit_loglog_slope(x_K, y_SxK)
    return [slope.value, slope.lo, slope.hi]


def _figure(config, terms_by_width, workdir) -> str:
    """Approximation vs width, estimation vs n, optimisation share vs n."""
    import matplotlib.pyplot as plt

    fig, (ax_w, ax_n, ax_o) = plt.subplots(1, 3, figsize=(16, 4.8))
    widths = np.asarray(config.widths, dtype=float)
    approx = np.asarray([terms_by_width[w]["approximation"] for w in config.widths])
    ax_w.loglog(widths, approx, "o-", label="approximation A(w) (best online restart)")
    ax_w.loglog(widths, approx[0] * widths[0] / widths, "k:", label="1/w (Barron, finite C_f)")
    ax_w.loglog(widths, approx[0] * (widths[0] / widths) ** 0.375, "k--",
                label="w^(-2s/d), s = 3/2, d = 8")
    largest = [terms_by_width[w]["erm_risk"][:, -1].mean() for w in config.widths]
    ax_w.loglog(widths, largest, "s--", label=f"ERM risk at n={config.sample_sizes[-1]}")
    ax_w.set(xlabel="student width w", ylabel="test risk", title="approximation vs width")
    ax_w.set_xticks(widths, [str(int(w)) for w in widths])
    ax_w.minorticks_off()
    ax_w.legend(fontsize=7)

    n = np.asarray(config.sample_sizes, dtype=float)
    for w in config.widths:
        est = terms_by_width[w]["estimation"].mean(0)
        ax_n.loglog(n, np.where(est > 0, est, np.nan), "o-", label=f"w={w}")
    ref = terms_by_width[config.estimation_width]["estimation"].mean(0)
    ax_n.loglog(n, ref[0] * np.sqrt(n[0] / n), "k:", label="n^-1/2 (uniform convergence)")
    ax_n.loglog(n, ref[0] * n[0] / n, "k--", label="n^-1 (parametric)")
    ax_n.set(xlabel="training samples n", ylabel="R(f^_n) - A(w)", title="estimation vs n")
    ax_n.legend(fontsize=7, ncol=2)

    for w in config.widths:
        t = terms_by_width[w]
        share = t["optimisation"].mean(0) / t["mean_risk"].mean(0)
        ax_o.semilogx(n, share, "o-", label=f"w={w}")
    ax_o.axhline(config.max_optimisation_share, c="gray", ls="-.", label="claimed ceiling (wide)")
    ax_o.set(xlabel="training samples n", ylabel="optimisation error / risk",
             title="optimisation: mean run vs best restart")
    ax_o.legend(fontsize=7, ncol=2)
    return report.save_figure(fig, workdir, "error_decomposition.png")


def compute_decomposition(config: ml_collections.ConfigDict, log) -> dict:
    """Part "decomposition": trains every width's grid and splits its error into the three
    terms; the fitted rates and optimisation shares the claims read."""
    teacher = synthetic.teacher_network(config.input_dim, **config.teacher)
    n_max = max(config.sample_sizes)
    train = [teacher.sample(jax.random.PRNGKey(100 + s), n_max) for s in range(config.data_seeds)]
    test = teacher.sample(jax.random.PRNGKey(99), config.num_test)
    terms = {}
    for width in config.widths:
        risks = _train_width(width, teacher, train, test, config, log)
        terms[width] = decompose(risks["test"], risks["train"])

    approx = np.asarray([[terms[w]["approximation"] for w in config.widths]])
    approx_slope = fit_loglog_slope(config.widths, approx)
    reference = terms[config.estimation_width]
    wide, narrow = max(config.widths), min(config.widths)
    share_wide, share_narrow = _optimisation_share(terms[wide]), _optimisation_share(terms[narrow])
    metrics = {
        "widths": list(config.widths), "sample_sizes": list(config.sample_sizes),
        "approximation": approx[0].tolist(),
        "approximation_slope": [approx_slope.value, approx_slope.lo, approx_slope.hi],
        "estimation_slope": _slope_or_none(config.sample_sizes, reference["estimation"]),
        # Controls: the trade-off's other term grows with the class (estimation at the smallest
        # n vs width), and the ERM's risk, floor included, falls slower than its excess.
        "estimation_slope_vs_width": _slope_or_none(
            config.widths, np.stack([terms[w]["estimation"][:, 0] for w in config.widths], 1)),
        "erm_risk_slope": _slope_or_none(config.sample_sizes, reference["erm_risk"]),
        "optimisation_share": {str(w): _optimisation_share(terms[w]) for w in config.widths},
        "optimisation_share_std_error": {str(w): _optimisation_share_std_error(terms[w])
                                         for w in config.widths},
        "optimisation_share_ratio": share_wide / share_narrow,
    }
    for key in ("erm_risk", "estimation", "optimisation", "mean_risk"):
        metrics[key] = {str(w): terms[w][key].tolist() for w in config.widths}
    return metrics


def judge_decomposition(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The approximation and estimation rates (an estimation error <= 0 somewhere gives no
    rate: NaN, which never holds), the widest share against 0.1 and against the narrowest's
    share less two standard errors of their difference; each with its control."""
    def point(slope):
        return float("nan") if slope is None else slope[0]

    estimation_slope = m["estimation_slope"]
    wide, narrow = str(max(config.widths)), str(min(config.widths))
    share, std_error = m["optimisation_share"], m["optimisation_share_std_error"]
    narrowest = f"the narrowest student's share (w = {narrow})"
    return {
        "approximation_falls_with_width": Measured(
            Estimate(*m["approximation_slope"]), baseline=point(m["estimation_slope_vs_width"]),
            baseline_name=f"the estimation error's slope vs width at n = "
                          f"{min(config.sample_sizes)} (grows with the class)"),
        "estimation_falls_with_n": Measured(
            float("nan") if estimation_slope is None else Estimate(*estimation_slope),
            baseline=point(m["erm_risk_slope"]),
            baseline_name="the ERM's risk R(f^_n) vs n, approximation floor included"),
        "optimisation_small_for_wide_nets": Measured(share[wide], baseline=share[narrow],
                                                     baseline_name=narrowest),
        "optimisation_shrinks_with_width": Measured(
            share[wide], at_most=share[narrow] - 2 * np.hypot(std_error[wide], std_error[narrow]),
            baseline=share[narrow], baseline_name=narrowest),
    }


PARTS = (
    Part("decomposition", compute_decomposition, judge_decomposition,
         reads=("input_dim", "teacher", "widths", "sample_sizes", "estimation_width",
                "data_seeds", "restarts", "num_test", "batch_size", "steps", "precision",
                "optimizer")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """The three terms against width and sample size."""
    d = m["decomposition"]
    terms = {w: {"approximation": d["approximation"][i],
                 **{key: np.asarray(d[key][str(w)]) for key in
                    ("erm_risk", "estimation", "optimisation", "mean_risk")}}
             for i, w in enumerate(config.widths)}
    return [_figure(config, terms, workdir)]
