"""Depth separation (Telgarsky 2015, 2016): the k-fold tent map needs width 2**k without depth.

Theorems. Telgarsky (2016, "Benefits of depth in neural networks", Thm 1.1; 2015,
"Representation benefits of deep feedforward networks", Lemma 2.1 and Thm 1.1): the tent map
t(x) = 2 min(x, 1 - x) composed k times is computed exactly by k hidden ReLU layers of width 2
and has 2**k affine pieces; a ReLU net with L hidden layers of width <= m has at most (2m)**L
pieces on any line, so a shallow net needs exponentially many units to follow the 2**k teeth.
Quantitatively (the triangle count of Telgarsky 2016, Sec. 3, re-derived in
`dl_theory.theory.approximation_bounds.sawtooth_l1_lower_bound`): every continuous function with
t pieces has L1([0, 1]) distance >= 1/8 - (t + 1) / 2**(k+2) from the k-fold tent map, and a
one-hidden-layer net of width m has t <= m + 1. (Telgarsky's Thm 1.1 states the separation with
the constant 1/64 for a wider class of networks; we use the sharper direct count.)

Measured. (1) `constructions.sawtooth_net(k)` for k = 1..K: exact piece count on [0, 1]
(`regions.count_linear_pieces`) against 2**k, and its sup distance to the tent map on a grid,
evaluated in float64 from its (dyadic, exact) weights. (2) Piece counts of random nets (Gaussian
weights, several depths and widths) and of every trained net below, divided by (2m)**L. (3)
One-hidden-layer nets of widths m trained (Adam, fresh uniform samples each step) on the
k-fold tent map; L1 error on a 2**14-point grid against the bound at t = m + 1. (4) Deep nets of
O(k) units (k hidden layers of width w) trained from scratch the same way. (5) An explicit
shallow comparator for every width n <= 2**k: kinks on the uniform grid i/n and output weights
fitted by least squares (exact at n = 2**k), which tracks the bound far more closely than
training does. The first layer's
kinks are spread uniformly over [0, 1] at initialisation (flax's zero biases put every kink at
x = 0, where no unit can see the teeth), which gives training its best chance.
Finding (quick and paper): gradient training from scratch does not find the deep construction;
the deep nets end with L1 error well above the bound that every shallow net of their size must
satisfy, i.e. depth's representational advantage is not realised by training here (a gap
between expressivity and trainability, stated as the claim `trained_deep_nets_miss_construction`).
`config.precision` sets the trained nets' compute dtype (parameters stay float32); the
constructions and the piece counts (of the float32 parameters) are float64 whatever it is.

Run: python launch.py --config=experiments/depth_separation.py:quick --workdir=runs/ds
quick: k = 6, 4 seeds, 3k steps: 46-79 s at load 6-9 on 2 shared cores (never alone).
paper: k = 6, widths up to 256, 8 seeds, 20k steps (a few minutes on 2 cores; the published
results are proofs, not runs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.synthetic import Target
from dl_theory.experiment import ClaimSpec, Part, config_from_presets
from dl_theory.models import constructions
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import regions
from dl_theory.theory.approximation_bounds import sawtooth_l1_lower_bound, shallow_max_pieces
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import TrainState, create_train_states

TELGARSKY_16 = "Telgarsky 2016, Thm 1.1 (construction in its proof)"
TELGARSKY_15 = "Telgarsky 2015, Lemma 2.1 (piece counting)"
SEPARATION = "Telgarsky 2016, Sec. 3 (triangle counting), bound re-derived here"

CLAIMS = (
    ClaimSpec("construction_has_2k_pieces",
              "The depth-k width-2 construction has exactly 2**k affine pieces on [0, 1] for "
              "every k tested (largest |count - 2**k|).", TELGARSKY_16, at_most=0),
    ClaimSpec("construction_is_exact",
              "The construction equals the k-fold tent map on [0, 1] (largest sup distance on "
              "a grid over k, float64 evaluation).", TELGARSKY_16,
              at_most="construction.tolerance"),
    ClaimSpec("pieces_within_depth_width_bound",
              "Every random and trained ReLU net with L hidden layers of width <= m has at most "
              "(2m)**L pieces on a segment (largest count / bound).", TELGARSKY_15,
              at_most=1.0),
    ClaimSpec("shallow_nets_above_l1_bound",
              "Trained and least-squares one-hidden-layer nets of width m stay above the L1 "
              "lower bound 1/8 - (m + 2) / 2**(k+2) wherever it is positive (smallest error / "
              "bound).",
              SEPARATION, at_least=1.0),
    ClaimSpec("trained_deep_nets_miss_construction",
              "Negative result: deep nets of O(k) units trained from scratch do not reach the "
              "construction's error (0); their best L1 error stays above the lower bound that "
              "a one-hidden-layer net with the same number of units must satisfy (smallest "
              "best-error / shallow-bound ratio over deep widths).", SEPARATION,
              at_least=1.0),
)

_PRESETS = {
    "quick": dict(
        seeds=4, k=6, batch_size=256, grid_points=2**14 + 1, precision="float32",
        construction=dict(ks=tuple(range(1, 11)), tolerance=1e-9),
        random_nets=dict(depths=(1, 2, 3, 4, 6), widths=(2, 4, 8), draws=3, seed=0,
                         segment=(-2.0, 2.0)),
        shallow=dict(widths=(4, 8, 16, 64)),
        deep=dict(widths=(2, 4)),
        train=dict(steps=3000, kink_init_scale=4.0,
                   optimizer=optimizer_config(name="adam", learning_rate=1e-2, schedule="cosine"))),
    "paper": dict(
        seeds=8, k=6, batch_size=512, grid_points=2**16 + 1, precision="float32",
        construction=dict(ks=tuple(range(1, 17)), tolerance=1e-9),
        random_nets=dict(depths=(1, 2, 3, 4, 6, 8), widths=(2, 4, 8, 16), draws=10, seed=0,
                         segment=(-2.0, 2.0)),
        shallow=dict(widths=(4, 8, 16, 24, 32, 64, 128, 256)),
        deep=dict(widths=(2, 3, 4, 6)),
        train=dict(steps=20000, kink_init_scale=4.0,
                   optimizer=optimizer_config(name="adam", learning_rate=3e-3, schedule="cosine"))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, well under a minute) or "paper" (more widths, seeds, steps)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest trained deep net, for `launch.py --dtypes`."""
    model = MLP(widths=(max(config.deep.widths),) * config.k,
                **get_policy(config.precision).model_dtypes())
    return (model, jnp.zeros((2, 1)),
            build_optimizer(config.train.optimizer, total_steps=config.train.steps))


def _forward_np(layers: regions.Layers, x_NxD: np.ndarray) -> np.ndarray:
    """A ReLU MLP given as float64 layers evaluated in NumPy; [N, D] -> [N, K]."""
    h = x_NxD
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    w, b = layers[-1]
    return h @ w + b


def _sawtooth_np(x: np.ndarray, k: int) -> np.ndarray:
    for _ in range(k):
        x = 2.0 * np.minimum(x, 1.0 - x)
    return x


def _construction(config, grid_N1: np.ndarray) -> tuple[list[int], list[float]]:
    """Piece counts and sup errors of `sawtooth_net(k)` for k in config.construction.ks."""
    pieces, errors = [], []
    for k in config.construction.ks:
        _, variables = constructions.sawtooth_net(k)
        layers = regions.dense_params_to_layers(variables)
        pieces.append(regions.count_linear_pieces(layers, np.zeros(1), np.ones(1)))
        errors.append(float(np.max(np.abs(_forward_np(layers, grid_N1)[:, 0]
                                          - _sawtooth_np(grid_N1[:, 0], k)))))
    return pieces, errors


def _random_net_ratios(part) -> list[float]:
    """count / (2m)**L for Gaussian ReLU nets: W ~ N(0, 2 / fan_in), b ~ N(0, 1)."""
    rng = np.random.default_rng(part.seed)
    a, b = np.array([part.segment[0]]), np.array([part.segment[1]])
    ratios = []
    for depth in part.depths:
        for width in part.widths:
            sizes = [1] + [width] * depth + [1]
            for _ in range(part.draws):
                layers = [(rng.normal(size=(i, o)) * np.sqrt(2.0 / i), rng.normal(size=o))
                          for i, o in zip(sizes[:-1], sizes[1:])]
                count = regions.count_linear_pieces(layers, a, b)
                ratios.append(count / regions.telgarsky_pieces_bound(width, depth))
    return ratios


def _least_squares_shallow(k: int, units: np.ndarray, x_N: np.ndarray) -> np.ndarray:
    """L1 errors [len(units)] of one-hidden-layer fits a + sum_i c_i relu(x - i/n), i < n,
    with n units whose kinks sit on a uniform grid and (a, c) fitted by least squares: an
    explicit shallow net per width, exact when n = 2**k (kinks at the tent map's breakpoints)."""
    y_N = _sawtooth_np(x_N, k)
    errors = []
    for n in units:
        features = np.maximum(x_N[:, None] - np.arange(n)[None, :] / n, 0.0)
        design = np.concatenate([np.ones((x_N.size, 1)), features], axis=1)
        coef, *_ = np.linalg.lstsq(design, y_N, rcond=None)
        errors.append(float(np.mean(np.abs(design @ coef - y_N))))
    return np.asarray(errors)


def _spread_first_layer_kinks(states: TrainState, tx, scale: float, seed: int) -> TrainState:
    """Dense_0 of every member: kernel *= scale and bias = -kernel * u, u ~ U[0, 1], so unit i
    has its kink at x = u_i inside [0, 1]; the optimizer state is re-initialised to match."""
    num = jax.tree.leaves(states.params)[0].shape[0]
    keys = jax.vmap(jax.random.PRNGKey)(seed + jnp.arange(num))

    def spread(params, key):
        dense = dict(params["Dense_0"])
        kernel = dense["kernel"] * scale
        dense["kernel"] = kernel
        dense["bias"] = -kernel[0] * jax.random.uniform(key, dense["bias"].shape)
        return {**params, "Dense_0": dense}

    params = jax.vmap(spread)(states.params, keys)
    return states.replace(params=params, opt_state=jax.vmap(tx.init)(params))


def _train(hidden, target, grid, config, log, label):
    """L1 errors [S] on the grid, predictions [S, N] and per-seed layers of MLPs with hidden
    widths `hidden`, trained on fresh samples of `target`."""
    seeds = list(range(config.seeds))
    tx = build_optimizer(config.train.optimizer, total_steps=config.train.steps)
    policy = get_policy(config.precision)
    model = MLP(widths=tuple(hidden), **policy.model_dtypes())
    states = create_train_states(model, tx, grid["x"][:2], seeds, make_loss_scale(policy))
    states = _spread_first_layer_kinks(states, tx, config.train.kink_init_scale, seed=7919)
    states, _ = fit_grid(states, None, target.sampler(config.batch_size), loss=mean_squared_error,
                         steps=config.train.steps, data_seeds=[1000 + s for s in seeds],
                         eval_data=grid, eval_every=config.train.steps,
                         accumulate_steps=config.train.optimizer.accumulate_steps, policy=policy,
                         log=log, tags={"hidden": list(hidden)}, label=label, verbose=False)
    pred_SxN = np.asarray(jax.vmap(lambda p: model.apply({"params": p}, grid["x"]))(
        states.params).astype(jnp.float32))[..., 0]
    l1_S = np.mean(np.abs(pred_SxN - np.asarray(grid["y"])[None, :, 0]), axis=1)
    layers = [regions.dense_params_to_layers(jax.tree.map(lambda a: a[s], states.params))
              for s in range(config.seeds)]
    return l1_S, pred_SxN, layers


def _grid(config) -> np.ndarray:
    """The evaluation grid on [0, 1], [grid_points, 1], float64."""
    return np.linspace(0.0, 1.0, config.grid_points)[:, None]


def compute_construction(config: ml_collections.ConfigDict, log) -> dict:
    """Part "construction": piece counts and sup errors of the depth-k width-2 construction."""
    pieces, construction_errors = _construction(config, _grid(config))
    return {"construction_ks": list(config.construction.ks), "construction_pieces": pieces,
            "construction_sup_error": construction_errors}


def judge_construction(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Largest |count - 2**k| and largest sup distance over k."""
    return {"construction_has_2k_pieces": max(
                abs(p - 2**kk) for p, kk in zip(m["construction_pieces"], m["construction_ks"])),
            "construction_is_exact": max(m["construction_sup_error"])}


def compute_nets(config: ml_collections.ConfigDict, log) -> dict:
    """Part "nets": random nets' piece counts; shallow and deep nets trained on the k-fold tent
    map (L1 errors, piece counts); least-squares shallow comparators; the L1 lower bounds."""
    k = config.k
    x_N1 = _grid(config)
    target = Target(name=f"sawtooth_k{k}", dim=1,
                    fn=lambda x: constructions.sawtooth(x, k),
                    sample_inputs=lambda key, n: jax.random.uniform(key, (n, 1)))
    grid = {"x": jnp.asarray(x_N1, jnp.float32)}
    grid["y"] = target.fn(grid["x"])

    shallow = {m: _train((m,), target, grid, config, log, f"shallow m={m}")
               for m in config.shallow.widths}
    deep = {w: _train((w,) * k, target, grid, config, log, f"deep {k}x{w}")
            for w in config.deep.widths}

    ratios = _random_net_ratios(config.random_nets)
    trained_ratios = []
    for runs, depth in ((shallow, 1), (deep, k)):
        for width, (_, _, layers) in runs.items():
            bound = regions.telgarsky_pieces_bound(width, depth)
            trained_ratios += [regions.count_linear_pieces(lay, np.zeros(1), np.ones(1)) / bound
                               for lay in layers]

    shallow_bounds = {m: sawtooth_l1_lower_bound(shallow_max_pieces(m), k) for m in shallow}
    units = np.arange(1, 2**k + 1)
    lstsq_l1 = _least_squares_shallow(k, units, x_N1[:, 0])
    lstsq_bounds = [sawtooth_l1_lower_bound(shallow_max_pieces(int(n)), k) for n in units]
    above = [float(l1.min() / shallow_bounds[m]) for m, (l1, _, _) in shallow.items()
             if shallow_bounds[m] > 0]
    above += [e / b for e, b in zip(lstsq_l1, lstsq_bounds) if b > 0]
    deep_bounds = {w: sawtooth_l1_lower_bound(shallow_max_pieces(w * k), k) for w in deep}
    # The deep nets' unit counts must keep the shallow bound positive for the comparison to
    # mean anything; a zero bound gives an infinite ratio, which never holds (non-finite).
    deep_ratios = [float(l1.min() / deep_bounds[w]) if deep_bounds[w] > 0 else float("inf")
                   for w, (l1, _, _) in deep.items()]

    def best_prediction(runs):
        """(width, prediction [N]) of the best seed of the width with the lowest L1 error."""
        width, (l1, pred, _) = min(runs.items(), key=lambda kv: kv[1][0].min())
        return width, pred[int(np.argmin(l1))]

    (best_shallow_width, best_shallow), (best_deep_width, best_deep) = (
        best_prediction(shallow), best_prediction(deep))
    return {
        "random_net_max_ratio": max(ratios), "trained_net_max_ratio": max(trained_ratios),
        "shallow_widths": list(shallow), "shallow_l1": [r[0].tolist() for r in shallow.values()],
        "shallow_l1_bound": [shallow_bounds[m] for m in shallow],
        "lstsq_units": units.tolist(), "lstsq_l1": lstsq_l1.tolist(),
        "deep_widths": list(deep), "deep_units": [w * k for w in deep],
        "deep_l1": [r[0].tolist() for r in deep.values()],
        "shallow_bound_at_deep_units": [deep_bounds[w] for w in deep],
        "smallest_ratio_above_shallow_bound": min(above) if above else float("nan"),
        "smallest_deep_ratio": min(deep_ratios),
        "best_shallow_width": best_shallow_width, "best_shallow_prediction": best_shallow,
        "best_deep_width": best_deep_width, "best_deep_prediction": best_deep,
    }


def judge_nets(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Largest pieces / (2m)**L; smallest shallow error / bound; smallest deep ratio."""
    return {"pieces_within_depth_width_bound": max(m["random_net_max_ratio"],
                                                   m["trained_net_max_ratio"]),
            "shallow_nets_above_l1_bound": m["smallest_ratio_above_shallow_bound"],
            "trained_deep_nets_miss_construction": m["smallest_deep_ratio"]}


PARTS = (
    Part("construction", compute_construction, judge_construction,
         reads=("grid_points", "construction")),
    Part("nets", compute_nets, judge_nets,
         reads=("seeds", "k", "batch_size", "grid_points", "precision", "random_nets", "shallow",
                "deep", "train")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """The target, the construction and the best trained fits; L1 error vs units."""
    import matplotlib.pyplot as plt

    k, x = config.k, _grid(config)[:, 0]
    nets = m["nets"]
    fig, (ax_f, ax_e) = plt.subplots(1, 2, figsize=(13, 4.6))
    ax_f.plot(x, _sawtooth_np(x, k), "k-", lw=2.5, alpha=0.35,
              label=f"target: tent map composed {k} times")
    _, variables = constructions.sawtooth_net(k)
    construction = _forward_np(regions.dense_params_to_layers(variables), x[:, None])[:, 0]
    ax_f.plot(x, construction, "k:", lw=1, label=f"construction: {k} layers x width 2 (exact)")
    for name, style in (("shallow", "C0-"), ("deep", "C3-")):
        width, pred = nets[f"best_{name}_width"], np.asarray(nets[f"best_{name}_prediction"])
        shape = f"width {width}" if name == "shallow" else f"{k} x width {width}"
        l1 = np.mean(np.abs(pred - _sawtooth_np(x, k)))
        ax_f.plot(x, pred, style, lw=1.2, label=f"best trained {name} ({shape}), L1 {l1:.3f}")
    ax_f.set(xlabel="x", ylabel="f(x)", title="Target, construction and best trained fits")
    ax_f.legend(fontsize=7, loc="lower right")

    units = np.arange(1, 2**k + 1)
    bound = [sawtooth_l1_lower_bound(shallow_max_pieces(int(n)), k) for n in units]
    ax_e.plot(units, bound, "k-", lw=2, label="lower bound for ANY 1-hidden-layer net")
    ax_e.plot(nets["lstsq_units"], nets["lstsq_l1"], "C2.-", lw=1,
              label="1-hidden-layer least-squares fit, uniform kinks")
    for name, n, errors, color, marker in (
            ("shallow (1 hidden layer)", nets["shallow_widths"], nets["shallow_l1"], "C0", "o"),
            (f"deep ({k} hidden layers)", nets["deep_units"], nets["deep_l1"], "C3", "s")):
        for j, (nj, l1) in enumerate(zip(n, errors)):
            ax_e.scatter([nj] * len(l1), l1, c=color, marker=marker, alpha=0.5,
                         label=f"trained {name}, each seed" if j == 0 else None)
    ax_e.scatter([2 * k], [0.0], c="k", marker="*", s=120,
                 label=f"construction: {2 * k} units, error 0")
    ax_e.set(xscale="log", xlabel="hidden units", ylabel="L1 error on [0, 1]",
             title="Error vs units: theory bound (line) and trained nets (markers)")
    ax_e.legend(fontsize=7)
    return [report.save_figure(fig, workdir, "depth_separation.png")]
