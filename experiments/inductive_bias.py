"""Inductive biases of architectures on MNIST-1D: locality helps, and shuffling erases it
(Greydanus 2020).

Claims. Greydanus 2020 ("Scaling down deep learning", arXiv:2011.14439, Fig. 1 and the
mnist1d benchmark table) trains logistic regression (32 % test accuracy), an MLP (68 %), a CNN
(94 %) and a GRU (91 %); after one fixed permutation of the 40 positions ("shuffled") the CNN
and GRU fall to 56 % and 57 % while logistic regression and the MLP stay. Exact statement
behind "unchanged": a net whose first layer is dense with i.i.d. initial weights (logreg, MLP;
or a transformer on scalar tokens with learned i.i.d. position embeddings) is permutation-
equivariant in distribution: trained on x[:, perm] from W it computes what the net trained on
x from W[perm] computes (Adam is coordinatewise), and W[perm] has the law of W. For the CNN,
RCNN, conv-stem hybrid and GRU (neighbours interact first) nothing of the kind holds.

Measured. Five architectures in the quick preset, seven in the paper preset (the RCNN and
the conv-stem hybrid feed no claim), each trained with the same Adam budget on original and
shuffled data, `seeds` seeds, as one `fit_grid` per architecture (members: seeds x {original,
shuffled} [x {shuffled with the first layer aligned, original one ulp up} for the invariant
models]); test accuracy on the 1000 test points. Claims: (1) CNN minus MLP accuracy, paired by
seed, bootstrap interval >= `min_cnn_margin` = 10 points (paper: 26; seed spread 1-3 points);
(2) the CNN's and GRU's drop under shuffling is >= 1/2 of their advantage over the MLP (paper:
1.5 and 1.5); (3) for logreg, MLP and transformer |mean shuffled - mean original| <= z sqrt(2/S)
sigma, z = 3, sigma = max(`invariance_seed_std`, the run's largest seed std): the noise
estimate is fixed before the run (8 seeds gave stds 0.019, 0.017, 0.011; 0.03 is the upper 95 %
limit of the largest, chi-square with 14 d.o.f.), a tolerance of 0.09 at S = 2 that another
CPU's rounding cannot flip; the CNN's and GRU's shifts (`local_shuffled_minus_original`) are
4-5x it, so the claim can fail (their smaller |shift| is its recorded baseline). Baselines
of (1) and (2): the CNN - MLP difference on shuffled data, and the invariant models' largest
drop over the smaller local advantage. (4) With the first layer aligned
(`dl_theory.theory.equivariant_twins`), each invariant model's twin on shuffled data equals
the original after one Adam step on the same batch to float32 rounding: largest |logit
difference| / largest |logit| <= 1e-4 (u = 6e-8 times ~10^3 for sums in another order and
Adam's normalisation of small gradients); the unaligned twin (same init, shuffled data) is the
baseline that fails it. (5) After training, rounding differences have grown (chaotically, for
a non-convex net): the aligned twin must be no farther from the original than a twin whose
initialisation is one ulp up (`next_float_up`), the smallest perturbation there is: RMS test-
logit distance (seed mean, plus the rounding floor u x RMS logit), aligned / one-ulp <= 3
(a distance averages 10,000 logits: its seed spread is tens of per cent, not 3x); baseline:
the unaligned twin's ratio. (Claim 5 replaces one that asked trained twins to agree to two
test examples: false in floating point for any non-convex net, whatever the theory.)

Results (quick: 2 seeds, 500 Adam steps of batch 100, lr 1e-2; accuracy original -> shuffled
[paper]): logreg 0.305 -> 0.307 [0.32 -> 0.32], MLP 0.627 -> 0.623 [0.68 -> 0.68], transformer
0.500 -> 0.470, CNN 0.916 -> 0.567 [0.94 -> 0.56], GRU 0.922 -> 0.442 [0.91 -> 0.57]. The paper
preset's other local models, at this budget: RCNN (one recurrent step) 0.925 -> 0.586, hybrid
0.921 -> 0.515. Baselines: CNN - MLP on shuffled data -0.056; the invariant models' largest
drop (transformer) 0.14 of the local advantage; smallest local shift 0.35.
Convolutions run as patches @ kernel (`conv_as_matmul`): XLA:CPU
runs `lax.conv` gradients ~10-20x slower inside a scan.

Run: python launch.py --config=experiments/inductive_bias.py:quick --workdir=runs/ib
quick: 2 seeds, 500 steps; 55 s wall (100 CPU-s) on 2 otherwise idle CPU cores (load ~2,
cold cache).
paper: 5 seeds, 6000 steps of batch 100 at lr 1e-2 (the mnist1d package's training
arguments), MLP 100-100, CNN 3 x 25 channels (the paper's sizes), ~20 min (not run).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.config_checks import check_choice
from dl_theory.data.batching import minibatches
from dl_theory.data.mnist1d import NUM_CLASSES, SEQ_LEN, load_mnist1d, position_permutation
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.conv import conv_as_matmul
from dl_theory.models.mnist1d_architectures import ARCHITECTURES, architecture_inputs
from dl_theory.models.recurrent import READOUTS
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory.equivariant_twins import (
    one_step_relative_differences,
    trained_twin_distances,
    twin_initialisations,
)
from dl_theory.train.concurrent_jobs import run_jobs
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states
from dl_theory.uncertainty import Estimate, bootstrap_mean
from dl_theory.user_errors import ConfigError

GREYDANUS = "greydanus2020, Fig. 1 / mnist1d benchmark table"
EQUIVARIANCE = ("greydanus2020, shuffled MNIST-1D (permutation equivariance of dense "
                "layers)")

# The published test accuracies (original, shuffled), overlaid on the figure.
PAPER_ACCURACY = {"logreg": (0.32, 0.32), "mlp": (0.68, 0.68), "cnn": (0.94, 0.56),
                  "gru": (0.91, 0.57)}

CLAIMS = (
    ClaimSpec("cnn_beats_mlp",
              "On MNIST-1D the CNN's test accuracy exceeds the MLP's by a wide margin (seed-"
              "paired difference, whole bootstrap interval); on shuffled data it does not.",
              GREYDANUS,
              at_least="min_cnn_margin"),
    ClaimSpec("shuffling_erases_local_advantage",
              "Shuffling the 40 positions costs the CNN and the GRU at least half of their "
              "advantage over the MLP (smaller of the two ratios drop / advantage).", GREYDANUS,
              at_least="min_erased_fraction"),
    # Bound measured in the run: invariance_tolerance (z sqrt(2/S) sigma, sigma from the seeds).
    ClaimSpec("invariant_models_unchanged",
              "Logistic regression, the MLP and the transformer with learned positions reach "
              "the same mean accuracy on shuffled as on original data, within z = 3 standard "
              "errors of a difference of seed means (largest |difference|).", EQUIVARIANCE),
    ClaimSpec("aligned_twins_agree_after_one_step",
              "With the first layer permuted like the inputs, each invariant model's twin on "
              "shuffled data equals the original after one Adam step on the same batch, to "
              "float32 rounding (largest |test logit difference| / largest |logit|).",
              EQUIVARIANCE, at_most="max_one_step_rel_diff"),
    ClaimSpec("aligned_twins_diverge_like_rounding",
              "After training, each invariant model's aligned twin is no farther from the "
              "original than a twin whose initialisation is one ulp away (RMS test-logit "
              "distances, seed means, rounding floor added; largest ratio aligned / one-ulp).",
              EQUIVARIANCE, at_most="max_divergence_ratio"),
)


INVARIANT = ("logreg", "mlp", "transformer")
LOCAL = ("cnn", "gru")
# Every architecture, by the time its training takes (quick preset, load 4: transformer 42 s,
# GRU and CNN 12 s, MLP 4 s, logistic regression 2 s; the paper preset's others guessed).
_LONGEST_FIRST = ("transformer", "hybrid", "rcnn", "gru", "cnn", "mlp", "logreg")


_CLAIMED_MODELS = dict(
    logreg={},
    mlp=dict(widths=(100, 100), activation="relu"),
    cnn=dict(channels=(25, 25, 25), kernel_size=5),
    gru=dict(hidden=32, readout="mean"),
    transformer=dict(d_model=32, num_heads=4, num_layers=1, mlp_dim=64))
# The RCNN and the conv-stem hybrid feed no claim (they are the paper's other local models):
# trained in the paper preset only, which keeps the quick preset near a minute.
_OTHER_LOCAL_MODELS = dict(
    hybrid=dict(conv_channels=(32,), kernel_size=5, conv_stride=2, d_model=32, num_heads=4,
                num_layers=1, mlp_dim=64),
    rcnn=dict(channels=(25, 25, 25), kernel_size=5, steps=2))


_PRESETS = {
    "quick": dict(seeds=2, precision="float32", steps=500, batch_size=100,
                  data=dict(seed=42, num_samples=5000, permutation_seed=0),
                  optimizer=optimizer_config(name="adam", learning_rate=1e-2),
                  models=_CLAIMED_MODELS,
                  min_cnn_margin=0.10, min_erased_fraction=0.5, invariance_z=3.0,
                  invariance_seed_std=0.03, max_one_step_rel_diff=1e-4,
                  max_divergence_ratio=3.0),
}
_PRESETS["paper"] = {**_PRESETS["quick"], "seeds": 5, "steps": 6000,
                     "models": {**_CLAIMED_MODELS, **_OTHER_LOCAL_MODELS}}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """What generic config checks cannot know: the GRU's readout name, and every model
    builds (num_heads divides d_model, ...; building compiles nothing)."""
    check_choice(config, "models.gru.readout", READOUTS)
    for name in config.models:
        try:
            build_model(name, config)
        except ConfigError as error:
            raise ConfigError(f"models.{name}: {error}") from None


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~55 s on 2 cores) or "paper" (the paper's budget)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def build_model(name: str, config: ml_collections.ConfigDict) -> nn.Module:
    """The architecture `name` of `ARCHITECTURES`, from `config.models[name]`, under the
    config's precision policy."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"model={name!r}; known: {sorted(ARCHITECTURES)}")
    dtypes = get_policy(config.precision).model_dtypes()
    return ARCHITECTURES[name].build(config.models[name], dtypes)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the transformer, for `launch.py --dtypes`."""
    return (build_model("transformer", config), jnp.zeros((2, SEQ_LEN, 1)),
            build_optimizer(config.optimizer, total_steps=config.steps))


def _initial_twins(name, config, original, shuffled, perm) -> dict:
    """What both jobs of one architecture start from: the model, optimizer, precision
    policy, variants ("original", "shuffled" [, "aligned", "ulp" for invariant models]), each
    variant's train and test data, and the initial states [variants x seeds] (for invariant
    models with the twins' parameters). Called by both jobs: the initialisation is one
    compiled program, so the second call computes the same bits from JAX's cache."""
    arch, seeds = ARCHITECTURES[name], list(range(config.seeds))
    model = build_model(name, config)
    policy = get_policy(config.precision)
    tx = build_optimizer(config.optimizer, total_steps=config.steps)
    variants = ["original", "shuffled"] + (["aligned", "ulp"] if arch.align is not None else [])
    sources = {v: {k: {"x": architecture_inputs(name, d["x"]), "y": jnp.asarray(d["y"])}
                   for k, d in (shuffled if v in ("shuffled", "aligned") else original).items()
                   if k in ("train", "test")} for v in variants}
    states = create_train_states(model, tx, sources["original"]["train"]["x"][:2],
                                 seeds * len(variants), make_loss_scale(policy))
    twins = None
    if arch.align is not None:
        twins = twin_initialisations(jax.tree.map(lambda a: a[:len(seeds)], states.params),
                                     arch.align, perm)
        # Adam's moments start at zero whatever the parameters: the state stays valid.
        states = states.replace(params=jax.tree.map(
            lambda *a: jnp.concatenate(a), *[twins[v] for v in variants]))
    return dict(model=model, tx=tx, policy=policy, variants=variants, sources=sources,
                states=states, twins=twins)


def _one_step_twins(name, config, original, shuffled, perm) -> dict[str, float]:
    """An invariant model's twins' largest test-logit differences from the original after
    one Adam step on the same batch (`one_step_relative_differences`, op by op)."""
    with nn.intercept_methods(conv_as_matmul):
        start = _initial_twins(name, config, original, shuffled, perm)
        model, variants = start["model"], start["variants"]
        return one_step_relative_differences(
            lambda p, x: model.apply({"params": p}, x), softmax_cross_entropy, start["tx"],
            {v: start["twins"][v] for v in variants}, start["sources"], config.batch_size)


def _train_architecture(name, config, original, shuffled, perm, log) -> dict:
    """Test accuracies [S] of `name` on original and shuffled data, its parameter count, and
    for invariant models the trained twins' distances from the original: the aligned twin
    (shuffled data), the unaligned one ("shuffled") and a twin whose initial parameters are
    one ulp up (original data)."""
    seeds = list(range(config.seeds))
    with nn.intercept_methods(conv_as_matmul):
        start = _initial_twins(name, config, original, shuffled, perm)
        model, variants, sources = start["model"], start["variants"], start["sources"]

        def stacked(split):  # in host memory: no stacking program to compile per shape
            return {k: jnp.asarray(np.stack([sources[v][split][k] for v in variants
                                             for _ in seeds])) for k in ("x", "y")}

        train, test = stacked("train"), stacked("test")
        states, _ = fit_grid(
            start["states"], train, minibatches(config.batch_size), loss=softmax_cross_entropy,
            steps=config.steps, data_seeds=seeds * len(variants), data_axis=0,
            eval_every=max(1, config.steps // 4),
            accumulate_steps=config.optimizer.accumulate_steps, policy=start["policy"],
            log=log, tags={"model": name}, label=f"{name} x {variants}")
        logits = np.asarray(jax.lax.map(
            lambda member: model.apply({"params": member[0]}, member[1]).astype(jnp.float32),
            (states.params, test["x"])), np.float64)
    acc = (logits.argmax(-1) == np.asarray(test["y"])).mean(-1)
    size = len(seeds)
    by_variant = {v: slice(i * size, (i + 1) * size) for i, v in enumerate(variants)}
    out = {v: acc[sl] for v, sl in by_variant.items()}
    out["params"] = sum(int(np.prod(a.shape[1:])) for a in jax.tree.leaves(states.params))
    if start["twins"] is not None:
        out["trained_rms_distance"] = trained_twin_distances(
            {v: logits[sl] for v, sl in by_variant.items()})
    return out


def _train_all(config, original, shuffled, perm, log) -> dict:
    """`_train_architecture` of every model of `config.models`, plus "one_step_rel_diff"
    (`_one_step_twins`) for the invariant ones. The jobs are independent and run one per
    core (`run_jobs`: the same results as in turn), the longest training first
    (`_LONGEST_FIRST`); an invariant model's one-step check (op by op, mostly compilation)
    goes after the next model's training, so that it finds its initialisation compiled."""
    names = sorted(config.models, key=_LONGEST_FIRST.index)
    data = (original, shuffled, perm)
    jobs, kinds = [], []
    for before, name in zip([None, *names], [*names, None], strict=True):
        if name is not None:
            jobs.append(functools.partial(_train_architecture, name, config, *data, log))
            kinds.append(("train", name))
        if before is not None and ARCHITECTURES[before].align is not None:
            jobs.append(functools.partial(_one_step_twins, before, config, *data))
            kinds.append(("one_step", before))
    done = dict(zip(kinds, run_jobs(jobs), strict=True))
    return {n: {**done["train", n], **({"one_step_rel_diff": done["one_step", n]}
                                        if ("one_step", n) in done else {})}
            for n in config.models}


def _seed_std(model_results: dict) -> float:
    """Pooled seed standard deviation of one model's original and shuffled accuracies (0 with
    a single seed, which has no spread to measure)."""
    if len(model_results["original"]) < 2:
        return 0.0
    return float(np.sqrt(np.mean([model_results[v].var(ddof=1)
                                  for v in ("original", "shuffled")])))


def invariance_tolerance(config: ml_collections.ConfigDict, seed_stds: dict) -> float:
    """z sqrt(2 / S) sigma, sigma = max(`invariance_seed_std`, every invariant model's own seed
    standard deviation): z standard errors of a difference of two S-seed means."""
    sigma = max(config.invariance_seed_std, *seed_stds.values())
    return float(config.invariance_z * sigma * np.sqrt(2.0 / config.seeds))


def compute_architectures(config: ml_collections.ConfigDict, log) -> dict:
    """Part "architectures": every model of `config.models` trained on original and shuffled
    MNIST-1D (invariant models also from the aligned initialisation); test accuracies [S]."""
    missing = sorted(set(INVARIANT + LOCAL) - set(config.models))
    if missing:
        raise ValueError(f"config.models lacks {missing}, which the claims need")
    d = config.data
    original = load_mnist1d(seed=d.seed, num_samples=d.num_samples)
    shuffled = load_mnist1d(seed=d.seed, num_samples=d.num_samples, shuffled=True,
                            permutation_seed=d.permutation_seed)
    perm = position_permutation(d.permutation_seed)
    results = _train_all(config, original, shuffled, perm, log)
    mlp = results["mlp"]["original"]
    margin = bootstrap_mean(results["cnn"]["original"] - mlp)
    drop = {n: r["original"].mean() - r["shuffled"].mean() for n, r in results.items()}
    advantage = {n: results[n]["original"].mean() - mlp.mean() for n in LOCAL}
    ratios = {n: float(drop[n] / a) if a > 0 else float("nan") for n, a in advantage.items()}
    # The erased fraction's control: the invariant models' drop in units of the smaller local
    # advantage (the same ratio where the theory says shuffling costs nothing).
    smallest = min(advantage.values())
    invariant_erased = {n: float(drop[n] / smallest) if smallest > 0 else float("nan")
                        for n in INVARIANT}
    diffs = {n: float(results[n]["shuffled"].mean() - results[n]["original"].mean())
             for n in INVARIANT}
    local_diffs = {n: float(results[n]["shuffled"].mean() - results[n]["original"].mean())
                   for n in LOCAL}
    twins = {n: {"one_step_rel_diff": results[n]["one_step_rel_diff"],
                 "trained_rms_distance": results[n]["trained_rms_distance"]} for n in INVARIANT}
    table = {n: {"params": r["params"], "steps": config.steps, "batch_size": config.batch_size,
                 **{v: r[v].tolist() for v in ("original", "shuffled", "aligned", "ulp")
                    if v in r},
                 "paper": list(PAPER_ACCURACY.get(n, (None, None)))}
             for n, r in results.items()}
    return {"table": table, "cnn_minus_mlp": [margin.value, margin.lo, margin.hi],
            "cnn_minus_mlp_shuffled": float(np.mean(results["cnn"]["shuffled"]
                                                    - results["mlp"]["shuffled"])),
            "erased_fraction": ratios, "invariant_erased_fraction": invariant_erased,
            "invariant_shuffled_minus_original": diffs,
            "local_shuffled_minus_original": local_diffs,
            "invariant_seed_std": {n: _seed_std(results[n]) for n in INVARIANT},
            "twins": twins}


def judge_architectures(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The CNN's margin, the smaller erased fraction, the largest invariant shift against the
    tolerance set from the seeds, and the largest aligned-twin difference."""
    tolerance = invariance_tolerance(config, m["invariant_seed_std"])
    return {
        "cnn_beats_mlp": Measured(
            Estimate(*m["cnn_minus_mlp"]), baseline=m["cnn_minus_mlp_shuffled"],
            baseline_name="the same seed-paired difference on shuffled data"),
        "shuffling_erases_local_advantage": Measured(
            min(m["erased_fraction"].values()),
            baseline=max(m["invariant_erased_fraction"].values()),
            baseline_name="largest drop of an invariant model (logreg, MLP, transformer) "
                          "under shuffling, over the smaller local advantage"),
        "invariant_models_unchanged": Measured(
            max(abs(v) for v in m["invariant_shuffled_minus_original"].values()),
            at_most=tolerance,
            baseline=min(abs(v) for v in m["local_shuffled_minus_original"].values()),
            baseline_name="smallest |shuffled - original| of the CNN and the GRU"),
        **_twin_claims(m["twins"]),
    }


def _twin_claims(twins: dict) -> dict:
    """Largest one-step difference and trained divergence ratio of the aligned twins over the
    invariant models; baselines: the same statistics of the unaligned twins."""

    def worst(statistic):
        return max(statistic(t) for t in twins.values())

    def ratio(variant):
        return lambda t: t["trained_rms_distance"][variant] / t["trained_rms_distance"]["ulp"]

    return {"aligned_twins_agree_after_one_step": Measured(
                worst(lambda t: t["one_step_rel_diff"]["aligned"]),
                baseline=worst(lambda t: t["one_step_rel_diff"]["shuffled"]),
                baseline_name="unaligned twin (shuffled data, same initialisation)"),
            "aligned_twins_diverge_like_rounding": Measured(
                worst(ratio("aligned")), baseline=worst(ratio("shuffled")),
                baseline_name="unaligned twin (shuffled data, same initialisation)")}


PARTS = (
    Part("architectures", compute_architectures, judge_architectures,
         reads=("seeds", "precision", "steps", "batch_size", "data", "optimizer", "models")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """Original vs shuffled test accuracy of every model, beside the published numbers."""
    import matplotlib.pyplot as plt

    results = {n: {**row, **{v: np.asarray(row[v]) for v in ("original", "shuffled")}}
               for n, row in m["architectures"]["table"].items()}
    names = [n for n in ARCHITECTURES if n in results]  # invariant models first, then local
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(11, 4.8))
    for offset, variant, colour in ((-0.2, "original", "C0"), (0.2, "shuffled", "C3")):
        means = [results[n][variant].mean() for n in names]
        spread = [results[n][variant].std() for n in names]
        ax.bar(x + offset, means, 0.38, yerr=spread, color=colour, alpha=0.8, capsize=3,
               label=f"{variant} (mean +- std over {config.seeds} seeds)")
    for i, name in enumerate(names):
        if name in PAPER_ACCURACY:
            orig, shuf = PAPER_ACCURACY[name]
            ax.plot([i - 0.2], [orig], "k_", ms=22, mew=2.5)
            ax.plot([i + 0.2], [shuf], "k_", ms=22, mew=2.5)
    ax.plot([], [], "k_", ms=12, mew=2.5, label="Greydanus 2020 (4000 train, published)")
    ax.axhline(1.0 / NUM_CLASSES, c="gray", ls=":", label="chance")
    ax.set_xticks(x, [f"{n}\n{results[n]['params']:,} params" for n in names])
    ax.set(ylabel="test accuracy", ylim=(0, 1.3),
           title=f"MNIST-1D, original vs spatially shuffled ({config.steps} Adam steps, "
                 f"batch {config.batch_size})")
    ax.legend(fontsize=8, loc="upper center", ncol=2)
    return [report.save_figure(fig, workdir, "inductive_bias.png")]
