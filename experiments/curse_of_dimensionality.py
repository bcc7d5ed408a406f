"""Structure-matched deep nets avoid the curse of dimensionality (Poggio et al. 2017, Thm 1/2).

Theorems. Poggio, Mhaskar, Rosasco, Miranda, Liao (2017, "Why and when can deep-but-not-shallow
networks avoid the curse of dimensionality", Thm 1 and Thm 2): to approximate a function of d
variables with smoothness m to accuracy eps, a shallow network needs N = O(eps^{-d/m}) units
(and this is the best possible for generic such functions), while if the function is
hierarchically compositional - a binary tree of 2-variable functions of smoothness m - a deep
network with the same tree structure needs N = O((d - 1) eps^{-2/m}) units: linear in d.
Schmidt-Hieber (2020, "Nonparametric regression using deep neural networks with ReLU activation
function", Thm 1 and Sec. 4): in samples, least squares over deep nets reaches the rate
n^{-2 beta / (2 beta + t)} on compositions whose pieces depend on t = 2 variables, whatever d,
while any method on generic beta-smooth d-variate functions is limited to n^{-2 beta/(2 beta + d)}.
Bach (2017, "Breaking the curse of dimensionality with convex neural networks", Sec. 4-5): kernel
methods (RKHS) and shallow nets adapt at best to low-dimensional *projections*, not to
compositions. The curse is about structure: on a generic smooth target every method pays.

Targets on x ~ U[-1, 1]^d, d a power of two. Compositional: a binary tree whose nodes are
g(a, b) = sin(p a + q b + r a b) with node coefficients p, q ~ +-U[1, 2], r ~ U[-1, 1] (values
stay in [-1, 1], so every level sees inputs of the same range). Generic: a random-feature draw of
a Gaussian process with an isotropic RBF kernel of per-coordinate bandwidth `bandwidth`,
f(x) = sqrt(2 / F) sum_k a_k cos(omega_k . x + b_k), omega_k ~ N(0, bandwidth^2 I_d): every
coordinate interacts with every other, at the same smoothness per coordinate for every d.

Methods, each given n training samples (the budget is the number of samples, the axis on which
all three are comparable; Poggio's parameter counts grow with it as the methods are sized):
(a) deep: a tree network with the target's structure, one small MLP (2 -> node_width -> 1) per
node, (d - 1)(4 node_width + 1) parameters; (b) shallow: one hidden layer of `shallow_width`;
both tanh, Adam on minibatches of the n samples, fixed steps, best of `restarts` initialisations
by validation error (the ERM proxy: a single run of the 3-level tree net can stall at an
optimisation floor), all (seed, n, restart) members of one d trained as one `fit_grid` program
(data padded to the largest n; each member samples its own first n).
(c) kernel ridge regression with an RBF kernel, lengthscale and ridge tuned on a held-out
validation set (`dl_theory.theory.kernel_ridge`). Error: test MSE / Var f (relative error).

Budget to reach an error eps: with e(n) the seed-mean relative error on the grid
n_k = n_0 2^k, n*(eps) is the first crossing of eps, found by linear interpolation of log e
against log n between the last grid point above eps and the first below it. If the largest
grid point is still above eps, n* is censored (> n_max); a claim that n* is small then fails and
a claim that n* is large uses n_max (a lower bound). The growth of the budget with d is the
exponent p = log(n*(d_max) / n*(d_min)) / log(d_max / d_min) (p = 1: linear in d), with a
percentile-bootstrap interval over seeds (seeds resampled independently per d).

Run: python launch.py --config=experiments/curse_of_dimensionality.py:quick --workdir=runs/cod
quick: d = 4, 8; n = 64..1024; 2 seeds x 1 restart; 39 s wall at load 2 on 2 cores (with two
restarts: 127 s, same verdicts). paper: d = 4, 8, 16; 4 restarts;
n = 64..4096; 5 seeds; 4000 steps (Poggio et al. use d = 8 and growing widths; this is the
sample-budget analogue a 2-core CPU runs in ~20 min).
"""


import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.synthetic import Target
from dl_theory.experiment import ClaimSpec, Result, check, config_from_presets
from dl_theory.models.mlp import MLP, get_activation
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory.kernel_ridge import kernel_ridge_predict, tune_kernel_ridge
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, fit_loglog_slope

POGGIO = "Poggio et al. 2017, Thm 1 and Thm 2"
SCHMIDT_HIEBER = "Schmidt-Hieber 2020, Thm 1"
BACH = "Bach 2017, Sec. 4-5"
METHODS = ("deep", "shallow", "kernel")

CLAIMS = (
    ClaimSpec("deep_budget_grows_slowly_on_compositional",
              "On the compositional target the samples a structure-matched deep net needs to "
              "reach the error level grow at most about linearly in d: budget exponent p <= 1.5 "
              "(whole interval).", POGGIO + "; " + SCHMIDT_HIEBER, expected_holds=False,
              why="measured: the tree-matched deep net's own budget grows faster than the "
                  "claimed rate in the quick preset (see the docstring)"),
    ClaimSpec("shallow_budget_grows_fast_on_compositional",
              "On the compositional target a shallow net needs a budget growing much faster "
              "with d: p >= 2 (whole interval).", POGGIO + "; " + BACH),
    ClaimSpec("kernel_budget_grows_fast_on_compositional",
              "On the compositional target tuned RBF kernel ridge regression needs a budget "
              "growing much faster with d: p >= 2 (whole interval).", BACH),
    ClaimSpec("deep_beats_shallow_and_kernel_at_largest_d",
              "At the largest d the deep net reaches the error level with fewer samples than the "
              "best of shallow and kernel (ratio n*_deep / min(n*_shallow, n*_kernel)).",
              POGGIO),
    ClaimSpec("every_method_cursed_on_generic",
              "On the generic (non-compositional) smooth target no method, the deep net "
              "included, reaches the error level at the largest d with the largest budget "
              "(smallest seed-mean relative error over methods at (d_max, n_max) >= eps).",
              POGGIO + " (Thm 1: lower bound for generic functions)"),
)

_PRESETS = {
    "quick": dict(
        seeds=2, dims=(4, 8), sample_sizes=(64, 128, 256, 512, 1024), num_val=256,
        num_test=4096, error_level=0.2, target_seed=0, num_bootstrap=1000,
        max_deep_exponent=1.5, min_cursed_exponent=2.0,
        generic=dict(num_features=256, bandwidth=1.5),
        nets=dict(node_width=16, shallow_width=256, activation="tanh", steps=2000,
                  batch_size=128, restarts=1,
                  optimizer=optimizer_config(name="adam", learning_rate=1e-2, schedule="cosine")),
        kernel=dict(lengthscales=(0.25, 0.5, 1.0, 2.0), ridges=(1e-5, 1e-4, 1e-3, 1e-2))),
    "paper": dict(
        seeds=5, dims=(4, 8, 16), sample_sizes=(64, 128, 256, 512, 1024, 2048, 4096),
        num_val=512, num_test=8192, error_level=0.2, target_seed=0, num_bootstrap=2000,
        max_deep_exponent=1.5, min_cursed_exponent=2.0,
        generic=dict(num_features=512, bandwidth=1.5),
        nets=dict(node_width=32, shallow_width=512, activation="tanh", steps=4000,
                  batch_size=128, restarts=4,
                  optimizer=optimizer_config(name="adam", learning_rate=1e-2, schedule="cosine")),
        kernel=dict(lengthscales=(0.125, 0.25, 0.5, 1.0, 2.0, 4.0),
                    ridges=(1e-5, 1e-4, 1e-3, 1e-2))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests: d = 4, 8) or "paper" (d = 4, 8, 16, larger n; not run here)."""
    return config_from_presets(_PRESETS, preset)


def _check_power_of_two(dim: int) -> None:
    if dim < 2 or dim & (dim - 1):
        raise ValueError(f"dim={dim}; a binary tree needs a power of two >= 2")


def _uniform_cube(dim: int):
    return lambda key, num: jax.random.uniform(key, (num, dim), minval=-1.0, maxval=1.0)


def compositional_tree_target(dim: int, seed: int = 0) -> Target:
    """f = binary tree of g_j(a, b) = sin(p_j a + q_j b + r_j a b) on U[-1, 1]^dim; [N, dim] ->
    [N, 1]. Level l has dim / 2^(l+1) nodes; leaves pair (x_1, x_2), (x_3, x_4), ...
    (Poggio et al. 2017, Fig. 1c: the hierarchically local compositional functions)."""
    _check_power_of_two(dim)
    rng = np.random.default_rng(seed)
    levels = []
    width = dim // 2
    while width >= 1:
        signs = rng.choice([-1.0, 1.0], size=(2, width))
        levels.append((jnp.asarray(signs[0] * rng.uniform(1, 2, width), jnp.float32),
                       jnp.asarray(signs[1] * rng.uniform(1, 2, width), jnp.float32),
                       jnp.asarray(rng.uniform(-1, 1, width), jnp.float32)))
        width //= 2

    def fn(x_NxD):
        h = x_NxD
        for p, q, r in levels:
            a, b = h[:, 0::2], h[:, 1::2]
            h = jnp.sin(p[None] * a + q[None] * b + r[None] * a * b)
        return h

    return Target(name=f"tree_d{dim}", dim=dim, fn=fn, sample_inputs=_uniform_cube(dim))


def generic_smooth_target(dim: int, *, num_features: int, bandwidth: float,
                          seed: int = 0) -> Target:
    """f(x) = sqrt(2/F) sum_k a_k cos(omega_k . x + b_k), omega_k ~ N(0, bandwidth^2 I),
    a_k ~ N(0, 1), b_k ~ U[0, 2 pi]: a random-feature draw of a GP with kernel
    exp(-bandwidth^2 ||x - x'||^2 / 2) (Rahimi & Recht 2007) on U[-1, 1]^dim; [N, dim] -> [N, 1]."""
    if dim < 1 or num_features < 1 or bandwidth <= 0:
        raise ValueError(f"generic_smooth_target(dim={dim}, num_features={num_features}, "
                         f"bandwidth={bandwidth}): all must be positive")
    rng = np.random.default_rng(10_000 + seed)
    omega = jnp.asarray(bandwidth * rng.normal(size=(dim, num_features)), jnp.float32)
    phase = jnp.asarray(rng.uniform(0, 2 * np.pi, num_features), jnp.float32)
    amp = jnp.asarray(rng.normal(size=(num_features, 1)) * math.sqrt(2.0 / num_features),
                      jnp.float32)

    def fn(x_NxD):
        return jnp.cos(x_NxD @ omega + phase[None]) @ amp

    return Target(name=f"generic_d{dim}", dim=dim, fn=fn, sample_inputs=_uniform_cube(dim))


class TreeNet(nn.Module):
    """A deep net with the binary-tree structure of `compositional_tree_target`: each node maps
    its two inputs through 2 -> node_width -> 1 (activation in between); shape [B, D] -> [B, 1],
    D a power of two; (D - 1)(4 node_width + 1) parameters (Poggio et al. 2017, Thm 2)."""

    node_width: int = 16
    activation: str = "tanh"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics
        _check_power_of_two(x_BxD.shape[1])
        act = get_activation(self.activation)
        h, level, w = x_BxD.astype(self.dtype), 0, self.node_width
        while h.shape[1] > 1:
            m = h.shape[1] // 2
            pairs_BxMx2 = h.reshape(h.shape[0], m, 2)
            w1 = self.param(f"w1_{level}", nn.initializers.normal(1.0 / math.sqrt(2.0)),
                            (m, 2, w), self.param_dtype)
            b1 = self.param(f"b1_{level}", nn.initializers.normal(1.0), (m, w), self.param_dtype)
            w2 = self.param(f"w2_{level}", nn.initializers.normal(1.0 / math.sqrt(w)), (m, w),
                            self.param_dtype)
            b2 = self.param(f"b2_{level}", nn.initializers.zeros, (m,), self.param_dtype)
            z_BxMxW = jnp.einsum("bmi,miw->bmw", pairs_BxMx2, w1.astype(self.dtype)) + b1[None]
            h = jnp.einsum("bmw,mw->bm", act(z_BxMxW), w2.astype(self.dtype)) + b2[None]
            level += 1
        return h


def _prefix_sampler(batch_size: int):
    """Minibatches (with replacement) from the first data["n"] rows of padded data, so members
    with different sample sizes train in one vmapped program."""

    def sample(data, key):
        idx = jax.random.randint(key, (batch_size,), 0, data["n"])
        return {"x": data["x"][idx], "y": data["y"][idx]}

    return sample


def _train_nets(model, train, val, test, config, log, label) -> np.ndarray:
    """Relative test errors [S, K] of `model` trained on the first n_k samples of each seed's
    training set, best of `nets.restarts` initialisations by validation error (the ERM proxy;
    the kernel is tuned on the same validation set); all members as one fit_grid program."""
    sizes, seeds = list(config.sample_sizes), list(range(config.seeds))
    restarts = config.nets.restarts
    members = [(s, n, r) for s in seeds for n in sizes for r in range(restarts)]
    data = {"x": jnp.stack([train[s]["x"] for s, _, _ in members]),
            "y": jnp.stack([train[s]["y"] for s, _, _ in members]),
            "n": jnp.asarray([n for _, n, _ in members], jnp.int32)}
    tx = build_optimizer(config.nets.optimizer, total_steps=config.nets.steps)
    states = create_train_states(model, tx, test["x"][:2],
                                 [7919 * s + 101 * r + n for s, n, r in members])
    states, _ = fit_grid(states, data, _prefix_sampler(config.nets.batch_size),
                         loss=mean_squared_error, steps=config.nets.steps, data_axis=0,
                         data_seeds=[31 * s + 7 * r + n for s, n, r in members], log=log,
                         tags={"model": label}, label=label, verbose=False)

    def mse(params, batch):
        return jnp.mean((model.apply({"params": params}, batch["x"]) - batch["y"]) ** 2)

    shape = (len(seeds), len(sizes), restarts)
    val_mse = np.asarray(jax.vmap(mse, in_axes=(0, None))(states.params, val)).reshape(shape)
    test_mse = np.asarray(jax.vmap(mse, in_axes=(0, None))(states.params, test)).reshape(shape)
    best = np.argmin(val_mse, axis=2)[..., None]
    return np.take_along_axis(test_mse, best, axis=2)[..., 0] / float(jnp.var(test["y"]))


def _kernel_errors(train, val, test, config) -> np.ndarray:
    """Relative test errors [S, K] of validation-tuned RBF kernel ridge regression."""
    out = np.zeros((config.seeds, len(config.sample_sizes)))
    var = float(jnp.var(test["y"]))
    for s in range(config.seeds):
        for k, n in enumerate(config.sample_sizes):
            sel = tune_kernel_ridge(train[s]["x"][:n], train[s]["y"][:n], val["x"], val["y"],
                                    config.kernel.lengthscales, config.kernel.ridges)
            pred = kernel_ridge_predict(sel.fit, test["x"])
            out[s, k] = float(jnp.mean((pred - test["y"]) ** 2)) / var
    return out


def budget_to_reach(sizes_K, errors_K, level: float) -> tuple[float, str]:
    """(n*, status): the first crossing of `level` by the error curve, interpolated linearly in
    (log n, log e) between the grid points around it. status "exact"; "above_grid" (never reached,
    n* returned as the largest n, a lower bound) or "below_grid" (reached at the first point, n*
    returned as the smallest n, an upper bound)."""
    sizes = np.asarray(sizes_K, dtype=float)
    errors = np.asarray(errors_K, dtype=float)
    below = np.flatnonzero(errors <= level)
    if below.size == 0:
        return float(sizes[-1]), "above_grid"
    k = int(below[0])
    if k == 0:
        return float(sizes[0]), "below_grid"
    log_n0, log_n1 = np.log(sizes[k - 1]), np.log(sizes[k])
    log_e0, log_e1 = np.log(errors[k - 1]), np.log(errors[k])
    frac = (np.log(level) - log_e0) / (log_e1 - log_e0)
    return float(np.exp(log_n0 + frac * (log_n1 - log_n0))), "exact"


def _exponent(config, errors_by_dim: dict, conservative: str, resample=None) -> float:
    """Budget exponent p between the smallest and largest d. `conservative`: "high" (censoring
    makes p unknown -> inf, for claims that p is small) or "low" (censored budgets used as
    bounds, for claims that p is large)."""
    d_lo, d_hi = min(config.dims), max(config.dims)
    budgets = {}
    for d in (d_lo, d_hi):
        errors = errors_by_dim[d] if resample is None else errors_by_dim[d][resample[d]]
        budgets[d] = budget_to_reach(config.sample_sizes, errors.mean(0), config.error_level)
    (n_lo, s_lo), (n_hi, s_hi) = budgets[d_lo], budgets[d_hi]
    if conservative == "high" and (s_lo == "below_grid" or s_hi == "above_grid"):
        return math.inf
    if conservative == "low" and s_lo == "above_grid":
        return -math.inf  # neither budget is known from below: no lower bound on p
    return math.log(n_hi / n_lo) / math.log(d_hi / d_lo)


def _exponent_estimate(config, errors_by_dim: dict, conservative: str) -> Estimate:
    """p with a percentile-bootstrap interval: seeds resampled independently for each d."""
    rng = np.random.default_rng(0)
    draws = [_exponent(config, errors_by_dim, conservative, resample={
        d: rng.integers(0, config.seeds, config.seeds) for d in config.dims})
        for _ in range(config.num_bootstrap)]
    # "inverted_cdf" returns drawn values, so a censored (infinite) draw stays infinite.
    lo, hi = np.quantile(np.asarray(draws), [0.025, 0.975], method="inverted_cdf")
    return Estimate(_exponent(config, errors_by_dim, conservative), float(lo), float(hi))


def _figure(config, errors, workdir) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    n = np.asarray(config.sample_sizes, dtype=float)
    styles = {"deep": "o-", "shallow": "s--", "kernel": "^:"}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, kind in zip(axes[:2], ("compositional", "generic")):
        for i, d in enumerate(config.dims):
            for method in METHODS:
                ax.loglog(n, errors[kind][method][d].mean(0), styles[method], c=colours[i],
                          label=f"{method}, d={d}")
        ax.axhline(config.error_level, c="gray", ls="-.", label=f"level eps={config.error_level}")
        ax.set(xlabel="training samples n", ylabel="test MSE / Var f",
               title=f"{kind} target")
        ax.legend(fontsize=7, ncol=2)
    ax = axes[2]
    dims = np.asarray(config.dims, dtype=float)
    for kind, marker in (("compositional", "-"), ("generic", "--")):
        for j, method in enumerate(METHODS):
            budgets = [budget_to_reach(n, errors[kind][method][d].mean(0), config.error_level)
                       for d in config.dims]
            ax.loglog(dims, [b for b, _ in budgets], marker + styles[method][0], c=colours[j + 3],
                      label=f"{method}, {kind}")
            for d, (b, status) in zip(dims, budgets):
                if status == "above_grid":
                    ax.annotate("", (d, b * 2), (d, b), arrowprops=dict(arrowstyle="->",
                                                                        color=colours[j + 3]))
    first = budget_to_reach(n, errors["compositional"]["deep"][min(config.dims)].mean(0),
                            config.error_level)[0]
    ax.loglog(dims, first * (dims - 1) / (dims[0] - 1), "k-", lw=2,
              label="Poggio Thm 2: n* ~ (d - 1)")
    ax.loglog(dims, first * (dims / dims[0]) ** 2, "k:", label="p = 2 (claimed floor for curse)")
    ax.set(xlabel="input dimension d", ylabel=f"samples to reach eps = {config.error_level}",
           title="budget vs d (arrow: not reached, lower bound)")
    ax.set_xticks(dims, [str(int(d)) for d in dims])
    ax.minorticks_off()
    ax.legend(fontsize=7)
    return report.save_figure(fig, workdir, "curse_of_dimensionality.png")


def run(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Trains the three methods on both targets for every d and checks the claims."""
    log = MetricsLog.in_workdir(workdir)
    errors = {kind: {m: {} for m in METHODS} for kind in ("compositional", "generic")}
    n_max = max(config.sample_sizes)
    for d in config.dims:
        targets = {"compositional": compositional_tree_target(d, seed=config.target_seed),
                   "generic": generic_smooth_target(d, seed=config.target_seed,
                                                    **config.generic)}
        for kind, target in targets.items():
            train = [target.sample(jax.random.PRNGKey(100 * d + s), n_max)
                     for s in range(config.seeds)]
            val = target.sample(jax.random.PRNGKey(5000 + d), config.num_val)
            test = target.sample(jax.random.PRNGKey(9000 + d), config.num_test)
            nets = {"deep": TreeNet(node_width=config.nets.node_width,
                                    activation=config.nets.activation),
                    "shallow": MLP(widths=(config.nets.shallow_width,),
                                   activation=config.nets.activation)}
            for method, model in nets.items():
                errors[kind][method][d] = _train_nets(model, train, val, test, config, log,
                                                      f"{kind} {method} d={d}")
            errors[kind]["kernel"][d] = _kernel_errors(train, val, test, config)

    comp = errors["compositional"]
    p_deep = _exponent_estimate(config, comp["deep"], "high")
    p_shallow = _exponent_estimate(config, comp["shallow"], "low")
    p_kernel = _exponent_estimate(config, comp["kernel"], "low")
    d_hi = max(config.dims)
    budget = {m: budget_to_reach(config.sample_sizes, comp[m][d_hi].mean(0), config.error_level)
              for m in METHODS}
    deep_ratio = (budget["deep"][0] / min(budget["shallow"][0], budget["kernel"][0])
                  if budget["deep"][1] != "above_grid" else math.inf)
    generic_best = min(float(errors["generic"][m][d_hi][:, -1].mean()) for m in METHODS)
    claims = [
        check(CLAIMS[0], p_deep, at_most=config.max_deep_exponent),
        check(CLAIMS[1], p_shallow, at_least=config.min_cursed_exponent),
        check(CLAIMS[2], p_kernel, at_least=config.min_cursed_exponent),
        check(CLAIMS[3], deep_ratio, at_most=1.0),
        check(CLAIMS[4], generic_best, at_least=config.error_level),
    ]
    figure = _figure(config, errors, workdir)

    metrics = {"sample_sizes": list(config.sample_sizes), "dims": list(config.dims)}
    for kind in errors:
        for m in METHODS:
            metrics[f"{kind}_{m}_relative_error"] = {
                str(d): errors[kind][m][d].tolist() for d in config.dims}
            metrics[f"{kind}_{m}_budget"] = {
                str(d): budget_to_reach(config.sample_sizes, errors[kind][m][d].mean(0),
                                        config.error_level) for d in config.dims}
            metrics[f"{kind}_{m}_error_vs_n_slope"] = {
                str(d): [(e := fit_loglog_slope(config.sample_sizes, errors[kind][m][d])).value,
                         e.lo, e.hi] for d in config.dims}
    metrics["compositional_exponents"] = {
        "deep": [p_deep.value, p_deep.lo, p_deep.hi],
        "shallow": [p_shallow.value, p_shallow.lo, p_shallow.hi],
        "kernel": [p_kernel.value, p_kernel.lo, p_kernel.hi]}
    return Result(claims=claims, metrics=metrics, figures=[figure])
