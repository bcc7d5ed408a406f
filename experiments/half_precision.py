"""Half precision: bfloat16 mixed precision trains like float32 (Kalamkar et al. 2019).

Claims. Kalamkar et al. 2019 ("A Study of BFLOAT16 for Deep Learning Training",
arXiv:1905.12322, abstract and results): mixed-precision training that computes in bfloat16
(float32 master weights, float32 losses) reaches float32's accuracy in the same number of
iterations with no change of hyper-parameters and no loss scaling, because bfloat16 keeps
float32's 8 exponent bits; float32 -> bfloat16 conversion rounds to nearest even, so one cast
errs by at most half a unit in the 8th significant bit: |bf16(x) - x| <= 2^-8 |x| for every
x in the normal range. float16's narrower range, and the loss scaling it needs, are the claims
of experiments/loss_scaling.py.

Precision. `precision` (default bfloat16) is the precision under test in every part; float32
is always the reference. A part may override it with its own `mlp.precision`,
`transformer.precision` or `rounding.precision`.

Measured. (a) A ReLU MLP on MNIST-1D (`load_mnist1d`), Adam, trained in float32 and in the
precision under test from the same seeds: final test accuracy. (b) A tiny causal transformer
(`CausalLM`) on the character corpus of `dl_theory.data.text`, a few hundred Adam steps,
float32 vs the precision under test: final validation loss (nats per character). Tolerance of
both: two precisions agree if their seed means differ by at most `tolerance_z` standard errors
of a difference of two S-seed means, z * s * sqrt(2 / S), s the float32 seed-to-seed standard
deviation: that is, if changing the precision moves the result no more than changing the seed
does. Runs with equal seeds share the initialisation and the batch order, which makes their
difference smaller than an unpaired one, so the test is if anything lenient; with S = 4, z = 3
is close to Student's 99% two-sided quantile for 6 degrees of freedom (3.71). (c) Rounding:
max relative error of the cast on random float32 values of log-uniform magnitude over
[2^-120, 2^120], against the unit roundoff of the precision under test; `rounding.contrast`
(float16) on the same values for contrast. Its baseline: the nearest wrong rounding, chopping
the same values' significands to the same bits toward zero (error up to 2u).

Run: python launch.py --config=experiments/half_precision.py:quick --workdir=runs/hp
quick: ~100 s on 2 CPU cores shared at load ~10 (compilation of the four training programs
dominates). paper (not timed): two hidden layers of 100 for 6000 steps, a 4-layer d=128
transformer for 2000 steps, 8 seeds: far from the paper's ImageNet and language-model runs,
which a 2-core CPU cannot approach, but longer and less noisy.
Split from the former half_precision experiment (same claims and numbers); its float16 half is
experiments/loss_scaling.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.mnist1d import load_mnist1d
from dl_theory.data.text import bigram_bpc, load_char_corpus, window_sampler
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.transformer import CausalLM
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory import floating_point
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import softmax_cross_entropy
from dl_theory.train.precision import Policy, get_policy, make_loss_scale
from dl_theory.train.precision_comparison import (
    agreement_tolerance,
    mnist1d_mlp_config,
    train_mnist1d_mlp,
)
from dl_theory.train.state import create_train_states

KALAMKAR = "kalamkar2019, abstract and results"
_REFERENCE = "float32"

CLAIMS = (
    # Bounds measured in the run: tolerance_z standard errors of the float32 seed spread.
    ClaimSpec("bf16_matches_fp32_mlp",
              "With the same hyper-parameters and iteration count, the MLP trained in "
              "mixed precision (precision, bfloat16) reaches float32's test accuracy: "
              "|difference of seed means| within z standard errors of the float32 seed spread.",
              KALAMKAR,
              margin_why="an agreement claim: the gap of two seed means is ~0 when the "
                         "precision changes nothing (it can be exactly 0 by chance); the "
                         "tolerance is z standard errors of float32's seed spread, and the "
                         "float32 net at its first evaluation is the baseline it rejects"),
    ClaimSpec("bf16_matches_fp32_transformer",
              "With the same hyper-parameters and iteration count, the causal transformer "
              "trained in mixed precision (precision, bfloat16) reaches float32's "
              "validation loss within z standard errors of the float32 seed spread.",
              KALAMKAR, unit="nats/char",
              margin_why="an agreement claim: the gap of two seed means is ~0 when the "
                         "precision changes nothing; the tolerance is z standard errors of "
                         "float32's seed spread, and the float32 net at its first evaluation "
                         "is the baseline it rejects"),
    # Bound: the unit roundoff of the precision under test (2^-8 for bfloat16).
    ClaimSpec("bf16_rounding_error_bounded",
              "Round-to-nearest-even casting to bfloat16 (8 significant bits) has relative "
              "error at most 2^-8 on random float32 values over the whole normal range; "
              "chopping toward zero to the same bits does not.",
              KALAMKAR),
)

_PRESETS = {
    "quick": dict(
        seeds=4, tolerance_z=3.0, precision="bfloat16",
        mlp=mnist1d_mlp_config(widths=(128, 128), steps=1000, eval_every=250,
                               learning_rate=3e-3),
        transformer=dict(d_model=32, num_heads=2, num_layers=2, mlp_dim=128, seq_len=32,
                         batch_size=16, steps=300, eval_every=75, num_val_windows=256,
                         optimizer=optimizer_config(name="adam", learning_rate=3e-3,
                                                    schedule="cosine", warmup_steps=30)),
        rounding=dict(contrast="float16", num_samples=1_000_000, max_log2=120, seed=0)),
    "paper": dict(
        seeds=8, tolerance_z=3.0, precision="bfloat16",
        mlp=mnist1d_mlp_config(widths=(100, 100), steps=6000, eval_every=500,
                               learning_rate=1e-3),
        transformer=dict(d_model=128, num_heads=4, num_layers=4, mlp_dim=512, seq_len=128,
                         batch_size=32, steps=2000, eval_every=250, num_val_windows=1024,
                         optimizer=optimizer_config(name="adam", learning_rate=1e-3,
                                                    schedule="cosine", warmup_steps=100)),
        rounding=dict(contrast="float16", num_samples=10_000_000,
                      max_log2=120, seed=0)),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (longer runs, more seeds); see the module docstring.

    Each part's section has an unset `precision` (`config_from_presets`), so that
    `--config.SECTION.precision=float16` sets that part alone; unset, it uses `precision`."""
    return config_from_presets(_PRESETS, preset, PARTS)


def _precision(config, section: str) -> str:
    """The precision under test in part `section`: its own override, else `precision`."""
    return config[section].get("precision") or config.precision


def _lm(config, policy: Policy, vocab_size: int) -> CausalLM:
    t = config.transformer
    return CausalLM(vocab_size=vocab_size, d_model=t.d_model, num_heads=t.num_heads,
                    num_layers=t.num_layers, mlp_dim=t.mlp_dim, max_len=t.seq_len,
                    **policy.model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the transformer under the precision under test, for
    `launch.py --dtypes`."""
    t = config.transformer
    model = _lm(config, get_policy(_precision(config, "transformer")),
                load_char_corpus().vocab.size)
    return (model, jnp.zeros((2, t.seq_len), jnp.int32),
            build_optimizer(t.optimizer, total_steps=t.steps))


def _check_seeds(config) -> None:
    if config.seeds < 2:
        raise ValueError(f"seeds={config.seeds}; the tolerance needs a seed spread (>= 2)")


def compute_mlp(config: ml_collections.ConfigDict, log) -> dict:
    """Part "mlp": the MNIST-1D MLP in float32 and in the precision under test."""
    _check_seeds(config)
    raw = load_mnist1d()
    data = {split: {k: jnp.asarray(v) for k, v in raw[split].items()} for split in raw}
    low = _precision(config, "mlp")
    _, _, mlp32 = train_mnist1d_mlp(config.mlp, data, _REFERENCE, config.seeds, log)
    _, _, mlp_low = train_mnist1d_mlp(config.mlp, data, low, config.seeds, log)
    acc32, acc_low = mlp32["eval_accuracy"][:, -1], mlp_low["eval_accuracy"][:, -1]
    return {"precisions": [_REFERENCE, low], "eval_step": mlp32["eval_step"],
            "accuracy_curve": {_REFERENCE: mlp32["eval_accuracy"],
                               low: mlp_low["eval_accuracy"]},
            "test_accuracy": {_REFERENCE: acc32, low: acc_low},
            "test_loss": {_REFERENCE: mlp32["eval_loss"][:, -1],
                          low: mlp_low["eval_loss"][:, -1]},
            "accuracy_gap": float(abs(acc_low.mean() - acc32.mean()))}


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


def compute_transformer(config: ml_collections.ConfigDict, log) -> dict:
    """Part "transformer": the causal transformer in float32 and in the precision under test,
    and the add-one bigram baseline (bits per character)."""
    _check_seeds(config)
    corpus = load_char_corpus()
    low = _precision(config, "transformer")
    lm32 = _train_lm(config, corpus, _REFERENCE, log)
    lm_low = _train_lm(config, corpus, low, log)
    val32, val_low = lm32["eval_loss"][:, -1], lm_low["eval_loss"][:, -1]
    return {"precisions": [_REFERENCE, low], "eval_step": lm32["eval_step"],
            "val_bpc_curve": {_REFERENCE: lm32["eval_loss"] / np.log(2),
                              low: lm_low["eval_loss"] / np.log(2)},
            "val_loss": {_REFERENCE: val32, low: val_low},
            "val_loss_gap": float(abs(val_low.mean() - val32.mean())),
            "bigram_bpc": bigram_bpc(corpus.train_ids, corpus.val_ids, corpus.vocab.size)}


def compute_rounding(config: ml_collections.ConfigDict, log) -> dict:
    """Part "rounding": relative errors of the cast to the precision under test (and to
    `rounding.contrast`) of log-uniform float32 values; a 100-bin histogram for the figure."""
    del log  # nothing trains
    r = config.rounding
    precision = _precision(config, "rounding")
    values = floating_point.log_uniform_values(jax.random.PRNGKey(r.seed), r.num_samples,
                                               r.max_log2)
    errors = floating_point.cast_relative_errors(values, precision)
    chopped = floating_point.truncation_relative_errors(values, precision)
    contrast = floating_point.cast_relative_errors(values, r.contrast)
    counts, edges = np.histogram(errors, bins=100)
    # Beyond the contrast's unit roundoff: overflow to inf, flush to 0, or a subnormal's bits.
    out_of_range = float(np.mean(~(contrast <= floating_point.unit_roundoff(r.contrast))))
    return {"precision": precision, "max_relative_error": float(errors.max()),
            "truncation_max_relative_error": float(chopped.max()),
            "bound": floating_point.unit_roundoff(precision),
            "histogram": {"counts": counts, "edges": edges},
            "contrast_out_of_range_fraction": out_of_range}


def _early_gap(curve_SxE, final_S, scale: float = 1.0) -> float:
    """|seed mean at the first evaluation - seed mean at the end| of the float32 runs: the gap of
    an under-trained net, the baseline an agreement tolerance must reject."""
    return float(abs(np.asarray(curve_SxE)[:, 0].mean() * scale - np.asarray(final_S).mean()))


def _baseline_name(m) -> str:
    return f"float32 at its first evaluation (step {m['eval_step'][0]})"


PARTS = (
    Part("mlp", compute_mlp,
         lambda config, m: {"bf16_matches_fp32_mlp": Measured(
             m["accuracy_gap"],
             at_most=agreement_tolerance(m["test_accuracy"][_REFERENCE], config.tolerance_z),
             baseline=_early_gap(m["accuracy_curve"][_REFERENCE],
                                 m["test_accuracy"][_REFERENCE]),
             baseline_name=_baseline_name(m))},
         reads=("seeds", "precision", "mlp")),
    Part("transformer", compute_transformer,
         lambda config, m: {"bf16_matches_fp32_transformer": Measured(
             m["val_loss_gap"],
             at_most=agreement_tolerance(m["val_loss"][_REFERENCE], config.tolerance_z),
             baseline=_early_gap(m["val_bpc_curve"][_REFERENCE], m["val_loss"][_REFERENCE],
                                 scale=np.log(2)),
             baseline_name=_baseline_name(m))},
         reads=("seeds", "precision", "transformer")),
    Part("rounding", compute_rounding,
         lambda config, m: {"bf16_rounding_error_bounded": Measured(
             m["max_relative_error"], at_most=m["bound"],
             baseline=m["truncation_max_relative_error"],
             baseline_name="chopped toward zero to the same bits")},
         reads=("precision", "rounding")),
)


def _curves(ax, steps, curves: dict, ylabel: str, title: str) -> None:
    for (name, values), style in zip(curves.items(), ("o-", "s--")):
        values_SxE = np.asarray(values)
        line, = ax.plot(steps, values_SxE.mean(0), style, label=f"{name} (seed mean, range)")
        ax.fill_between(steps, values_SxE.min(0), values_SxE.max(0), color=line.get_color(),
                        alpha=0.2)
    ax.set(xlabel="step", ylabel=ylabel, title=title)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """(a) MLP test accuracy and (b) transformer validation loss against steps, float32 vs
    the precision under test; (c) the histogram of cast errors against the bound."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6))
    _curves(axes[0], m["mlp"]["eval_step"], m["mlp"]["accuracy_curve"], "test accuracy",
            "(a) MLP on MNIST-1D, same hyper-params")
    axes[0].legend(fontsize=8)
    t, lm = config.transformer, m["transformer"]
    _curves(axes[1], lm["eval_step"], lm["val_bpc_curve"], "validation bits / character",
            f"(b) causal transformer d={t.d_model}, {t.num_layers} layers")
    axes[1].axhline(lm["bigram_bpc"], ls=":", c="gray", label="add-one bigram baseline")
    axes[1].legend(fontsize=8)
    r, rounding = config.rounding, m["rounding"]
    ax, edges = axes[2], np.asarray(rounding["histogram"]["edges"])
    ax.hist(edges[:-1], bins=edges, weights=rounding["histogram"]["counts"], log=True,
            label=f"{rounding['precision']} cast")
    ax.axvline(rounding["bound"], c="k", ls="--",
               label=f"bound 2^{np.log2(rounding['bound']):.0f} (round to nearest even)")
    ax.set(xlabel="relative error |cast(x) - x| / |x|", ylabel="count",
           title=f"(c) x = +-2^U(-{r.max_log2}, {r.max_log2}); {r.contrast}: "
                 f"{rounding['contrast_out_of_range_fraction']:.0%} out of range")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [report.save_figure(fig, workdir, "half_precision.png")]
