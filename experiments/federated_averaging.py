"""Federated averaging: client drift on quadratics (closed form) and rounds to accuracy on MNIST-1D.

McMahan et al. (AISTATS 2017, arXiv 1602.05629) propose FedAvg: each round a fraction C of the
K clients runs E epochs of local SGD with batch B from the global model and the server averages
the returned models weighted by data size; FedSGD is E = 1 with the full local batch (one
gradient step). Their abstract reports "a reduction in required communication rounds by
10-100x as compared to synchronized stochastic gradient descent", and their Table 2 shows the
speed-up to a target accuracy smaller on pathological non-IID splits (two label shards per
client) than on IID ones. Karimireddy et al. (SCAFFOLD, ICML 2020, arXiv 1910.06378, abstract)
prove FedAvg "suffers from 'client-drift' when the data is heterogeneous" and that SCAFFOLD's
control variates make it "not affected by data heterogeneity or client sampling". Li et al.
(FedProx, MLSys 2020) add mu/2 |w - w_global|^2 to each local loss to limit the drift.

Part "quadratic" (float64, full participation, E local full-batch GD steps at step eta):
client losses f_i(w) = 1/2 (w - b_i)^T A_i (w - b_i). Local training is an affine map
x -> P_i x + q_i, so FedAvg's (and FedProx's) fixed point is x* = (sum p_i (I - P_i))^{-1}
sum p_i q_i (derivation in `dl_theory.theory.federated_quadratics`); it equals the global
minimiser w_opt when the A_i are equal or E = 1, and is biased otherwise. Measured: the
simulated fixed point (the library's rounds run to convergence) against the closed form
(baseline: w_opt, the naive prediction); the bias |x* - w_opt| / |w_opt| with a shared Hessian
(baseline: the heterogeneous Hessians) and its growth with E (baseline: the shared Hessian's
changes, rounding); SCAFFOLD's distance to w_opt (baseline: FedAvg's); FedProx's bias as mu
grows at the largest E (baseline: mu = 0 at every step, FedAvg).

Part "mnist1d": MNIST-1D's 4000 training examples over K = 100 clients (40 each), IID or
pathological non-IID, an MLP with one hidden layer of 100; per method the learning rate giving
the fewest rounds on a small grid (as McMahan et al. tune theirs), several client-sampling
seeds. Measured: rounds to a target test accuracy for FedSGD (E = 1, B = full, C = 0.1)
against FedAvg (E = 5, B = 10, C = 0.1), on both splits; FedAvg's rounds at C = 0.5 against
C = 0.1 (baseline: C = 0.01, a single client per round).

Run: python launch.py --config=experiments/federated_averaging.py:quick --workdir=runs/fedavg
Results (quick): the quadratic claims hold to a few float64 epsilons (bias 0.0075-0.067 of
|w_opt| for E = 2..20 without SCAFFOLD); FedAvg reaches 50% in 28 rounds against FedSGD's 60
on IID clients (2.2x, below the paper's 10-100x: an expected negative result), and is slower
than FedSGD on pathological non-IID clients (0.83x); C = 0.5 takes 19 rounds against 28 at
C = 0.1, one client per round (C = 0.01) does not reach the target in 150 (log speed-ups
0.39 beyond C = 0.1 against >= 1.68 up to it). The paper's Table 1
and Table 2 numbers were not read here (only the abstract's 10-100x is recorded).

Precision: `precision` (float32 by default) is the MNIST-1D MLP's policy, applied through the
model's dtypes (parameters, the local SGD updates and the server average stay float32; the
loss is taken on float32 logits); float16 is refused, as the federated rounds have no loss
scaling.
The quadratic part is float64 maths and ignores it.

quick: 50 s wall, 22 CPU-s at load 7 on 2 CPU cores (the MNIST-1D part is ~90% of it).
paper: 400 rounds, 5 seeds, four learning rates per method (not run here).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from dl_theory import report
from dl_theory.config_checks import check_precision_without_loss_scaling
from dl_theory.data.federated_splits import SPLITS, client_split
from dl_theory.data.mnist1d import NUM_CLASSES, load_mnist1d
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.hitting_times import hitting_time
from dl_theory.models.mlp import MLP
from dl_theory.theory import federated_quadratics as fq
from dl_theory.train import federated as fed
from dl_theory.train.precision import get_policy
from dl_theory.user_errors import ConfigError

MCMAHAN, SCAFFOLD, FEDPROX = "mcmahan2017", "karimireddy2020", "li2020fedprox"

CLAIMS = (
    ClaimSpec("fixed_point_matches_closed_form",
              "FedAvg's and FedProx's simulated fixed points on quadratic clients equal the "
              "closed form (sum p_i (I - P_i))^{-1} sum p_i q_i to float64 rounding: largest "
              "|x_sim - x*| / |w_opt| over E and mu (the global minimiser w_opt is not).",
              MCMAHAN + ", FedAvg on quadratics (closed form derived here)",
              at_most="quadratic.rounding_tolerance",
              margin_why="an exactness claim: the tolerance is a float64 rounding budget "
                         "(1e6 epsilons), set for any CPU's rounding; the measurement is a few "
                         "epsilons"),
    ClaimSpec("shared_hessian_unbiased",
              "With a shared Hessian (A_i = A) FedAvg's fixed point is the global minimiser "
              "for every E: largest relative bias |x* - w_opt| / |w_opt| is at rounding level "
              "(heterogeneous Hessians are not).",
              MCMAHAN + ", FedAvg on quadratics (closed form derived here)",
              at_most="quadratic.rounding_tolerance",
              margin_why="an exactness claim against a float64 rounding budget"),
    ClaimSpec("bias_grows_with_local_steps",
              "With heterogeneous Hessians FedAvg's relative bias grows with the local steps E: "
              "the smallest increase between consecutive E (E = 1 unbiased) exceeds the "
              "rounding tolerance (the shared Hessian's changes do not).",
              SCAFFOLD + ", client drift (abstract)",
              at_least="quadratic.rounding_tolerance",
              margin_why="a sign claim: the bound is the rounding level that separates growth "
                         "from no change (the shared Hessian's changes sit at rounding)",
              published=Published("FedAvg suffers from client-drift when the data is "
                                  "heterogeneous", "abstract")),
    ClaimSpec("scaffold_removes_bias",
              "SCAFFOLD's simulated fixed point is the global minimiser for every E: largest "
              "|x_sim - w_opt| / |w_opt| at rounding level (FedAvg's is not).",
              SCAFFOLD + ", control variates (Algorithm 1, option II)",
              at_most="quadratic.rounding_tolerance",
              margin_why="an exactness claim against a float64 rounding budget",
              published=Published("not affected by data heterogeneity or client sampling",
                                  "abstract")),
    ClaimSpec("fedprox_bias_shrinks_with_mu",
              "FedProx's relative bias at the largest E falls at every step of the mu grid: "
              "largest ratio bias(mu_next) / bias(mu) at most 1 - rounding tolerance (mu = 0, "
              "FedAvg, at every step is not).",
              FEDPROX + ", proximal term (closed form derived here)",
              at_most="quadratic.shrink_bound"),
    ClaimSpec("fedavg_far_fewer_rounds_iid",
              "On IID MNIST-1D clients FedAvg (E = 5, B = 10) needs at least 10x fewer rounds "
              "than FedSGD to the target test accuracy (mean over seeds, best learning rate "
              "of each).",
              MCMAHAN + ", abstract and Table 2", at_least=10.0, expected_holds=False,
              why="at this scale (40 examples per client, an MLP whose test accuracy plateaus "
                  "near 0.6) full-batch FedSGD at its best learning rate is already fast, and "
                  "FedAvg's 20 local steps per round on 40 examples gain only ~2x (28 against "
                  "60 rounds to 50% test accuracy, metrics mnist1d.splits); the paper's 10-100x "
                  "comes from MNIST/CIFAR with 600 examples per client and up to 600 local "
                  "steps per round",
              published=Published(10.0, "abstract: 10-100x fewer rounds than FedSGD")),
    ClaimSpec("fedavg_advantage_shrinks_non_iid",
              "FedAvg's speed-up over FedSGD is smaller on pathological non-IID clients than on "
              "IID ones: the smallest IID seed's speed-up over the largest non-IID seed's is "
              "at least 1.1 (IID seeds against each other are not; 10% is several times the "
              "change one round makes in counts of 30-100 rounds).",
              MCMAHAN + ", Table 2 (pathological non-IID)", at_least=1.1,
              published=Published("speed-ups smaller on pathological non-IID than IID",
                                  "Table 2")),
    # Restated (integrator): "rounds(0.1) / rounds(0.5) <= 1.5" measured 1.474 at 2 seeds, a
    # bound from memory that one round per seed could flip. McMahan et al.'s Table 1 point is
    # diminishing returns in C; the log speed-up beyond C = 0.1 over the log speed-up up to it
    # (C = 0.01 never reaching the target counts as 150 rounds: the ratio is an upper bound).
    ClaimSpec("client_fraction_beyond_tenth_matters_little",
              "FedAvg on IID clients gains little from C beyond 0.1 compared with the gain up "
              "to it: log(rounds(0.1) / rounds(0.5)) / log(rounds(0.01) / rounds(0.1)) at most "
              "1/2 (the reverse ratio, up-to over beyond, is not).",
              MCMAHAN + ", Table 1 (client fraction)", at_most=0.5),
)

_PRESETS = {
    "quick": dict(
        # K = 8 clients in D = 5, Hessian eigenvalues in [0.2, 1], eta = 0.3: every round map
        # contracts by <= 0.86, so 400 rounds reach the fixed point to far below rounding.
        # rounding_tolerance: 1e6 float64 epsilons; shrink_bound = 1 - rounding_tolerance.
        precision="float32",
        quadratic=dict(clients=8, dim=5, eigenvalue_low=0.2, eigenvalue_high=1.0,
                       learning_rate=0.3, local_steps=(1, 2, 5, 10, 20),
                       prox_mus=(0.0, 0.1, 0.3, 1.0, 2.0, 3.0), rounds=400,
                       rounding_tolerance=2.2e-10, shrink_bound=1.0 - 2.2e-10, seed=0),
        # target 0.5: ~85% of the test accuracy this MLP plateaus at (~0.6). The learning-rate
        # grids bracket each method's best rate (FedSGD diverges at 4).
        mnist1d=dict(clients=100, hidden=100, rounds=150, target_accuracy=0.5, seeds=2,
                     fedsgd_learning_rates=(1.0, 2.0, 3.0),
                     fedavg_learning_rates=(0.4, 0.8, 1.6), local_epochs=5, batch_size=10,
                     client_fraction=0.1, fractions=(0.01, 0.5)),
    ),
}
_PRESETS["paper"] = dict(
    _PRESETS["quick"],
    mnist1d=dict(_PRESETS["quick"]["mnist1d"], rounds=400, seeds=5,
                 fedsgd_learning_rates=(0.5, 1.0, 2.0, 3.0),
                 fedavg_learning_rates=(0.2, 0.4, 0.8, 1.6)),
)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Stable local steps, a target accuracy in (0, 1), fractions in (0, 1]; no float16
    (the federated rounds have no loss scaling)."""
    check_precision_without_loss_scaling(config)
    q = config.quadratic
    worst = q.learning_rate * (q.eigenvalue_high + max(q.prox_mus))
    if not 0 < worst < 2:
        raise ConfigError(f"quadratic.learning_rate={q.learning_rate}; allowed: 0 < eta "
                          f"(eigenvalue_high + max prox_mus) < 2 (here {worst:g})")
    if tuple(q.local_steps)[0] != 1 or len(q.local_steps) < 2:
        raise ConfigError(f"quadratic.local_steps={tuple(q.local_steps)}; allowed: an "
                          "increasing tuple starting at 1")
    m = config.mnist1d
    if not 0 < m.target_accuracy < 1:
        raise ConfigError(f"mnist1d.target_accuracy={m.target_accuracy}; allowed: (0, 1)")
    for key in ("client_fraction", "fractions"):
        values = np.atleast_1d(m[key])
        if not np.all((values > 0) & (values <= 1)):
            raise ConfigError(f"mnist1d.{key}={m[key]}; allowed: numbers in (0, 1]")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (more rounds, seeds and learning rates)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def compute_quadratic(config, log) -> dict:
    """Part "quadratic": simulated and closed-form fixed points over E, mu and methods."""
    c = config.quadratic
    a, b = fq.random_quadratic_clients(c.seed, c.clients, c.dim, c.eigenvalue_low,
                                       c.eigenvalue_high)
    shared = np.repeat(np.mean(a, axis=0, keepdims=True), c.clients, axis=0)
    weights = np.ones(c.clients)
    largest = max(c.local_steps)
    out = {"local_steps": list(c.local_steps), "prox_mus": list(c.prox_mus)}
    with jax.enable_x64(True):
        for label, hessians in (("heterogeneous", a), ("shared", shared)):
            w_opt = fq.global_minimiser(hessians, b, weights)
            scale = float(np.linalg.norm(w_opt))
            rows = {"sim_to_closed": [], "sim_bias": [], "closed_bias": [], "contraction": []}
            for steps in c.local_steps:
                closed = fq.federated_fixed_point(hessians, b, weights, c.learning_rate, steps)
                sim = fed.quadratic_rounds(hessians, b, "fedavg", c.learning_rate, steps, c.rounds)
                rows["sim_to_closed"].append(float(np.linalg.norm(sim - closed)) / scale)
                rows["sim_bias"].append(float(np.linalg.norm(sim - w_opt)) / scale)
                rows["closed_bias"].append(float(np.linalg.norm(closed - w_opt)) / scale)
                rows["contraction"].append(
                    fq.round_contraction(hessians, weights, c.learning_rate, steps))
            out[label] = rows
        w_opt = fq.global_minimiser(a, b, weights)
        scale = float(np.linalg.norm(w_opt))
        scaffold = [fed.quadratic_rounds(a, b, "scaffold", c.learning_rate, s, c.rounds)
                    for s in c.local_steps]
        out["scaffold_bias"] = [float(np.linalg.norm(x - w_opt)) / scale for x in scaffold]
        prox = {"sim_to_closed": [], "sim_bias": [], "closed_bias": []}
        for mu in c.prox_mus:
            closed = fq.federated_fixed_point(a, b, weights, c.learning_rate, largest, mu)
            sim = fed.quadratic_rounds(a, b, "fedprox", c.learning_rate, largest, c.rounds, mu)
            prox["sim_to_closed"].append(float(np.linalg.norm(sim - closed)) / scale)
            prox["sim_bias"].append(float(np.linalg.norm(sim - w_opt)) / scale)
            prox["closed_bias"].append(float(np.linalg.norm(closed - w_opt)) / scale)
        out["fedprox"] = prox
    return out


def judge_quadratic(config, m) -> dict:
    """Closed form vs simulation (baseline w_opt); bias with a shared Hessian (baseline:
    heterogeneous); growth with E (baseline: shared); SCAFFOLD (baseline: FedAvg); FedProx
    (baseline: mu = 0 throughout)."""
    het, shared, prox = m["heterogeneous"], m["shared"], m["fedprox"]
    prox_bias = np.asarray(prox["sim_bias"])
    return {
        "fixed_point_matches_closed_form": Measured(
            max(het["sim_to_closed"] + shared["sim_to_closed"] + prox["sim_to_closed"]),
            baseline=max(het["sim_bias"]), baseline_name="the global minimiser w_opt"),
        "shared_hessian_unbiased": Measured(
            max(shared["sim_bias"]), baseline=max(het["sim_bias"]),
            baseline_name="heterogeneous Hessians"),
        "bias_grows_with_local_steps": Measured(
            float(np.min(np.diff(het["sim_bias"]))),
            baseline=float(np.min(np.diff(shared["sim_bias"]))),
            baseline_name="shared Hessian"),
        "scaffold_removes_bias": Measured(
            max(m["scaffold_bias"]), baseline=max(het["sim_bias"]), baseline_name="FedAvg"),
        "fedprox_bias_shrinks_with_mu": Measured(
            float(np.max(prox_bias[1:] / prox_bias[:-1])),
            baseline=float(prox_bias[0] / prox_bias[0]),
            baseline_name="mu = 0 (FedAvg) at every step"),
    }


def _mnist1d_model(config) -> MLP:
    """The clients' MLP, in the dtypes of `config.precision`."""
    return MLP(widths=(config.mnist1d.hidden,), out_dim=NUM_CLASSES,
               **get_policy(config.precision).model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the clients' MLP, for `launch.py --dtypes`."""
    m = config.mnist1d
    return (_mnist1d_model(config), jnp.zeros((2, load_mnist1d()["train"]["x"].shape[1])),
            optax.sgd(max(m.fedavg_learning_rates)))


def _rounds_to_target(accuracy_XxR, target: float) -> np.ndarray:
    """Rounds (1-based) until the test accuracy first reaches `target`; rounds + 1 if never
    (censored, a lower bound)."""
    return hitting_time(accuracy_XxR, target, approach="above") + 1


def compute_mnist1d(config, log) -> dict:
    """Part "mnist1d": accuracy per round for FedSGD and FedAvg on both splits (best learning
    rate of a grid), and FedAvg's rounds at other client fractions on the IID split."""
    m = config.mnist1d
    raw = load_mnist1d()
    test = {k: jnp.asarray(v) for k, v in raw["test"].items()}
    model = _mnist1d_model(config)
    rules = {"fedsgd": (fed.LocalRule("fedavg", 0.0, 1, None, client_fraction=m.client_fraction),
                        m.fedsgd_learning_rates),
             "fedavg": (fed.LocalRule("fedavg", 0.0, m.local_epochs, m.batch_size,
                                      client_fraction=m.client_fraction),
                        m.fedavg_learning_rates)}
    out = {"splits": {}, "target": m.target_accuracy}
    for split in SPLITS:
        idx = client_split(split, raw["train"]["y"], m.clients, seed=0)
        data = {k: jnp.asarray(v[idx]) for k, v in raw["train"].items()}
        out["splits"][split] = {}
        for method, (rule, rates) in rules.items():
            traces = fed.classifier_accuracy_traces(model, rule, rates, data, test,
                                                    rounds=m.rounds, seeds=m.seeds)
            rounds = _rounds_to_target(traces, m.target_accuracy)  # [L, S]
            best = int(np.argmin(rounds.mean(axis=1)))
            out["splits"][split][method] = {
                "learning_rates": list(rates), "rounds_per_rate": rounds.tolist(),
                "best_rate": rates[best], "rounds": rounds[best].tolist(),
                "accuracy": traces[best].mean(axis=0).tolist()}
            if split == "iid" and method == "fedavg":
                iid_data, iid_rule, iid_rate = data, rule, rates[best]
    out["fractions"] = {m.client_fraction: out["splits"]["iid"]["fedavg"]["rounds"]}
    for fraction in m.fractions:
        rule = dataclasses.replace(iid_rule, client_fraction=fraction)
        traces = fed.classifier_accuracy_traces(model, rule, (iid_rate,), iid_data, test,
                                                rounds=m.rounds, seeds=m.seeds)[0]
        out["fractions"][fraction] = _rounds_to_target(traces, m.target_accuracy).tolist()
    out["fractions"] = {str(k): v for k, v in sorted(out["fractions"].items())}
    return out


def _speedups(split: dict) -> np.ndarray:
    return np.asarray(split["fedsgd"]["rounds"], float) / np.asarray(split["fedavg"]["rounds"])


def judge_mnist1d(config, m) -> dict:
    """Speed-up on IID (baseline: non-IID); IID over non-IID speed-ups (baseline: IID seeds
    against each other); C = 0.1 over C = 0.5 (baseline: C = 0.01 over C = 0.1)."""
    iid, non_iid = _speedups(m["splits"]["iid"]), _speedups(m["splits"]["pathological"])
    mean_over_seeds = {k: float(np.mean(v)) for k, v in m["fractions"].items()}
    small, usual = (str(f) for f in (min(config.mnist1d.fractions),
                                     config.mnist1d.client_fraction))
    large = str(max(config.mnist1d.fractions))
    beyond = float(np.log(mean_over_seeds[usual] / mean_over_seeds[large]))
    up_to = float(np.log(mean_over_seeds[small] / mean_over_seeds[usual]))

    def mean_ratio(split):
        rounds = m["splits"][split]
        return float(np.mean(rounds["fedsgd"]["rounds"]) / np.mean(rounds["fedavg"]["rounds"]))

    return {
        "fedavg_far_fewer_rounds_iid": Measured(
            mean_ratio("iid"), baseline=mean_ratio("pathological"),
            baseline_name="the same speed-up on pathological non-IID clients"),
        "fedavg_advantage_shrinks_non_iid": Measured(
            float(iid.min() / non_iid.max()), baseline=float(iid.min() / iid.max()),
            baseline_name="IID seeds against each other"),
        "client_fraction_beyond_tenth_matters_little": Measured(
            beyond / up_to, baseline=up_to / beyond,
            baseline_name=f"log speed-up from C = {small} to {usual} over that from {usual} "
                          f"to {large}"),
    }


PARTS = (
    Part("quadratic", compute_quadratic, judge_quadratic, reads=("quadratic",)),
    Part("mnist1d", compute_mnist1d, judge_mnist1d, reads=("mnist1d", "precision")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Relative bias vs E (closed form as lines, simulations as markers) and vs mu; test
    accuracy vs round per method and split."""
    import matplotlib.pyplot as plt

    names = []
    if "quadratic" in m:
        q = m["quadratic"]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        floor = 1e-17  # exact zeros on the log axis
        steps = q["local_steps"]
        for label, color in (("heterogeneous", "C0"), ("shared", "C1")):
            left.plot(steps, np.maximum(q[label]["closed_bias"], floor), "-", color=color,
                      label=f"FedAvg closed form, {label} Hessians")
            left.plot(steps, np.maximum(q[label]["sim_bias"], floor), "o", color=color,
                      label=f"FedAvg simulated, {label} Hessians")
        left.plot(steps, np.maximum(q["scaffold_bias"], floor), "s", color="C2",
                  label="SCAFFOLD simulated, heterogeneous")
        left.set(xscale="log", yscale="log", xlabel="local steps E",
                 ylabel="|x* - w_opt| / |w_opt|", title="Client drift on quadratics")
        left.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.15))
        p = q["fedprox"]
        right.plot(q["prox_mus"], p["closed_bias"], "-", color="C3", label="closed form")
        right.plot(q["prox_mus"], p["sim_bias"], "o", color="C3", label="simulated")
        right.set(xlabel="FedProx mu", ylabel="|x* - w_opt| / |w_opt|",
                  title=f"FedProx bias at E = {max(steps)}")
        right.legend(fontsize=8)
        names.append(report.save_figure(fig, workdir, "quadratic_bias.png"))
    if "mnist1d" in m:
        d = m["mnist1d"]
        fig, axes = plt.subplots(1, len(d["splits"]), figsize=(11, 4.2), sharey=True)
        for ax, (split, runs) in zip(axes, d["splits"].items()):
            for method, run in runs.items():
                ax.plot(np.arange(1, len(run["accuracy"]) + 1), run["accuracy"],
                        label=f"{method} (lr {run['best_rate']:g})")
            ax.axhline(d["target"], color="0.5", lw=0.8, ls=":", label="target accuracy")
            ax.set(xlabel="communication round", title=f"MNIST-1D, {split} clients")
        axes[0].set_ylabel("test accuracy (mean over seeds)")
        axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "accuracy_vs_rounds.png"))
    return names
