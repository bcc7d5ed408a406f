"""Loss scaling: float16 gradients underflow, bfloat16's do not, and loss scaling recovers
float32 (Micikevicius et al. 2018; Kalamkar et al. 2019).

Claims. Micikevicius et al. 2018 ("Mixed Precision Training", ICLR, Sec. 3.2 and Fig. 3):
float16 has 5 exponent bits (smallest subnormal 2^-24 ~ 6e-8), so small gradient values become
zero; multiplying the loss by S before back-propagation and dividing the gradients by S ("loss
scaling"; dynamic: halve S on overflow, double it after a run of finite steps) moves them back
into range and recovers float32's result. Kalamkar et al. 2019 (arXiv:1905.12322): bfloat16
keeps float32's 8 exponent bits, so the same gradients do not underflow.

Precision. `precision` (default float16) is the narrow precision under test in the one part;
`small_gradients.precision` overrides it there; `small_gradients.wide_precision` (bfloat16) is
the contrast whose range is float32's; float32 is the reference.

Measured. The MNIST-1D MLP of experiments/half_precision.py with the loss multiplied by
c = `small_gradients.loss_multiplier` = 2^-13 (~1.2e-4) and Adam's eps by c. Adam with eps
scaled by c is invariant to c, and c is a power of two, so float32 follows the unmultiplied
run bit for bit (the tests check it): the float32 reference is trained without the multiplier,
and only the gradient magnitudes move, into float16's subnormal range. Trained in float16
without loss scaling and with dynamic loss scaling (`make_loss_scale`): the mean training loss
/ c over the last 10% of steps, against float32, with the tolerance of half_precision: seed
means agree if they differ by at most `tolerance_z` standard errors of a difference of two
S-seed means, z * s * sqrt(2 / S), s the float32 seed-to-seed standard deviation. Underflow: at
the float32 parameters (initial and final, every seed), on one training batch, the fraction of
parameter-gradient entries that are non-zero in float32 but exactly zero when the gradient is
computed as the train step does under a policy (inputs cast to the compute dtype, the model
computing in it, the loss in float32), without loss scaling. Overlaid prediction: the fraction
of float32 entries with |g| <= 2^-25, the values that float16 rounds to zero.

Baselines, measured in the same run and rejected by each claim's bound: float16 with the loss
scaled by S for the underflow fraction, float16 for bfloat16's; float16 without loss scaling
for the agreement with float32, with dynamic loss scaling for the shortfall.

Run: python launch.py --config=experiments/loss_scaling.py:quick --workdir=runs/ls
quick: ~80 s on 2 CPU cores at load ~10 (three training programs). paper (not timed): two
hidden layers of 100 for 6000 steps, 8 seeds.
Split from the former half_precision experiment (same claims and numbers).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN, load_mnist1d
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.theory import floating_point
from dl_theory.train.precision import get_policy
from dl_theory.train.precision_comparison import (
    agreement_tolerance,
    final_train_loss,
    mnist1d_mlp_config,
    multiplied_loss,
    scaled_optimizer,
    train_mnist1d_mlp,
)

KALAMKAR = "kalamkar2019, abstract and results"
MICIKEVICIUS = "micikevicius2018, Sec. 3.2, Fig. 3"
_REFERENCE = "float32"

CLAIMS = (
    ClaimSpec("fp16_gradients_underflow",
              "Without loss scaling, a large fraction of the small gradients that float32 "
              "represents are exactly zero in float16 (fraction of non-zero float32 entries); "
              "with the loss scaled by S, far fewer are.",
              MICIKEVICIUS, at_least="small_gradients.min_fp16_underflow"),
    ClaimSpec("bf16_gradients_do_not_underflow",
              "bfloat16 keeps float32's exponent range: almost none of the same gradient "
              "entries are zero in bfloat16.", KALAMKAR,
              at_most="small_gradients.max_bf16_underflow",
              margin_why="bfloat16 has float32's 8 exponent bits, so no gradient float32 "
                         "represents as non-zero flushes to zero: exactly 0 is the claim; "
                         "float16 on the same gradients is the baseline that fails it"),
    # Bounds measured in the run: tolerance_z standard errors of the float32 seed spread.
    ClaimSpec("loss_scaling_recovers_fp32",
              "On the small-gradient task, float16 with dynamic loss scaling reaches float32's "
              "final training loss within z standard errors of the float32 seed spread; "
              "without loss scaling it does not.",
              MICIKEVICIUS, unit="nats"),
    ClaimSpec("fp16_without_scaling_falls_short",
              "On the same task, float16 without loss scaling ends with a training loss higher "
              "than float32's by more than that tolerance (the underflow costs accuracy); with "
              "dynamic loss scaling it does not.",
              MICIKEVICIUS, unit="nats"),
)

_SMALL_GRADIENTS = dict(
    loss_multiplier=2.0**-13, wide_precision="bfloat16",
    loss_scale=dict(initial_scale=2.0**15, period=2000),
    # A logit gradient c (p_k - y_k) / B (B = 128) is <= 2^-25, float16's zero, once
    # |p_k - y_k| < 2^-5, as for most wrong classes after training; from the float32
    # magnitudes alone (the "predicted" metric) about a third of all activation gradients are
    # that small at initialisation, more after training. Claimed: a quarter, in every seed at
    # both points. bfloat16: the smallest float32 activation gradient here is ~2^-90, far
    # above bfloat16's 2^-126, so none can underflow; a thousandth leaves room for zeros of
    # another cause.
    min_fp16_underflow=0.25, max_bf16_underflow=1e-3)

_PRESETS = {
    "quick": dict(seeds=4, tolerance_z=3.0, precision="float16",
                  mlp=mnist1d_mlp_config(widths=(128, 128), steps=1000, eval_every=250,
                                         learning_rate=3e-3),
                  small_gradients=_SMALL_GRADIENTS),
    "paper": dict(seeds=8, tolerance_z=3.0, precision="float16",
                  mlp=mnist1d_mlp_config(widths=(100, 100), steps=6000, eval_every=500,
                                         learning_rate=1e-3),
                  small_gradients=_SMALL_GRADIENTS),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (longer runs, more seeds); see the module docstring.

    The part's section has an unset `precision` (`config_from_presets`), so that
    `--config.small_gradients.precision=float16` can set it; unset, it uses `precision`."""
    return config_from_presets(_PRESETS, preset, PARTS)


def _narrow_precision(config) -> str:
    """The narrow precision under test: `small_gradients.precision`, else `precision`."""
    return config.small_gradients.get("precision") or config.precision


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the MLP under the narrow precision, for
    `launch.py --dtypes`."""
    m = config.mlp
    model = MLP(widths=tuple(m.widths), out_dim=NUM_CLASSES, activation=m.activation,
                **get_policy(_narrow_precision(config)).model_dtypes())
    optimizer = scaled_optimizer(m.optimizer, config.small_gradients.loss_multiplier)
    return model, jnp.zeros((2, SEQ_LEN)), build_optimizer(optimizer, total_steps=m.steps)


def backprop_gradients(model_kwargs: dict, params, batch, precision: str, loss,
                       loss_scale: float = 1.0):
    """The gradients that back-propagation computes under `precision`, as the train step does
    (x cast to the compute dtype, the MLP computing in it, the output cast to float32, the loss
    in float32), of loss_scale * loss, divided by loss_scale in float32. Vmapped over a stack
    of parameters (leading seed axis S).

    Returns (activation, parameter) gradients. Activation gradients are those of Micikevicius
    et al. (Fig. 3): dL/dlogits [S, B, K] and the gradient arriving at the input of every
    Dense layer [S, B, D_in], each in the compute dtype before the division (a zero added to
    the layer input, differentiated; inputs, not pre-activations, so that a ReLU whose sign
    changes under rounding cannot zero an entry). Parameter gradients are float32, [S, ...].
    """
    policy = get_policy(precision)
    model = MLP(**model_kwargs, **policy.model_dtypes())
    x = policy.cast_to_compute(batch["x"])
    dims = (x.shape[1], *model_kwargs["widths"])
    zeros = {f"Dense_{i}": jnp.zeros((x.shape[0], d), policy.compute_dtype)
             for i, d in enumerate(dims)}
    zeros["logits"] = jnp.zeros((x.shape[0], model_kwargs["out_dim"]), policy.compute_dtype)

    def objective(params, probes):
        def add_probe(next_fun, args, kwargs, context):
            if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
                args = (args[0] + probes[context.module.name], *args[1:])
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(add_probe):
            pred = model.apply({"params": params}, x) + probes["logits"]
        return loss_scale * loss(policy.cast_to_output(pred), batch["y"])

    def one(params):
        param_grads, activation_grads = jax.grad(objective, argnums=(0, 1))(params, zeros)
        unscale = lambda g: g.astype(jnp.float32) / loss_scale  # noqa: E731
        return (jax.tree.map(unscale, activation_grads),
                jax.tree.map(unscale, policy.cast_to_param(param_grads)))

    return jax.jit(jax.vmap(one))(params)


def _underflow(config, data, param_stacks):
    """Measured and predicted underflow fractions, each [2 S] (parameter stacks x seeds), for
    activation and parameter gradients on the first training batch, and the non-zero float32
    activation-gradient magnitudes pooled (for the histogram)."""
    m, sg = config.mlp, config.small_gradients
    scale = float(sg.loss_scale.initial_scale)
    model_kwargs = dict(widths=tuple(m.widths), out_dim=NUM_CLASSES, activation=m.activation)
    batch = {k: v[:m.batch_size] for k, v in data["train"].items()}
    loss = multiplied_loss(sg.loss_multiplier)
    narrow_precision = _narrow_precision(config)
    narrow = floating_point.zero_threshold(narrow_precision)
    wide = floating_point.zero_threshold(sg.wide_precision)
    runs = {"fp16": (narrow_precision, 1.0), "fp16_loss_scaled": (narrow_precision, scale),
            "bf16": (sg.wide_precision, 1.0)}
    fractions: dict[str, list[float]] = {}
    magnitudes = []
    for params in param_stacks:
        ref = backprop_gradients(model_kwargs, params, batch, _REFERENCE, loss)
        low = {k: backprop_gradients(model_kwargs, params, batch, precision, loss, s)
               for k, (precision, s) in runs.items()}
        for s in range(config.seeds):
            def member(tree, s=s):
                return jax.tree.map(lambda g: g[s], tree)

            for kind, index in (("activation", 0), ("parameter", 1)):
                for key in runs:
                    fractions.setdefault(f"{kind}_{key}", []).append(
                        floating_point.underflow_fraction(member(ref[index]),
                                                          member(low[key][index])))
                flat = np.concatenate([np.abs(np.asarray(g)).ravel()
                                       for g in jax.tree.leaves(member(ref[index]))])
                flat = flat[flat != 0]
                for key, threshold in (("predicted", narrow), ("predicted_wide", wide)):
                    fractions.setdefault(f"{kind}_{key}", []).append(
                        float(np.mean(flat <= threshold)))
                fractions.setdefault(f"{kind}_predicted_loss_scaled", []).append(
                    float(np.mean(flat * scale <= narrow)))
                if kind == "activation":
                    magnitudes.append(flat)
    return {k: np.asarray(v) for k, v in fractions.items()}, np.concatenate(magnitudes)


def compute_small_gradients(config: ml_collections.ConfigDict, log) -> dict:
    """Part "small_gradients": the float32 reference, the narrow precision with and without
    dynamic loss scaling on the small-gradient task, and gradient underflow at the reference's
    initial and final parameters."""
    sg = config.small_gradients
    c = float(sg.loss_multiplier)
    if not (0 < c < 1 and float(np.log2(c)).is_integer()):
        raise ValueError(f"small_gradients.loss_multiplier={c}; need a power of two below 1, "
                         "so that float32 and bfloat16 are exactly blind to it")
    if config.seeds < 2:
        raise ValueError(f"seeds={config.seeds}; the tolerance needs a seed spread (>= 2)")
    raw = load_mnist1d()
    data = {split: {k: jnp.asarray(v) for k, v in raw[split].items()} for split in raw}
    narrow = _narrow_precision(config)
    initial32, final32, mlp32 = train_mnist1d_mlp(config.mlp, data, _REFERENCE, config.seeds,
                                                  log)
    _, _, fp16 = train_mnist1d_mlp(config.mlp, data, narrow, config.seeds, log, multiplier=c)
    _, _, fp16_scaled = train_mnist1d_mlp(config.mlp, data, narrow, config.seeds, log,
                                          multiplier=c, loss_scale=sg.loss_scale)
    fractions, magnitudes = _underflow(config, data, [initial32.params, final32.params])
    train32 = final_train_loss(mlp32)
    train_fp16, train_scaled = final_train_loss(fp16, c), final_train_loss(fp16_scaled, c)
    counts, edges = np.histogram(np.log2(magnitudes), bins=np.arange(
        np.floor(np.log2(magnitudes).min()), np.ceil(np.log2(magnitudes).max()) + 1))
    return {
        "precision": narrow,
        "final_train_loss": {_REFERENCE: train32, f"{narrow}_no_scaling": train_fp16,
                             f"{narrow}_dynamic_scaling": train_scaled},
        "scaled_gap": float(abs(train_scaled.mean() - train32.mean())),
        "unscaled_excess": float(train_fp16.mean() - train32.mean()),
        "train_loss_curve": {_REFERENCE: mlp32["loss"], f"{narrow}, no loss scaling":
                             fp16["loss"] / c, f"{narrow}, dynamic loss scaling":
                             fp16_scaled["loss"] / c},
        "loss_scale_final": np.asarray(fp16_scaled["loss_scale"])[:, -1],
        "skipped_step_fraction": float(1.0 - np.mean(fp16_scaled["grads_finite"])),
        "underflow_fraction": fractions,
        "log2_activation_gradient_histogram": {"counts": counts, "edges": edges},
    }


def judge_small_gradients(config: ml_collections.ConfigDict, m: dict) -> dict:
    """Underflow fractions (worst seed); the two training-loss differences against the
    float32 seed-spread tolerance."""
    tolerance = agreement_tolerance(m["final_train_loss"][_REFERENCE], config.tolerance_z)
    fractions = m["underflow_fraction"]
    losses = m["final_train_loss"]
    scaled_excess = (np.mean(losses[f"{m['precision']}_dynamic_scaling"])
                     - np.mean(losses[_REFERENCE]))
    return {"fp16_gradients_underflow": Measured(
                min(fractions["activation_fp16"]),
                baseline=max(fractions["activation_fp16_loss_scaled"]),
                baseline_name="float16 with the loss scaled by S (worst seed)"),
            "bf16_gradients_do_not_underflow": Measured(
                max(fractions["activation_bf16"]), baseline=min(fractions["activation_fp16"]),
                baseline_name="float16 on the same gradients (least seed)"),
            "loss_scaling_recovers_fp32": Measured(
                m["scaled_gap"], at_most=tolerance, baseline=abs(m["unscaled_excess"]),
                baseline_name="float16 without loss scaling"),
            "fp16_without_scaling_falls_short": Measured(
                m["unscaled_excess"], at_least=tolerance, baseline=scaled_excess,
                baseline_name="float16 with dynamic loss scaling")}


PARTS = (
    Part("small_gradients", compute_small_gradients, judge_small_gradients,
         reads=("seeds", "precision", "mlp", "small_gradients")),
)


def _smooth(values_SxT: np.ndarray, window: int) -> np.ndarray:
    """Seed mean, then a trailing moving average over `window` steps; shape [T - window + 1]."""
    mean_T = np.asarray(values_SxT).mean(axis=0)
    return np.convolve(mean_T, np.ones(window) / window, mode="valid")


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """(a) training loss / c of every run against float32's +- tolerance; (b) float32
    activation-gradient magnitudes against float16's range; (c) measured vs predicted
    underflow fractions."""
    import matplotlib.pyplot as plt

    sg, small = config.small_gradients, m["small_gradients"]
    fig, (ax_c, ax_d, ax_e) = plt.subplots(1, 3, figsize=(17, 4.6))
    window = max(1, config.mlp.steps // 20)
    styles = (dict(c="k", lw=3), dict(c="C2"), dict(c="C3", ls=":", lw=2))
    for (name, losses_SxT), style in zip(small["train_loss_curve"].items(), styles):
        smooth = _smooth(losses_SxT, window)
        ax_c.plot(np.arange(window, window + smooth.size), smooth, label=name, **style)
    final32 = float(np.mean(small["final_train_loss"][_REFERENCE]))
    tolerance = agreement_tolerance(small["final_train_loss"][_REFERENCE], config.tolerance_z)
    ax_c.axhspan(final32 - tolerance, final32 + tolerance, color="gray", alpha=0.3,
                 label="float32 final +- tolerance")
    ax_c.set(xlabel="step", ylabel="training loss / c (moving average)", yscale="log",
             title=f"(a) loss x c = 2^{np.log2(sg.loss_multiplier):.0f}: small gradients")
    ax_c.legend(fontsize=8)

    histogram = small["log2_activation_gradient_histogram"]
    edges, counts = np.asarray(histogram["edges"]), np.asarray(histogram["counts"])
    log2s = np.log2(sg.loss_scale.initial_scale)
    ax_d.stairs(counts, edges, fill=True, alpha=0.6, label="|g|")
    ax_d.stairs(counts, edges + log2s, lw=1.5, label=f"|g| x S, S = 2^{log2s:.0f} (loss scaling)")
    ax_d.axvspan(edges[0], -25, color="red", alpha=0.12, label="float16 rounds to 0 (<= 2^-25)")
    ax_d.axvline(-24, c="red", ls="--", lw=1, label="float16 smallest subnormal 2^-24")
    ax_d.axvline(-14, c="red", ls=":", lw=1, label="float16 smallest normal 2^-14")
    ax_d.set(xlabel="log2 |activation gradient entry|", ylabel="count",
             title="(b) float32 activation gradients (bfloat16's range starts at 2^-126)")
    ax_d.legend(fontsize=7)

    fractions = {k: np.asarray(v) for k, v in small["underflow_fraction"].items()}
    keys = ("fp16", "fp16_loss_scaled", "bf16")
    names = [f"{small['precision']}\nno scaling", f"{small['precision']}\nS = 2^{log2s:.0f}",
             f"{sg.wide_precision}\nno scaling"]
    predicted = ("predicted", "predicted_loss_scaled", "predicted_wide")
    x = np.arange(len(keys))
    for offset, kind in ((-0.2, "activation"), (0.2, "parameter")):
        ax_e.bar(x + offset, [fractions[f"{kind}_{k}"].mean() for k in keys], width=0.38,
                 alpha=0.8 if kind == "activation" else 0.45, label=f"{kind} gradients, measured")
        ax_e.plot(x + offset, [fractions[f"{kind}_{k}"].mean() for k in predicted], "k_", ms=22,
                  mew=2, label="predicted from float32 |g|" if kind == "activation" else None)
    ax_e.axhline(sg.min_fp16_underflow, c="C3", ls="--", lw=1, label="claimed float16 minimum")
    ax_e.set_xticks(x, names)
    ax_e.set(ylabel="fraction of non-zero float32 entries that are 0", ylim=(0, 1.05),
             title="(c) gradient underflow (mean over seeds, init + final)")
    ax_e.legend(fontsize=7)
    fig.tight_layout()
    return [report.save_figure(fig, workdir, "loss_scaling.png")]
