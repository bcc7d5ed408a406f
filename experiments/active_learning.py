"""Active learning: exponential label savings for thresholds, margin sampling, sampling bias.

Dasgupta ("Coarse sample complexity bounds for active learning", NIPS 2005) opens with
thresholds on the line, h_t(x) = 1[x > t]: passive learning needs O(1/eps) random labels to
error eps, while binary search over the version space needs only O(log 1/eps) labels, an
exponential saving (read here: the abstract and the summaries the search tool returns; the
theorem numbers of the paper's general bounds are not cited). Settles (2009, "Active learning
literature survey", Section 3.1) describes uncertainty / margin sampling, which queries the
pool point the current model is least sure of. Dasgupta & Hsu ("Hierarchical sampling for
active learning", ICML 2008, Section 1) warn of its sampling bias: on data in groups on the
line, it keeps querying near its first boundary and never sees a small group that decides
where the best threshold is, so it converges to a threshold worse than the best, which random
sampling finds. Munjal et al. (CVPR 2022) report that with neural nets the gains of active
learning over random sampling are brittle and vanish under strong regularisation (abstract;
CIFAR with ResNets there, a small MLP on MNIST-1D here).

Closed forms (`dl_theory.theory.active_learning`, t* ~ U[0, 1], x uniform): bisection's
version-space width after k labels is exactly 2^-k; after m uniform random labels the width is
the spacing holding t*, size-biased, so E[width] = 2 / (m + 2) and E[width^2] = 6 / ((m + 2)
(m + 3)). Labels to width eps: ceil(log2 1/eps) for bisection, about 2 / eps for passive
(measured: 512 labels on average at eps = 1/256, 8 for bisection).

Measured. (1) thresholds: bisection's widths against 2^-k (baseline: the passive Monte Carlo
widths at the same label counts); the passive Monte Carlo mean width against 2 / (m + 2) in
standard errors of the mean (baseline: the un-size-biased mean spacing 1 / (m + 1)); the
log-log slope of the passive labels to width eps against 1/eps, with a bootstrap interval
(baseline: bisection's slope, which is logarithmic). (2) margin: logistic regression (optax
Adam, warm-started each round) on noise-free linearly separated Gaussian inputs in 2-D, margin
sampling against random sampling from the same labelled start, labels to a test error target;
a seed-paired comparison. (3) hidden_cluster: four uniform groups on the line, labels 0, 1, 0,
1 and masses 45 %, 5 %, 2.5 %, 47.5 % left to right (our instance of Dasgupta & Hsu's picture;
its numbers are ours). The best threshold lies between groups 1 and 2 (error 2.5 %); the
threshold between groups 3 and 4 errs by 5 %. The learner is the empirical 0-1 risk minimiser
over thresholds (middle of the minimising interval); uncertainty sampling queries the pool
point nearest its threshold. Claim: after the budget its error stays above random sampling's
(seed-paired); baseline: the same gap with group 3 relabelled 1 (realizable: the small groups
agree with one threshold, between groups 1 and 2), where uncertainty sampling is bisection.
And the mechanism, per seed: uncertainty sampling ends stuck between groups 3 and 4 exactly when
its random start holds no point of group 2 (probability (1 - 0.05)^4 = 0.81 with 4 start
labels); baseline: the same agreement for random sampling.

(4) mnist1d: an MLP (one hidden layer of 64) retrained from scratch (Adam, full batch) every
round on the labelled set, 20 random labels to start, 10 rounds of 20 labels chosen by the
smallest softmax margin or at random; claim: uncertainty sampling is no better than random (mean
seed-paired accuracy gain over rounds 1-10 at most two paired standard errors); baseline: random
sampling's own gain from the start to the full budget, which that bound rejects.

Tolerances, fixed before the runs: 4 standard errors for the closed form (10 label counts), the
whole bootstrap interval for the slope, 2 or 3 paired standard errors for seed-paired gaps.

Precision: `precision` (float32 by default) is the MNIST-1D MLP's compute policy (parameters,
Adam and the loss stay float32; float16 is refused: no loss scaling); other parts ignore it.

Run: python launch.py --config=experiments/active_learning.py:quick --workdir=runs/active
quick: 21 s wall in the quiet CI run (cold compilation cache; MNIST-1D is two thirds of it).
paper: more Monte Carlo draws and seeds, a larger pool and budget: 200 s wall at load 6-7, the
same seven verdicts (slope 1.013 [1.007, 1.019], margin 11.3 vs random's labels, hidden-cluster
gap 0.018, MNIST-1D gain -0.018).

Where this differs from the issue: (a) the "well-separated problem" is noise-free labels
1[x_0 > 0] on Gaussian inputs (two half-Gaussian classes touching at the boundary) rather than
two overlapping blobs, so that the target error is reachable and the advantage is the
realizable one Dasgupta analyses; (b) the hidden-cluster numbers are ours: Dasgupta & Hsu's
Section 1 example was read only in summaries here, so its masses and errors are not quoted; in
about a fifth of the seeds the random labelled start holds a point of group 2 and uncertainty
sampling then finds the best threshold too, which dilutes the mean gap below 5 % - 2.5 %.
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
import optax

from dl_theory import report
from dl_theory.config_checks import check_precision_without_loss_scaling
from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN, load_mnist1d
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.hitting_times import hitting_time
from dl_theory.theory import active_learning as thresholds
from dl_theory.train import active_learning as logistic
from dl_theory.train import deep_active_learning as deep
from dl_theory.train.precision import get_policy
from dl_theory.uncertainty import fit_loglog_slope, standard_error
from dl_theory.user_errors import ConfigError

DASGUPTA = "dasgupta2005"
BIAS = "dasgupta2008"

CLAIMS = (
    ClaimSpec("bisection_width_is_two_to_minus_k",
              "Bisection over the version space of 1-D thresholds leaves width 2^-k after k "
              "labels (largest width_k 2^k over k; 1 is exact), where passive learning's mean "
              "width at the same k is far larger.",
              DASGUPTA + ", thresholds on the line", at_most=1.0,
              published=Published("O(log 1/eps) labels by binary search",
                                  "introduction, thresholds on the line")),
    ClaimSpec("passive_width_matches_closed_form",
              "After m uniform random labels the mean version-space width is 2 / (m + 2) "
              "(largest |Monte Carlo mean - formula| in standard errors over m).",
              DASGUPTA + ", thresholds on the line (the passive closed form is derived here)",
              at_most="thresholds.max_z"),
    ClaimSpec("passive_labels_grow_like_one_over_eps",
              "Passive labels to version-space width eps grow like (1/eps)^1: the log-log slope "
              "against 1/eps lies in the stated interval, where bisection's does not.",
              DASGUPTA + ", thresholds on the line", at_least="thresholds.slope_lo",
              at_most="thresholds.slope_hi",
              published=Published("O(1/eps) labels for passive learning",
                                  "introduction, thresholds on the line")),
    ClaimSpec("margin_sampling_needs_fewer_labels",
              "On noise-free linearly separated Gaussian inputs, margin sampling reaches the test "
              "error target with fewer labels than random sampling from the same start (mean "
              "labels at most random's mean minus two paired standard errors).",
              "settles2009, Section 3.1"),
    ClaimSpec("uncertainty_sampling_stuck_above_random",
              "On the hidden-cluster mixture, uncertainty sampling's final error stays above "
              "random sampling's (mean seed-paired gap at least three paired standard errors), "
              "while on the same mixture without the hidden cluster it does not.",
              BIAS + ", Section 1 (sampling bias)",
              published=Published("uncertainty sampling converges to a suboptimal threshold",
                                  "Section 1, the sampling-bias example")),
    ClaimSpec("uncertainty_sampling_never_finds_the_hidden_group",
              "On the hidden-cluster mixture uncertainty sampling ends stuck between groups 3 "
              "and 4 (error exactly group 2's mass) precisely in the seeds whose random start "
              "holds no point of group 2: it never queries that group itself (fraction of "
              "seeds where stuck == start misses group 2; 1 is exact).",
              BIAS + ", Section 1 (sampling bias)", at_least=1.0),
    ClaimSpec("uncertainty_no_better_than_random_on_mnist1d",
              "On MNIST-1D from a tiny labelled start (2 per class on average), an MLP whose "
              "labels are chosen by uncertainty (softmax margin) is no better than one whose "
              "labels are random: the mean seed-paired accuracy gain over the rounds is at most "
              "two paired standard errors, while the gain of the random budget over the start "
              "is far above it.",
              "munjal2022, abstract",
              margin_why="a no-better-than claim: uncertainty sampling trailing random (a "
                         "negative gain) lies inside any non-negative bound; the baseline, "
                         "random sampling's own gain over its start, fails it, so a real gain "
                         "of that size would be resolved",
              published=Published("marginal or no advantage over the random sampling baseline",
                                  "abstract")),
)

_PRESETS = {
    "quick": dict(
        precision="float32",
        # max_z: the largest of 10 |z| scores; 4 standard errors keep a false alarm of the
        # family below 10 * 6.3e-5. The slope interval: the passive labels follow 2/eps - 2
        # (slope -> 1); 0.85 - 1.15 allows the -2 offset's curvature at eps = 1/8.
        thresholds=dict(label_counts=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), draws=20000,
                        eps=(1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256),
                        label_draws=2000, horizon=16,
                        bisection_queries=12, true_threshold=0.3, seed=0, max_z=4.0,
                        slope_lo=0.85, slope_hi=1.15),
        margin=dict(seeds=32, pool_size=1000, test_size=4000, dim=2, num_start=4,
                    num_queries=100, steps=30, learning_rate=0.1, l2=1e-4, target=0.02,
                    seed=3),
        hidden_cluster=dict(masses=(0.45, 0.05, 0.025, 0.475), lefts=(0.0, 1.1, 1.4, 4.0),
                            rights=(1.0, 1.3, 1.6, 5.0), labels=(0, 1, 0, 1), seeds=64,
                            pool_size=1000, num_start=4, num_queries=60, seed=1),
        mnist1d=dict(seeds=8, widths=(64,), num_start=20, batch=20, rounds=10, steps=200,
                     learning_rate=3e-3, seed=0),
    ),
}
_PRESETS["paper"] = {
    "precision": "float32",
    "thresholds": {**_PRESETS["quick"]["thresholds"], "draws": 200000, "label_draws": 8000},
    "margin": {**_PRESETS["quick"]["margin"], "seeds": 64, "num_queries": 200},
    "hidden_cluster": {**_PRESETS["quick"]["hidden_cluster"], "seeds": 256, "pool_size": 4000,
                       "num_queries": 200},
    "mnist1d": {**_PRESETS["quick"]["mnist1d"], "seeds": 32, "rounds": 20},
}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """eps in (0, 1); the hidden-cluster masses positive and summing to 1; labels 0 or 1; no
    float16 (the MNIST-1D rounds have no loss scaling)."""
    check_precision_without_loss_scaling(config)
    eps = tuple(config.thresholds.eps)
    if not all(0.0 < e < 1.0 for e in eps):
        raise ConfigError(f"thresholds.eps={eps}; allowed: numbers in (0, 1)")
    masses = tuple(config.hidden_cluster.masses)
    if not all(m > 0 for m in masses) or abs(sum(masses) - 1.0) > 1e-9:
        raise ConfigError(f"hidden_cluster.masses={masses}; allowed: positive numbers summing "
                          "to 1")
    labels = tuple(config.hidden_cluster.labels)
    if not set(labels) <= {0, 1} or len(labels) != len(masses):
        raise ConfigError(f"hidden_cluster.labels={labels}; allowed: one 0 or 1 per mass")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (more draws, seeds and labels)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def compute_thresholds(config, log) -> dict:
    """Part "thresholds": bisection widths, passive Monte Carlo widths, labels to eps."""
    c = config.thresholds
    counts = np.asarray(c.label_counts)
    bisect = thresholds.bisection_widths(c.true_threshold, c.bisection_queries)
    widths = thresholds.passive_widths(jax.random.PRNGKey(c.seed), counts, c.draws)
    mean = widths.mean(axis=0)
    se = thresholds.passive_width_std(counts) / math.sqrt(c.draws)
    # Labels to eps (one more Monte Carlo pass); `passive_never_reached` counts the censored.
    passive_labels = thresholds.passive_labels_to_width(
        jax.random.fold_in(jax.random.PRNGKey(c.seed), 1), c.eps, c.horizon, c.label_draws)
    active_labels = [int(hitting_time(bisect, e)) for e in c.eps]
    k = np.arange(1, c.bisection_queries + 1)
    passive_at_k = thresholds.passive_widths(jax.random.fold_in(jax.random.PRNGKey(c.seed), 2),
                                             k, c.draws).mean(axis=0)
    return {"counts": counts.tolist(), "mean_width": mean.tolist(), "se": se.tolist(),
            "closed_form": thresholds.expected_passive_width(counts).tolist(),
            "bisection_widths": bisect.tolist(), "passive_mean_width_at_k": passive_at_k.tolist(),
            "eps": list(c.eps), "active_labels": active_labels,
            "passive_labels_mean": passive_labels.mean(axis=0).tolist(),
            "passive_labels": passive_labels.tolist(),
            "passive_never_reached": int((passive_labels > int(c.horizon / min(c.eps))).sum())}


def judge_thresholds(config, m) -> dict:
    """Width 2^-k (baseline: passive at the same k); closed form in standard errors (baseline:
    1/(m+1)); passive slope (baseline: bisection's slope)."""
    k = np.arange(len(m["bisection_widths"]))
    counts, se = np.asarray(m["counts"]), np.asarray(m["se"])
    mean = np.asarray(m["mean_width"])
    inv_eps = 1.0 / np.asarray(m["eps"])
    slope = fit_loglog_slope(inv_eps, np.asarray(m["passive_labels"], np.float64))
    active_slope = float(np.polyfit(np.log(inv_eps), np.log(m["active_labels"]), 1)[0])
    return {
        "bisection_width_is_two_to_minus_k": Measured(
            float(np.max(np.asarray(m["bisection_widths"]) * 2.0 ** k)),
            baseline=float(np.max(np.asarray(m["passive_mean_width_at_k"]) * 2.0 ** k[1:])),
            baseline_name="passive mean width at the same k, times 2^k"),
        "passive_width_matches_closed_form": Measured(
            float(np.max(np.abs(mean - np.asarray(m["closed_form"])) / se)),
            baseline=float(np.max(np.abs(mean - 1.0 / (counts + 1.0)) / se)),
            baseline_name="mean spacing 1/(m+1) (no size bias), in standard errors"),
        "passive_labels_grow_like_one_over_eps": Measured(
            slope, baseline=active_slope,
            baseline_name="bisection's labels ceil(log2 1/eps), log-log slope"),
    }


def compute_margin(config, log) -> dict:
    """Part "margin": logistic regression, margin vs random sampling, errors per round."""
    c = config.margin
    pools = logistic.linear_gaussian_pools(jax.random.PRNGKey(c.seed), c.seeds, c.pool_size,
                                           c.test_size, c.dim)
    runs = logistic.errors_by_strategy(pools, num_start=c.num_start, num_queries=c.num_queries,
                                       steps=c.steps, learning_rate=c.learning_rate, l2=c.l2)
    # Labels at the first round with error <= target (start + Q if never: censored).
    return {strategy: {"mean_error": errors.mean(axis=0).tolist(),
                       "labels_to_target": (hitting_time(errors, c.target)
                                            + c.num_start).tolist()}
            for strategy, errors in runs.items()}


def judge_margin(config, m) -> dict:
    """Mean labels to target, margin sampling, against random's mean minus 2 paired SE."""
    margin = np.asarray(m["margin"]["labels_to_target"], np.float64)
    random = np.asarray(m["random"]["labels_to_target"], np.float64)
    return {"margin_sampling_needs_fewer_labels": Measured(
        float(margin.mean()), at_most=float(random.mean() - 2 * standard_error(random - margin)),
        baseline=float(random.mean()), baseline_name="random sampling's mean labels")}


def compute_hidden_cluster(config, log) -> dict:
    """Part "hidden_cluster": uncertainty vs random sampling of thresholds, with the hidden
    group and (control) with it relabelled so that the data are realizable."""
    c = config.hidden_cluster
    lo, hi = min(c.lefts) - 0.5, max(c.rights) + 0.5
    order = thresholds.random_orders(jax.random.fold_in(jax.random.PRNGKey(c.seed), 1),
                                     c.seeds, c.pool_size)
    # Control: every group but the leftmost labelled 1, so a threshold in the narrow gap
    # between groups 1 and 2 is exact and uncertainty sampling is bisection.
    realizable = (0,) + (1,) * (len(c.labels) - 1)
    out = {}
    for name, labels in (("hidden", tuple(c.labels)), ("realizable", realizable)):
        groups = thresholds.interval_groups(c.masses, c.lefts, c.rights, labels)
        x, runs = thresholds.mixture_query_runs(jax.random.PRNGKey(c.seed), groups, order,
                                                num_start=c.num_start,
                                                num_queries=c.num_queries, lo=lo, hi=hi)
        out[f"{name}/start_has_group_2"] = thresholds.start_hits_interval(
            x, order, c.num_start, c.lefts[1], c.rights[1]).tolist()
        for strategy, (t, errors) in runs.items():
            # Stuck: the threshold between groups 3 and 4, where the error is group 2's mass.
            stuck = (t[:, -1] > c.rights[2]) & (t[:, -1] < c.lefts[3])
            out[f"{name}/{strategy}"] = {"mean_error": errors.mean(axis=0).tolist(),
                                         "final_error": errors[:, -1].tolist(),
                                         "stuck": stuck.tolist()}
    out["best_error"] = thresholds.best_threshold_error(
        thresholds.interval_groups(c.masses, c.lefts, c.rights, c.labels), lo, hi)
    return out


def judge_hidden_cluster(config, m) -> dict:
    """Mean paired gap uncertainty - random, against 3 paired SE; baseline: the realizable
    mixture's gap."""
    def gap(name):
        return (np.asarray(m[f"{name}/uncertainty"]["final_error"])
                - np.asarray(m[f"{name}/random"]["final_error"]))

    def agreement(strategy):
        missed = ~np.asarray(m["hidden/start_has_group_2"])
        return float(np.mean(np.asarray(m[f"hidden/{strategy}"]["stuck"]) == missed))

    hidden = gap("hidden")
    return {"uncertainty_sampling_stuck_above_random": Measured(
                float(hidden.mean()), at_least=3 * standard_error(hidden),
                baseline=float(gap("realizable").mean()),
                baseline_name="the same gap without the hidden cluster (realizable)"),
            "uncertainty_sampling_never_finds_the_hidden_group": Measured(
                agreement("uncertainty"), baseline=agreement("random"),
                baseline_name="the same agreement for random sampling")}


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the MNIST-1D MLP, for `launch.py --dtypes`."""
    c = config.mnist1d
    return (deep.mlp_classifier(c.widths, NUM_CLASSES, get_policy(config.precision)),
            jax.numpy.zeros((2, SEQ_LEN)), optax.adam(c.learning_rate))


def compute_mnist1d(config, log) -> dict:
    """Part "mnist1d": an MLP retrained each round, uncertainty vs random batch acquisition."""
    c = config.mnist1d
    runs = deep.accuracy_by_strategy(
        jax.random.PRNGKey(c.seed), load_mnist1d(), num_seeds=c.seeds, widths=tuple(c.widths),
        num_start=c.num_start, batch=c.batch, rounds=c.rounds, steps=c.steps,
        learning_rate=c.learning_rate, policy=get_policy(config.precision))
    return {strategy: {"accuracy": accuracy.tolist(),
                       "mean_error": (1.0 - accuracy.mean(axis=0)).tolist()}
            for strategy, accuracy in runs.items()}


def judge_mnist1d(config, m) -> dict:
    """Mean paired gain over rounds 1..R against 2 paired SE; baseline: random's final gain
    over the labelled start."""
    uncertainty = np.asarray(m["uncertainty"]["accuracy"])
    random = np.asarray(m["random"]["accuracy"])
    gain = (uncertainty[:, 1:] - random[:, 1:]).mean(axis=1)
    return {"uncertainty_no_better_than_random_on_mnist1d": Measured(
        float(gain.mean()), at_most=2 * standard_error(gain),
        baseline=float((random[:, -1] - random[:, 0]).mean()),
        baseline_name="random sampling's final accuracy gain over the labelled start")}


PARTS = (
    Part("thresholds", compute_thresholds, judge_thresholds, reads=("thresholds",)),
    Part("margin", compute_margin, judge_margin, reads=("margin",)),
    Part("hidden_cluster", compute_hidden_cluster, judge_hidden_cluster,
         reads=("hidden_cluster",)),
    Part("mnist1d", compute_mnist1d, judge_mnist1d, reads=("mnist1d", "precision")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Error (version-space width) vs labels per strategy, closed forms drawn over them."""
    import matplotlib.pyplot as plt

    names = []
    fig, axes = plt.subplots(1, 4, figsize=(21, 4.5))
    if "thresholds" in m:
        t, ax = m["thresholds"], axes[0]
        k = np.arange(len(t["bisection_widths"]))
        ax.plot(k, 2.0 ** -k, "k-", label="2^-k")
        ax.plot(k, t["bisection_widths"], "o", label="bisection, measured")
        m_grid = np.arange(1, max(t["counts"]) + 1)
        ax.plot(m_grid, thresholds.expected_passive_width(m_grid), "k--", label="2 / (m + 2)")
        ax.errorbar(t["counts"], t["mean_width"], yerr=2 * np.asarray(t["se"]), fmt="s",
                    label="passive, Monte Carlo mean")
        ax.set(xscale="log", yscale="log", xlabel="labels", ylabel="version-space width",
               title="1-D thresholds")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    for ax, name, title in ((axes[1], "margin", "logistic regression, separable 2-D"),
                            (axes[2], "hidden_cluster", "hidden-cluster mixture")):
        if name not in m:
            continue
        section = config[name]
        labels = section.num_start + np.arange(section.num_queries + 1)
        for key, curve in m[name].items():
            if isinstance(curve, dict):
                ax.plot(labels, curve["mean_error"], label=key)
        if name == "margin":
            ax.axhline(section.target, color="k", ls=":", label="target")
            ax.set_yscale("log")
        else:
            ax.axhline(m[name]["best_error"], color="k", ls="--", label="best threshold (hidden)")
            ax.axhline(section.masses[1], color="k", ls=":", label="stuck: mass of group 2")
        ax.set(xlabel="labels", ylabel="test error (mean over seeds)", title=title)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    if "mnist1d" in m:
        c, ax = config.mnist1d, axes[3]
        labels = c.num_start + c.batch * np.arange(c.rounds + 1)
        for strategy, curve in m["mnist1d"].items():
            ax.plot(labels, curve["mean_error"], "o-", label=strategy)
        ax.set(xlabel="labels", ylabel="test error (mean over seeds)", title="MNIST-1D, MLP")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    names.append(report.save_figure(fig, workdir, "error_vs_labels.png"))
    return names
