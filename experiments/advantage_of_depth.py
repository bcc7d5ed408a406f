"""Advantage of depth for smooth targets (Yarotsky 2017, Prop. 2, 3; Liang & Srikant 2017).

Theorems. Yarotsky (2017, "Error bounds for approximations with deep ReLU networks", Prop. 2):
f_m(x) = x - sum_{s<=m} g_s(x) / 4**s (g_s the s-fold tent map) is computed by m hidden ReLU
layers of width 3 and sup_{[0,1]} |f_m(x) - x**2| = 2**(-2m-2): the error falls exponentially in
depth (log2 error = -2m - 2). Prop. 3: products xy on [-1, 1]**2 by polarisation to 2**(-2m-1),
and from them monomials x**p to (p - 1) 2**(-2m-1) (`constructions.yarotsky_monomial_net`);
Thm 1 builds every smooth function from these pieces. Lower side (Liang & Srikant 2017, "Why
deep neural networks for function approximation?", strongly convex lower bounds; here the 1-D
case, derived in `dl_theory.theory.approximation_bounds.square_pl_sup_error`): a continuous
piecewise-linear function with t pieces is at sup distance >= 1 / (8 t**2) from x**2 on [0, 1],
and a one-hidden-layer ReLU net of width n has t <= n + 1 pieces, so shallow error can fall only
polynomially (as n**-2) in width, hence in parameter count (3n + 1 parameters).

Measured. (1) Sup error of `yarotsky_square_net(m)` on a dyadic grid of [0, 1] (it contains
the midpoints where the error peaks), evaluated in float64 from its exact weights, against
2**(-2m-2); the slope of log2 error vs m, fitted with `fit_loglog_slope` on x = 2**m (so the
log-log slope is exactly d log2(error) / dm). (2) The same for `yarotsky_product_net(m)` on a
2-D dyadic grid and `yarotsky_monomial_net(p, m)`. (3) One-hidden-layer nets of width n trained
(Adam, fresh uniform samples) on x**2: sup error on the grid against the optimum 1 / (8 (n+1)**2)
and its log-log slope vs n. (4) At equal parameter count P, the deepest square construction
against the best any shallow net with P parameters can do. Baselines, each measured in the
run and rejected by its claim's bound: the depth-(m-1) product / monomial net against the
depth-m bound; the same depth-rate fit on the best error of a shallow net with each
construction's parameter count (slope -0.7 to -1.0 per unit of m, not -2); square
constructions with 3m <= widest-n ReLUs, which go below the shallow optimum and fall faster
in their unit count than any shallow net can. `config.precision` sets the
trained nets' compute dtype (parameters stay float32); the constructions are float64 whatever
it is.

Run: python launch.py --config=experiments/advantage_of_depth.py:quick --workdir=runs/aod
quick: m <= 10, widths 2..16, 4 seeds, 2k steps: 24-34 s at load 5-9 on 2 shared cores
(18-30 s with the baselines, at load 2-10).
paper: m <= 14, widths 2..128, 8 seeds, 20k steps (a few minutes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.synthetic import Target
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models import constructions
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import regions
from dl_theory.theory.approximation_bounds import shallow_max_pieces, square_pl_sup_error
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, fit_loglog_slope

YAROTSKY_2 = "yarotsky2017, Prop. 2"
YAROTSKY_3 = "yarotsky2017, Prop. 3 (and Thm 1's use of it)"
LIANG_SRIKANT = "liang2017, strongly convex lower bound (1-D case derived here)"

CLAIMS = (
    ClaimSpec("square_error_closed_form",
              "The depth-m construction's sup error on [0, 1] equals 2**(-2m-2) for every m "
              "(largest |measured / closed form - 1|).", YAROTSKY_2, at_most="square.tolerance",
              published=Published("sup error exactly 2^(-2m-2)", "Prop. 2"),
              margin_why="exact: the construction's weights are dyadic, so its sup error is the "
                         "closed form to rounding; an off-by-one closed form 2**(-2m-4), the "
                         "baseline, is rejected"),
    ClaimSpec("square_error_exponential_in_depth",
              "log2(sup error) of the square construction falls linearly in depth with slope "
              "-2 (fitted slope; bound rate.slope +- rate.tolerance), while the best error a "
              "one-hidden-layer net with as many parameters can reach falls far slower (the "
              "baseline).", YAROTSKY_2,
              published=Published(-2.0, "Prop. 2: sup error 2^(-2m-2), log2 slope -2 in m")),
    ClaimSpec("product_error_within_bound",
              "The product construction's sup error on [-1, 1]**2 is <= 2**(-2m-1) for every m "
              "(largest ratio), while the depth-(m-1) construction is not (the baseline).",
              YAROTSKY_3, at_most=1.0),
    ClaimSpec("product_error_exponential_in_depth",
              "log2(sup error) of the product construction falls with slope -2 per unit of m "
              "(fitted slope; bound rate.slope +- rate.tolerance), unlike the best shallow "
              "net with as many parameters (the baseline).", YAROTSKY_3),
    ClaimSpec("monomial_error_within_bound",
              "The x**p construction's sup error on [-1, 1] is <= (p - 1) 2**(-2m-1) for every m "
              "(largest ratio), while the depth-(m-1) construction is not (the baseline).",
              YAROTSKY_3, at_most=1.0),
    ClaimSpec("monomial_error_exponential_in_depth",
              "log2(sup error) of the x**p construction falls with slope -2 per unit of m "
              "(fitted slope; bound rate.slope +- rate.tolerance), unlike the best shallow net "
              "with as many parameters (the baseline).", YAROTSKY_3),
    ClaimSpec("shallow_above_pl_optimum",
              "Trained one-hidden-layer nets of width n stay above 1 / (8 (n+1)**2), the best "
              "sup error of any n+1-piece function on x**2 (smallest ratio); the square "
              "construction with as many ReLUs (3m <= widest n) goes below it (the baseline).",
              LIANG_SRIKANT,
              at_least=1.0),
    ClaimSpec("shallow_error_polynomial_in_width",
              "The trained shallow nets' sup error decays no faster than polynomially, as "
              "n**-2 at best: log-log slope vs width >= -2 - shallow.slope_tolerance (fitted "
              "slope); the square construction's error falls faster in its ReLU count 3m (the "
              "baseline).",
              LIANG_SRIKANT),
    ClaimSpec("deep_beats_any_shallow_at_equal_parameters",
              "The deepest square construction (P parameters) has a smaller sup error than ANY "
              "one-hidden-layer net with P parameters can reach (optimum shallow error / deep "
              "error).", f"{YAROTSKY_2}; {LIANG_SRIKANT}", at_least=1.0,
              margin_why="exponential (2**(-2m) from O(m) parameters) against polynomial (n**-2 "
                         "from 3n + 1): the gap of orders of magnitude at the deepest m is the "
                         "theorem; at the smallest depth, the baseline, the shallow net wins"),
)

_PRESETS = {
    "quick": dict(
        seeds=4, batch_size=256, grid_points=2**14 + 1, precision="float32",
        square=dict(depths=tuple(range(1, 11)), tolerance=1e-9),
        product=dict(depths=(1, 2, 3, 4, 5, 6), grid_points=2**8 + 1),
        monomial=dict(power=3, depths=(1, 2, 3, 4, 5, 6, 7)),
        rate=dict(slope=-2.0, tolerance=0.1),
        shallow=dict(widths=(2, 4, 8, 16), steps=2000, slope_tolerance=0.3,
                     control_depths=(1, 2, 3, 4, 5),
                     optimizer=optimizer_config(
                         name="adam", learning_rate=1e-2, schedule="cosine"))),
    "paper": dict(
        seeds=8, batch_size=1024, grid_points=2**18 + 1, precision="float32",
        square=dict(depths=tuple(range(1, 15)), tolerance=1e-9),
        product=dict(depths=(1, 2, 3, 4, 5, 6, 7), grid_points=2**9 + 1),
        monomial=dict(power=4, depths=(1, 2, 3, 4, 5, 6, 7, 8)),
        rate=dict(slope=-2.0, tolerance=0.1),
        shallow=dict(widths=(2, 4, 8, 16, 32, 64, 128), steps=20000, slope_tolerance=0.3,
                     control_depths=tuple(range(1, 11)),
                     optimizer=optimizer_config(
                         name="adam", learning_rate=3e-3, schedule="cosine"))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~30 s) or "paper" (deeper constructions, wider shallow nets)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest trained shallow net, for
    `launch.py --dtypes`."""
    part = config.shallow
    model = MLP(widths=(max(part.widths),), **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, 1)), build_optimizer(part.optimizer, total_steps=part.steps)


def _forward_np(layers: regions.Layers, x_NxD: np.ndarray) -> np.ndarray:
    """A ReLU MLP given as float64 layers evaluated in NumPy; [N, D] -> [N, K]."""
    h = x_NxD
    for w, b in layers[:-1]:
        h = np.maximum(h @ w + b, 0.0)
    w, b = layers[-1]
    return h @ w + b


def _sup_error(variables, x_NxD: np.ndarray, y_N: np.ndarray) -> tuple[float, int]:
    """(sup |net - y| on the points, number of parameters) of a construction, in float64."""
    layers = regions.dense_params_to_layers(variables)
    error = float(np.max(np.abs(_forward_np(layers, x_NxD)[:, 0] - y_N)))
    return error, int(sum(w.size + b.size for w, b in layers))


def _constructions(config):
    """(sup error, parameter count) of the square, product and monomial constructions."""
    x = np.linspace(0.0, 1.0, config.grid_points)[:, None]
    square = [_sup_error(constructions.yarotsky_square_net(m)[1], x, x[:, 0] ** 2)
              for m in config.square.depths]
    g = np.linspace(-1.0, 1.0, config.product.grid_points)
    xy = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    product = [_sup_error(constructions.yarotsky_product_net(m)[1], xy, xy[:, 0] * xy[:, 1])
               for m in config.product.depths]
    p = config.monomial.power
    x_sym = np.linspace(-1.0, 1.0, config.grid_points)[:, None]
    monomial = [_sup_error(constructions.yarotsky_monomial_net(p, m)[1], x_sym,
                           x_sym[:, 0] ** p) for m in config.monomial.depths]
    return square, product, monomial


def _train_shallow(config, log) -> np.ndarray:
    """Sup errors on the grid, [S, len(widths)], of one-hidden-layer nets trained on x**2."""
    part = config.shallow
    target = Target(name="square", dim=1, fn=lambda x: x**2,
                    sample_inputs=lambda key, n: jax.random.uniform(key, (n, 1)))
    grid_x = jnp.linspace(0.0, 1.0, config.grid_points)[:, None]
    grid = {"x": grid_x, "y": target.fn(grid_x)}
    seeds = list(range(config.seeds))
    tx = build_optimizer(part.optimizer, total_steps=part.steps)
    policy = get_policy(config.precision)
    errors = []
    for width in part.widths:
        model = MLP(widths=(width,), **policy.model_dtypes())
        states = create_train_states(model, tx, grid_x[:2], seeds, make_loss_scale(policy))
        states, _ = fit_grid(states, None, target.sampler(config.batch_size),
                             loss=mean_squared_error, steps=part.steps,
                             data_seeds=[1000 + s for s in seeds], eval_data=grid,
                             eval_every=part.steps,
                             accumulate_steps=part.optimizer.accumulate_steps, policy=policy,
                             log=log, tags={"width": width}, label=f"shallow n={width}",
                             verbose=False)
        pred = jax.vmap(lambda p: model.apply({"params": p}, grid_x))(states.params)
        pred = pred.astype(jnp.float32)
        errors.append(np.asarray(jnp.max(jnp.abs(pred - grid["y"][None]), axis=(1, 2))))
    return np.stack(errors, axis=1)


def _figure(config, square, shallow_SxW, product, monomial, workdir) -> str:
    """Construction errors vs depth; deep vs shallow error at equal parameter count."""
    import matplotlib.pyplot as plt

    fig, (ax_d, ax_p) = plt.subplots(1, 2, figsize=(13, 4.6))
    m = np.asarray(config.square.depths)
    ax_d.semilogy(m, [e for e, _ in square], "o", c="C0", label="x**2 construction (measured)")
    ax_d.semilogy(m, 2.0 ** (-2 * m - 2), "-", c="C0", alpha=0.5, label="2**(-2m-2) (Prop. 2)")
    mp = np.asarray(config.product.depths)
    ax_d.semilogy(mp, product, "s", c="C1", label="xy construction (measured)")
    ax_d.semilogy(mp, 2.0 ** (-2 * mp - 1), "-", c="C1", alpha=0.5, label="bound 2**(-2m-1)")
    mm, p = np.asarray(config.monomial.depths), config.monomial.power
    ax_d.semilogy(mm, monomial, "^", c="C2", label=f"x**{p} construction (measured)")
    ax_d.semilogy(mm, (p - 1) * 2.0 ** (-2 * mm - 1), "-", c="C2", alpha=0.5,
                  label=f"bound {p - 1} * 2**(-2m-1)")
    ax_d.set(xlabel="depth parameter m", ylabel="sup error",
             title="Constructions: error falls exponentially in depth")
    ax_d.legend(fontsize=7)

    params_deep = np.asarray([q for _, q in square], dtype=float)
    ax_p.loglog(params_deep, [e for e, _ in square], "o-", c="C0",
                label="deep: x**2 construction, width 3")
    widths = np.asarray(config.shallow.widths)
    params_shallow = 3 * widths + 1
    ax_p.loglog(params_shallow, shallow_SxW.mean(0), "s-", c="C3",
                label="shallow: trained, seed mean")
    n = np.arange(1, int(params_deep.max()) // 3 + 1)
    ax_p.loglog(3 * n + 1, [square_pl_sup_error(shallow_max_pieces(int(k))) for k in n], "k--",
                label="best ANY shallow net can do: 1/(8(n+1)^2)")
    ax_p.set(xlabel="parameters", ylabel="sup error on [0, 1]",
             title="x**2 at equal parameter count: deep vs shallow")
    ax_p.legend(fontsize=7)
    return report.save_figure(fig, workdir, "advantage_of_depth.png")


def _slope(x, y) -> list[float]:
    """[value, lo, hi] of the fitted log-log slope of y vs x."""
    s = fit_loglog_slope(x, y)
    return [s.value, s.lo, s.hi]


def _shallow_optimum_at_params(params) -> np.ndarray:
    """The least sup error on x**2 of a one-hidden-layer net with as many parameters as each
    entry of `params` (width n = (P - 1) // 3, at most n + 1 pieces; Liang & Srikant)."""
    return np.asarray([square_pl_sup_error(shallow_max_pieces(max(1, (q - 1) // 3)))
                       for q in params])


def compute_constructions(config: ml_collections.ConfigDict, log) -> dict:
    """Part "constructions": sup errors, parameter counts and depth rates of the square,
    product and monomial constructions; the deepest square net against the best shallow
    net with as many parameters (a theory bound: nothing is trained)."""
    square, product_with_params, monomial_with_params = _constructions(config)
    square_err = np.asarray([e for e, _ in square])
    product = np.asarray([e for e, _ in product_with_params])
    monomial = np.asarray([e for e, _ in monomial_with_params])
    m = np.asarray(config.square.depths)
    closed = 2.0 ** (-2 * m - 2)
    mp, mm = np.asarray(config.product.depths), np.asarray(config.monomial.depths)
    p = config.monomial.power
    product_bound = 2.0 ** (-2 * mp - 1)
    monomial_bound = (p - 1) * 2.0 ** (-2 * mm - 1)
    deep_err, deep_params = square[-1]
    shallow_width_at_p = (deep_params - 1) // 3  # 3n + 1 parameters for width n
    shallow_best_at_p = square_pl_sup_error(shallow_max_pieces(shallow_width_at_p))
    first_err, first_params = square[0]
    first_ratio = square_pl_sup_error(shallow_max_pieces((first_params - 1) // 3)) / first_err
    return {
        "square_depths": m.tolist(), "square_sup_error": square_err.tolist(),
        "square_params": [q for _, q in square],
        "product_depths": mp.tolist(), "product_sup_error": product.tolist(),
        "monomial_power": p, "monomial_depths": mm.tolist(),
        "monomial_sup_error": monomial.tolist(),
        # fit_loglog_slope on x = 2**m fits log y = a + b m log 2, so b = d log2(y) / dm.
        "slopes_log2_per_depth": {"square": _slope(2.0**m, square_err),
                                  "product": _slope(2.0**mp, product),
                                  "monomial": _slope(2.0**mm, monomial)},
        # The rate control: the same fit on the best error of a shallow net with each
        # construction's parameter count (polynomial in parameters, so slow per unit of m).
        "shallow_optimum_slopes_log2_per_depth": {
            name: _slope(2.0**depths, _shallow_optimum_at_params([q for _, q in nets]))
            for name, depths, nets in (("square", m, square), ("product", mp, product_with_params),
                                       ("monomial", mm, monomial_with_params))},
        "square_largest_relative_error": float(np.max(np.abs(square_err / closed - 1.0))),
        "square_off_by_one_relative_error": float(np.max(np.abs(square_err / (closed / 4) - 1))),
        "product_largest_ratio": float(np.max(product / product_bound)),
        "monomial_largest_ratio": float(np.max(monomial / monomial_bound)),
        # One composition short: the depth-(m-1) net against the depth-m bound.
        "product_previous_depth_largest_ratio": float(np.max(product[:-1] / product_bound[1:])),
        "monomial_previous_depth_largest_ratio": float(
            np.max(monomial[:-1] / monomial_bound[1:])),
        "equal_params": {"params": deep_params, "deep_error": deep_err,
                         "shallow_width": shallow_width_at_p,
                         "best_shallow_error": shallow_best_at_p,
                         "ratio": shallow_best_at_p / deep_err,
                         "ratio_at_smallest_depth": first_ratio},
    }


def judge_constructions(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Closed-form and bound ratios; each depth rate within rate.slope +- rate.tolerance."""
    r = config.rate
    slopes = {name: Measured(Estimate(*s), at_least=r.slope - r.tolerance,
                             at_most=r.slope + r.tolerance,
                             baseline=m["shallow_optimum_slopes_log2_per_depth"][name][0],
                             baseline_name="best shallow net with as many parameters")
              for name, s in m["slopes_log2_per_depth"].items()}
    return {
        "square_error_closed_form": Measured(
            m["square_largest_relative_error"], baseline=m["square_off_by_one_relative_error"],
            baseline_name="the closed form one level deeper, 2**(-2m-4)"),
        "square_error_exponential_in_depth": slopes["square"],
        "product_error_within_bound": Measured(
            m["product_largest_ratio"], baseline=m["product_previous_depth_largest_ratio"],
            baseline_name="the depth-(m-1) construction"),
        "product_error_exponential_in_depth": slopes["product"],
        "monomial_error_within_bound": Measured(
            m["monomial_largest_ratio"], baseline=m["monomial_previous_depth_largest_ratio"],
            baseline_name="the depth-(m-1) construction"),
        "monomial_error_exponential_in_depth": slopes["monomial"],
        "deep_beats_any_shallow_at_equal_parameters": Measured(
            m["equal_params"]["ratio"], baseline=m["equal_params"]["ratio_at_smallest_depth"],
            baseline_name="the same comparison at the smallest depth"),
    }


def compute_shallow(config: ml_collections.ConfigDict, log) -> dict:
    """Part "shallow": one-hidden-layer nets trained on x**2, their sup errors against the
    best n+1-piece error, and their rate in width."""
    shallow = _train_shallow(config, log)
    widths = np.asarray(config.shallow.widths)
    optimum = np.asarray([square_pl_sup_error(shallow_max_pieces(int(n))) for n in widths])
    # The control the lower bound must reject: depth-m square constructions with 3m ReLUs,
    # at most as many as the widest shallow net, against the shallow optimum at 3m units.
    depths = np.asarray(config.shallow.control_depths)
    x = np.linspace(0.0, 1.0, config.grid_points)[:, None]
    deep = np.asarray([_sup_error(constructions.yarotsky_square_net(int(d))[1], x,
                                  x[:, 0] ** 2)[0] for d in depths])
    deep_optimum = np.asarray([square_pl_sup_error(shallow_max_pieces(3 * int(d)))
                               for d in depths])
    return {"shallow_widths": widths.tolist(), "shallow_sup_error": shallow.tolist(),
            "shallow_optimum": optimum.tolist(),
            "shallow_slope": _slope(widths, shallow),
            "smallest_ratio_to_optimum": float(np.min(shallow / optimum[None])),
            "control_depths": depths.tolist(), "control_relus": (3 * depths).tolist(),
            "control_sup_error": deep.tolist(),
            "control_smallest_ratio_to_optimum": float(np.min(deep / deep_optimum)),
            "control_slope": _slope(3 * depths, deep)}


def judge_shallow(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Smallest error / optimum; the width rate against -2 - shallow.slope_tolerance."""
    control = "square construction with as many ReLUs (3m)"
    return {"shallow_above_pl_optimum": Measured(
                m["smallest_ratio_to_optimum"],
                baseline=m["control_smallest_ratio_to_optimum"], baseline_name=control),
            "shallow_error_polynomial_in_width": Measured(
                Estimate(*m["shallow_slope"]), at_least=-2.0 - config.shallow.slope_tolerance,
                baseline=m["control_slope"][0], baseline_name=control)}


PARTS = (
    Part("constructions", compute_constructions, judge_constructions,
         reads=("grid_points", "square", "product", "monomial")),
    Part("shallow", compute_shallow, judge_shallow,
         reads=("seeds", "batch_size", "grid_points", "precision", "shallow")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """Construction errors vs depth; deep vs shallow error at equal parameter count."""
    c = m["constructions"]
    square = list(zip(c["square_sup_error"], c["square_params"]))
    return [_figure(config, square, np.asarray(m["shallow"]["shallow_sup_error"]),
                    c["product_sup_error"], c["monomial_sup_error"], workdir)]
