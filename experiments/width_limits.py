"""Width limits (Lu et al. 2017; Hanin & Sellke 2017; Johnson 2019; Park et al. 2021).

Theorems. Johnson (2019, "Deep, skinny neural networks are not universal approximators",
Thm 1 and its corollary): a network of width <= d on R^d (ReLU included, as a uniform limit of
injective activations) has no bounded path component in any superlevel set {F > a}, so it
cannot uniformly approximate a function with a bounded level-set component. Lu et al. (2017,
"The expressive power of neural networks: a view from the width", Thm 2): width-d ReLU nets
cannot approximate integrable functions on R^d in L1. Hanin & Sellke (2017, "Approximating
continuous functions by ReLU nets of minimal width", Thm 1): the minimal width for uniform
approximation of continuous functions on [0, 1]^d is d + 1 (d_in + 1 <= w_min <= d_in + d_out).
Park et al. (2021, "Minimum width for universal approximation", Thm 1): for L^p approximation
with ReLU the minimal width is max(d_x + 1, d_y) = 3 here.

The floor, derived. Target: the compactly supported bump B(x) = relu(1 - |x|^2 / r^2) on the
domain D = [-1, 1]^2 (d = 2), with r < 1 so that the support is inside D. Suppose a width-2
net F had sup_D |F - B| < 1/2. Then F(0) > 1/2, while F < 1/2 on D outside the disc of radius
r, in particular on the boundary of D. The component of {F > 1/2} that contains 0 is unbounded
(Johnson), so it leaves D, and hence meets the boundary of D, where F < 1/2: a contradiction.
So every width-2 ReLU net has sup_D |F - B| >= 1/2, whatever its depth; width 3 = d + 1 can
go below it (Hanin & Sellke).

Measured. MLPs of width 2 and 3 (and wider in the paper preset) and growing depth, trained on
fresh uniform samples of D (Adam, mean squared error); sup error and RMSE on a 201 x 201 grid
of D (the grid contains 0). Approximation is about existence, so each (width, depth) reports
its best seed (seed medians are in the metrics: narrow deep nets often die in training, which
is an optimisation failure, not the theorem). Claims, all in the sup norm of the theorems: the
width-2 floor holds at every depth (measured floor = the smallest width-2 sup error), width 3
goes below it, and the width-3 sup error falls at every depth doubling. The RMSE is reported,
not claimed: in the quick preset the width-3 RMSE halves from depth 2 to 4 and then stays flat
to depth 8 (the 3k-step training budget, not the width, limits it there). Each width is the
other's control: the width-3 nets fail the floor claim, and the width-2 nets fail the two
width-3 claims (their best sup error rises with depth). `config.precision`
sets the nets' compute dtype (parameters stay float32); errors are computed in float32.

Run: python launch.py --config=experiments/width_limits.py:quick --workdir=runs/wl
quick: widths 2, 3; depths 2, 4, 8; 6 seeds; 3k steps: 33-68 s at load 5-6 on 2 shared cores.
paper: widths 2..5, depths 1..16, 16 seeds, 20k steps (several minutes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.synthetic import Target
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

JOHNSON = "johnson2019, Thm 1; lu2017, Thm 2 (floor derived in the docstring)"
HANIN = "hanin2017, Thm 1; park2021, Thm 1"

CLAIMS = (
    ClaimSpec("narrow_nets_above_floor",
              "At every depth, width-2 (= d) ReLU nets have sup error >= 1/2 on a compactly "
              "supported bump in d = 2 (smallest sup error over depths and seeds: the measured "
              "floor), while width-3 nets trained alike go below it (the baseline).", JOHNSON,
              at_least="floor"),
    ClaimSpec("wide_nets_break_floor",
              "Width-3 (= d + 1) nets go below that floor: best sup error at the largest depth "
              "< 1/2; the width-2 nets of that depth, the baseline, do not.", HANIN,
              at_most="floor"),
    ClaimSpec("wide_error_falls_with_depth",
              "The best width-3 sup error falls at every doubling of the depth (fraction of "
              "depth steps that lower it); the best width-2 sup error, the baseline, does "
              "not.", HANIN, at_least=1.0),
)

_PRESETS = {
    "quick": dict(
        seeds=6, batch_size=256, grid_side=201, radius=0.6, floor=0.5, narrow_width=2,
        wide_width=3, widths=(2, 3), depths=(2, 4, 8), steps=3000, precision="float32",
        optimizer=optimizer_config(name="adam", learning_rate=1e-2, schedule="cosine")),
    "paper": dict(
        seeds=16, batch_size=1024, grid_side=401, radius=0.6, floor=0.5, narrow_width=2,
        wide_width=3, widths=(2, 3, 4, 5), depths=(1, 2, 4, 8, 16), steps=20000,
        precision="float32",
        optimizer=optimizer_config(name="adam", learning_rate=3e-3, schedule="cosine")),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~35 s) or "paper" (more widths, depths, seeds and steps)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the widest, deepest trained net, for
    `launch.py --dtypes`."""
    model = MLP(widths=(max(config.widths),) * max(config.depths),
                **get_policy(config.precision).model_dtypes())
    return model, jnp.zeros((2, 2)), build_optimizer(config.optimizer, total_steps=config.steps)


def _check(config) -> None:
    if not 0 < config.radius < 1:
        raise ValueError(f"radius={config.radius}; must be in (0, 1) so the bump's support "
                         "lies inside the domain [-1, 1]^2 (the floor argument needs it)")
    for name in ("narrow_width", "wide_width"):
        if config[name] not in config.widths:
            raise ValueError(f"{name}={config[name]} is not in widths={tuple(config.widths)}")


def radial_bump(x_Nx2: jax.Array, radius: float) -> jax.Array:
    """B(x) = relu(1 - |x|^2 / r^2): 1 at 0, 0 outside the disc of radius r; [N, 2] -> [N, 1]."""
    return jax.nn.relu(1.0 - jnp.sum(x_Nx2**2, axis=1, keepdims=True) / radius**2)


def _train(width: int, depth: int, target: Target, grid, config, log):
    """Sup errors [S] and RMSEs [S] of width x depth MLPs, and their trained parameters."""
    seeds = list(range(config.seeds))
    tx = build_optimizer(config.optimizer, total_steps=config.steps)
    policy = get_policy(config.precision)
    model = MLP(widths=(width,) * depth, **policy.model_dtypes())
    states = create_train_states(model, tx, grid["x"][:2], seeds, make_loss_scale(policy))
    states, _ = fit_grid(states, None, target.sampler(config.batch_size), loss=mean_squared_error,
                         steps=config.steps, data_seeds=[1000 + s for s in seeds],
                         eval_data=grid, eval_every=config.steps,
                         accumulate_steps=config.optimizer.accumulate_steps, policy=policy,
                         log=log, tags={"width": width, "depth": depth},
                         label=f"width={width} depth={depth}", verbose=False)
    pred = jax.vmap(lambda p: model.apply({"params": p}, grid["x"]))(states.params)
    pred = pred.astype(jnp.float32)
    diff = np.asarray(pred - grid["y"][None])[..., 0]
    return np.max(np.abs(diff), axis=1), np.sqrt(np.mean(diff**2, axis=1)), states.params


def _predict(config, width: int, depth: int, params, x_Nx2) -> np.ndarray:
    """One width x depth net's prediction [N] under the config's precision, in float32."""
    model = MLP(widths=(width,) * depth, **get_policy(config.precision).model_dtypes())
    return np.asarray(model.apply({"params": params}, x_Nx2).astype(jnp.float32))[:, 0]


def _grid(config) -> tuple[Target, dict]:
    """The bump target on D = [-1, 1]^2 and its values on the grid_side x grid_side grid."""
    target = Target(name="radial_bump", dim=2, fn=lambda x: radial_bump(x, config.radius),
                    sample_inputs=lambda key, n: jax.random.uniform(key, (n, 2), minval=-1.0,
                                                                    maxval=1.0))
    axis = jnp.linspace(-1.0, 1.0, config.grid_side)
    grid_x = jnp.stack(jnp.meshgrid(axis, axis, indexing="xy"), axis=-1).reshape(-1, 2)
    return target, {"x": grid_x, "y": target.fn(grid_x)}


def compute_grid(config: ml_collections.ConfigDict, log) -> dict:
    """Part "grid": trains the width x depth grid on the bump; sup error and RMSE per seed
    ("width,depth" -> [S]), and for the narrow and the wide width the parameters of the best
    net over depths and seeds (for the figure)."""
    _check(config)
    target, grid = _grid(config)
    sup, rmse, params = {}, {}, {}
    for width in config.widths:
        for depth in config.depths:
            key = f"{width},{depth}"
            sup[key], rmse[key], params[key] = _train(width, depth, target, grid, config, log)
    best_net = {}
    for width in (config.narrow_width, config.wide_width):
        depth = min(config.depths, key=lambda L, w=width: sup[f"{w},{L}"].min())
        seed = int(np.argmin(sup[f"{width},{depth}"]))
        best_net[str(width)] = {"depth": depth, "sup_error": float(sup[f"{width},{depth}"][seed]),
                                "params": jax.tree.map(lambda a, s=seed: a[s],
                                                       params[f"{width},{depth}"])}
    wide_best, narrow_best = (np.asarray([sup[f"{w},{L}"].min() for L in config.depths])
                              for w in (config.wide_width, config.narrow_width))

    def table(values, reduce):
        return {str(w): [float(reduce(values[f"{w},{L}"])) for L in config.depths]
                for w in config.widths}

    return {
        "depths": list(config.depths),
        "floor_measured": min(float(sup[f"{config.narrow_width},{L}"].min())
                              for L in config.depths),
        "wide_best_at_largest_depth": float(sup[f"{config.wide_width},{config.depths[-1]}"].min()),
        "wide_falls_fraction": float(np.mean(np.diff(wide_best) < 0)),
        # The controls: each width-3 measurement made on the width-2 nets, and vice versa.
        "wide_smallest": float(wide_best.min()),
        "narrow_best_at_largest_depth": float(narrow_best[-1]),
        "narrow_falls_fraction": float(np.mean(np.diff(narrow_best) < 0)),
        "sup_error": sup, "rmse": rmse, "best_net": best_net,
        "best_sup_error": table(sup, np.min), "median_sup_error": table(sup, np.median),
        "best_rmse": table(rmse, np.min), "median_rmse": table(rmse, np.median),
    }


def judge_grid(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The floor against the width-3 nets' smallest error; width 3 at the largest depth and its
    fall with depth, each against the same measurement of the width-2 nets."""
    narrow, wide = f"width-{config.narrow_width} nets", f"width-{config.wide_width} nets"
    return {"narrow_nets_above_floor": Measured(
                m["floor_measured"], baseline=m["wide_smallest"], baseline_name=wide),
            "wide_nets_break_floor": Measured(
                m["wide_best_at_largest_depth"], baseline=m["narrow_best_at_largest_depth"],
                baseline_name=narrow),
            "wide_error_falls_with_depth": Measured(
                m["wide_falls_fraction"], baseline=m["narrow_falls_fraction"],
                baseline_name=narrow)}


PARTS = (
    Part("grid", compute_grid, judge_grid,
         reads=("seeds", "batch_size", "grid_side", "radius", "narrow_width", "wide_width",
                "widths", "depths", "steps", "precision", "optimizer")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """The bump, the best width-2 and width-3 nets with their level-1/2 sets, and the best
    errors against depth beside the floor."""
    import matplotlib.pyplot as plt

    grid = m["grid"]
    n = config.grid_side
    fig = plt.figure(figsize=(15, 4.4))
    ax_t, ax_n, ax_w = (fig.add_subplot(1, 4, i) for i in (1, 2, 3))
    ax_e = fig.add_subplot(1, 4, 4)
    extent = (-1, 1, -1, 1)
    _, points = _grid(config)
    ax_t.imshow(np.asarray(points["y"]).reshape(n, n), extent=extent, origin="lower",
                vmin=0, vmax=1)
    ax_t.set_title("target bump (support: disc)", fontsize=9)
    for ax, width in ((ax_n, config.narrow_width), (ax_w, config.wide_width)):
        best = grid["best_net"][str(width)]
        params = jax.tree.map(jnp.asarray, best["params"], is_leaf=lambda v: isinstance(v, list))
        img = _predict(config, width, best["depth"], params, points["x"]).reshape(n, n)
        ax.imshow(img, extent=extent, origin="lower", vmin=0, vmax=1)
        ax.contour(np.linspace(-1, 1, n), np.linspace(-1, 1, n), img, levels=[0.5], colors="w")
        ax.set_title(f"best width-{width} net (depth {best['depth']})\nsup error "
                     f"{best['sup_error']:.3f}; white: level 1/2", fontsize=9)
    depths = np.asarray(config.depths)
    for j, width in enumerate(config.widths):
        ax_e.plot(depths, grid["best_sup_error"][str(width)], "o-", c=f"C{j}",
                  label=f"width {width}: best sup error")
        ax_e.plot(depths, grid["best_rmse"][str(width)], "s--", c=f"C{j}",
                  alpha=0.6, label=f"width {width}: best RMSE")
    ax_e.axhline(config.floor, c="k", lw=2, label="floor for width <= d (theorem)")
    ax_e.set(xscale="log", yscale="log", xlabel="depth (hidden layers)", ylabel="error",
             title="Error vs depth")
    ax_e.set_xticks(depths, [str(d) for d in depths], minor=False)
    ax_e.set_xticks([], minor=True)
    ax_e.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return [report.save_figure(fig, workdir, "width_limits.png")]


