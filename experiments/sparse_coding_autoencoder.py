"""Sparse coding and autoencoders (Rangamani, Mukherjee, Basu, Ganapathy, Arora, Chin & Tran,
ISIT 2018, arXiv 1708.03735): a weight-tied ReLU autoencoder at the true dictionary.

Model. y = A* x* with A* n x h (h > n) of unit, incoherent columns (|<A*_i, A*_j>| <= mu/sqrt n
= h^-xi), x* >= 0 with a support S of k = h^p entries (P(i in S) = Theta(h^(p-1)) and its
pairs and triples likewise) and non-zero values in [a1, a2]. The autoencoder is
y_hat = W^T ReLU(W y - eps), W of shape h x n, with the squared loss 1/2 ||y_hat - y||^2.
Paper (abstract): (i) a layer of ReLU gates with a suitable bias recovers the support of x*
with high probability, independently of the loss; (ii) the norm of the expected gradient of
the squared loss is asymptotically (in the code dimension h) negligible at every W in a small
(column-wise) neighbourhood of A*. What could be read here: the abstract, and the authors'
public simulation code for the first version (github.com/aarora8/Autoencoder), which sets
mu/sqrt n = h^-xi from the drawn dictionary, takes p < min(1/3, xi/2) "as per theorem 3.2"
and uses a bias m1 k (delta + mu/sqrt n) ("epsilon in theorem 3.1"). The full statements
(constants, probability, the exact order of the gradient) were not in the stored corpora, so
the claims below test the bias eps = 2 m1 k (delta + mu/sqrt n) (twice the mean worst-case
input of an off-support unit, which a Hoeffding bound over x* makes sufficient w.h.p.) and
orders derived here from the model, each said so in its statement.

Derived regime and orders. At W = A*^T an off-support unit gets sum_{j in S} x_j <A_i, A_j>,
at most a2 k mu/sqrt n <= eps when a2 <= 2 m1; a support unit gets at least
a1 - a2 (k - 1) mu/sqrt n. Support recovery therefore holds (deterministically, so the
probability bound is met) while a1 > (2 m1 + a2) k mu/sqrt n, and it must fail once the bias
exceeds the code values: at k mu/sqrt n ~ a1 / (2 m1) almost surely (the collapse measured
below). With mu/sqrt n = h^-xi this is the regime p < xi as h grows. At A* the expected
gradient of row i has a radial part ~ -2 q m1 eps A*_i (the bias shrinks the code, q =
P(i in S)) and a tangential part of smaller order; relative to the gradient at a fixed
distance (whose row norms also carry q) it is O(k mu/sqrt n) = O(h^(p - xi)).

Setting. A* = [I, H/sqrt n] (identity beside the normalised Hadamard basis, h = 2n, mu/sqrt
n = n^-1/2 = sqrt(2/h): xi = 1/2 up to sqrt 2, the most incoherent overcomplete dictionary of
its size; a Gaussian dictionary of these sizes has k mu/sqrt n > 1/3 for every k >= 2, outside
any regime); k = round(h^p); values uniform on [1, 2] (m1 = 1.5, m2 = 7/3).
Measured. (1) recovery: exact support recovery (every one of the h units right) at W = A*^T
over fresh samples, for p from 0.1 to 0.5; baselines: eps = 0 and a random W with unit rows.
(2) gradient: the Monte Carlo expected gradient (debiased for the Monte Carlo noise, see
`dl_theory.theory.sparse_coding.expected_gradient_norm`), per-row RMS, at A* and at unit-row
W exactly delta from A* column-wise, for h = 2n over the grid; its full norm (the paper's
quantity) and its part tangent to the unit sphere of each row (matched norms); the slope of
the norm at A* over h, bootstrapped over the replicates, against the derived bias term's. A random W
with unit rows has every unit off under this bias (W_i y ~ N(0, |y|^2/n), |y|/sqrt n << eps),
so its gradient is zero: the reference is W at distance `far` instead. (3) training: SGD on
fresh samples from W at distance `start` (unit rows); the column-wise distance of the
row-normalised W to A* before and after; baseline: the same training from a random W.

Precision: `precision` (float32 by default) is the training part's policy: the autoencoder's
forward pass computes in its compute dtype, W and the SGD update stay float32; float16 is
refused, as the SGD loop has no loss scaling. The recovery and gradient parts are float32
Monte Carlo maths and ignore it.

Run: python launch.py --config=experiments/sparse_coding_autoencoder.py:quick --workdir=runs/sca
quick: 21 s wall, 24 CPU-s at load 2 on 2 shared cores (50 s at load 4.4).
paper: h to 2048 (gradient) and 4096 (recovery), twice the Monte Carlo samples, 2000 SGD steps
at h = 1024 (minutes on 2 cores; not run in the tests).
"""

from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
import optax

from dl_theory import report
from dl_theory.config_checks import check_choice, check_precision_without_loss_scaling
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.theory import sparse_coding_sweeps
from dl_theory.train import sparse_coding_fit
from dl_theory.train.precision import get_policy
from dl_theory.user_errors import ConfigError

PAPER = "rangamani2018"
RECOVERY = PAPER + ", support recovery by a ReLU layer (abstract)"
GRADIENT = PAPER + ", expected gradient near A* (abstract)"

CLAIMS = (
    ClaimSpec("support_recovered_in_regime",
              "At W = A*^T with the bias eps = 2 m1 k mu/sqrt(n), ReLU(W y - eps) has exactly the "
              "support of x* (every unit right) for a fraction of samples >= threshold minus "
              "three binomial standard errors, at sparsity p inside the regime; eps = 0, the "
              "baseline, recovers almost none.",
              RECOVERY, unit="fraction of samples",
              published=Published("the support is recovered with high probability",
                                  "abstract")),
    ClaimSpec("recovery_collapses_outside_regime",
              "Outside the regime (k mu/sqrt(n) above a1 / (2 m1), where the bias exceeds the "
              "smallest code value: derived here), exact recovery falls to at most "
              "collapse_rate; the rate inside the regime is the baseline.",
              RECOVERY, at_most="recovery.collapse_rate", unit="fraction of samples",
              margin_why="0 is the prediction: at p_out the bias exceeds even a2, the largest "
                         "code value, so a sample is exact only if interference lifts all k "
                         "support units above eps; the baseline (inside the regime) is 1"),
    ClaimSpec("gradient_small_at_dictionary",
              "At the largest h, the expected gradient norm (full, per row) at A* is at most "
              "ratio_bound times that at unit-row W a column-wise distance `far` from A*; "
              "baseline: W at distance far/2.",
              GRADIENT, at_most="gradient.ratio_bound",
              expected_holds=False,
              why="measured: the bias eps = 2 m1 k mu/sqrt(n) shrinks the code by eps, so the "
                  "gradient at A* has a radial part -2 q m1 eps A*_i of order k mu/sqrt(n) "
                  "relative to the gradient at distance far; at p = 0.2 the ratio is 1.18, 1.00, "
                  "0.89, 0.88 at h = 128, 256, 512, 1024 (quick): it falls with h, as the "
                  "bias term does (gradient_at_dictionary_follows_bias_term), but is far from "
                  "small at sizes this CPU reaches; its tangential part is small",
              published=Published("asymptotically negligible in h near A*", "abstract")),
    ClaimSpec("tangential_gradient_small_at_dictionary",
              "At the largest h, the part of the expected gradient tangent to the rows' unit "
              "spheres (matched row norms) at A* is at most ratio_bound times that at distance "
              "`far`; baseline: W at distance far/2.",
              GRADIENT, at_most="gradient.ratio_bound"),
    ClaimSpec("gradient_at_dictionary_follows_bias_term",
              "The expected gradient norm (full, per row) at A* falls with h like the radial "
              "term 2 q m1 eps = 4 m1^2 k^2 mu/(h sqrt(n)) ~ h^(2p - 3/2) (derived here: the bias "
              "shrinks each recovered code entry by eps), i.e. like k mu/sqrt(n) ~ h^(p - 1/2) "
              "relative to q = k/h: the fitted log-log slope over h is within slope_tolerance "
              "of that term's slope on the same grid (whole 95% bootstrap interval); baseline: "
              "the slope of the tangential gradient at distance far, which falls like q only.",
              GRADIENT, published=Published("negligible as h grows (no order read)", "abstract")),
    ClaimSpec("training_moves_toward_dictionary",
              "SGD on the squared loss from unit-row W at column-wise distance `start` from A* "
              "shrinks the mean column-wise distance of the row-normalised W to A* to at most "
              "max_ratio of its start; baseline: the same training from a random unit-row W (its "
              "units seldom exceed the bias, so its directions barely move).",
              PAPER + ", simulations near A* (abstract)", at_most="training.max_ratio"),
)

_VALUES = dict(low=1.0, high=2.0)
_PRESETS = {
    "quick": dict(
        seed=0, code_values=_VALUES, precision="float32",
        recovery=dict(n=512, p=0.2, p_out=0.4, p_values=(0.1, 0.15, 0.2, 0.25, 0.3, 0.35,
                                                          0.4, 0.45, 0.5),
                      samples=2000, batch=500, threshold=0.95, collapse_rate=0.5),
        # Monte Carlo: `replicates` x samples_per_unit * h samples per point; the debiased
        # norm removes the noise's bias, the replicates' spread gives the slope's interval.
        gradient=dict(n_values=(64, 128, 256, 512), p=0.2, far=0.5, replicates=4,
                      samples_per_unit=2, batch=512, distances=(0.0, 0.1, 0.25, 0.5, 0.75),
                      ratio_bound=0.25, slope_tolerance=0.2),
        training=dict(n=256, p=0.2, start=0.5, steps=120, batch=256, step_scale=0.2,
                      max_ratio=0.5),
    ),
}
_PRESETS["paper"] = {
    **_PRESETS["quick"],
    "recovery": {**_PRESETS["quick"]["recovery"], "n": 2048, "samples": 10000},
    "gradient": {**_PRESETS["quick"]["gradient"], "n_values": (64, 128, 256, 512, 1024),
                 "samples_per_unit": 4},
    "training": {**_PRESETS["quick"]["training"], "n": 512, "steps": 2000},
}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Dictionary sizes are powers of two (Hadamard), sparsities in (0, 1), distances in [0, 2],
    values 0 < low <= high; no float16 (the SGD loop has no loss scaling)."""
    check_precision_without_loss_scaling(config)
    sizes = {"recovery.n": (config.recovery.n,), "training.n": (config.training.n,),
             "gradient.n_values": tuple(config.gradient.n_values)}
    for key, values in sizes.items():
        if any(v < 2 or v & (v - 1) for v in values):
            raise ConfigError(f"{key}={values if len(values) > 1 else values[0]}; allowed: "
                              "powers of two >= 2 (the Hadamard half of the dictionary)")
    for key in ("recovery.p", "recovery.p_out", "gradient.p", "training.p"):
        value = config[key.split(".")[0]][key.split(".")[1]]
        if not 0.0 < value < 1.0:
            raise ConfigError(f"{key}={value}; allowed: sparsity exponents in (0, 1)")
    for key in ("gradient.far", "training.start"):
        value = config[key.split(".")[0]][key.split(".")[1]]
        if not 0.0 < value <= 2.0:
            raise ConfigError(f"{key}={value}; allowed: column-wise distances in (0, 2]")
    if not 0.0 < config.code_values.low <= config.code_values.high:
        raise ConfigError(f"code_values.low={config.code_values.low}, code_values.high="
                          f"{config.code_values.high}; allowed: 0 < low <= high")
    check_choice(config, "recovery.p", tuple(config.recovery.p_values))
    check_choice(config, "recovery.p_out", tuple(config.recovery.p_values))


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, seconds) or "paper" (larger h, more samples and steps)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the trained autoencoder, for `launch.py --dtypes`."""
    c = config.training
    model = sparse_coding_fit.autoencoder(c, config.code_values, get_policy(config.precision))
    learning_rate = sparse_coding_fit.training_problem(c, config.code_values)["learning_rate"]
    return model, jax.numpy.zeros((2, c.n)), optax.sgd(learning_rate)


def compute_recovery(config, log) -> dict:
    """Part "recovery": exact support recovery at A* over p, with eps = 0 and random-W baselines."""
    return sparse_coding_sweeps.recovery_sweep(config.recovery, config.code_values,
                                            jax.random.key(config.seed))


def judge_recovery(config, m) -> dict:
    """Inside the regime: rate >= threshold - 3 binomial s.e. (baseline eps = 0); outside: the
    collapse (baseline the rate inside)."""
    c = config.recovery
    inside = m["rate"][m["p"].index(c.p)]
    outside = m["rate"][m["p"].index(c.p_out)]
    tolerance = 3.0 * math.sqrt(c.threshold * (1.0 - c.threshold) / c.samples)
    return {"support_recovered_in_regime": Measured(
                inside, at_least=c.threshold - tolerance, baseline=m["rate_zero_bias"],
                baseline_name="bias eps = 0 at A*"),
            "recovery_collapses_outside_regime": Measured(
                outside, baseline=inside, baseline_name=f"inside the regime (p = {c.p})")}


def compute_gradient(config, log) -> dict:
    """Part "gradient": expected gradient norms at A* and at distances, over h."""
    return sparse_coding_sweeps.gradient_scan(config.gradient, config.code_values,
                                           jax.random.key(config.seed + 1))


def judge_gradient(config, m) -> dict:
    """Ratios at the largest h (baseline: distance far/2); the slope of the gradient at A* over h
    against the bias term's (baseline: the tangential gradient at distance far)."""
    from dl_theory.uncertainty import fit_loglog_slope

    c = config.gradient
    last, h = m["per_h"][-1], [row["h"] for row in m["per_h"]]
    predicted = float(np.polyfit(np.log(h), np.log([row["radial_prediction"]
                                                    for row in m["per_h"]]), 1)[0])
    slope = fit_loglog_slope(h, np.array([row["at_full"] for row in m["per_h"]]).T)
    control = fit_loglog_slope(h, np.array([row["far_tangent"] for row in m["per_h"]]).T)
    return {"gradient_small_at_dictionary": Measured(
                last["pooled_ratio_full"], baseline=last["pooled_ratio_half"],
                baseline_name="W at distance far/2 (full norm)"),
            "tangential_gradient_small_at_dictionary": Measured(
                last["pooled_ratio_tangent"], baseline=last["pooled_ratio_half_tangent"],
                baseline_name="W at distance far/2 (tangential norm)"),
            "gradient_at_dictionary_follows_bias_term": Measured(
                slope, at_least=predicted - c.slope_tolerance,
                at_most=predicted + c.slope_tolerance, baseline=control.value,
                baseline_name="slope of the tangential gradient at distance far")}


def compute_training(config, log) -> dict:
    """Part "training": SGD from a perturbed A* and from a random W."""
    return sparse_coding_fit.train_from_perturbation(config.training, config.code_values,
                                                     jax.random.key(config.seed + 2), log,
                                                     get_policy(config.precision))


PARTS = (
    Part("recovery", compute_recovery, judge_recovery, reads=("seed", "code_values", "recovery")),
    Part("gradient", compute_gradient, judge_gradient, reads=("seed", "code_values", "gradient")),
    Part("training", compute_training,
         lambda config, m: {"training_moves_toward_dictionary": Measured(
             m["final"] / m["initial"], baseline=m["random_final"] / m["random_initial"],
             baseline_name="the same training from a random unit-row W")},
         reads=("seed", "code_values", "training", "precision")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Support recovery vs sparsity; gradient norm vs distance from A*."""
    import matplotlib.pyplot as plt

    r, g = m["recovery"], m["gradient"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(r["p"], r["rate"], "o-", label="measured, W = A*^T, eps = 2 m1 k mu/sqrt(n)")
    ax.axhline(config.recovery.threshold, color="k", ls=":", label="threshold")
    ax.axvline(r["p_deterministic"], color="g", ls="--",
               label="a1 > (2 m1 + a2) k mu/sqrt(n) (recovery certain) up to here")
    ax.axvline(r["p_collapse"], color="r", ls="--",
               label="k mu/sqrt(n) = a1 / (2 m1) (bias = smallest value)")
    ax.set(xlabel=f"sparsity exponent p (k = h^p, h = {r['h']})",
           ylabel="fraction of samples with exact support", title="Support recovery vs sparsity")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    names = [report.save_figure(fig, workdir, "support_recovery.png")]

    sweep = g["distance_sweep"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(sweep["distance"], sweep["full"], "o-", label="||E grad|| per row (full)")
    ax.plot(sweep["distance"], sweep["tangent"], "s-", label="tangential part (matched norms)")
    ax.axhline(sweep["radial_prediction"], color="k", ls=":",
               label="2 q m1 eps (bias-induced radial term at A*, derived)")
    ax.plot(sweep["distance"], sweep["noise"], "k--", lw=0.8,
            label="sqrt(tr Cov / N): the noise the debiasing removes")
    ax.axvline(config.gradient.far, color="r", ls="--", label="reference distance `far`")
    ax.set(xlabel="column-wise distance of W from A*", ylabel="expected gradient norm per row",
           yscale="log", title=f"Gradient vs distance from A* (h = {sweep['h']})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    names.append(report.save_figure(fig, workdir, "gradient_vs_distance.png"))
    return names
