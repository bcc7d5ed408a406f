"""Residual connections keep gradients and training alive at depth; plain nets lose both
(He et al. 2016; Balduzzi et al. 2017).

Claims. He, Zhang, Ren & Sun 2016 ("Deep residual learning for image recognition", CVPR,
Sec. 4.1, Fig. 4 / Table 2): plain networks get worse *training* error as they get deeper,
residual networks of the same depth do not. Balduzzi et al. 2017 ("The shattered gradients
problem", ICML, Sec. 3) and Veit et al. 2016: in plain feed-forward nets the gradient reaching
the first layer decays exponentially with depth (or, at other scales, explodes), while skip
connections keep it at a depth-independent scale. Theory for the plain net at standard
(LeCun, Var w = 1/fan_in) initialisation with ReLU: each layer halves the second moment of the
back-propagated signal (He, Zhang, Ren & Sun 2015, "Delving deep into rectifiers", Eq. 14,
with (1/2) n Var w = 1/2), so log ||dL/dW_1|| = c - (ln 2 / 2) depth: slope -0.347 per layer
(finite width n adds about -5/(4n) per layer, Hanin 2018, i.e. -0.04 at n = 32).
For the pre-LN residual net h_{l+1} = h_l + W_l relu(LN(h_l)): ||h_l||^2 grows linearly,
~ ||h_0||^2 + l c, the back-propagated signal gains a factor (1 + c / ||h_l||^2) per block and
loses 1 / ||h_L|| at the read-out LayerNorm, so ||dL/dh_0||^2 ~ prod_l (1 + c/(||h_0||^2 + l c))
/ ||h_L||^2 = 1 / ||h_0||^2: independent of depth (a mean-field heuristic).

Measured. `ResidualMLP` (dl_theory/models/residual.py) on MNIST-1D (a `num_train` subset of the
training split), width `width`, depths 2..64, plain (residual=False, no LayerNorm) and
residual (residual=True, pre_ln=True), identical parameter trees. (1) At initialisation, over
`grad_seeds` seeds: the Frobenius norm of the cross-entropy gradient (full subset) with respect
to the first layer's kernel. The plain net's log-norm vs depth is fitted by least squares
(`fit_loglog_slope` on x = e^depth, i.e. the semi-log slope per layer, with a bootstrap
interval over seeds); claims: the whole interval is <= `max_plain_slope` = -0.1 (clearly
nonzero: >= 10 % shrinkage per layer), and lies in -ln2/2 +- `slope_tolerance` = 0.1 (the
finite-width correction is ~0.04). For the residual net: max/min over depths of the seed
geometric-mean norm <= `max_residual_ratio` = 10 (the theory says ~1; the plain net's ratio
over the same depths is 2^31 ~ 2e9 by the same theory). (2) Training with SGD + momentum
(He et al. 2016's optimiser; Adam would rescale the vanished gradients away) for `steps` steps
at depths `train_depths`: final training loss (full subset, seed mean). Claims: plain
loss(64) / loss(4) >= `min_plain_loss_ratio` = 2 (">>": the depth-64 plain net barely leaves
the chance level ln 10 = 2.3 while depth 4 fits); residual loss(64) <= `residual_loss_tolerance`
= 1.25 x loss(4) (no degradation; 25 % leaves room for seed noise of the short run).
Controls: each variant is the other's; the plain claims record the residual net's slope and
loss ratio, the residual claims the plain net's max/min and loss ratio (same run).

Run: python launch.py --config=experiments/residual_depth.py:quick --workdir=runs/rd
Quick-preset result: plain slope -0.389 [-0.398, -0.379] per layer (theory -0.347 - 0.04
finite-width = -0.387); residual max/min 1.24; plain loss(64)/loss(4) = 15 (depth 64 stays at
ln 10), residual 0.85. The step budget matters: after 600 steps the depth-64 residual net is
still behind (ratio 2.9); by 1500 steps, when the depth-4 nets have fitted, it has caught up.
quick: width 32, 1000 examples, 8 gradient seeds, 2 training seeds, depths 4 and 64 trained
for 1500 steps; 57 s measured at load average ~3 on 2 CPU cores. paper: width 64, the 4000
training examples, 16 / 3 seeds, depths 2..128 for the gradients, 3000 steps at depths
4..64, ~15 min (not run).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN, load_mnist1d
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models.residual import ResidualMLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, fit_loglog_slope

HE = "he2016, Sec. 4.1, Fig. 4; he2015, Eq. 14"
BALDUZZI = "balduzzi2017, Sec. 3; veit2016"
PLAIN_SLOPE = -np.log(2.0) / 2.0  # per layer, ReLU at LeCun init (He et al. 2015, Eq. 14)
VARIANTS = {"plain": dict(residual=False, pre_ln=False),
            "residual": dict(residual=True, pre_ln=True)}

CLAIMS = (
    ClaimSpec("plain_gradient_decays_exponentially",
              "At standard init the first-layer gradient norm of plain nets decays "
              "exponentially with depth: semi-log slope of log-norm vs depth (per layer); "
              "the residual net's is not.",
              BALDUZZI, at_most="max_plain_slope"),
    ClaimSpec("plain_slope_matches_he_init_theory",
              "The semi-log slope equals -ln(2)/2 per layer, the second-moment halving of "
              "ReLU layers at Var w = 1/fan_in.", HE,  # -ln(2)/2 +- slope_tolerance (judge)
              published=Published(round(float(PLAIN_SLOPE), 4),
                                  "he2015, Eq. 14 at Var w = 1/fan_in: slope -ln(2)/2")),
    ClaimSpec("residual_gradient_depth_independent",
              "With pre-LN residual blocks the first-layer gradient norm stays within a "
              "constant factor over all depths (max/min of the seed geometric means).",
              BALDUZZI, at_most="max_residual_ratio"),
    ClaimSpec("plain_deep_trains_worse",
              "A deep plain net trains worse than a shallow one: final training loss at the "
              "largest depth / at depth 4.", HE, at_least="min_plain_loss_ratio"),
    ClaimSpec("residual_deep_trains_as_well",
              "A deep residual net trains at least as well as a shallow one: final training "
              "loss at the largest depth / at depth 4.", HE, at_most="residual_loss_tolerance"),
)

_PRESETS = {
    "quick": dict(
        precision="float32", width=32, activation="relu", num_train=1000, data_seed=42,
        depths=(2, 4, 8, 16, 32, 64), grad_seeds=8, seeds=2, train_depths=(4, 64),
        steps=1500, batch_size=100,
        optimizer=optimizer_config(name="momentum", learning_rate=0.05),
        max_plain_slope=-0.1, slope_tolerance=0.1, max_residual_ratio=10.0,
        min_plain_loss_ratio=2.0, residual_loss_tolerance=1.25),
    "paper": dict(
        precision="float32", width=64, activation="relu", num_train=4000, data_seed=42,
        depths=(2, 4, 8, 16, 32, 64, 128), grad_seeds=16, seeds=3,
        train_depths=(4, 8, 16, 32, 64), steps=3000, batch_size=128,
        optimizer=optimizer_config(name="momentum", learning_rate=0.05),
        max_plain_slope=-0.1, slope_tolerance=0.1, max_residual_ratio=10.0,
        min_plain_loss_ratio=2.0, residual_loss_tolerance=1.25),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~45 s on 2 cores) or "paper" (wider, deeper, longer)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def build_model(config: ml_collections.ConfigDict, variant: str, depth: int) -> ResidualMLP:
    """The plain or residual net of `depth` blocks (see `VARIANTS`) under the precision policy."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}; known: {sorted(VARIANTS)}")
    return ResidualMLP(NUM_CLASSES, width=config.width, depth=depth,
                       activation=config.activation, **VARIANTS[variant],
                       **get_policy(config.precision).model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the deepest residual net, for `launch.py --dtypes`."""
    return (build_model(config, "residual", max(config.depths)), jnp.zeros((2, SEQ_LEN)),
            build_optimizer(config.optimizer, total_steps=config.steps))


def first_layer_gradient_norms(model, data, seeds) -> np.ndarray:
    """||dL/dW_embed||_F at initialisation for each seed, shape [S]: L the mean cross-entropy
    over all of `data` ({"x": [N, D], "y": [N]}); W_embed the first dense layer's kernel.

    The nets are initialised op by op, outside the gradient's program: compiled into it, the
    initialisation of a 64-block net cost XLA:CPU more than the gradient itself (8.6 against
    2.5 CPU-s per depth, measured), and op by op every layer of every depth reuses the same
    compiled primitives."""
    params = [model.init(jax.random.PRNGKey(seed), data["x"][:2])["params"] for seed in seeds]
    return np.asarray(_gradient_norms(jax.tree.map(lambda *a: jnp.stack(a), *params), data,
                                      model=model))


@functools.partial(jax.jit, static_argnames="model")
def _gradient_norms(params_S, data, *, model):
    def norm(params):
        def loss(p):
            logits = model.apply({"params": p}, data["x"]).astype(jnp.float32)
            return softmax_cross_entropy(logits, data["y"])

        return jnp.linalg.norm(jax.grad(loss)(params)["embed"]["kernel"].astype(jnp.float32))

    return jax.lax.map(norm, params_S)


def _train(config, data, variant, depth, log) -> np.ndarray:
    """Final training loss on all of `data`, per seed [S], after `steps` SGD-momentum steps."""
    model = build_model(config, variant, depth)
    policy = get_policy(config.precision)
    tx = build_optimizer(config.optimizer, total_steps=config.steps)
    seeds = list(range(config.seeds))
    states = create_train_states(model, tx, data["x"][:2], seeds, make_loss_scale(policy))
    states, history = fit_grid(
        states, data, minibatches(config.batch_size), loss=softmax_cross_entropy,
        steps=config.steps, data_seeds=seeds, eval_data=data,
        eval_every=max(1, config.steps // 3), accumulate_steps=config.optimizer.accumulate_steps,
        policy=policy, log=log, tags={"variant": variant, "depth": depth},
        label=f"{variant} depth={depth}", allow_nonfinite=True)
    return np.asarray(history["eval_loss"][:, -1])


def _figure(config, grads, slope, losses, workdir) -> str:
    import matplotlib.pyplot as plt

    fig, (ax_g, ax_l) = plt.subplots(1, 2, figsize=(12, 4.6))
    depths = np.asarray(config.depths, dtype=float)
    for variant, marker in (("plain", "o"), ("residual", "s")):
        g = grads[variant]
        geo = np.exp(np.log(g).mean(0))
        ax_g.semilogy(depths, geo, marker, label=f"{variant}, measured (geo. mean)")
        ax_g.fill_between(depths, g.min(0), g.max(0), alpha=0.2)
    plain = np.exp(np.log(grads["plain"]).mean(0))
    anchor = np.log(plain).mean() - slope.value * depths.mean()
    ax_g.semilogy(depths, np.exp(anchor + slope.value * depths), "C0--",
                  label=f"fit: slope {slope.value:.3f} [{slope.lo:.3f}, {slope.hi:.3f}]")
    ax_g.semilogy(depths, plain[0] * np.exp(PLAIN_SLOPE * (depths - depths[0])), "k:",
                  label="theory: slope -ln(2)/2 (He et al. 2015)")
    res = np.exp(np.log(grads["residual"]).mean())
    band = np.sqrt(config.max_residual_ratio)
    ax_g.axhspan(res / band, res * band, color="C1", alpha=0.08,
                 label=f"residual theory: constant (band x/ sqrt({config.max_residual_ratio:g}))")
    ax_g.set(xlabel="depth (blocks)", ylabel="||dL/dW_1|| at init",
             title=f"First-layer gradient at init, width {config.width}")
    ax_g.legend(fontsize=7)
    train_depths = np.asarray(config.train_depths)
    for variant, marker in (("plain", "o-"), ("residual", "s-")):
        ax_l.plot(train_depths, losses[variant].mean(0), marker, label=variant)
    ax_l.axhline(np.log(NUM_CLASSES), c="gray", ls=":", label="chance (ln 10)")
    lr = config.optimizer.learning_rate
    ax_l.set(xscale="log", yscale="log", xlabel="depth (blocks)", ylabel="final training loss",
             title=f"After {config.steps} SGD-momentum steps (lr {lr:g})")
    ax_l.set_xticks(train_depths, [str(d) for d in train_depths])
    ax_l.minorticks_off()
    ax_l.legend(fontsize=8)
    return report.save_figure(fig, workdir, "residual_depth.png")


def _data(config) -> dict:
    """The first `num_train` examples of MNIST-1D's training split."""
    split = load_mnist1d(seed=config.data_seed)["train"]
    return {"x": jnp.asarray(split["x"][:config.num_train]),
            "y": jnp.asarray(split["y"][:config.num_train])}


MODEL_KEYS = ("precision", "width", "activation", "num_train", "data_seed")


def compute_gradients(config, log) -> dict:
    """Part "gradients": first-layer gradient norms at init over depths; the plain slope."""
    data, seeds = _data(config), list(range(config.grad_seeds))
    grads = {v: np.stack([first_layer_gradient_norms(build_model(config, v, d), data, seeds)
                          for d in config.depths], axis=1) for v in VARIANTS}
    # log g = a + b depth is the log-log fit of g against x = e^depth.
    exp_depths = np.exp(np.asarray(config.depths, dtype=np.float64))
    slope = fit_loglog_slope(exp_depths, grads["plain"])
    geo = {v: np.exp(np.log(grads[v]).mean(0)) for v in VARIANTS}
    # Each variant's statistic is the other's control: the residual slope, the plain max/min.
    return {"depths": list(config.depths), "grad_norm": grads,
            "plain_slope": [slope.value, slope.lo, slope.hi],
            "residual_slope": float(fit_loglog_slope(exp_depths, grads["residual"]).value),
            "plain_slope_theory": float(PLAIN_SLOPE),
            "residual_max_over_min": float(geo["residual"].max() / geo["residual"].min()),
            "plain_max_over_min": float(geo["plain"].max() / geo["plain"].min())}


def judge_gradients(config, m) -> dict:
    """The plain slope (twice: sign and theory band) and the residual max/min, each with the
    other variant's statistic as the control."""
    slope = Estimate(*m["plain_slope"])
    residual = {"baseline": m["residual_slope"],
                "baseline_name": "the residual net's slope over the same depths"}
    return {"plain_gradient_decays_exponentially": Measured(slope, **residual),
            "plain_slope_matches_he_init_theory": Measured(
                slope, at_least=PLAIN_SLOPE - config.slope_tolerance,
                at_most=PLAIN_SLOPE + config.slope_tolerance, **residual),
            "residual_gradient_depth_independent": Measured(
                m["residual_max_over_min"], baseline=m["plain_max_over_min"],
                baseline_name="the plain net's max/min over the same depths")}


def judge_training(config, m) -> dict:
    """Deep over shallow training loss of each variant, the other variant's as the control."""
    ratio = m["deep_over_shallow_loss"]
    return {"plain_deep_trains_worse": Measured(
                ratio["plain"], baseline=ratio["residual"],
                baseline_name="the residual net's ratio (same depths and training)"),
            "residual_deep_trains_as_well": Measured(
                ratio["residual"], baseline=ratio["plain"],
                baseline_name="the plain net's ratio (same depths and training)")}


def compute_training(config, log) -> dict:
    """Part "training": final training loss of plain and residual nets at `train_depths`."""
    if 4 not in config.train_depths:
        raise ValueError(f"train_depths={tuple(config.train_depths)} must contain 4, the "
                         "shallow reference of the training claims")
    data = _data(config)
    losses = {v: np.stack([_train(config, data, v, d, log) for d in config.train_depths], 1)
              for v in VARIANTS}
    shallow, deep = list(config.train_depths).index(4), int(np.argmax(config.train_depths))
    ratio = {v: float(losses[v][:, deep].mean() / losses[v][:, shallow].mean())
             for v in VARIANTS}
    return {"train_depths": list(config.train_depths), "final_train_loss": losses,
            "deep_over_shallow_loss": ratio}


PARTS = (
    Part("gradients", compute_gradients, judge_gradients,
         reads=(*MODEL_KEYS, "depths", "grad_seeds")),
    Part("training", compute_training, judge_training,
         reads=(*MODEL_KEYS, "train_depths", "seeds", "steps", "batch_size", "optimizer")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Gradient norm at init against depth, and final training loss against depth."""
    grads = {v: np.asarray(g) for v, g in m["gradients"]["grad_norm"].items()}
    losses = {v: np.asarray(x) for v, x in m["training"]["final_train_loss"].items()}
    return [_figure(config, grads, Estimate(*m["gradients"]["plain_slope"]), losses, workdir)]
