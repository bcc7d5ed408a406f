"""Half precision: bfloat16 trains like float32, float16 needs loss scaling (Kalamkar et al. 2019;
Micikevicius et al. 2018).

Claims. Kalamkar et al. 2019 ("A Study of BFLOAT16 for Deep Learning Training",
arXiv:1905.12322, abstract and results): mixed-precision training that computes in bfloat16
(float32 master weights, float32 losses) reaches float32's accuracy in the same number of
iterations with no change of hyper-parameters and no loss scaling, because bfloat16 keeps
float32's 8 exponent bits; float32 -> bfloat16 conversion rounds to nearest even, so one cast
errs by at most half a unit in the 8th significant bit: |bf16(x) - x| <= 2^-8 |x| for every
x in the normal range. Micikevicius et al. 2018 ("Mixed Precision Training", ICLR, Sec. 3.2
and Fig. 3): float16 has 5 exponent bits (smallest subnormal 2^-24 ~ 6e-8), so small gradient
values become zero; multiplying the loss by S before back-propagation and dividing the
gradients by S ("loss scaling"; dynamic: halve S on overflow, double it after a run of finite
steps) moves them back into range and recovers float32's result.

Measured. (a) A ReLU MLP on MNIST-1D (`load_mnist1d`), Adam, trained in float32 and in
`mlp.precision` (bfloat16) from the same seeds: final test accuracy. (b) A tiny causal
transformer (`CausalLM`) on the character corpus of `dl_theory.data.text`, a few hundred Adam
steps, float32 vs `transformer.precision`: final validation loss (nats per character).
Tolerance of both: two precisions agree if their seed means differ by at most
`tolerance_z` standard errors of a difference of two S-seed means, z * s * sqrt(2 / S), s the
float32 seed-to-seed standard deviation: that is, if changing the precision moves the result
no more than changing the seed does. Runs with equal seeds share the initialisation and the
batch order, which makes their difference smaller than an unpaired one, so the test is if
anything lenient; with S = 4, z = 3 is close to Student's 99% two-sided quantile for 6 degrees
of freedom (3.71). (c) Small gradients: part (a)'s task with the loss multiplied by
c = `small_gradients.loss_multiplier` = 2^-13 (~1.2e-4) and Adam's eps by c. Adam with eps
scaled by c is invariant to c, and c is a power of two, so float32 and bfloat16 follow part
(a)'s trajectories bit for bit (the tests check it), and part (a)'s runs serve as this task's
float32 and bfloat16 references: only the gradient magnitudes move, into float16's subnormal
range. Trained in float16 without loss scaling and with dynamic loss scaling
(`make_loss_scale`): the mean training loss / c over the last 10% of steps, against float32
with the same tolerance. Underflow: at part (a)'s float32 parameters (initial and final, every
seed), on one training batch, the fraction of parameter-gradient entries that are non-zero in
float32 but exactly zero when the gradient is computed as the train step does under a policy
(inputs cast to the compute dtype, the model computing in it, the loss in float32), without
loss scaling. Overlaid prediction: the fraction of float32 entries with |g| <= 2^-25, the
values that float16 rounds to zero. (d) Rounding: max relative error of the bfloat16 cast on
random float32 values of log-uniform magnitude over [2^-120, 2^120]; float16 on the same values
for contrast.

Run: python launch.py --config=experiments/half_precision.py:quick --workdir=runs/hp
quick: ~150 s wall on 2 CPU cores shared at load ~10 (57 s of CPU time; compilation of the
six training programs dominates). paper (not timed): two hidden layers of 100 for 6000 steps,
a 4-layer d=128 transformer for 2000 steps, 8 seeds: far from the papers' ImageNet and
language-model runs, which a 2-core CPU cannot approach, but longer and less noisy.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.data.mnist1d import NUM_CLASSES, load_mnist1d
from dl_theory.data.text import bigram_bpc, load_char_corpus, window_sampler
from dl_theory.experiment import ClaimSpec, Result, check, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.models.transformer import CausalLM
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import floating_point
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import accuracy, softmax_cross_entropy
from dl_theory.train.metrics_log import MetricsLog
from dl_theory.train.precision import Policy, get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

KALAMKAR = "Kalamkar et al. 2019, arXiv:1905.12322 (abstract; results)"
MICIKEVICIUS = "Micikevicius et al. 2018, Sec. 3.2, Fig. 3"
_REFERENCE = "float32"
# Adam variants whose update is invariant to a common gradient scale c once eps is scaled by c.
_SCALE_INVARIANT = ("adam", "adamw")

CLAIMS = (
    ClaimSpec("bf16_matches_fp32_mlp",
              "With the same hyper-parameters and iteration count, the MLP trained in "
              "mixed precision (mlp.precision, bfloat16) reaches float32's test accuracy: "
              "|difference of seed means| within z standard errors of the float32 seed spread.",
              KALAMKAR),
    ClaimSpec("bf16_matches_fp32_transformer",
              "With the same hyper-parameters and iteration count, the causal transformer "
              "trained in mixed precision (transformer.precision, bfloat16) reaches float32's "
              "validation loss within z standard errors of the float32 seed spread.",
              KALAMKAR),
    ClaimSpec("fp16_gradients_underflow",
              "Without loss scaling, a large fraction of the small gradients that float32 "
              "represents are exactly zero in float16 (fraction of non-zero float32 entries).",
              MICIKEVICIUS),
    ClaimSpec("bf16_gradients_do_not_underflow",
              "bfloat16 keeps float32's exponent range: almost none of the same gradient "
              "entries are zero in bfloat16.", KALAMKAR),
    ClaimSpec("loss_scaling_recovers_fp32",
              "On the small-gradient task, float16 with dynamic loss scaling reaches float32's "
              "final training loss within z standard errors of the float32 seed spread.",
              MICIKEVICIUS),
    ClaimSpec("fp16_without_scaling_falls_short",
              "On the same task, float16 without loss scaling ends with a training loss higher "
              "than float32's by more than that tolerance (the underflow costs accuracy).",
              MICIKEVICIUS),
    ClaimSpec("bf16_rounding_error_bounded",
              "Round-to-nearest-even casting to bfloat16 (8 significant bits) has relative "
              "error at most 2^-8 on random float32 values over the whole normal range.",
              KALAMKAR),
)


def _mlp_part(widths, steps, eval_every, learning_rate):
    return dict(widths=widths, activation="relu", batch_size=128, steps=steps,
                eval_every=eval_every, precision="bfloat16",
                optimizer=optimizer_config(name="adam", learning_rate=learning_rate,
                                           schedule="cosine", kwargs={"eps": 1e-8}))


_SMALL_GRADIENTS = dict(
    loss_multiplier=2.0**-13, precision="float16", wide_precision="bfloat16",
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
    "quick": dict(
        seeds=4, tolerance_z=3.0,
        mlp=_mlp_part(widths=(128, 128), steps=1000, eval_every=250, learning_rate=3e-3),
        transformer=dict(d_model=32, num_heads=2, num_layers=2, mlp_dim=128, seq_len=32,
                         batch_size=16, steps=300, eval_every=75, num_val_windows=256,
                         precision="bfloat16",
                         optimizer=optimizer_config(name="adam", learning_rate=3e-3,
                                                    schedule="cosine", warmup_steps=30)),
        small_gradients=_SMALL_GRADIENTS,
        rounding=dict(precision="bfloat16", num_samples=1_000_000, max_log2=120, seed=0)),
    "paper": dict(
        seeds=8, tolerance_z=3.0,
        mlp=_mlp_part(widths=(100, 100), steps=6000, eval_every=500, learning_rate=1e-3),
        transformer=dict(d_model=128, num_heads=4, num_layers=4, mlp_dim=512, seq_len=128,
                         batch_size=32, steps=2000, eval_every=250, num_val_windows=1024,
                         precision="bfloat16",
                         optimizer=optimizer_config(name="adam", learning_rate=1e-3,
                                                    schedule="cosine", warmup_steps=100)),
        small_gradients=_SMALL_GRADIENTS,
        rounding=dict(precision="bfloat16", num_samples=10_000_000, max_log2=120, seed=0)),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (longer runs, more seeds); see the module docstring."""
    return config_from_presets(_PRESETS, preset)


def _lm(config, policy: Policy, vocab_size: int) -> CausalLM:
    t = config.transformer
    return CausalLM(vocab_size=vocab_size, d_model=t.d_model, num_heads=t.num_heads,
                    num_layers=t.num_layers, mlp_dim=t.mlp_dim, max_len=t.seq_len,
                    **policy.model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the transformer under `transformer.precision`, for
    `launch.py --dtypes`."""
    t = config.transformer
    model = _lm(config, get_policy(t.precision), load_char_corpus().vocab.size)
    return (model, jnp.zeros((2, t.seq_len), jnp.int32),
            build_optimizer(t.optimizer, total_steps=t.steps))


def agreement_tolerance(reference_S: np.ndarray, z: float) -> float:
    """z * s * sqrt(2 / S): z standard errors of the difference of two S-seed means, with s the
    sample standard deviation (ddof=1) of the reference runs, shape [S] with S >= 2."""
    reference_S = np.asarray(reference_S, dtype=float)
    if reference_S.ndim != 1 or reference_S.size < 2:
        raise ValueError(f"reference of shape {reference_S.shape}; need [S] with S >= 2 seeds")
    return float(z * reference_S.std(ddof=1) * np.sqrt(2.0 / reference_S.size))


def multiplied_loss(multiplier: float):
    """c * softmax cross-entropy (reduced in float32): the small-gradient task's loss."""

    def loss(logits, labels, weight=None):
        return multiplier * softmax_cross_entropy(logits, labels, weight)

    return loss


def scaled_optimizer(optimizer: ml_collections.ConfigDict,
                     multiplier: float) -> ml_collections.ConfigDict:
    """The optimizer config for a loss multiplied by c: Adam's eps times c, so that the update
    m / (sqrt(v) + eps) is unchanged when every gradient is multiplied by c."""
    if optimizer.name not in _SCALE_INVARIANT:
        raise ValueError(f"optimizer.name={optimizer.name!r}; the small-gradient task needs a "
                         f"scale-invariant optimizer: one of {list(_SCALE_INVARIANT)}")
    scaled = ml_collections.ConfigDict(optimizer.to_dict())
    scaled.kwargs = {**scaled.kwargs, "eps": scaled.kwargs.get("eps", 1e-8) * multiplier}
    return scaled


def _train_mlp(config, data, precision: str, log, multiplier: float = 1.0,
               loss_scaling: bool = False):
    """Trains the MLP seed grid under `precision`; returns (initial states, final states,
    history)."""
    m = config.mlp
    policy = get_policy(precision)
    tx = build_optimizer(m.optimizer if multiplier == 1.0 else
                         scaled_optimizer(m.optimizer, multiplier), total_steps=m.steps)
    model = MLP(widths=tuple(m.widths), out_dim=NUM_CLASSES, activation=m.activation,
                **policy.model_dtypes())
    scale = (make_loss_scale(policy, **config.small_gradients.loss_scale) if loss_scaling
             else None)
    seeds = list(range(config.seeds))
    initial = create_train_states(model, tx, data["train"]["x"][:2], seeds, loss_scale=scale)
    label = f"mlp {precision}" + (f" x{multiplier:g}" if multiplier != 1 else "") + (
        " loss-scaled" if loss_scaling else "")
    final, history = fit_grid(
        initial, data["train"], minibatches(m.batch_size), loss=multiplied_loss(multiplier),
        steps=m.steps, data_seeds=seeds, eval_data=data["test"], eval_every=m.eval_every,
        eval_metrics={"accuracy": accuracy}, policy=policy, log=log,
        tags={"part": "mlp", "precision": precision, "loss_multiplier": multiplier,
              "loss_scaling": loss_scaling}, label=label)
    return initial, final, history


def _lm_sampler(batch_size: int, seq_len: int):
    """Sampler over data {"ids": [T]}: B windows of L + 1 characters at uniform starts, split
    into x = window[:-1] and y = window[1:] (next-character targets), shapes [B, L]."""
    offsets_W = jnp.arange(seq_len + 1)

    def sample(data, key):
        ids = data["ids"]
        starts_B = jax.random.randint(key, (batch_size,), 0, ids.shape[0] - seq_len)
        windows_BxW = ids[starts_B[:, None] + offsets_W[None, :]]
        return {"x": windows_BxW[:, :-1], "y": windows_BxW[:, 1:]}

    return sample


def _train_lm(config, corpus, precision: str, log):
    """Validation loss history [S, E] of the causal transformer trained under `precision`."""
    t = config.transformer
    policy = get_policy(precision)
    val = window_sampler(corpus.val_ids, t.seq_len)(jax.random.PRNGKey(12_345),
                                                    t.num_val_windows)
    tx = build_optimizer(t.optimizer, total_steps=t.steps)
    seeds = list(range(config.seeds))
    states = create_train_states(_lm(config, policy, corpus.vocab.size), tx, val["x"][:2],
                                 seeds, loss_scale=make_loss_scale(policy))
    _, history = fit_grid(
        states, {"ids": jnp.asarray(corpus.train_ids)}, _lm_sampler(t.batch_size, t.seq_len),
        loss=softmax_cross_entropy, steps=t.steps, data_seeds=[100 + s for s in seeds],
        eval_data=val, eval_every=t.eval_every, policy=policy, log=log,
        tags={"part": "transformer", "precision": precision}, label=f"transformer {precision}")
    return history


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
    narrow = floating_point.zero_threshold(sg.precision)
    wide = floating_point.zero_threshold(sg.wide_precision)
    runs = {"fp16": (sg.precision, 1.0), "fp16_loss_scaled": (sg.precision, scale),
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


def _final_train_loss(history, multiplier: float = 1.0) -> np.ndarray:
    """Mean training loss / multiplier over the last 10% of steps, per seed: shape [S]."""
    losses_SxT = np.asarray(history["loss"]) / multiplier
    return losses_SxT[:, -max(1, losses_SxT.shape[1] // 10):].mean(axis=1)


def _smooth(values_SxT: np.ndarray, window: int) -> np.ndarray:
    """Seed mean, then a trailing moving average over `window` steps; shape [T - window + 1]."""
    mean_T = np.asarray(values_SxT).mean(axis=0)
    return np.convolve(mean_T, np.ones(window) / window, mode="valid")


def _figure(config, curves, fractions, magnitudes, errors, tolerances, workdir) -> str:
    import matplotlib.pyplot as plt

    m, t, sg = config.mlp, config.transformer, config.small_gradients
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    ax = axes[0, 0]
    for (name, acc_SxE), style in zip(curves["mlp_accuracy"].items(), ("o-", "s--")):
        steps = curves["mlp_eval_step"]
        line, = ax.plot(steps, acc_SxE.mean(0), style, label=f"{name} (seed mean, range)")
        ax.fill_between(steps, acc_SxE.min(0), acc_SxE.max(0), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="step", ylabel="test accuracy", title="(a) MLP on MNIST-1D, same hyper-params")
    ax.legend(fontsize=8)

    ax = axes[0, 1]
    for (name, loss_SxE), style in zip(curves["lm_val_bpc"].items(), ("o-", "s--")):
        steps = curves["lm_eval_step"]
        line, = ax.plot(steps, loss_SxE.mean(0), style, label=f"{name} (seed mean, range)")
        ax.fill_between(steps, loss_SxE.min(0), loss_SxE.max(0), color=line.get_color(),
                        alpha=0.2)
    ax.axhline(curves["bigram_bpc"], ls=":", c="gray", label="add-one bigram baseline")
    ax.set(xlabel="step", ylabel="validation bits / character",
           title=f"(b) causal transformer d={t.d_model}, {t.num_layers} layers")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    window = max(1, m.steps // 20)
    styles = (dict(c="k", lw=3), dict(c="C1", ls="--"), dict(c="C2"), dict(c="C3", ls=":", lw=2))
    for (name, losses_SxT), style in zip(curves["small_gradient_loss"].items(), styles):
        smooth = _smooth(losses_SxT, window)
        ax.plot(np.arange(window, window + smooth.size), smooth, label=name, **style)
    final32 = curves["small_gradient_final"]
    ax.axhspan(final32 - tolerances["small_gradients"], final32 + tolerances["small_gradients"],
               color="gray", alpha=0.3, label="float32 final +- tolerance")
    ax.set(xlabel="step", ylabel="training loss / c (moving average)", yscale="log",
           title=f"(c) loss x c = 2^{np.log2(sg.loss_multiplier):.0f}: small gradients")
    ax.legend(fontsize=8)

    ax = axes[1, 0]
    log2g = np.log2(magnitudes)
    log2s = np.log2(sg.loss_scale.initial_scale)
    bins = np.arange(np.floor(log2g.min()), np.ceil(log2g.max() + log2s) + 1)
    ax.hist(log2g, bins=bins, alpha=0.6, label="|g|")
    ax.hist(log2g + log2s, bins=bins, histtype="step", lw=1.5,
            label=f"|g| x S, S = 2^{log2s:.0f} (loss scaling)")
    ax.axvspan(bins[0], -25, color="red", alpha=0.12, label="float16 rounds to 0 (<= 2^-25)")
    ax.axvline(-24, c="red", ls="--", lw=1, label="float16 smallest subnormal 2^-24")
    ax.axvline(-14, c="red", ls=":", lw=1, label="float16 smallest normal 2^-14")
    ax.set(xlabel="log2 |activation gradient entry|", ylabel="count",
           title="(d) float32 activation gradients (bfloat16's range starts at 2^-126)")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    keys = ("fp16", "fp16_loss_scaled", "bf16")
    names = [f"{sg.precision}\nno scaling", f"{sg.precision}\nS = 2^{log2s:.0f}",
             f"{sg.wide_precision}\nno scaling"]
    predicted = ("predicted", "predicted_loss_scaled", "predicted_wide")
    x = np.arange(len(keys))
    for offset, kind in ((-0.2, "activation"), (0.2, "parameter")):
        ax.bar(x + offset, [fractions[f"{kind}_{k}"].mean() for k in keys], width=0.38,
               alpha=0.8 if kind == "activation" else 0.45, label=f"{kind} gradients, measured")
        ax.plot(x + offset, [fractions[f"{kind}_{k}"].mean() for k in predicted], "k_", ms=22,
                mew=2, label="predicted from float32 |g|" if kind == "activation" else None)
    ax.axhline(sg.min_fp16_underflow, c="C3", ls="--", lw=1, label="claimed float16 minimum")
    ax.set_xticks(x, names)
    ax.set(ylabel="fraction of non-zero float32 entries that are 0", ylim=(0, 1.05),
           title="(e) gradient underflow (mean over seeds, init + final)")
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    bound = floating_point.unit_roundoff(config.rounding.precision)
    ax.hist(errors["wide"], bins=100, log=True, label=f"{config.rounding.precision} cast")
    ax.axvline(bound, c="k", ls="--",
               label=f"bound 2^{np.log2(bound):.0f} (round to nearest even)")
    ax.set(xlabel="relative error |cast(x) - x| / |x|", ylabel="count",
           title=f"(f) x = +-2^U(-{config.rounding.max_log2}, {config.rounding.max_log2}); "
                 f"{sg.precision}: {errors['narrow_out_of_range']:.0%} out of range")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return report.save_figure(fig, workdir, "half_precision.png")


def run(config: ml_collections.ConfigDict, workdir: str) -> Result:
    """Trains every precision, measures underflow and rounding, and checks the claims."""
    m, t, sg, r = config.mlp, config.transformer, config.small_gradients, config.rounding
    c = float(sg.loss_multiplier)
    if not (0 < c < 1 and float(np.log2(c)).is_integer()):
        raise ValueError(f"small_gradients.loss_multiplier={c}; need a power of two below 1, "
                         "so that float32 and bfloat16 are exactly blind to it")
    if config.seeds < 2:
        raise ValueError(f"seeds={config.seeds}; the tolerance needs a seed spread (>= 2)")
    log = MetricsLog.in_workdir(workdir)
    raw = load_mnist1d()
    data = {split: {k: jnp.asarray(v) for k, v in raw[split].items()} for split in raw}

    initial32, final32, mlp32 = _train_mlp(config, data, _REFERENCE, log)
    _, _, mlp_low = _train_mlp(config, data, m.precision, log)
    _, _, fp16 = _train_mlp(config, data, sg.precision, log, multiplier=c)
    _, _, fp16_scaled = _train_mlp(config, data, sg.precision, log, multiplier=c,
                                   loss_scaling=True)
    corpus = load_char_corpus()
    lm32 = _train_lm(config, corpus, _REFERENCE, log)
    lm_low = _train_lm(config, corpus, t.precision, log)
    fractions, magnitudes = _underflow(config, data, [initial32.params, final32.params])
    values = floating_point.log_uniform_values(jax.random.PRNGKey(r.seed), r.num_samples,
                                               r.max_log2)
    wide_errors = floating_point.cast_relative_errors(values, r.precision)
    narrow_errors = floating_point.cast_relative_errors(values, sg.precision)

    z = config.tolerance_z
    acc32, acc_low = mlp32["eval_accuracy"][:, -1], mlp_low["eval_accuracy"][:, -1]
    val32, val_low = lm32["eval_loss"][:, -1], lm_low["eval_loss"][:, -1]
    train32 = _final_train_loss(mlp32)
    train_fp16, train_scaled = _final_train_loss(fp16, c), _final_train_loss(fp16_scaled, c)
    tolerances = {"mlp_accuracy": agreement_tolerance(acc32, z),
                  "transformer_val_loss": agreement_tolerance(val32, z),
                  "small_gradients": agreement_tolerance(train32, z)}
    rounding_bound = floating_point.unit_roundoff(r.precision)
    claims = [
        check(CLAIMS[0], abs(acc_low.mean() - acc32.mean()), at_most=tolerances["mlp_accuracy"]),
        check(CLAIMS[1], abs(val_low.mean() - val32.mean()),
              at_most=tolerances["transformer_val_loss"], unit="nats/char"),
        check(CLAIMS[2], fractions["activation_fp16"].min(), at_least=sg.min_fp16_underflow),
        check(CLAIMS[3], fractions["activation_bf16"].max(), at_most=sg.max_bf16_underflow),
        check(CLAIMS[4], abs(train_scaled.mean() - train32.mean()),
              at_most=tolerances["small_gradients"], unit="nats"),
        check(CLAIMS[5], train_fp16.mean() - train32.mean(),
              at_least=tolerances["small_gradients"], unit="nats"),
        check(CLAIMS[6], float(wide_errors.max()), at_most=rounding_bound),
    ]
    curves = {
        "mlp_eval_step": mlp32["eval_step"],
        "mlp_accuracy": {_REFERENCE: mlp32["eval_accuracy"], m.precision: mlp_low["eval_accuracy"]},
        "lm_eval_step": lm32["eval_step"],
        "lm_val_bpc": {_REFERENCE: lm32["eval_loss"] / np.log(2),
                       t.precision: lm_low["eval_loss"] / np.log(2)},
        "bigram_bpc": bigram_bpc(corpus.train_ids, corpus.val_ids, corpus.vocab.size),
        "small_gradient_loss": {
            f"{_REFERENCE} (= part a)": mlp32["loss"],
            f"{m.precision} (= part a)": mlp_low["loss"],
            f"{sg.precision}, no loss scaling": fp16["loss"] / c,
            f"{sg.precision}, dynamic loss scaling": fp16_scaled["loss"] / c},
        "small_gradient_final": float(train32.mean()),
    }
    # Beyond float16's unit roundoff: overflow to inf, flush to 0, or a subnormal's lost bits.
    narrow_bad = float(np.mean(~(narrow_errors <= floating_point.unit_roundoff(sg.precision))))
    errors = {"wide": wide_errors, "narrow_out_of_range": narrow_bad}
    figure = _figure(config, curves, fractions, magnitudes, errors, tolerances, workdir)
    metrics = {
        "tolerances": tolerances,
        "mlp_test_accuracy": {_REFERENCE: acc32.tolist(), m.precision: acc_low.tolist()},
        "mlp_test_loss": {_REFERENCE: mlp32["eval_loss"][:, -1].tolist(),
                          m.precision: mlp_low["eval_loss"][:, -1].tolist()},
        "transformer_val_loss": {_REFERENCE: val32.tolist(), t.precision: val_low.tolist()},
        "transformer_val_bpc_bigram_baseline": curves["bigram_bpc"],
        "small_gradient_final_train_loss": {
            _REFERENCE: train32.tolist(), f"{sg.precision}_no_scaling": train_fp16.tolist(),
            f"{sg.precision}_dynamic_scaling": train_scaled.tolist()},
        "loss_scale_final": np.asarray(fp16_scaled["loss_scale"])[:, -1].tolist(),
        "skipped_step_fraction": float(1.0 - np.mean(fp16_scaled["grads_finite"])),
        "underflow_fraction": {k: v.tolist() for k, v in fractions.items()},
        "rounding_max_relative_error": float(wide_errors.max()),
        "rounding_bound": rounding_bound,
        "narrow_out_of_range_fraction": narrow_bad,
    }
    return Result(claims=claims, metrics=metrics, figures=[figure])
