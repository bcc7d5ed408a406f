"""The information plane: a compression phase for tanh (Shwartz-Ziv & Tishby 2017), none for ReLU
(Saxe et al. 2018), and how much of it is the binning estimator.

Claims. Shwartz-Ziv & Tishby 2017 ("Opening the black box of deep neural networks via
information", arXiv:1703.00810, Sec. 3-4, Fig. 3): trained by SGD, every layer T of a tanh
net first increases I(X;T) (fitting) and then, for most of training, decreases it
(compression), I(X;T) estimated by binning each unit's activation into 30 bins over [-1, 1].
Saxe et al. 2018 ("On the information bottleneck theory of deep learning", ICLR, Sec. 2,
Fig. 1): the same network with ReLU units shows no compression; the fall seen with tanh comes
from saturation, which crowds activations into the edge bins. Since T = h(X) is a deterministic,
generically injective function of the N = 4096 inputs, the true I(X;T) is log2 N = 12 bits at
every epoch; the binned value H(bin(T)) approaches it as the bins get finer, so the size of any
"compression" depends on the bin count (see `dl_theory.theory.mutual_information`).

Task. Shwartz-Ziv & Tishby's inputs are the 4096 binary patterns of 12 bits, labelled by a
spherically symmetric rule on 12 points of the sphere with P(y=1) ~ 1/2. Their rule is not
given in closed form, so an equivalent is generated here: the 12 bits sit on the vertices u_i
of a regular icosahedron, f(x) = ||sum_i x_i u_i||^2 (invariant under every rotation of the
sphere that maps the icosahedron to itself), and y = 1[f(x) > median f], giving
P(y=1) = 0.497. Inputs are fed as the bits x in {0, 1}, as in the paper. As in the paper,
the network is 12-10-7-5-4-3-2 (softmax output), trained on a random 85 % of the patterns;
the information plane is computed on all 4096.

Measured. Both nets (tanh; ReLU) are trained over seeds with `fit_grid` (Adam, minibatches);
the last hidden layer T (3 units) is recorded on all inputs every `record_every` steps (an MLP
that returns its hidden layer with its logits, defined here) and at initialisation. At
logarithmically spaced steps we estimate I(X;T) = H(bin(T)) and I(T;Y) with
`binned_information_plane`: tanh binned over [-1, 1], ReLU over [0, max activation over the
recorded steps] (Saxe et al.'s choice). Compression = peak I(X;T) minus final I(X;T), in bits,
seed mean, for 10, 30 and 100 bins per unit. `config.precision` sets the nets' compute dtype
(parameters stay float32); under bfloat16 the recorded T carries 8 significant bits, so values
within 2**-8 of +-1 share a 100-bin cell anyway, and the estimates are of the bfloat16 net.
Baselines (same run): each activation's statistic is the other's baseline (Saxe et al.'s
contrast: tanh compresses, ReLU does not); the fitting claim asks for both phases, the smaller
of rise and fall, which the ReLU net (rise only) fails; the accuracy claim's baseline is the
constant predictor, the training split's majority class scored on the test split.

Finding (quick preset). Fitting (+1.9 bits) then compression (-5.5 bits at 30 bins) for tanh,
none for ReLU (0.06 bits at 30 bins): both papers reproduce. But the fine-bin claim fails: the
tanh compression grows with the bin count (3.6, 5.5, 7.2 bits at 10, 30, 100 bins), because the
saturated units sit within one 100-bin cell of +-1; ReLU's "no compression" holds at 10 and 30
bins but less cleanly at 100 (0.34 bits). Which picture one sees depends on the estimator.

Run: python launch.py --config=experiments/information_plane.py:quick --workdir=runs/ip
quick: ~35 s on 2 CPU cores (3 seeds, 6,000 steps of batch 256, ~450 epochs). paper: 5 seeds,
40,000 steps (~3,000 epochs; the paper trains ~10^4 epochs), ~10 min.
"""

# No `from __future__ import annotations`: the flax dataclass TracedMLP would then resolve its
# string annotations through sys.modules, where load_experiment does not register this module.
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.models.mlp import get_activation
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.theory.mutual_information import binned_information_plane
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import accuracy, softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

TISHBY = "shwartzziv2017, Sec. 3-4, Fig. 3"
SAXE = "saxe2018, Sec. 2, Fig. 1"
NUM_BITS = 12
NUM_CLASSES = 2

CLAIMS = (
    ClaimSpec("tanh_compresses",
              "With 30 bins the last hidden layer of the tanh net first gains I(X;T) and then "
              "loses it: peak minus final I(X;T), bits (seed mean); the ReLU net's (baseline) "
              "does not.", TISHBY, at_least="min_compression", unit="bits"),
    ClaimSpec("tanh_has_fitting_phase",
              "The tanh net's I(X;T) (30 bins) rises from its initial value before it falls: "
              "both phases, the smaller of (peak minus initial) and (peak minus final) I(X;T), "
              "bits (seed means); the ReLU net (baseline) rises but does not fall.", TISHBY,
              at_least="min_fitting_rise", unit="bits"),
    ClaimSpec("relu_does_not_compress",
              "The ReLU net, binned the same way (30 bins over [0, max]), shows no compression: "
              "peak minus final I(X;T), bits (seed mean); the tanh net's (baseline) is large.",
              SAXE, at_most="max_relu_compression", unit="bits"),
    ClaimSpec("compression_vanishes_with_fine_bins",
              "The tanh compression is an artefact of coarse bins: with 100 bins per unit it is "
              "at most half its 30-bin value (ratio 100-bin / 30-bin compression), since finer "
              "bins push every estimate towards the true I(X;T) = log2 4096 = 12 bits.", SAXE,
              at_most="max_fine_bin_ratio",
              expected_holds=False,
              why="measured: the tanh compression grows with the bin count (3.6, 5.5, 7.2 bits "
                  "at 10, 30, 100 bins) as the units saturate within one fine bin of +-1"),
    ClaimSpec("nets_fit_the_task",
              "Both nets learn the rule: lowest final test accuracy over activations and "
              "seeds; the constant predictor (the training split's majority class) does not.",
              TISHBY, at_least="min_test_accuracy"),
)

_PRESETS = {
    "quick": dict(seeds=3, precision="float32", widths=(10, 7, 5, 4, 3),
                  activations=("tanh", "relu"),
                  train_fraction=0.85, split_seed=0, batch_size=256, steps=6000,
                  record_every=50, num_points=24, bins=(10, 30, 100), claim_bins=30,
                  fine_bins=100, min_compression=1.0, max_relu_compression=0.5,
                  min_fitting_rise=0.5, max_fine_bin_ratio=0.5, min_test_accuracy=0.8,
                  optimizer=optimizer_config(name="adam", learning_rate=3e-3)),
    "paper": dict(seeds=5, precision="float32", widths=(10, 7, 5, 4, 3),
                  activations=("tanh", "relu"),
                  train_fraction=0.85, split_seed=0, batch_size=256, steps=40_000,
                  record_every=200, num_points=40, bins=(10, 30, 100), claim_bins=30,
                  fine_bins=100, min_compression=1.0, max_relu_compression=0.5,
                  min_fitting_rise=0.5, max_fine_bin_ratio=0.5, min_test_accuracy=0.8,
                  optimizer=optimizer_config(name="adam", learning_rate=1e-3)),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~40 s on 2 cores) or "paper" (longer training, more seeds)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the first activation's traced net, for
    `launch.py --dtypes`."""
    model = TracedMLP(widths=tuple(config.widths), activation=config.activations[0],
                      **get_policy(config.precision).model_dtypes())
    return (model, jnp.zeros((2, NUM_BITS)),
            build_optimizer(config.optimizer, total_steps=config.steps))


def icosahedron_task() -> tuple[np.ndarray, np.ndarray]:
    """All 2^12 bit patterns and their labels: x [4096, 12] in {0, 1}, y [4096] in {0, 1}.

    Bit i sits on vertex u_i of a regular icosahedron (the cyclic permutations of
    (0, +-1, +-phi), normalised); y = 1[||sum_i x_i u_i||^2 > median]. The rule is invariant
    under the icosahedral rotation group: a documented stand-in for Shwartz-Ziv & Tishby's
    spherically symmetric rule.
    """
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    vertices = np.array([v for a in (-1.0, 1.0) for b in (-phi, phi)
                         for v in ((0.0, a, b), (a, b, 0.0), (b, 0.0, a))])
    vertices /= np.linalg.norm(vertices, axis=1, keepdims=True)
    x = ((np.arange(2 ** NUM_BITS)[:, None] >> np.arange(NUM_BITS)) & 1).astype(np.float32)
    # Rounded so that patterns with mathematically equal f (e.g. x and its complement, since
    # sum_i u_i = 0) get the same label despite float rounding at the median.
    f = np.round(np.sum((x.astype(np.float64) @ vertices) ** 2, axis=1), 9)
    return x, (f > np.median(f)).astype(np.int32)


class TracedMLP(nn.Module):
    """An MLP whose output carries its last hidden layer: [B, D] -> [B, widths[-1] + out_dim],
    columns [:widths[-1]] the last hidden activations T and [widths[-1]:] the logits.

    `fit_grid` evaluates this output on the whole input set, so every evaluation hands back T
    without re-running the model; `_logits_loss` reads only the logits.
    """

    widths: Sequence[int]
    out_dim: int = NUM_CLASSES
    activation: str = "tanh"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or normalisation
        act = get_activation(self.activation)
        h = x_BxD
        for width in self.widths:
            h = act(nn.Dense(int(width), dtype=self.dtype, param_dtype=self.param_dtype)(h))
        logits = nn.Dense(self.out_dim, dtype=self.dtype, param_dtype=self.param_dtype)(h)
        return jnp.concatenate([h, logits], axis=-1)


def _logits_loss(out_BxK, labels_B, weight_B=None):
    return softmax_cross_entropy(out_BxK[:, -NUM_CLASSES:], labels_B, weight_B)


def _logits_accuracy(out_BxK, labels_B, weight_B=None):
    return accuracy(out_BxK[:, -NUM_CLASSES:], labels_B, weight_B)


def _hidden(out_BxK, labels_B, weight_B=None):
    del labels_B, weight_B
    # The evaluation step hands over the model's output in the compute dtype; the binning
    # estimators work on float32 (bfloat16 values are exactly representable there).
    return out_BxK[:, :-NUM_CLASSES].astype(jnp.float32)


def _train(config, activation, x_all, y_all, train_idx, test_idx, log) -> dict:
    """Trains one activation over seeds; returns T [S, R, N, width] at the recorded steps R
    (step 0 first), the steps, and the final test accuracy [S]."""
    policy = get_policy(config.precision)
    model = TracedMLP(widths=tuple(config.widths), activation=activation,
                      **policy.model_dtypes())
    tx = build_optimizer(config.optimizer, total_steps=config.steps)
    seeds = list(range(config.seeds))
    states = create_train_states(model, tx, x_all[:2], seeds, make_loss_scale(policy))
    initial = jax.vmap(lambda p: model.apply({"params": p}, x_all))(states.params)
    initial = initial.astype(jnp.float32)
    train = {"x": x_all[train_idx], "y": y_all[train_idx]}
    everything = {"x": x_all, "y": y_all}
    states, history = fit_grid(
        states, train, minibatches(config.batch_size), loss=_logits_loss, steps=config.steps,
        data_seeds=[500 + s for s in seeds], eval_data=everything, eval_every=config.record_every,
        eval_metrics={"hidden": _hidden}, accumulate_steps=config.optimizer.accumulate_steps,
        policy=policy, label=f"{activation} net", verbose=False)
    # history["eval_hidden"] is [S, N, width, R]; the log gets scalars only (T is large).
    hidden = np.concatenate([np.asarray(initial)[:, None, :, :-NUM_CLASSES],
                             np.moveaxis(history["eval_hidden"], -1, 1)], axis=1)
    steps = np.concatenate([[0], history["eval_step"]])
    out_final = jax.vmap(lambda p: model.apply({"params": p}, x_all[test_idx]))(states.params)
    out_final = out_final.astype(jnp.float32)
    test_acc = np.asarray(jax.vmap(_logits_accuracy, in_axes=(0, None))(out_final,
                                                                        y_all[test_idx]))
    log.write({"label": f"{activation} net", "step": config.steps,
               "train_loss": history["loss"][:, -config.record_every:].mean(axis=1),
               "test_accuracy": test_acc})
    return {"hidden": hidden, "steps": steps, "test_accuracy": test_acc}


def _information_plane(config, hidden, y, activation) -> dict[int, np.ndarray]:
    """bins -> [S, P, 2] array of (I(X;T), I(T;Y)) in bits at the P log-spaced record points."""
    upper = 1.0 if activation == "tanh" else float(hidden.max())
    lower = -1.0 if activation == "tanh" else 0.0
    points = _log_spaced(hidden.shape[1], config.num_points)
    return {b: np.array([[binned_information_plane(hidden[s, r], y, b, (lower, upper))
                          for r in points] for s in range(hidden.shape[0])])
            for b in config.bins}


def _log_spaced(num_records: int, num_points: int) -> np.ndarray:
    """Record indices 0, then ~geometric up to the last one (duplicates dropped)."""
    geo = np.unique(np.round(np.geomspace(1, num_records - 1, num_points - 1)).astype(int))
    return np.concatenate([[0], geo])


def _compression(i_xt_SxP: np.ndarray) -> float:
    """Seed mean of (max over time - final) I(X;T)."""
    return float(np.mean(i_xt_SxP.max(axis=1) - i_xt_SxP[:, -1]))


def _fitting_rise(i_xt_SxP: np.ndarray) -> float:
    """Seed mean of (max over time - initial) I(X;T)."""
    return float(np.mean(i_xt_SxP.max(axis=1) - i_xt_SxP[:, 0]))


def compute_planes(config: ml_collections.ConfigDict, log) -> dict:
    """Part "planes": trains the tanh and ReLU nets, estimates their information planes at
    every bin count, and the claims' numbers at `claim_bins` and `fine_bins`."""
    if config.claim_bins not in config.bins or config.fine_bins not in config.bins:
        raise ValueError(f"claim_bins={config.claim_bins} and fine_bins={config.fine_bins} must "
                         f"be among bins={tuple(config.bins)}")
    x01, y = icosahedron_task()
    perm = np.random.default_rng(config.split_seed).permutation(x01.shape[0])
    num_train = int(round(config.train_fraction * x01.shape[0]))
    x_all, y_all = jnp.asarray(x01), jnp.asarray(y)
    planes, accuracies, steps = {}, {}, None
    for activation in config.activations:
        run_out = _train(config, activation, x_all, y_all, perm[:num_train], perm[num_train:],
                         log)
        planes[activation] = _information_plane(config, run_out["hidden"], y, activation)
        accuracies[activation] = run_out["test_accuracy"]
        steps = run_out["steps"]

    b, fine = config.claim_bins, config.fine_bins
    tanh_xt = {k: v[:, :, 0] for k, v in planes["tanh"].items()}
    relu_xt = {k: v[:, :, 0] for k, v in planes["relu"].items()}
    tanh_compression = _compression(tanh_xt[b])
    points = _log_spaced(len(steps), config.num_points)
    majority = int(np.mean(y[perm[:num_train]]) >= 0.5)
    return {
        "label_balance": float(y.mean()),
        "recorded_steps": steps[points].tolist(),
        "test_accuracy": {k: v.tolist() for k, v in accuracies.items()},
        "compression_bits": {act: {str(k): _compression(v[:, :, 0]) for k, v in p.items()}
                             for act, p in planes.items()},
        "information_plane_bits": {act: {str(k): v.mean(axis=0).tolist() for k, v in p.items()}
                                   for act, p in planes.items()},
        "tanh_compression": tanh_compression,
        "tanh_fitting_rise": _fitting_rise(tanh_xt[b]),
        "relu_fitting_rise": _fitting_rise(relu_xt[b]),
        "relu_compression": _compression(relu_xt[b]),
        "fine_bin_ratio": _compression(tanh_xt[fine]) / max(tanh_compression, 1e-12),
        "lowest_test_accuracy": float(min(a.min() for a in accuracies.values())),
        "majority_class_test_accuracy": float(np.mean(y[perm[num_train:]] == majority)),
    }


def judge_planes(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The claims' numbers, as computed by the part; each with its baseline: the other
    activation's statistic (tanh vs ReLU, Saxe et al.'s contrast) or the constant predictor."""
    two_phases = min(m["tanh_fitting_rise"], m["tanh_compression"])
    return {"tanh_compresses": Measured(m["tanh_compression"], baseline=m["relu_compression"],
                                        baseline_name="the ReLU net's compression"),
            "tanh_has_fitting_phase": Measured(
                two_phases, baseline=min(m["relu_fitting_rise"], m["relu_compression"]),
                baseline_name="the ReLU net's smaller phase (it rises, then stays)"),
            "relu_does_not_compress": Measured(m["relu_compression"],
                                               baseline=m["tanh_compression"],
                                               baseline_name="the tanh net's compression"),
            "compression_vanishes_with_fine_bins": m["fine_bin_ratio"],
            "nets_fit_the_task": Measured(
                m["lowest_test_accuracy"], baseline=m["majority_class_test_accuracy"],
                baseline_name="the constant predictor (majority class of the training split)")}


PARTS = (
    Part("planes", compute_planes, judge_planes,
         reads=("seeds", "precision", "widths", "activations", "train_fraction", "split_seed",
                "batch_size", "steps", "record_every", "num_points", "bins", "claim_bins",
                "fine_bins", "optimizer")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """The information plane at `claim_bins`; I(X;T) over training at every bin count."""
    import matplotlib.pyplot as plt

    planes = m["planes"]["information_plane_bits"]
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    t = np.maximum(np.asarray(m["planes"]["recorded_steps"]), 1)
    for k, activation in enumerate(config.activations):
        plane = np.asarray(planes[activation][str(config.claim_bins)])
        sc = axes[0].scatter(plane[:, 0], plane[:, 1], c=np.log10(t), cmap="viridis",
                             marker="o" if k == 0 else "^", label=f"{activation}")
        axes[0].plot(plane[:, 0], plane[:, 1], c="gray", lw=0.5)
        for b, ls in zip(config.bins, (":", "-", "--")):
            axes[1 + k].semilogx(t, np.asarray(planes[activation][str(b)])[:, 0], ls,
                                 label=f"{b} bins")
        axes[1 + k].axhline(NUM_BITS, c="k", lw=1.5, label="true I(X;T) = log2 4096 = 12 bits")
        axes[1 + k].set(xlabel="training step", ylabel="binned I(X;T), bits",
                        title=f"{activation}: last hidden layer (3 units), seed mean")
        axes[1 + k].legend(fontsize=7)
    fig.colorbar(sc, ax=axes[0], label="log10 step")
    axes[0].axvline(NUM_BITS, c="k", lw=1, label="I(X;T) upper limit")
    axes[0].axhline(1.0, c="gray", ls=":", label="H(Y) ~ 1 bit")
    axes[0].set(xlabel="I(X;T), bits", ylabel="I(T;Y), bits",
                title=f"information plane, {config.claim_bins} bins (o tanh, ^ relu)")
    axes[0].legend(fontsize=7)
    return [report.save_figure(fig, workdir, "information_plane.png")]
