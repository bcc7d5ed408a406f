"""Depth separation (Telgarsky 2015, 2016): the k-fold tent map needs width 2**k without depth.

Theorems. Telgarsky (2016, "Benefits of depth in neural networks", Thm 1.1; 2015,
"Representation benefits of deep feedforward networks", Lemma 2.1 and Thm 1.1): the tent map
t(x) = 2 min(x, 1 - x) composed k times is computed exactly by k hidden ReLU layers of width 2
and has 2**k affine pieces; a ReLU net with L hidden layers of width <= m has at most (2m)**L
pieces on a line (m + 1 for one hidden layer). L1 form (2016, Sec. 3; re-derived in
`approximation_bounds.sawtooth_l1_lower_bound`): a function with t pieces is >= 1/8 -
(t + 1) / 2**(k+2) from the tent map in L1([0, 1]) (Thm 1.1 states 1/64 for a wider class).
Classification form (2015, Thm 1.1): on the 2**k points i / 2**k labelled i mod 2, nets with
l layers of m <= 2**((k-3)/l - 1) nodes misclassify >= 1/6 of them, while 2 nodes in each of 2k
layers classify all; counting runs gives the sharper (2**k - t - 1) / 2**(k+1) for t pieces
(`approximation_bounds.alternating_points_error_lower_bound`).

Measured. (1) `constructions.sawtooth_net(k)` (`sawtooth.check_constructions`): piece count
against 2**k, sup distance to the tent map, classification error on the alternating points
(float64, exact weights). (2) Piece counts of random and trained nets over (2m)**L.
(3) One-hidden-layer nets trained (Adam, fresh uniform samples each step) on the k-fold tent
map, and explicit shallow nets for every width n <= 2**k (kinks on the tent map's first n
breakpoints, output weights by least squares: they follow the first teeth, so their error falls
steadily to 0 at n = 2**k): L1 and classification errors against the bounds at t = m + 1, with
the deep construction as the baseline that fails them (the one-layer-shallower construction for
the construction claims; zigzag nets of 2 layers of width m, m**2 pieces, against the 1-layer
bound 2m for the piece bound, whose exponent L is thus needed). Trained shallow nets end at the
constant predictor's L1 error 1/4; the least-squares nets come within one point of the
classification bound.
(4) Deep nets of kk hidden layers of width 8 trained from scratch on the kk-fold tent map,
kk = 3..6: seed-mean L1 against the constant predictor's 1/4. First-layer kinks are spread
over [0, 1] at initialisation (flax's zero biases put every kink at x = 0, where no unit sees
the teeth).
Finding: deep nets learn at kk = 3 (L1 ~1e-3 in 3 of 4 seeds) and kk = 4, not at kk >= 5;
where they learn they use 24-32 units, at least twice the 2**kk - 1 with which a shallow
net is exact, so training does not realise depth's advantage here
(`trained_deep_nets_miss_construction`, a negative result about training).
`config.precision` sets the trained nets' compute dtype; constructions and piece counts are
float64 whatever it is.

Run: python launch.py --config=experiments/depth_separation.py:quick --workdir=runs/ds
quick: k = 6, 4 seeds, 3k steps: 30 s at load 3.5 on 2 shared cores (52-58 s at load 4-11).
paper: k = 6, widths up to 256, kk = 2..6, 8 seeds, 20k steps (a few minutes on 2 cores; the
published results are proofs, not runs).
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models.constructions import zigzag_net
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import regions
from dl_theory.theory.approximation_bounds import (
    alternating_points_error_lower_bound,
    sawtooth_l1_lower_bound,
    shallow_max_pieces,
)
from dl_theory.theory.sawtooth import (
    breakpoint_least_squares,
    check_constructions,
    construction_errors,
    construction_layers,
    forward_relu_layers,
    tent_power,
)
from dl_theory.train.precision import get_policy
from dl_theory.train.tent_map import TentFit, train_on_tent_map

TELGARSKY_16 = "telgarsky2016, Thm 1.1 (construction in its proof)"
TELGARSKY_15 = "telgarsky2015, Lemma 2.1 (piece counting)"
SEPARATION = "telgarsky2016, Sec. 3 (triangle counting), bound re-derived here"
TELGARSKY_15_THM = "telgarsky2015, Thm 1.1 (classification form)"
CLASSIFICATION = "telgarsky2015, Thm 1.1 (run counting), bound re-derived here"

CLAIMS = (
    ClaimSpec("construction_has_2k_pieces",
              "The depth-k width-2 construction has exactly 2**k affine pieces on [0, 1] for "
              "every k tested (largest |count - 2**k|); the one-layer-shallower construction, "
              "the baseline, does not.", TELGARSKY_16, at_most=0),
    ClaimSpec("construction_is_exact",
              "The construction equals the k-fold tent map on [0, 1] (largest sup distance on "
              "a grid over k, float64 evaluation).", TELGARSKY_16,
              at_most="construction.tolerance",
              margin_why="an exact construction evaluated in float64: zero is the claim; the "
                         "one-layer-shallower construction, the baseline, is off by order 1"),
    ClaimSpec("pieces_within_depth_width_bound",
              "Every random and trained ReLU net with L hidden layers of width <= m has at most "
              "(2m)**L pieces on a segment (largest count / bound); the bound needs its "
              "exponent L: zigzag nets of L = 2 layers of width m (m**2 pieces), the baseline, "
              "exceed the one-layer bound 2m.", TELGARSKY_15, at_most=1.0),
    ClaimSpec("shallow_nets_above_l1_bound",
              "Trained and least-squares one-hidden-layer nets of width m stay above the L1 "
              "lower bound 1/8 - (m + 2) / 2**(k+2) wherever it is positive (smallest error / "
              "bound; the least-squares nets follow the first teeth, so they learn; baseline: "
              "the deep construction, error 0).", SEPARATION, at_least=1.0),
    ClaimSpec("shallow_classification_above_bound",
              "On the 2**k alternating points, trained and least-squares one-hidden-layer nets "
              "of width m misclassify at least (2**k - m - 2) / 2**(k+1) of them wherever that "
              "is positive (smallest error / bound; baseline: the deep construction).",
              CLASSIFICATION, at_least=1.0),
    ClaimSpec("small_shallow_nets_err_one_sixth",
              "One-hidden-layer nets with m <= 2**(k-4) units misclassify at least 1/6 of the "
              "2**k alternating points (smallest error over trained and least-squares nets).",
              TELGARSKY_15_THM, at_least=1 / 6,
              published=Published(1 / 6, "Telgarsky 2015, Thm 1.1 (m <= 2**((k-3)/l - 1))")),
    ClaimSpec("construction_classifies_alternating_points",
              "The depth-k width-2 construction classifies all 2**k alternating points "
              "correctly (its error; baseline: the least-squares one-hidden-layer net with as "
              "many units, 2k).", TELGARSKY_15_THM, at_most=0.0,
              published=Published(0.0, "Telgarsky 2015, Thm 1.1 (2 nodes in each of 2k layers)")),
    ClaimSpec("trained_deep_nets_learn",
              "Deep nets (kk hidden layers of width deep.width, kink-spread initialisation) "
              "trained from scratch learn the kk-fold tent map at the smallest kk of deep.ks: "
              "seed-mean L1 error over the constant predictor's (1/4) is at most "
              "deep.learned_fraction.", SEPARATION, at_most="deep.learned_fraction"),
    ClaimSpec("trained_deep_nets_miss_construction",
              "Negative result about training: wherever trained deep nets learn (seed-mean L1 "
              "<= deep.learned_fraction / 4), they use at least as many units as the 2**kk - 1 "
              "that a one-hidden-layer net needs to be exact (smallest units / (2**kk - 1) over "
              "the kk that were learned; baseline: the depth-k construction, 2k units).",
              SEPARATION, at_least=1.0),
)

_PRESETS = {
    "quick": dict(
        seeds=4, k=6, batch_size=256, grid_points=2**14 + 1, precision="float32",
        construction=dict(ks=tuple(range(1, 11)), tolerance=1e-9),
        random_nets=dict(depths=(1, 2, 3, 4, 6), widths=(2, 4, 8), draws=3, seed=0,
                         segment=(-2.0, 2.0)),
        shallow=dict(widths=(4, 16, 64)),
        deep=dict(ks=(3, 4, 5, 6), width=8, learned_fraction=0.5),
        train=dict(steps=3000, kink_init_scale=4.0,
                   optimizer=optimizer_config(name="adam", learning_rate=1e-2, schedule="cosine"))),
    "paper": dict(
        seeds=8, k=6, batch_size=512, grid_points=2**16 + 1, precision="float32",
        construction=dict(ks=tuple(range(1, 17)), tolerance=1e-9),
        random_nets=dict(depths=(1, 2, 3, 4, 6, 8), widths=(2, 4, 8, 16), draws=10, seed=0,
                         segment=(-2.0, 2.0)),
        shallow=dict(widths=(4, 8, 16, 24, 32, 64, 128, 256)),
        deep=dict(ks=(2, 3, 4, 5, 6), width=8, learned_fraction=0.5),
        train=dict(steps=20000, kink_init_scale=4.0,
                   optimizer=optimizer_config(name="adam", learning_rate=3e-3, schedule="cosine"))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, well under a minute) or "paper" (more widths, seeds, steps)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest trained deep net, for `launch.py --dtypes`."""
    model = MLP(widths=(config.deep.width,) * max(config.deep.ks),
                **get_policy(config.precision).model_dtypes())
    return (model, jnp.zeros((2, 1)),
            build_optimizer(config.train.optimizer, total_steps=config.train.steps))


def _train(hidden, k, x_N1, config, log, label) -> TentFit:
    """`train_on_tent_map` with the preset's seeds, batch size, training and precision."""
    return train_on_tent_map(hidden, k, x_N1, seeds=config.seeds, batch_size=config.batch_size,
                             steps=config.train.steps, optimizer=config.train.optimizer,
                             kink_init_scale=config.train.kink_init_scale,
                             precision=config.precision, log=log, label=label)


def _grid(config) -> np.ndarray:
    """The evaluation grid on [0, 1], [grid_points, 1], float64."""
    return np.linspace(0.0, 1.0, config.grid_points)[:, None]


def compute_construction(config: ml_collections.ConfigDict, log) -> dict:
    """Part "construction": piece counts and sup errors of the depth-k width-2 construction."""
    check = check_constructions(config.construction.ks, _grid(config))
    return {"construction_ks": list(config.construction.ks), "construction_pieces": check.pieces,
            "construction_sup_error": check.sup_errors,
            "shallower_construction_sup_error": check.shallower_sup_errors,
            "shallower_construction_pieces": check.shallower_pieces}


def judge_construction(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Largest |count - 2**k| and largest sup distance over k."""
    deeper_ks = [kk for kk in m["construction_ks"] if kk > 1]
    return {"construction_has_2k_pieces": Measured(
                max(abs(p - 2**kk) for p, kk in zip(m["construction_pieces"],
                                                    m["construction_ks"])),
                baseline=min(abs(p - 2**kk) for p, kk in zip(m["shallower_construction_pieces"],
                                                             deeper_ks)),
                baseline_name="the depth-(k-1) construction (least |count - 2**k| over k)"),
            "construction_is_exact": Measured(
                max(m["construction_sup_error"]),
                baseline=min(m["shallower_construction_sup_error"]),
                baseline_name="the depth-(k-1) construction (least sup distance over k)")}


def compute_nets(config: ml_collections.ConfigDict, log) -> dict:
    """Part "nets": random nets' piece counts; one-hidden-layer nets trained on the k-fold tent
    map and least-squares shallow comparators (L1 and classification errors against their
    bounds); deep nets (kk hidden layers of width w) trained on the kk-fold tent map for each
    kk in deep.ks; the deep construction's errors."""
    k = config.k
    x_N1 = _grid(config)
    shallow = {m: _train((m,), k, x_N1, config, log, f"shallow m={m}")
               for m in config.shallow.widths}
    deep = {kk: _train((config.deep.width,) * kk, kk, x_N1, config, log,
                       f"deep {kk}x{config.deep.width}") for kk in config.deep.ks}

    nets = config.random_nets
    ratios = regions.gaussian_net_pieces_over_bound(nets.depths, nets.widths, nets.draws,
                                                    nets.seed, nets.segment)
    # The baseline: zigzag nets with 2 hidden layers of each width m reach m**2 pieces, above
    # the bound (2m)**1 of one layer fewer, so the bound's exponent L cannot be lowered.
    zigzag_over_shallower_bound = [
        regions.count_linear_pieces(regions.dense_params_to_layers(zigzag_net(w, 2)[1]),
                                    np.zeros(1), np.ones(1)) / regions.telgarsky_pieces_bound(w, 1)
        for w in nets.widths]
    trained_ratios = []
    for width, depth, layers in ([(m, 1, r[3]) for m, r in shallow.items()]
                                 + [(config.deep.width, kk, r[3]) for kk, r in deep.items()]):
        bound = regions.telgarsky_pieces_bound(width, depth)
        trained_ratios += [regions.count_linear_pieces(lay, np.zeros(1), np.ones(1)) / bound
                           for lay in layers]

    units = np.arange(1, 2**k + 1)
    lstsq_l1, lstsq_classification = breakpoint_least_squares(k, units, x_N1[:, 0])
    l1_bound = {int(n): sawtooth_l1_lower_bound(shallow_max_pieces(int(n)), k) for n in units}
    cls_bound = {int(n): alternating_points_error_lower_bound(shallow_max_pieces(int(n)), k)
                 for n in units}
    # (error / bound) of every shallow net, trained or least-squares, where the bound is > 0.
    l1_ratios = ([float(r[0].min() / l1_bound[m]) for m, r in shallow.items() if l1_bound[m]]
                 + [e / l1_bound[int(n)] for n, e in zip(units, lstsq_l1) if l1_bound[int(n)]])
    cls_ratios = ([float(r[1].min() / cls_bound[m]) for m, r in shallow.items()
                   if cls_bound[m]]
                  + [e / cls_bound[int(n)] for n, e in zip(units, lstsq_classification)
                     if cls_bound[int(n)]])
    # Telgarsky 2015, Thm 1.1 with one layer: m <= 2**(k - 4) nodes give error >= 1/6.
    small = 2 ** (k - 4)
    small_errors = ([float(r[1].min()) for m, r in shallow.items() if m <= small]
                    + [float(e) for n, e in zip(units, lstsq_classification) if n <= small])

    deep_units = {kk: config.deep.width * kk for kk in deep}
    deep_l1_mean = {kk: float(r[0].mean()) for kk, r in deep.items()}
    learned = [kk for kk in deep if deep_l1_mean[kk] <= config.deep.learned_fraction * 0.25]
    construction_units = 2 * k
    construction_l1, construction_classification = construction_errors(k, x_N1)

    def best_prediction(runs):
        """(key, prediction [N]) of the best seed of the run with the lowest L1 error."""
        best, (l1, _, pred, _) = min(runs.items(), key=lambda kv: kv[1][0].min())
        return best, pred[int(np.argmin(l1))]

    best_shallow_width, best_shallow = best_prediction(shallow)
    # The deep net drawn beside the shallow ones is the one trained on the same k.
    best_deep_k, best_deep = best_prediction({kk: deep[kk] for kk in deep if kk == k} or deep)
    return {
        "random_net_max_ratio": max(ratios), "trained_net_max_ratio": max(trained_ratios),
        "zigzag_depth2_over_depth1_bound": zigzag_over_shallower_bound,
        "shallow_widths": list(shallow), "shallow_l1": [r[0].tolist() for r in shallow.values()],
        "shallow_classification": [r[1].tolist() for r in shallow.values()],
        "shallow_l1_bound": [l1_bound[m] for m in shallow],
        "shallow_classification_bound": [cls_bound[m] for m in shallow],
        "lstsq_units": units.tolist(), "lstsq_l1": lstsq_l1.tolist(),
        "lstsq_classification": lstsq_classification.tolist(),
        "smallest_l1_ratio": min(l1_ratios) if l1_ratios else float("nan"),
        "smallest_classification_ratio": min(cls_ratios) if cls_ratios else float("nan"),
        "smallest_error_at_most_small_width": min(small_errors) if small_errors else float("nan"),
        "construction_units": construction_units,
        "construction_l1": construction_l1,
        "construction_classification": construction_classification,
        # Ratios to the bounds a shallow net with as many units must meet (nan if vacuous).
        "construction_l1_ratio": (construction_l1 / l1_bound[construction_units]
                                  if l1_bound[construction_units] else float("nan")),
        "construction_classification_ratio": (
            construction_classification / cls_bound[construction_units]
            if cls_bound[construction_units] else float("nan")),
        "lstsq_classification_at_construction_units":
            float(lstsq_classification[construction_units - 1]),
        "deep_ks": list(deep), "deep_width": config.deep.width,
        "deep_units": [deep_units[kk] for kk in deep],
        "deep_l1": [r[0].tolist() for r in deep.values()],
        "deep_classification": [r[1].tolist() for r in deep.values()],
        "deep_learned_ks": learned,
        "deep_units_over_shallow_exact_units": [deep_units[kk] / (2**kk - 1) for kk in deep],
        "best_shallow_width": best_shallow_width, "best_shallow_prediction": best_shallow,
        "best_deep_k": best_deep_k, "best_deep_prediction": best_deep,
    }


def judge_nets(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Pieces / (2m)**L; shallow error / bound (L1 and classification) with the construction
    as the baseline that fails them; Telgarsky's 1/6; the construction's classification
    error; whether deep nets learn; units of the deep nets that learned over 2**k - 1."""
    constant_l1 = 0.25  # E|t_k(x) - 1/2| for x ~ U[0, 1], every k
    deep_l1 = {kk: float(np.mean(v)) for kk, v in zip(m["deep_ks"], m["deep_l1"])}
    smallest_k = min(m["deep_ks"])
    ratio = dict(zip(m["deep_ks"], m["deep_units_over_shallow_exact_units"]))
    learned = m["deep_learned_ks"]
    return {
        "pieces_within_depth_width_bound": Measured(
            max(m["random_net_max_ratio"], m["trained_net_max_ratio"]),
            baseline=max(m["zigzag_depth2_over_depth1_bound"]),
            baseline_name="zigzag net, 2 layers of width m, over the 1-layer bound 2m"),
        "shallow_nets_above_l1_bound": Measured(
            m["smallest_l1_ratio"], baseline=m["construction_l1_ratio"],
            baseline_name=f"depth-{config.k} construction ({m['construction_units']} units)"),
        "shallow_classification_above_bound": Measured(
            m["smallest_classification_ratio"], baseline=m["construction_classification_ratio"],
            baseline_name=f"depth-{config.k} construction (error "
                          f"{m['construction_classification']:g})"),
        "small_shallow_nets_err_one_sixth": Measured(
            m["smallest_error_at_most_small_width"], baseline=m["construction_classification"],
            baseline_name=f"depth-{config.k} construction"),
        "construction_classifies_alternating_points": Measured(
            m["construction_classification"],
            baseline=m["lstsq_classification_at_construction_units"],
            baseline_name=f"least-squares shallow net with {m['construction_units']} units"),
        "trained_deep_nets_learn": Measured(
            deep_l1[smallest_k] / constant_l1, baseline=1.0,
            baseline_name="constant predictor 1/2"),
        "trained_deep_nets_miss_construction": Measured(
            min((ratio[kk] for kk in learned), default=float("nan")),
            baseline=2 * config.k / (2**config.k - 1),
            baseline_name=f"depth-{config.k} construction ({2 * config.k} units)"),
    }


PARTS = (
    Part("construction", compute_construction, judge_construction,
         reads=("grid_points", "construction")),
    Part("nets", compute_nets, judge_nets,
         reads=("seeds", "k", "batch_size", "grid_points", "precision", "random_nets", "shallow",
                "deep", "train")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """The target, the construction and the best trained fits; L1 error vs units against the
    bound; trained deep nets' error vs k against the constant predictor."""
    import matplotlib.pyplot as plt

    k, x = config.k, _grid(config)[:, 0]
    nets = m["nets"]
    fig, (ax_f, ax_e, ax_k) = plt.subplots(1, 3, figsize=(18, 4.6))
    ax_f.plot(x, tent_power(x, k), "k-", lw=2.5, alpha=0.35,
              label=f"target: tent map composed {k} times")
    construction = forward_relu_layers(construction_layers(k), x[:, None])[:, 0]
    ax_f.plot(x, construction, "k:", lw=1, label=f"construction: {k} layers x width 2 (exact)")
    deep_k = nets["best_deep_k"]
    for name, shape, style in (("shallow", f"width {nets['best_shallow_width']}", "C0-"),
                               ("deep", f"{deep_k} x width {nets['deep_width']}", "C3-")):
        pred = np.asarray(nets[f"best_{name}_prediction"])
        target_k = k if name == "shallow" else deep_k
        l1 = np.mean(np.abs(pred - tent_power(x, target_k)))
        ax_f.plot(x, pred, style, lw=1.2, label=f"best trained {name} ({shape}), L1 {l1:.3f}")
    ax_f.set(xlabel="x", ylabel="f(x)", title="Target, construction and best trained fits")
    ax_f.legend(fontsize=7, loc="lower right")

    units = np.arange(1, 2**k + 1)
    bound = [sawtooth_l1_lower_bound(shallow_max_pieces(int(n)), k) for n in units]
    ax_e.plot(units, bound, "k-", lw=2, label="lower bound for ANY 1-hidden-layer net")
    ax_e.plot(nets["lstsq_units"], nets["lstsq_l1"], "C2.-", lw=1,
              label="1-hidden-layer least squares, kinks on the first breakpoints")
    ax_e.axhline(0.25, c="gray", ls=":", label="constant predictor 1/2")
    deep_at_k = [(u, e) for kk, u, e in zip(nets["deep_ks"], nets["deep_units"], nets["deep_l1"])
                 if kk == k]
    for name, points, color, marker in (
            ("shallow (1 hidden layer)", zip(nets["shallow_widths"], nets["shallow_l1"]), "C0",
             "o"), (f"deep ({k} hidden layers)", deep_at_k, "C3", "s")):
        for j, (nj, l1) in enumerate(points):
            ax_e.scatter([nj] * len(l1), l1, c=color, marker=marker, alpha=0.5,
                         label=f"trained {name}, each seed" if j == 0 else None)
    ax_e.scatter([2 * k], [0.0], c="k", marker="*", s=120,
                 label=f"construction: {2 * k} units, error 0")
    ax_e.set(xscale="log", xlabel="hidden units", ylabel="L1 error on [0, 1]",
             title=f"k = {k}: error vs units, bound (line) and nets (markers)")
    ax_e.legend(fontsize=7)

    for kk, l1 in zip(nets["deep_ks"], nets["deep_l1"]):
        ax_k.scatter([kk] * len(l1), l1, c="C3", marker="s", alpha=0.5)
    ax_k.axhline(0.25, c="gray", ls=":", label="constant predictor 1/2")
    ax_k.axhline(0.25 * config.deep.learned_fraction, c="C3", ls="--", lw=0.8,
                 label="'learned' threshold")
    ax_k.set(xlabel="k (tent map composed k times; the net has k hidden layers)",
             ylabel="L1 error on [0, 1]",
             title=f"Deep nets trained from scratch, width {nets['deep_width']}, each seed")
    ax_k.legend(fontsize=7)
    return [report.save_figure(fig, workdir, "depth_separation.png")]
