"""ReLU nets are exactly the piecewise-linear functions, and one hidden layer trains exactly.

Arora, Basu, Mianjy & Mukherjee ("Understanding deep neural networks with rectified linear
units", ICLR 2018, arXiv 1611.01491). Read here: the abstracts of arXiv v6 and of the 2016
version (depth-gap example, 1-D tightness, polynomial-in-D training). The statements and
numbers below are the ICLR 2018 text's as recalled, not re-read from the PDF: check them.
- Theorem 2.1: every ReLU net R^n -> R is continuous piecewise linear (CPWL), and every CPWL
  f: R^n -> R is a ReLU net with at most ceil(log2(n + 1)) hidden layers, i.e. depth
  ceil(log2(n + 1)) + 1. The proof writes f = sum_j s_j max_{i in S_j} l_i with |S_j| <= n + 1
  (Wang & Sun 2005) and each max by a tree of pairwise maxima.
- Theorem 2.2: in 1-D a p-piece CPWL function is a one-hidden-layer net of at most p units,
  and any one-hidden-layer net representing it has at least p - 1 units.
- Theorem 4.1 (Section 4, Algorithm 1): for a convex loss, a one-hidden-layer net of width w on
  D points in R^n is trained to global optimality in time O(2^w D^{nw} poly(D, n, w)), by
  enumerating each unit's output sign and the set of points where it is active (a convex
  problem for each choice).
- Section 3 (depth gap): for k >= 1, w >= 2 a smoothly parameterised family of R -> R
  functions, (k + 1)-layer nets of width w (a w-piece zigzag composed k times, w^k pieces),
  that any (k' + 1)-layer net, k' <= k, represents only with size >= k' w^(k/k') / 2 - 1;
  e.g. k^2 hidden layers of size k^3 against >= k^(k+1) / 2 - 1 nodes with <= k hidden layers
  (abstract). The R^n zonotope family (pieces exponential in n) is not reproduced.

The issue asked for "every CPWL function" to be built from its lattice (max-min) form; the
paper's depth needs the Wang-Sun form instead (the lattice form's depth grows with the number
of pieces), so the construction follows the paper and the lattice net is the baseline that
misses the depth. Computing a Wang-Sun form of an arbitrary CPWL function on R^n, n >= 2, is
not implemented: for n >= 2 the functions are drawn in that form (random signed sums of maxima
of n + 1 affine maps); in 1-D every CPWL function is covered (Theorem 2.2's net). The issue's
"no smaller net represents a generic one" is, in the paper, the lower bound p - 1 (a net of k
units has <= k + 1 pieces), one below the construction's p: the claim tests p - 2 units.
The piece bound used for the depth gap, (2 s / k')^k', gives size >= k' w^(k/k') / 2, the
paper's bound without its "- 1".

Measured (float64, `dl_theory.models.cpwl_nets`, `dl_theory.theory.exact_erm`):
(1) representation: the nets against the functions at dense points, on every kink hyperplane
and at every 1-D breakpoint; depth and size counted; pieces counted exactly by
`dl_theory.theory.regions`. (2) erm: exact ERM (squared loss, no output bias as in the paper's
problem) against many Adam restarts on noisy data from a random width-w teacher. (3) depth_gap:
the hard family's pieces counted exactly; the least size a shallower net needs by the piece
bound (2 s / k')^k', from the counted pieces, against the deep net's size.
No `precision` key: the constructions and exact ERM are float64 to test exactness, and the
Adam restarts (raw parameter arrays, `dl_theory.train.relu_restarts`, no flax model) are a
float32 baseline whose erm.miss_tol is set from float32 rounding; a narrower dtype would
change what the baseline measures, not test a theorem.

Run: python launch.py --config=experiments/relu_nets_are_piecewise_linear.py:quick \
  --workdir=runs/pwl
quick: 9 s wall, 9 CPU-s on 2 cores (load 1). paper (input dimensions to 6, p to 65, exact ERM at
n = 2, w = 2, D = 10: 16,836 convex programs per dataset, 128 Adam restarts): 100 s wall,
52 CPU-s (load 4.7).
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models import constructions, cpwl_nets
from dl_theory.theory import exact_erm, regions
from dl_theory.train.relu_restarts import adam_restarts, restarts_above_optimum
from dl_theory.uncertainty import wilson_interval
from dl_theory.user_errors import ConfigError

ARORA = "arora2018"
EXACT = ("float64 evaluation of the same affine maps and maxima: equal to rounding; the "
         "baseline (the net one layer shallower / one unit fewer) misses by O(1)")

CLAIMS = (
    ClaimSpec("max_sum_net_is_exact",
              "Theorem 2.1's net (signed sum of maxima of n + 1 affine maps, each a tree of "
              "pairwise maxima) equals the function for n = 1..4 at dense Gaussian points and "
              "on every kink hyperplane (largest |net - f| / largest |f|), while the same tree "
              "one ReLU layer shallower (top max replaced by the mean) does not.",
              ARORA + ", Theorem 2.1", at_most="representation.max_rel_error", margin_why=EXACT,
              published=Published("every CPWL f: R^n -> R is a ReLU net", "Theorem 2.1")),
    ClaimSpec("depth_is_ceil_log2_n_plus_1_plus_1",
              "The construction's depth minus ceil(log2(n + 1)) + 1, largest over n and "
              "functions, is <= 0; the max-min lattice net of the 1-D functions is deeper.",
              ARORA + ", Theorem 2.1", at_most=0.0,
              published=Published("depth <= ceil(log2(n + 1)) + 1", "Theorem 2.1")),
    ClaimSpec("one_d_net_is_exact",
              "In 1-D, Theorem 2.2's one-hidden-layer net equals a generic p-piece function "
              "at every breakpoint and on a dense grid (largest |net - f| / largest |f|); "
              "the net with one unit fewer does not.",
              ARORA + ", Theorem 2.2", at_most="representation.max_rel_error", margin_why=EXACT),
    ClaimSpec("one_d_size_at_most_p",
              "That net has at most p hidden units (largest size - p over p in the grid), one "
              "fewer than the textbook net f(0) + s_0 x + sum_i (s_i - s_(i-1)) relu(x - t_i).",
              ARORA + ", Theorem 2.2", at_most=0.0,
              published=Published("at most p nodes", "Theorem 2.2")),
    ClaimSpec("fewer_units_fewer_pieces",
              "A one-hidden-layer net of k units has at most k + 1 pieces, so one of p - 2 "
              "units cannot represent a generic p-piece function (largest counted pieces - "
              "(k + 1) over random nets, k = p - 2); a two-hidden-layer net of the same size "
              "(the sawtooth) exceeds size + 1.",
              ARORA + ", Theorem 2.2", at_most=0.0,
              published=Published("size >= p - 1", "Theorem 2.2")),
    ClaimSpec("erm_no_worse_than_adam",
              "Exact ERM's loss minus the best of the Adam restarts' losses, over mean(y^2), "
              "largest over datasets, is <= the solver tolerance, while the best constant "
              "predictor's is not.",
              ARORA + ", Theorem 4.1", at_most="erm.solver_tol",
              margin_why="the exact optimum is at least as good as any net, so the gap is <= 0 "
                         "and its sign is the claim; the constant predictor is far above",
              published=Published("global optimum in O(2^w D^(nw) poly(D, n, w)) time",
                                   "Theorem 4.1")),
    ClaimSpec("adam_restarts_miss_the_optimum",
              "A fraction of Adam restarts (cosine-decayed step) ends above the exact optimum "
              "by more than erm.miss_tol mean(y^2) (95% Wilson interval above "
              "erm.min_miss_fraction); restarts started next to the optimum do not.",
              ARORA + ", Section 4 (the problem it solves, the miss rate measured here)",
              at_least="erm.min_miss_fraction"),
    ClaimSpec("dichotomies_are_covers_count",
              "The enumerated activation sets per unit number exactly Cover's "
              "2 sum_(k<=n) C(D - 1, k) = O(D^n) (largest |count - formula|), far below the "
              "2^D subsets of the data.", ARORA + ", Theorem 4.1 (the D^(nw) factor)",
              at_most=0.0),
    ClaimSpec("hard_family_has_w_to_the_k_pieces",
              "Section 3's hard family (a w-piece zigzag h_a with random breaks a, composed k "
              "times: k hidden layers of width w) has exactly w^k pieces on [0, 1], counted "
              "(largest |pieces - w^k| over w, k and draws of a); a Gaussian net of the same "
              "shape does not.", ARORA + ", Section 3 (the hard functions)", at_most=0.0),
    ClaimSpec("shallower_nets_need_more_units",
              "For the paper's example (k^2 hidden layers of width k, size k^3) at k = 3, the "
              "least size of a net with at most k hidden layers that has the counted number "
              "of pieces (a (k' + 1)-layer net of size s has <= (2 s / k')^k' pieces), over "
              "the deep net's size, is >= 1; at k = 2 it is not (no gap yet).",
              ARORA + ", Section 3 (depth gap example)", at_least=1.0,
              published=Published("size k^3 vs >= k^(k+1) / 2 - 1 = 39.5 nodes at k = 3",
                                   "abstract; Section 3")),
)

_PRESETS = {
    "quick": dict(
        # max_rel_error: float64 rounding of <= 20 sums and maxima of O(10) values is
        # ~20 * 2.2e-16 * 10 = 4.4e-14 of the largest |f|; 1e-12 leaves 20x for other CPUs.
        representation=dict(input_dims=(1, 2, 3, 4), terms=4, functions=3, dense_points=2000,
                            kink_points=20, pieces=(3, 5, 9, 17), random_nets=200,
                            sawtooth_depth=4, seed=0, max_rel_error=1e-12),
        # solver_tol: SLSQP's ftol 1e-15 on the loss, 1e-9 of mean(y^2) leaves room for
        # badly scaled subproblems. miss_tol: decayed Adam ends within float32 rounding
        # (~1e-7 relative) of a stationary loss; 1e-3 is 10^4 above that, as the control
        # (starts next to the optimum) shows. min_miss_fraction: "a positive fraction".
        erm=dict(input_dim=1, width=2, points=10, datasets=4, noise=0.5, restarts=64,
                 steps=3000, learning_rate=0.02, control_restarts=16, control_scale=0.01,
                 seed=0, solver_tol=1e-9, miss_tol=1e-3, min_miss_fraction=0.01),
        depth_gap=dict(widths=(2, 3, 4), hidden_layers=(2, 3, 4), draws=3, example_k=3,
                       control_k=2, seed=0),
    ),
}
_PRESETS["paper"] = {
    "representation": {**_PRESETS["quick"]["representation"], "input_dims": (1, 2, 3, 4, 5, 6),
                       "functions": 10, "pieces": (3, 5, 9, 17, 33, 65)},
    "erm": {**_PRESETS["quick"]["erm"], "input_dim": 2, "datasets": 3, "restarts": 128},
    "depth_gap": {**_PRESETS["quick"]["depth_gap"], "hidden_layers": (2, 3, 4, 5, 6),
                  "draws": 10},
}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Pieces >= 3 (one unit fewer must lose a piece); small n, w for the enumeration."""
    pieces = tuple(config.representation.pieces)
    if any(p < 3 for p in pieces):
        raise ConfigError(f"representation.pieces={pieces}; allowed: integers >= 3")
    if config.erm.input_dim not in (1, 2, 3):
        raise ConfigError(f"erm.input_dim={config.erm.input_dim}; allowed: 1, 2 or 3 "
                          "(the enumeration grows like points^(input_dim * width))")
    if config.erm.width not in (1, 2, 3):
        raise ConfigError(f"erm.width={config.erm.width}; allowed: 1, 2 or 3")
    if config.erm.points <= config.erm.input_dim + 1:
        raise ConfigError(f"erm.points={config.erm.points}; allowed: > erm.input_dim + 1")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (more dimensions and pieces, ERM in 2-D)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def compute_representation(config, log) -> dict:
    """Part "representation": Theorem 2.1's nets for n = 1.., Theorem 2.2's in 1-D."""
    c = config.representation
    rng = np.random.default_rng(c.seed)
    out = {"input_dim": [], "depth": [], "theorem_depth": [], "size": [], "rel_error": [],
           "shallow_rel_error": []}
    for n in c.input_dims:
        for _ in range(c.functions):
            f = cpwl_nets.random_max_sum(rng, n, c.terms)
            x = np.concatenate([2.0 * rng.normal(size=(c.dense_points, n)),
                                cpwl_nets.kink_points(f, rng, c.kink_points)])
            net = cpwl_nets.max_sum_net(f)
            out["input_dim"].append(n)
            out["depth"].append(cpwl_nets.depth(net))
            out["theorem_depth"].append(cpwl_nets.theorem_depth(n))
            out["size"].append(cpwl_nets.size(net))
            out["rel_error"].append(cpwl_nets.max_relative_error(net, f, x))
            shallow = cpwl_nets.max_sum_net(f, shallow_top=True)
            out["shallow_rel_error"].append(cpwl_nets.max_relative_error(shallow, f, x))
    one_d = {"pieces": [], "size": [], "naive_size": [], "counted_pieces": [], "rel_error": [],
             "dropped_rel_error": [], "dropped_pieces": [], "lattice_depth": [],
             "lattice_rel_error": [], "fewer_units_max_pieces": []}
    for p in c.pieces:
        f = cpwl_nets.random_piecewise_linear(rng, p)
        x = np.concatenate([np.linspace(-2.0, 2.0, c.dense_points), f.breaks])[:, None]
        fx = lambda x_N1, f=f: f(x_N1[:, 0])  # noqa: E731 (the 1-D function on [N, 1] rows)
        net, dropped = cpwl_nets.one_hidden_layer_net(f), cpwl_nets.one_hidden_layer_net(f, True)
        lattice = cpwl_nets.lattice_net_1d(f)
        ends = np.array([-2.0]), np.array([2.0])
        one_d["pieces"].append(p)
        one_d["size"].append(cpwl_nets.size(net))
        one_d["naive_size"].append(cpwl_nets.size(cpwl_nets.naive_one_hidden_layer_net(f)))
        one_d["counted_pieces"].append(regions.count_linear_pieces(net, *ends))
        one_d["rel_error"].append(cpwl_nets.max_relative_error(net, fx, x))
        one_d["dropped_rel_error"].append(cpwl_nets.max_relative_error(dropped, fx, x))
        one_d["dropped_pieces"].append(regions.count_linear_pieces(dropped, *ends))
        one_d["lattice_depth"].append(cpwl_nets.depth(lattice))
        one_d["lattice_rel_error"].append(cpwl_nets.max_relative_error(lattice, fx, x))
        # Random nets with k = p - 2 units, kinks inside [-2, 2]: count every piece.
        k = p - 2
        counts = []
        for _ in range(c.random_nets):
            a = rng.normal(size=k)
            net_k = cpwl_nets.one_hidden_layer(a, -a * rng.uniform(-1.5, 1.5, k),
                                               rng.normal(size=k))
            counts.append(regions.count_linear_pieces(net_k, *ends))
        one_d["fewer_units_max_pieces"].append(max(counts))
    _, variables = constructions.sawtooth_net(c.sawtooth_depth)
    sawtooth = regions.dense_params_to_layers(variables)
    one_d["sawtooth_size"] = cpwl_nets.size(sawtooth)
    one_d["sawtooth_pieces"] = regions.count_linear_pieces(sawtooth, np.zeros(1), np.ones(1))
    out["one_d"] = one_d
    return out


def judge_representation(config, m) -> dict:
    """Exactness (baselines: one layer shallower, one unit fewer), depth (baseline: lattice
    net), size (baseline: textbook net), pieces (baseline: the sawtooth of the same size)."""
    d = m["one_d"]
    depth_gap = max(a - b for a, b in zip(m["depth"], m["theorem_depth"]))
    return {
        "max_sum_net_is_exact": Measured(max(m["rel_error"]),
                                         baseline=min(m["shallow_rel_error"]),
                                         baseline_name="tree one layer shallower (best case)"),
        "depth_is_ceil_log2_n_plus_1_plus_1": Measured(
            depth_gap, baseline=min(d["lattice_depth"]) - cpwl_nets.theorem_depth(1),
            baseline_name="max-min lattice net of the 1-D functions (shallowest)"),
        "one_d_net_is_exact": Measured(max(d["rel_error"]), baseline=min(d["dropped_rel_error"]),
                                       baseline_name="one unit fewer (best case)"),
        "one_d_size_at_most_p": Measured(
            max(s - p for s, p in zip(d["size"], d["pieces"])),
            baseline=min(s - p for s, p in zip(d["naive_size"], d["pieces"])),
            baseline_name="textbook net f(0) + s_0 x + sum relu terms"),
        "fewer_units_fewer_pieces": Measured(
            max(c - (p - 1) for c, p in zip(d["fewer_units_max_pieces"], d["pieces"])),
            baseline=d["sawtooth_pieces"] - (d["sawtooth_size"] + 1),
            baseline_name="two-hidden-layer sawtooth of the same size (pieces - size - 1)"),
    }


def compute_erm(config, log) -> dict:
    """Part "erm": exact ERM per dataset against Adam restarts and a control near the optimum."""
    c = config.erm
    rng = np.random.default_rng(c.seed)
    out = {"erm_loss": [], "adam_losses": [], "control_losses": [], "constant_loss": [],
           "scale": [], "dichotomies": [], "cover": [], "subproblems": [], "subset_count": []}
    n, w, r = c.input_dim, c.width, c.restarts
    adam = {"steps": c.steps, "learning_rate": c.learning_rate}
    for _ in range(c.datasets):
        x, y = exact_erm.noisy_relu_teacher(rng, c.points, c.input_dim, c.width, c.noise)
        result = exact_erm.exact_erm(x, y, w)
        starts = {"w": rng.normal(size=(r, n, w)) / math.sqrt(n), "b": np.zeros((r, w)),
                  "v": rng.normal(size=(r, w)) / math.sqrt(w)}  # LeCun normal, zero bias
        near = {"w": result.hidden_w, "b": result.hidden_b, "v": result.out_w}
        control = {k: v[None] + c.control_scale * rng.normal(size=(c.control_restarts,) + v.shape)
                   for k, v in near.items()}
        out["erm_loss"].append(result.loss)
        for key, initial in (("adam_losses", starts), ("control_losses", control)):
            out[key].append(exact_erm.net_losses(x, y, adam_restarts(x, y, initial, **adam)))
        out["constant_loss"].append(float(np.var(y)))  # a dead-weight unit gives any constant
        out["scale"].append(float(np.mean(y ** 2)))
        out["dichotomies"].append(result.dichotomies)
        out["cover"].append(exact_erm.dichotomy_bound(c.points, n))
        out["subproblems"].append(result.subproblems)
        out["subset_count"].append(2 ** c.points)
        log.write({"erm_loss": result.loss, "best_adam": min(out["adam_losses"][-1])})
    return out


def judge_erm(config, m) -> dict:
    """ERM gap (baseline: constant predictor), miss fraction (baseline: starts near the
    optimum), dichotomy count (baseline: all 2^D subsets)."""
    c = config.erm
    gaps = [(e - min(a)) / s for e, a, s in zip(m["erm_loss"], m["adam_losses"], m["scale"])]
    constant = [(k - min(a)) / s for k, a, s in zip(m["constant_loss"], m["adam_losses"],
                                                     m["scale"])]
    control_misses, control_runs = restarts_above_optimum(m["control_losses"], m["erm_loss"],
                                                          m["scale"], c.miss_tol)
    return {
        "erm_no_worse_than_adam": Measured(max(gaps), baseline=min(constant),
                                           baseline_name="best constant predictor"),
        "adam_restarts_miss_the_optimum": Measured(
            wilson_interval(*restarts_above_optimum(m["adam_losses"], m["erm_loss"],
                                                    m["scale"], c.miss_tol)),
            baseline=control_misses / control_runs,
            baseline_name="Adam started next to the optimum"),
        "dichotomies_are_covers_count": Measured(
            max(abs(a - b) for a, b in zip(m["dichotomies"], m["cover"])),
            baseline=min(s - b for s, b in zip(m["subset_count"], m["cover"])),
            baseline_name="all 2^D subsets"),
    }


def compute_depth_gap(config, log) -> dict:
    """Part "depth_gap": pieces of the hard family counted exactly, and the paper's example."""
    c = config.depth_gap
    rng = np.random.default_rng(c.seed)
    segment = np.zeros(1), np.ones(1)
    out = {"width": [], "hidden_layers": [], "pieces": [], "gaussian_pieces": []}
    for w in c.widths:
        for k in c.hidden_layers:
            for _ in range(c.draws):
                net = cpwl_nets.hard_family_net(cpwl_nets.random_zigzag_breaks(rng, w), k)
                gaussian = [(rng.normal(size=a.shape), rng.normal(size=b.shape)) for a, b in net]
                out["width"].append(w)
                out["hidden_layers"].append(k)
                out["pieces"].append(regions.count_linear_pieces(net, *segment))
                out["gaussian_pieces"].append(regions.count_linear_pieces(gaussian, *segment))
    for name, k in (("example", c.example_k), ("control", c.control_k)):
        net = cpwl_nets.hard_family_net(cpwl_nets.random_zigzag_breaks(rng, k), k * k)
        pieces = regions.count_linear_pieces(net, *segment)
        out[name] = {"k": k, "size": cpwl_nets.size(net), "pieces": pieces,
                     "shallow_size_needed": cpwl_nets.shallow_size_needed(pieces, k),
                     "paper_bound": 0.5 * k ** (k + 1) - 1}
    return out


def judge_depth_gap(config, m) -> dict:
    """Piece count (baseline: Gaussian nets of the same shape), size ratio (baseline: k = 2)."""
    target = [w ** k for w, k in zip(m["width"], m["hidden_layers"])]
    ratio = {name: m[name]["shallow_size_needed"] / m[name]["size"]
             for name in ("example", "control")}
    return {
        "hard_family_has_w_to_the_k_pieces": Measured(
            max(abs(p - t) for p, t in zip(m["pieces"], target)),
            baseline=min(abs(p - t) for p, t in zip(m["gaussian_pieces"], target)),
            baseline_name="Gaussian net of the same shape (closest)"),
        "shallower_nets_need_more_units": Measured(
            ratio["example"], baseline=ratio["control"],
            baseline_name=f"the same example at k = {m['control']['k']}"),
    }


PARTS = (
    Part("representation", compute_representation, judge_representation,
         reads=("representation",)),
    Part("erm", compute_erm, judge_erm, reads=("erm",)),
    Part("depth_gap", compute_depth_gap, judge_depth_gap, reads=("depth_gap",)),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Depth against Theorem 2.1's; Adam's excess loss over the exact optimum."""
    import matplotlib.pyplot as plt

    names = []
    if "representation" in m:
        rm = m["representation"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        dims = sorted(set(rm["input_dim"]))
        ax.step(dims, [cpwl_nets.theorem_depth(n) for n in dims], "k-", where="mid",
                label="ceil(log2(n + 1)) + 1 (Theorem 2.1)")
        ax.plot(rm["input_dim"], rm["depth"], "o", label="max-sum net, measured")
        ax.plot([1] * len(rm["one_d"]["lattice_depth"]), rm["one_d"]["lattice_depth"], "s",
                label="max-min lattice net (1-D, baseline)")
        ax.set(xlabel="input dimension n", ylabel="depth (hidden layers + 1)",
               title="Depth of exact ReLU nets for CPWL functions")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "depth.png"))
    if "erm" in m:
        em = m["erm"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        floor = 1e-12
        for i, (losses, opt, s) in enumerate(zip(em["adam_losses"], em["erm_loss"], em["scale"])):
            excess = np.maximum((np.asarray(losses) - opt) / s, floor)
            ax.plot(np.full(len(excess), i) + np.linspace(-0.2, 0.2, len(excess)), excess, ".",
                    color="C0", label="Adam restarts" if i == 0 else None)
            control = np.maximum((np.asarray(em["control_losses"][i]) - opt) / s, floor)
            ax.plot(np.full(len(control), i + 0.3), control, "x", color="C2",
                    label="Adam from next to the optimum" if i == 0 else None)
        ax.axhline(config.erm.miss_tol, color="k", ls="--", label="miss_tol")
        ax.set(xlabel="dataset", ylabel="(loss - exact optimum) / mean(y^2), floored at 1e-12",
               yscale="log", xticks=range(len(em["erm_loss"])),
               title="Adam restarts against exact ERM")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "erm_excess.png"))
    return names
