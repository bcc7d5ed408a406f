"""Long-range memory: vanilla RNNs forget, gated RNNs hold longer, attention holds throughout.

Claims. Bengio, Simard & Frasconi 1994 ("Learning long-term dependencies with gradient descent
is difficult", IEEE TNN 5(2), Sec. III-IV, Thm 4): a recurrent network that latches a bit of
information robustly against input noise must be contracting around its attractor, so the
gradient of the final loss with respect to the inputs T steps back vanishes exponentially in
T, and gradient descent stops finding the dependency as T grows. Hochreiter & Schmidhuber 1997
("Long short-term memory", Sec. 4, the constant error carousel) and Cho et al. 2014 (GRU)
keep a gated additive memory whose error flow does not decay while the gates hold, and learn
lags of hundreds of steps (H&S Sec. 5.2). Self-attention (Vaswani et al. 2017, Sec. 4 and
Table 1) joins any two positions by a path of length O(1), so the delay does not matter.

Task (`dl_theory.data.sequence_tasks.delayed_recall`): the first of T tokens is a signal
among K = `num_symbols` symbols; the other T - 1 are noise drawn from the whole vocabulary,
signal symbols included (Bengio et al.'s single input channel: the noise cannot be ignored by
its value, so holding the signal means rejecting perturbations); the model outputs the signal
after the last step (chance 1 / K). Every training step draws a fresh batch (online learning,
so the only difficulty is optimisation, which is what the theory is about).

Measured. For each T in `lengths` and each architecture: a one-layer tanh RNN (flax
SimpleCell, orthogonal recurrent init: the best case for a vanilla RNN, isometric at
initialisation), LSTM and GRU read out at the last step, and a one-layer transformer encoder
(learned positions, mean pooling); Adam with clipping, batch 32, seeds as one `fit_grid`
program; accuracy on `num_test` fresh sequences. The gated cells start with their memory gate
bias at log T (`open_memory_gates`, chrono initialisation): with flax's bias 0 they keep 1/2
of their memory per step, so at T = 100 a gradient of 2^-100 reaches the signal and nothing is
learnt in a short run; the gate's ability to hold memory, not its starting value, is what
Hochreiter & Schmidhuber's argument is about. The transformer gets fewer steps
(`transformer.steps`), which only makes its claim harder. Claims: the RNN's accuracy at the
largest T is within `chance_band` of chance; at the middle T the worse of LSTM and GRU beats
the RNN by `gated_margin`; the transformer's accuracy at the largest T is at least
`attention_level`. Controls (baselines the bounds must reject, same run): the RNN's distance to
chance and the gated-minus-RNN difference at the shortest delay, where every cell recalls; the
untrained transformer's accuracy at the longest delay (its initialisation, one evaluation).

Finding (quick preset). All four recall perfectly at T = 12. At T = 80 the RNN is at chance
(0.22) while the GRU recalls all and the LSTM 0.83 / 0.98 (two seeds); at T = 160 the RNN
stays at chance, the gated cells only partly hold within the 500-step budget (LSTM 0.48 /
0.98, GRU 0.63 / 0.74; the paper preset trains longer), and the transformer is perfect at
every T. Controls: at T = 12 the RNN is 0.75 above chance and the gated cells lead it by 0.00;
the untrained transformer recalls 0.26 at T = 160 (chance 0.25).

Run: python launch.py --config=experiments/sequence_memory.py:quick --workdir=runs/sm
quick: T = 12, 80, 160; 500 steps; 2 seeds; 59 s wall (110 CPU-s) on 2 otherwise idle CPU
cores (load ~2, cold cache). paper: T up to 512, 3 seeds, 5,000 steps (not timed here;
expect tens of minutes).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.sequence_tasks import delayed_recall, delayed_recall_sampler
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models.recurrent import SequenceClassifier
from dl_theory.models.transformer import TransformerClassifier
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.concurrent_jobs import run_jobs
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import accuracy, softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

BENGIO = "bengio1994, Sec. III-IV (Thm 4: robust latching => vanishing grads)"
GATED = "hochreiter1997, Sec. 4 and 5.2; cho2014"
ATTENTION = "vaswani2017, Sec. 4 and Table 1 (maximum path length O(1))"

SHARED = ("seeds", "batch_size", "num_test", "precision", "task", "optimizer")

CLAIMS = (
    # In [-chance_band, chance_band]: the judge adds the lower side (a spec bound is a number
    # or a config key, not its negative).
    ClaimSpec("rnn_collapses_at_longest_delay",
              "At the longest delay the vanilla RNN's recall accuracy is at chance (1 / K) "
              "within a band (seed-mean accuracy minus chance).", BENGIO,
              at_most="chance_band"),
    ClaimSpec("gated_rnns_hold_longer",
              "At the middle delay both gated RNNs (LSTM, GRU) recall far better than the "
              "vanilla RNN (worse gated seed-mean accuracy minus the RNN's).", GATED,
              at_least="gated_margin"),
    ClaimSpec("attention_holds_across_context",
              "At the longest delay the transformer still recalls the first token (seed-mean "
              "accuracy).", ATTENTION, at_least="attention_level",
              published=Published("maximum path length O(1) (recurrent layers: O(n))",
                                  "Table 1")),
)

RECURRENT = ("rnn", "lstm", "gru")
ARCHITECTURES = (*RECURRENT, "transformer")

# The bias that sets how much of the memory a gated cell keeps per step at initialisation:
# the LSTM's forget gate (keep c) and the GRU's update gate z (new h = (1 - z) n + z h).
_MEMORY_GATE_BIAS = {"lstm": "hf", "gru": "iz"}

_PRESETS = {
    "quick": dict(
        seeds=2, steps=500, batch_size=32, num_test=1024, precision="float32",
        task=dict(lengths=(12, 80, 160), num_symbols=4, vocab_size=8, distinct_noise=False),
        recurrent=dict(hidden=32, chrono_gate_bias=True),
        transformer=dict(d_model=32, num_heads=2, num_layers=1, mlp_dim=64, steps=300),
        optimizer=optimizer_config(name="adam", learning_rate=3e-3, clip_global_norm=1.0),
        chance_band=0.1, gated_margin=0.5, attention_level=0.95),
    "paper": dict(
        seeds=3, steps=5000, batch_size=64, num_test=4096, precision="float32",
        task=dict(lengths=(16, 64, 128, 256, 512), num_symbols=4, vocab_size=8,
                  distinct_noise=False),
        recurrent=dict(hidden=64, chrono_gate_bias=True),
        transformer=dict(d_model=64, num_heads=4, num_layers=2, mlp_dim=128, steps=2000),
        optimizer=optimizer_config(name="adam", learning_rate=1e-3, clip_global_norm=1.0),
        chance_band=0.1, gated_margin=0.5, attention_level=0.95),
}


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, ~60 s on 2 cores) or "paper" (delays up to 512)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def build_model(config: ml_collections.ConfigDict, architecture: str, seq_len: int):
    """The classifier of one architecture in ARCHITECTURES, [B, T] tokens -> [B, K] logits."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture={architecture!r}; known: {list(ARCHITECTURES)}")
    dtypes = get_policy(config.precision).model_dtypes()
    task = config.task
    if architecture == "transformer":
        t = config.transformer
        return TransformerClassifier(task.num_symbols, d_model=t.d_model, num_heads=t.num_heads,
                                     num_layers=t.num_layers, mlp_dim=t.mlp_dim,
                                     max_len=seq_len, vocab_size=task.vocab_size, **dtypes)
    return SequenceClassifier(task.num_symbols, hidden=config.recurrent.hidden,
                              cell=architecture, vocab_size=task.vocab_size, readout="last",
                              **dtypes)


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the LSTM at the longest delay, for `launch.py --dtypes`."""
    length = max(config.task.lengths)
    return (build_model(config, "lstm", length), jnp.zeros((2, length), jnp.int32),
            build_optimizer(config.optimizer, total_steps=config.steps))


def open_memory_gates(params, architecture: str, seq_len: int):
    """Sets the memory gate's bias of every layer of a gated cell to log T (no-op for other
    architectures): the cell then keeps T / (T + 1) of its memory per step at initialisation,
    so ~1/e of it survives the T steps of the task. A deterministic form of the chrono
    initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?",
    Sec. 4, b_f ~ log U[1, T - 1]); flax's default bias 0 keeps 1/2 per step, 2^-T in all."""
    gate = _MEMORY_GATE_BIAS.get(architecture)
    if gate is None:
        return params
    bias = float(np.log(seq_len))

    def shift(path, leaf):
        names = [str(getattr(k, "key", k)) for k in path]
        return jnp.full_like(leaf, bias) if names[-2:] == [gate, "bias"] else leaf

    return jax.tree_util.tree_map_with_path(shift, params)


def _train(config, architecture: str, seq_len: int, log, initial: bool
           ) -> dict[str, np.ndarray]:
    """Test accuracies [S] of one architecture at one delay after training ("trained") and,
    if `initial`, at initialisation ("initial", a control that costs one evaluation; the
    transformer's part has no `recurrent` section, hence the gate check first)."""
    task = config.task
    test = delayed_recall(jax.random.PRNGKey(10_000 + seq_len), config.num_test, seq_len,
                          task.num_symbols, task.vocab_size, task.distinct_noise)
    model = build_model(config, architecture, seq_len)
    policy = get_policy(config.precision)
    steps = config.transformer.steps if architecture == "transformer" else config.steps
    tx = build_optimizer(config.optimizer, total_steps=steps)
    seeds = list(range(config.seeds))
    # A recurrent cell's parameters do not depend on T (the scan shares them across steps),
    # so its initialisation traces one step and is compiled once for every delay.
    example = test["x"][:2] if architecture == "transformer" else test["x"][:2, :1]
    states = create_train_states(model, tx, example, seeds, make_loss_scale(policy))
    if architecture in _MEMORY_GATE_BIAS and config.recurrent.chrono_gate_bias:
        states = states.replace(params=open_memory_gates(states.params, architecture, seq_len))
    accuracies = {}
    if initial:
        accuracies["initial"] = np.asarray(jax.jit(jax.vmap(
            lambda p: accuracy(model.apply({"params": p}, test["x"]), test["y"])))(states.params))
    sampler = delayed_recall_sampler(seq_len, config.batch_size, task.num_symbols,
                                     task.vocab_size, task.distinct_noise)
    _, history = fit_grid(states, None, sampler, loss=softmax_cross_entropy, steps=steps,
                          data_seeds=[100 + s for s in seeds], eval_data=test, eval_every=steps,
                          eval_metrics={"accuracy": accuracy},
                          accumulate_steps=config.optimizer.accumulate_steps, policy=policy,
                          log=log, tags={"architecture": architecture, "seq_len": seq_len},
                          label=f"{architecture} T={seq_len}", verbose=False)
    return {**accuracies, "trained": np.asarray(history["eval_accuracy"][:, -1])}


def _accuracies(config, architectures, log, initial: bool = False) -> dict:
    """{"trained" (and "initial" if `initial`): {architecture: test accuracies
    [len(lengths), S]}}, every delay of `task.lengths`. The (architecture, delay) runs are
    independent: one per core at a time, longest delay first (`run_jobs`: same results as
    in turn)."""
    cases = sorted(((a, t) for a in architectures for t in config.task.lengths),
                   key=lambda case: -case[1])
    results = run_jobs([functools.partial(_train, config, a, t, log, initial)
                        for a, t in cases])
    by_case = dict(zip(cases, results, strict=True))
    runs = {a: [by_case[a, t] for t in config.task.lengths] for a in architectures}
    return {when: {a: np.stack([run[when] for run in runs[a]], axis=0) for a in architectures}
            for when in runs[architectures[0]][0]}


def compute_recurrent(config: ml_collections.ConfigDict, log) -> dict:
    """Part "recurrent": the vanilla RNN, LSTM and GRU at every delay."""
    accuracies = _accuracies(config, RECURRENT, log)["trained"]
    lengths = list(config.task.lengths)
    longest, middle = len(lengths) - 1, len(lengths) // 2
    chance = 1.0 / config.task.num_symbols

    def gated_minus_rnn(delay):
        gated = min(float(accuracies[a][delay].mean()) for a in ("lstm", "gru"))
        return gated - float(accuracies["rnn"][delay].mean())

    # The controls are the same statistics at the shortest delay, where every cell recalls.
    return {"lengths": lengths, "chance": chance, "accuracy": accuracies,
            "rnn_longest_minus_chance": float(accuracies["rnn"][longest].mean()) - chance,
            "rnn_shortest_minus_chance": float(accuracies["rnn"][0].mean()) - chance,
            "gated_minus_rnn_middle": gated_minus_rnn(middle),
            "gated_minus_rnn_shortest": gated_minus_rnn(0)}


def judge_recurrent(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The RNN's distance to chance at the longest delay (band on both sides); the gated
    cells' lead at the middle delay; both against the same at the shortest delay."""
    return {"rnn_collapses_at_longest_delay": Measured(
                m["rnn_longest_minus_chance"], at_least=-config.chance_band,
                baseline=m["rnn_shortest_minus_chance"],
                baseline_name="the same RNN at the shortest delay"),
            "gated_rnns_hold_longer": Measured(
                m["gated_minus_rnn_middle"], baseline=m["gated_minus_rnn_shortest"],
                baseline_name="the same difference at the shortest delay")}


def compute_transformer(config: ml_collections.ConfigDict, log) -> dict:
    """Part "transformer": the one-layer transformer encoder at every delay."""
    accuracies = _accuracies(config, ("transformer",), log, initial=True)
    accuracy, initial = accuracies["trained"]["transformer"], accuracies["initial"]["transformer"]
    return {"lengths": list(config.task.lengths), "accuracy": accuracy,
            "initial_accuracy": initial, "longest": float(accuracy[-1].mean()),
            "initial_longest": float(initial[-1].mean())}


def judge_transformer(config: ml_collections.ConfigDict, m: dict) -> dict:
    """The transformer's accuracy at the longest delay, against its initialisation's."""
    return {"attention_holds_across_context": Measured(
        m["longest"], baseline=m["initial_longest"],
        baseline_name="the untrained transformer (its initialisation)")}


PARTS = (
    Part("recurrent", compute_recurrent, judge_recurrent, reads=(*SHARED, "steps", "recurrent")),
    Part("transformer", compute_transformer, judge_transformer,
         reads=(*SHARED, "transformer")),
)


def figures(config: ml_collections.ConfigDict, m: dict, workdir: str) -> list[str]:
    """Recall accuracy against the delay for every architecture, with the claimed levels."""
    import matplotlib.pyplot as plt

    accuracies = {**m["recurrent"]["accuracy"], "transformer": m["transformer"]["accuracy"]}
    chance = 1.0 / config.task.num_symbols
    lengths = np.asarray(config.task.lengths)
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for architecture in ARCHITECTURES:
        acc = np.asarray(accuracies[architecture])
        line, = ax.plot(lengths, acc.mean(1), "o-", label=f"{architecture} (seed mean)")
        ax.plot(np.repeat(lengths, acc.shape[1]), acc.ravel(), "x", c=line.get_color(),
                alpha=0.6)
    ax.axhline(chance, ls=":", c="k", label=f"chance 1/K = {chance:.2f}")
    ax.axhspan(chance - config.chance_band, chance + config.chance_band, color="gray",
               alpha=0.15, label="claimed collapse band (RNN, longest T)")
    ax.axhline(config.attention_level, ls="--", c="gray", lw=0.8,
               label=f"claimed attention level {config.attention_level:g}")
    ax.set_xscale("log")
    ax.set_xticks(lengths, [str(t) for t in lengths])
    ax.set_xticks([], minor=True)
    ax.set(xlabel="delay T (sequence length)", ylabel="recall accuracy (fresh sequences)",
           ylim=(0, 1.05), title="Delayed recall of the first token")
    ax.legend(fontsize=8, title="x: single seeds", title_fontsize=8)
    return [report.save_figure(fig, workdir, "sequence_memory.png")]
