"""Linear regions of random ReLU nets grow with the neuron count, not with depth (Hanin & Rolnick).

Theorems. Hanin & Rolnick (2019a, "Complexity of linear regions in deep networks", ICML,
Thm 3 and Cor. 5): for a ReLU net with N hidden neurons (bias densities bounded by C_bias,
pre-activation gradient moments by C_grad) the expected number of breakpoints on a segment of
length ell is at most ell * C_grad * C_bias * N: linear in N, whatever the depth. Hanin &
Rolnick (2019b, "Deep ReLU networks have surprisingly few activation patterns", NeurIPS,
Thm 1): for a cube K in R^{n_in}, N >= n_in, E[#regions meeting K] / vol(K) <= (T N)^{n_in} / n_in!
with T = C_grad * C_bias (the power n_in of N, not of the parameter count, and no depth). On a
2-D affine plane (a ReLU net with n_in = 2): regions per unit area <~ (T N)^2 / 2.
Against: the maxima. On a line a net with L hidden layers of width m has at most (2m)^L pieces
(Telgarsky 2015, Lemma 2.1), and a hand-set zigzag net of that architecture attains m^L
(`constructions.zigzag_net`): both grow like N^L at fixed depth. On a plane the maximum is
Serra et al. (2018, Thm 1), ~N^7.9 at L = 4 over N = 64..256. So "random nets lie far below
the maximum" is tested as a growth rate that can fail: the deepest nets' fitted slope must be at
most halfway from H&R's exponent to the maximum's (2.5 on lines, 5 on slices); the zigzag
control (slope 4, counted) and Serra's bound (7.9) fail it. The other claims record controls
too: the zigzag slope for both linear-in-N claims, zigzag nets of each depth at N = 32 (depth
ratio 132) for depth independence, Serra's slope for the quadratic one, and the sawtooth with
one layer fewer (pieces / 2^L = 1/2).

Initialisation (Hanin & Rolnick 2019a, Sec. 6): weights ~ N(0, 2 / fan_in), biases ~
N(0, 1e-6) (tiny but non-zero, so no two neurons' zero sets coincide). Input dimension 8.

Measured (all counts exact, `dl_theory.theory.regions`; nets, segments and slices drawn by
`dl_theory.theory.random_net_regions`): for depths L and total neuron counts N (width N / L),
`nets` random nets per (L, N). (1) Breakpoints (pieces - 1) of each net on
`lines_per_net` segments [a, b], a, b ~ N(0, I), averaged per net (breakpoints, not pieces: H&R's
expectation is linear in them; the offset 1 would bend a log-log fit at small N). (2) The same nets
after `train.steps` of Adam on a random teacher (online samples), on the same segments.
(3) Activation regions met by the square {c + u e1 + v e2 : |u|, |v| <= half_extent}, |c| =
sqrt(n_in), (e1, e2) orthonormal and orthogonal to c, `slices_per_net` per net; N >= 64 so the
deepest nets are >= 16 wide (narrower ones lose units to dead ReLUs). Rates are fitted log-log
slopes (`fit_loglog_slope`, bootstrap over nets). The 2-D overlay draws H&R's bound with T_hat =
(pi / 2) x breakpoints per unit length per neuron from (1): a guide, not a claim.
Parts: line, train, slice, sawtooth. `precision` (or `train.precision`) sets the trained nets'
dtype; all counting is exact float64 arithmetic on their float32 weights.

Run: python launch.py --config=experiments/linear_regions.py:quick --workdir=runs/lr
quick: 27-33 s of CPU; 48-84 s wall measured at load 4-12 on the shared 2 cores. paper: N up to
1024 on lines, 256 on slices, depths 1..8, 10 nets, 2000 training steps (H&R use widths up to
64 x depth 3 on MNIST; the closest synthetic analogue a 2-core CPU runs in ~10 min; not run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data import synthetic
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.constructions import sawtooth_net
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import regions
from dl_theory.theory.random_net_regions import (
    he_normal_layers,
    mean_breakpoints,
    mean_slice_regions,
    stack_layers_as_flax,
    unstack_flax_params,
    zigzag_breakpoints,
)
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import TrainState
from dl_theory.uncertainty import Estimate, fit_loglog_slope

HR_LINE = "hanin2019a, Thm 3 / Cor. 5"
HR_AREA = "hanin2019b, Thm 1"
TELGARSKY = "telgarsky2015, Lemma 2.1; telgarsky2016, Thm 1.1"

# The slope claims' bounds are config ranges (line.slope_range, slice.slope_range): a spec
# names one key per side, so their judges pass the range as Measured bounds.
CLAIMS = (
    ClaimSpec("line_count_linear_in_neurons",
              "At initialisation the number of breakpoints on a random segment grows linearly "
              "with the total neuron count N: the log-log slope of breakpoints vs N is in "
              "[0.8, 1.2] for every depth (the depth whose interval reaches farthest from 1 is "
              "reported); the hand-set zigzag net of the deepest architecture, the baseline, "
              "grows like N^L.", HR_LINE),
    ClaimSpec("line_count_independent_of_depth",
              "At fixed N the breakpoint count hardly depends on depth: at the largest N, the "
              "largest over the smallest depth-mean count is at most 1.5; for zigzag nets of "
              "each depth at N = max(line.control_neurons), the baseline, it is not.", HR_LINE,
              at_most="line.max_depth_ratio"),
    ClaimSpec("line_count_grows_far_slower_than_maximum",
              "For the deepest random nets (L = 4) the breakpoints on a segment grow with N far "
              "slower than the maximum, whose (2m)^L and attaining constructions grow like N^L: "
              "log-log slope (whole interval) at most halfway from H&R's 1 to L.",
              HR_LINE + "; " + TELGARSKY, at_most="line.max_slope_deepest"),
    ClaimSpec("sawtooth_attains_exponential",
              "The sawtooth net with L hidden layers of width 2 has exactly 2^L pieces on [0, 1] "
              "(smallest ratio pieces / 2^L over L; expected exactly 1); the sawtooth with one "
              "layer fewer, the baseline, has half as many.", TELGARSKY,
              at_least=1.0, at_most=1.0),
    ClaimSpec("trained_line_count_linear_in_neurons",
              "After training on a teacher the breakpoint count still grows linearly with N: "
              "log-log slope in [0.8, 1.2] for every trained depth (worst reported), unlike "
              "the zigzag net of the deepest trained architecture (the baseline).",
              "hanin2019a, Sec. 6 (empirical)"),
    ClaimSpec("slice_regions_quadratic_in_neurons",
              "On a 2-D slice the number of activation regions grows like N^2 (the input "
              "dimension of the slice), whatever the depth: log-log slope of regions vs N in "
              "[1.6, 2.4], nets of all depths pooled (H&R's bound has no depth in it); Serra et "
              "al.'s maximum for the deepest architecture, the baseline, grows far faster.",
              HR_AREA),
    ClaimSpec("slice_regions_grow_far_slower_than_maximum",
              "For the deepest random nets (L = 4) the regions on a slice grow with N far slower "
              "than Serra et al.'s maximum for a 2-input net of that architecture (slope ~7.9 "
              "here): log-log slope (whole interval) at most halfway from H&R's 2 to it.",
              HR_AREA + "; serra2018, Thm 1", at_most="slice.max_slope_deepest"),
)

_PRESETS = {
    "quick": dict(
        precision="float32", seeds=6, input_dim=8, bias_std=1e-3, depths=(1, 2, 4),
        sawtooth_depths=(1, 2, 4, 6, 8),
        line=dict(neurons=(16, 32, 64, 128, 256), lines_per_net=8, max_depth_ratio=1.5,
                  max_slope_deepest=2.5, control_neurons=(16, 32), slope_range=(0.8, 1.2)),
        slice=dict(neurons=(64, 128, 256), slices_per_net=2, half_extent=0.5,
                   slope_range=(1.6, 2.4), max_slope_deepest=5.0),
        train=dict(depths=(4,), neurons=(16, 64, 256), steps=600, batch_size=128,
                   teacher_width=32, teacher_depth=2,
                   optimizer=optimizer_config(
                       name="adam", learning_rate=1e-3, schedule="constant"))),
    "paper": dict(
        precision="float32", seeds=10, input_dim=8, bias_std=1e-3, depths=(1, 2, 4, 8),
        sawtooth_depths=(1, 2, 4, 6, 8, 10, 12),
        line=dict(neurons=(16, 32, 64, 128, 256, 512, 1024), lines_per_net=16,
                  max_depth_ratio=1.5, max_slope_deepest=4.5, control_neurons=(16, 32),
                  slope_range=(0.8, 1.2)),  # halfway from 1 to L = 8; Serra's slope is 15.4
        slice=dict(neurons=(64, 128, 256), slices_per_net=4, half_extent=0.5,
                   slope_range=(1.6, 2.4), max_slope_deepest=8.7),
        train=dict(depths=(1, 2, 4, 8), neurons=(16, 32, 64, 128, 256), steps=2000,
                   batch_size=256, teacher_width=64, teacher_depth=3,
                   optimizer=optimizer_config(
                       name="adam", learning_rate=1e-3, schedule="constant"))),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, < 1 min on 2 cores) or "paper" (larger N, more depths and nets)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def _init_nets(config, depth: int, neurons: int) -> list[regions.Layers]:
    """`config.seeds` He-normal nets of `depth` layers of width neurons / depth (the same nets
    are counted at init and trained)."""
    widths = [neurons // depth] * depth
    return [he_normal_layers(np.random.default_rng([depth, neurons, s]), config.input_dim,
                             widths, config.bias_std) for s in range(config.seeds)]


def _mean_breakpoints(config, nets) -> tuple[np.ndarray, np.ndarray]:
    """Per net: mean breakpoints (and per unit length) on the line part's segments; [S]."""
    return mean_breakpoints(nets, config.input_dim, config.line.lines_per_net,
                            first_seed=50_000)


def _policy(config):
    """The training precision: train.precision when set, else the top-level precision."""
    return get_policy(config.train.get("precision") or config.precision)


def _trained_model(config, depth: int, neurons: int) -> MLP:
    """The Flax MLP of `depth` hidden layers of width neurons / depth, under the policy."""
    return MLP(widths=[neurons // depth] * depth, activation="relu",
               **_policy(config).model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the largest trained net, for `launch.py --dtypes`."""
    return (_trained_model(config, max(config.train.depths), max(config.train.neurons)),
            jnp.zeros((2, config.input_dim)),
            build_optimizer(config.train.optimizer, total_steps=config.train.steps))


def _train(config, depth: int, neurons: int, nets, log) -> list[regions.Layers]:
    """The `nets` after config.train.steps of Adam on fresh teacher samples."""
    t = config.train
    policy = _policy(config)
    teacher = synthetic.teacher_network(config.input_dim, width=t.teacher_width,
                                        depth=t.teacher_depth, seed=7)
    model = _trained_model(config, depth, neurons)
    tx = build_optimizer(t.optimizer, total_steps=t.steps)
    seeds = list(range(config.seeds))
    params = stack_layers_as_flax(nets)
    loss_scale = (jax.vmap(lambda _: make_loss_scale(policy))(jnp.asarray(seeds))
                  if policy.loss_scaling else None)  # float16: one dynamic loss scale per net
    # Built directly rather than by create_train_states: the He-normal params replace Flax's
    # LeCun init anyway, and skipping model.init saves a compilation per architecture.
    states = TrainState(step=jnp.zeros(len(seeds), jnp.int32), params=params,
                        opt_state=jax.vmap(tx.init)(params), model_state={},
                        rng=jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds)),
                        apply_fn=model.apply, tx=tx, loss_scale=loss_scale)
    states, _ = fit_grid(states, None, teacher.sampler(t.batch_size), loss=mean_squared_error,
                         steps=t.steps, data_seeds=[2000 + s for s in seeds], policy=policy,
                         log=log, tags={"depth": depth, "neurons": neurons},
                         label=f"train L={depth} N={neurons}", verbose=False)
    return unstack_flax_params(states.params)


def _worst_slope(slopes: dict, target: float) -> Estimate:
    """The slope estimate ({depth: [value, lo, hi]}) whose interval reaches farthest from
    `target`."""
    return max((Estimate(*e) for e in slopes.values()),
               key=lambda e: max(abs(e.lo - target), abs(e.hi - target)))


def _slopes_json(slopes: dict) -> dict:
    return {str(d): [e.value, e.lo, e.hi] for d, e in slopes.items()}


def compute_line(config, log) -> dict:
    """Part "line": breakpoints on random segments of random nets at init, over depths and N."""
    line, densities = {}, []
    for depth in config.depths:
        rows = []
        for n in config.line.neurons:
            counts, density = _mean_breakpoints(config, _init_nets(config, depth, n))
            rows.append(counts), densities.append(density / n)
        line[depth] = np.stack(rows, 1)
    at_largest = [line[d][:, -1].mean() for d in config.depths]
    deepest = max(config.depths)
    # The controls that reach the maximum's growth: zigzag nets of the same depths and widths.
    control = zigzag_breakpoints(deepest, config.line.control_neurons)
    largest = max(config.line.control_neurons)
    control_by_depth = [zigzag_breakpoints(d, [largest])[0] for d in config.depths]
    slopes = {d: fit_loglog_slope(config.line.neurons, line[d]) for d in config.depths}
    return {"line_neurons": list(config.line.neurons),
            "line_breakpoints_init": {str(d): v for d, v in line.items()},
            "line_slope_init": _slopes_json(slopes),
            "breakpoints_per_unit_length_per_neuron": float(np.mean(densities)),
            "depth_ratio_at_largest": float(max(at_largest) / min(at_largest)),
            "zigzag_control_breakpoints": control,
            "zigzag_depth_ratio_at_largest_control": max(control_by_depth) / min(control_by_depth),
            "zigzag_control_slope": fit_loglog_slope(config.line.control_neurons, control).value}


def judge_line(config, m) -> dict:
    """The worst per-depth slope against line.slope_range, the depth ratio, the fraction."""
    zigzag = "hand-set zigzag net of the same depth and width"
    return {"line_count_linear_in_neurons": Measured(
                _worst_slope(m["line_slope_init"], 1.0), *config.line.slope_range,
                baseline=m["zigzag_control_slope"], baseline_name=zigzag),
            "line_count_independent_of_depth": Measured(
                m["depth_ratio_at_largest"], baseline=m["zigzag_depth_ratio_at_largest_control"],
                baseline_name="zigzag nets of each depth"),
            "line_count_grows_far_slower_than_maximum": Measured(
                Estimate(*m["line_slope_init"][str(max(config.depths))]),
                baseline=m["zigzag_control_slope"], baseline_name=zigzag)}


def compute_train(config, log) -> dict:
    """Part "train": breakpoints on the same segments after training the nets on a teacher."""
    trained = {depth: np.stack([
        _mean_breakpoints(config, _train(config, depth, n, _init_nets(config, depth, n), log))[0]
        for n in config.train.neurons], 1) for depth in config.train.depths}
    slopes = {d: fit_loglog_slope(config.train.neurons, trained[d]) for d in trained}
    control = zigzag_breakpoints(max(config.train.depths), config.line.control_neurons)
    return {"train_neurons": list(config.train.neurons),
            "line_breakpoints_trained": {str(d): v for d, v in trained.items()},
            "line_slope_trained": _slopes_json(slopes),
            "zigzag_control_slope": fit_loglog_slope(config.line.control_neurons, control).value}


def compute_slice(config, log) -> dict:
    """Part "slice": activation regions met by square 2-D slices, over depths and N."""
    sl = config.slice
    slices = {depth: np.stack([mean_slice_regions(_init_nets(config, depth, n), config.input_dim,
                                                  sl.slices_per_net, sl.half_extent,
                                                  first_seed=60_000)
                               for n in sl.neurons], 1) for depth in config.depths}
    slopes = {d: fit_loglog_slope(config.slice.neurons, slices[d]) for d in config.depths}
    pooled = fit_loglog_slope(config.slice.neurons,
                              np.concatenate([slices[d] for d in config.depths], axis=0))
    deepest = max(config.depths)
    serra = [regions.serra_upper_bound(2, [n // deepest] * deepest) for n in config.slice.neurons]
    return {"slice_neurons": list(config.slice.neurons),
            "slice_regions_init": {str(d): v for d, v in slices.items()},
            "slice_slope_init": _slopes_json(slopes),
            "slice_slope_pooled": [pooled.value, pooled.lo, pooled.hi],
            "serra_maximum_slope": fit_loglog_slope(config.slice.neurons, serra).value}


def judge_slice(config, m) -> dict:
    """The pooled slope against slice.slope_range, and the fraction of Serra's maximum."""
    serra = "the maximum (Serra et al.'s bound) at the same depth and widths"
    return {"slice_regions_quadratic_in_neurons": Measured(
                Estimate(*m["slice_slope_pooled"]), *config.slice.slope_range,
                baseline=m["serra_maximum_slope"], baseline_name=serra),
            "slice_regions_grow_far_slower_than_maximum": Measured(
                Estimate(*m["slice_slope_init"][str(max(config.depths))]),
                baseline=m["serra_maximum_slope"], baseline_name=serra)}


def compute_sawtooth(config, log) -> dict:
    """Part "sawtooth": exact pieces of Telgarsky's sawtooth nets on [0, 1]."""
    def pieces(k):
        return regions.count_linear_pieces(regions.dense_params_to_layers(sawtooth_net(k)[1]),
                                           np.zeros(1), np.ones(1))

    counts = [pieces(k) for k in config.sawtooth_depths]
    return {"sawtooth_depths": list(config.sawtooth_depths), "sawtooth_pieces": counts,
            "smallest_ratio_to_two_power_depth": float(
                min(p / 2**k for p, k in zip(counts, config.sawtooth_depths))),
            # The baseline: one layer fewer against the same 2^L.
            "largest_shallower_ratio_to_two_power_depth": float(
                max(pieces(k - 1) / 2**k for k in config.sawtooth_depths if k > 1))}


NETS = ("seeds", "input_dim", "bias_std")
PARTS = (
    Part("line", compute_line, judge_line, reads=(*NETS, "depths", "line")),
    # Trained nets are measured on the line part's segments (line.lines_per_net).
    Part("train", compute_train,
         lambda config, m: {"trained_line_count_linear_in_neurons": Measured(
             _worst_slope(m["line_slope_trained"], 1.0), *config.line.slope_range,
             baseline=m["zigzag_control_slope"],
             baseline_name="hand-set zigzag net of the deepest trained architecture")},
         reads=(*NETS, "precision", "line", "train")),
    Part("slice", compute_slice, judge_slice, reads=(*NETS, "depths", "slice")),
    Part("sawtooth", compute_sawtooth,
         lambda config, m: {"sawtooth_attains_exponential": Measured(
             m["smallest_ratio_to_two_power_depth"],
             baseline=m["largest_shallower_ratio_to_two_power_depth"],
             baseline_name="the sawtooth with one layer fewer")},
         reads=("sawtooth_depths",)),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Pieces on segments (init, trained, maxima, sawtooth) and regions on 2-D slices vs N."""
    import matplotlib.pyplot as plt

    def per_depth(values):
        return {int(d): np.asarray(v) for d, v in values.items()}

    line, slices = (per_depth(m["line"]["line_breakpoints_init"]),
                    per_depth(m["slice"]["slice_regions_init"]))
    trained = per_depth(m["train"]["line_breakpoints_trained"])
    density, sawtooth = (m["line"]["breakpoints_per_unit_length_per_neuron"],
                         m["sawtooth"]["sawtooth_pieces"])

    fig, (ax_l, ax_s) = plt.subplots(1, 2, figsize=(13, 5))
    n_line = np.asarray(config.line.neurons, dtype=float)
    for depth in config.depths:
        mean = line[depth].mean(0) + 1
        base, = ax_l.loglog(n_line, mean, "o-", label=f"L={depth} at init")
        if depth in trained:
            n_t = np.asarray(config.train.neurons, dtype=float)
            ax_l.loglog(n_t, trained[depth].mean(0) + 1, "s--", c=base.get_color(), alpha=0.7,
                        label=f"L={depth} trained")
        bound = [regions.telgarsky_pieces_bound(int(n) // depth, depth) for n in n_line]
        ax_l.loglog(n_line, bound, ":", c=base.get_color(), label=f"(2m)^L, L={depth}")
    all_line = np.concatenate([line[d] for d in config.depths], axis=0).mean(0)
    scale = np.exp(np.mean(np.log(all_line) - np.log(n_line)))
    ax_l.loglog(n_line, 1 + scale * n_line, "k-", lw=2, label=f"1 + {scale:.2f} N (H&R: linear)")
    n_saw = 2.0 * np.asarray(config.sawtooth_depths)
    ax_l.loglog(n_saw, sawtooth, "k^", ms=8, label="sawtooth, 2^(N/2) pieces")
    ax_l.set(xlabel="total hidden neurons N", ylabel="pieces on a random segment",
             title="1-D: pieces grow like N, not like the maximum")
    ax_l.set_ylim(1, 1e8)
    ax_l.legend(fontsize=7, ncol=2)

    n_sl = np.asarray(config.slice.neurons, dtype=float)
    area = (2 * config.slice.half_extent) ** 2
    for depth in config.depths:
        base, = ax_s.loglog(n_sl, slices[depth].mean(0), "o-", label=f"L={depth}")
        serra = [regions.serra_upper_bound(2, [int(n) // depth] * depth) for n in n_sl]
        ax_s.loglog(n_sl, serra, ":", c=base.get_color(), label=f"max (Serra), L={depth}")
    t_hat = 0.5 * np.pi * density
    ax_s.loglog(n_sl, area * (t_hat * n_sl) ** 2 / 2, "k-", lw=2,
                label=f"H&R area x (T N)^2 / 2, T_hat = {t_hat:.3f}")
    ax_s.set(xlabel="total hidden neurons N",
             ylabel=f"regions in a {2 * config.slice.half_extent:g} x "
                    f"{2 * config.slice.half_extent:g} slice",
             title="2-D slice: regions grow like N^2")
    ax_s.set_ylim(1, 1e9)
    ax_s.legend(fontsize=7, ncol=2)
    return [report.save_figure(fig, workdir, "linear_regions.png")]
