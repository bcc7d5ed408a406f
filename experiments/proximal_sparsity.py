"""Proximal training with a preconditioner (ProxGen; Yun, Lozano & Yang, NeurIPS 2021).

ProxGen (arXiv 2007.07484) takes the step x+ = argmin_x <m, x> + (1/2 eta)
(x - x_t)^T D (x - x_t) + lambda R(x) with D the optimizer's diagonal preconditioner; for
R = ||x||_q^q it is a closed-form, per-coordinate threshold map at tau = lambda eta / d
(`dl_theory.optim.proximal`). Its claims: these maps are exact; the prox must carry D (the
original ProxQuant took it with tau = lambda eta after an adaptive step, which fixes a different
problem); proximal training gives exactly sparse nets where subgradient training does not, and
accuracy at least that of a subgradient net pruned after training; non-convex l_q (q < 1)
beats l_1 at equal sparsity.

Sources read: the arXiv v1 abstract, the NeurIPS 2021 abstract (the official repository's
README) and the official code (github.com/abcdxyzpqrst/proxgen; `dl_theory.optim.proximal`
shows its maps equal ours). The paper's body (equations, CIFAR-10 tables of sparsity and
accuracy) was not found, so no table number or published accuracy is recorded. The abstracts
differ on the headline: v1 says non-convex regularizers are "more effective" than convex ones
(tested by l_half_beats_l1_at_equal_sparsity); NeurIPS says "the benefit of proximal approaches
over sub-gradient counterparts is more pronounced for non-convex regularizers", a weaker claim
about the prox-vs-subgradient gap. The official CIFAR-10 script: VGG-16 or ResNet-34, 300
epochs, batch 128, learning rate 1e-3 (x0.1 at epoch 150, x0.01 at 250), decoupled weight
decay 1e-2, lambda = 0.1 / 50000, prox on weight matrices and kernels only.

Measured. (1) closed_forms: every map against a brute-force grid-and-bisection minimiser
(`dl_theory.theory.scalar_minimiser`) on 10^4 random (u, d, lambda, eta) per q, float64, away
from the threshold (where two minimisers tie); baseline: the map with tau = lambda eta (D
dropped). (2) lasso: an ill-conditioned lasso (column scales over two decades), solved by
coordinate descent (scikit-learn) and by the preconditioned proximal gradient with a frozen
diagonal D = diag(X^T X / n) (ProxGen's step with beta1 = 0 and D held fixed), with the prox
taken with D (ProxGen) and without it (ProxQuant's caveat); distance to the CD solution.
(3) mnist1d: a 40-100-100-10 ReLU MLP on MNIST-1D trained with Adam plus the l0, l_1/2,
l_2/3 and l1 prox at a grid of strengths (one init and data order for all, so differences are
the method's), and with Adam on the l1 subgradient at the reference strength; the fraction of
parameters exactly zero and the test accuracy; accuracy at the target sparsity interpolated
along each method's strength curve; the subgradient net magnitude-pruned to that sparsity.
Tolerances on accuracy differences are z binomial standard errors of the test set (n = 1000),
sqrt(2 p (1 - p) / (n S)), fixed before the run.

Measured (quick, three seeds): accuracy at 80 % zeros is l1 0.604, l_1/2 0.598, l_2/3 0.563,
l0 0.546, pruned subgradient net 0.585. So the l1 prox beats pruning on the same penalty, but
not every kind does: l0 falls short (-0.039 against a tolerance of -0.025), a negative result
kept as such. (With one seed the tolerance was -0.044 and l0's deficit was not resolved:
the verdict then depended on the seed count, so the quick preset trains three.) The paper
preset gives the same verdicts: l1 0.617, l_1/2 0.640, l_2/3 0.630, l0 0.548, pruned 0.600;
l0 -0.052 (tolerance -0.025); l_1/2 beats l1 by 0.023, short of the +0.025 it needs.

Run: python launch.py --config=experiments/proximal_sparsity.py:quick --workdir=runs/prox
quick: ~50 s on 2 CPU cores (three seeds, 1500 steps). paper: 6000 steps, six strengths,
731 s on 2 shared cores (the paper trains CNNs on CIFAR-10 on a GPU; MNIST-1D is the
closest this hardware allows).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.data.batching import minibatches
from dl_theory.data.mnist1d import NUM_CLASSES, load_mnist1d
from dl_theory.data.synthetic import badly_scaled_sparse_regression
from dl_theory.experiment import ClaimSpec, Measured, Part, Published, config_from_presets
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.proximal import EXPONENTS, PROX_MAPS, preconditioned_prox, threshold
from dl_theory.theory.quadratic import preconditioned_proximal_gradient, preconditioned_step_size
from dl_theory.theory.scalar_minimiser import brute_force_prox, random_preconditioned_prox_problems
from dl_theory.theory.sparsity import accuracy_at_sparsity, magnitude_pruned_members, zero_fraction
from dl_theory.train.evaluate import members_accuracy
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states, set_hyperparams
from dl_theory.uncertainty import binomial_difference_se
from dl_theory.user_errors import ConfigError

PROXGEN = "yun2021"
KINDS = ("l0", "l_half", "l_two_thirds", "l1")

CLAIMS = (
    ClaimSpec("closed_forms_match_brute_force",
              "Each closed-form preconditioned prox map (l0, l_1/2, l_2/3, l1) equals a "
              "brute-force 1-D minimiser on 10^4 random (u, d, lambda, eta) (largest absolute "
              "error over all maps, away from the threshold).",
              PROXGEN + ", closed-form l_q proximal mappings", at_most="closed_forms.max_error",
              published=Published("the first closed-form proximal mappings of l_q "
                                  "regularization (0 <= q <= 1) for adaptive methods",
                                  "Abstract (arXiv v1)"),
              margin_why="an exact formula agrees to rounding (~1e-14), far inside the issue's "
                         "1e-8; the bound is there to catch a wrong branch or threshold, as the "
                         "D-less baseline (error ~10) shows"),
    ClaimSpec("lasso_prox_with_d_reaches_cd",
              "On an ill-conditioned lasso the preconditioned proximal gradient with the prox "
              "taken with D reaches the coordinate-descent solution (relative sup distance); "
              "taken without D (ProxQuant) it stops at another point.",
              PROXGEN + ", revised ProxQuant", at_most="lasso.max_rel_distance",
              margin_why="a contraction converges to rounding in 5000 iterations; the D-less "
                         "prox converges too, but to the wrong point (distance ~0.8)"),
    ClaimSpec("prox_nets_are_sparse",
              "Adam with an l0, l_1/2, l_2/3 or l1 prox at the reference strength ends with a "
              "large fraction of parameters exactly zero (smallest fraction over the kinds); "
              "Adam on the l1 subgradient at the same strength has almost none.",
              PROXGEN + ", experiments", at_least="mnist1d.min_zero_fraction",
              published=Published("superiority of proximal methods compared to "
                                  "subgradient-based approaches", "Abstract (arXiv v1)")),
    ClaimSpec("l1_prox_at_least_as_accurate_as_pruned_subgradient",
              "At the target sparsity the l1 prox net is at least as accurate as the net "
              "trained on the same l1 penalty by subgradient steps and magnitude-pruned to "
              "that sparsity (accuracy difference within z binomial standard errors), while "
              "the constant predictor is not.", PROXGEN + ", experiments",
              margin_why="an at-least-as-good claim: the bound is minus the noise tolerance, so "
                         "any non-negative difference is infinitely inside it; the constant "
                         "predictor's difference (-0.485) is what the bound must reject"),
    ClaimSpec("prox_at_least_as_accurate_as_pruned_subgradient",
              "At the target sparsity every proximal net is at least as accurate as the "
              "subgradient-trained net magnitude-pruned to that sparsity (smallest accuracy "
              "difference over the kinds, within z binomial standard errors).",
              PROXGEN + ", experiments", expected_holds=False,
              why="measured on the quick preset (three seeds, 1500 steps): at 80% zeros the "
                  "l0 prox net is 0.039 less accurate than the pruned subgradient net "
                  "(tolerance -0.025), and l_2/3 0.022 less; l1 and l_1/2 beat it. The hard "
                  "thresholds of l0 cost accuracy on this small MLP; the paper preset (6000 "
                  "steps, six strengths) gives l0 -0.052"),
    ClaimSpec("l_half_beats_l1_at_equal_sparsity",
              "At the target sparsity the l_1/2 prox net is more accurate than the l1 prox net "
              "(accuracy difference above z binomial standard errors).",
              PROXGEN + ", Abstract", expected_holds=False,
              why="measured on the quick preset (three seeds, 1500 steps): at 80% zeros the "
                  "l_1/2 net is 0.005 less accurate than the l1 net (tolerance +0.025); the "
                  "advantage the paper reports for CNNs on CIFAR does not show for this MLP "
                  "on MNIST-1D (the paper preset, 6000 steps: +0.023, in the paper's direction "
                  "but short of +0.025)",
              published=Published("proximal methods with non-convex regularizers are more "
                                  "effective than those with convex regularizers",
                                  "Abstract (arXiv v1)")),
)

_PRESETS = {
    "quick": dict(
        closed_forms=dict(samples=10_000, seed=0, max_error=1e-8, curve_tau=1.0),
        lasso=dict(num_examples=100, dim=40, num_nonzero=10, scale_decades=2.0, penalty=0.05,
                   iterations=5000, seed=0, max_rel_distance=1e-6),
        mnist1d=dict(seeds=3, steps=1500, batch_size=100, widths=(100, 100),
                     strengths=(1e-4, 3e-4, 1e-3, 3e-3), reference_strength=1e-3,
                     target_sparsity=0.8, min_zero_fraction=0.5, z=2.0,
                     optimizer=optimizer_config(name="adam", learning_rate=1e-2)),
        precision="float32",
    ),
}
_PRESETS["paper"] = {
    **_PRESETS["quick"],
    "mnist1d": {**_PRESETS["quick"]["mnist1d"], "seeds": 3, "steps": 6000,
                "strengths": (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)},
}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """The reference strength is one of the swept strengths; the target sparsity a fraction."""
    c = config.mnist1d
    if c.reference_strength not in tuple(c.strengths):
        raise ConfigError(f"mnist1d.reference_strength={c.reference_strength!r}; allowed: one "
                          f"of mnist1d.strengths={tuple(c.strengths)}")
    if not 0.0 < c.target_sparsity < 1.0:
        raise ConfigError(f"mnist1d.target_sparsity={c.target_sparsity!r}; allowed: a number "
                          "in (0, 1)")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests, three seeds) or "paper" (longer, more strengths).
    `precision` is the MNIST-1D nets' precision policy (the other parts are float64 maths)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def _mnist1d_model(config) -> MLP:
    return MLP(widths=tuple(config.mnist1d.widths), out_dim=NUM_CLASSES,
               **get_policy(config.precision).model_dtypes())


def example_model(config: ml_collections.ConfigDict):
    """(model, x_example, optimizer) of the MNIST-1D net, for `launch.py --dtypes`."""
    c = config.mnist1d
    return (_mnist1d_model(config), jnp.zeros((2, load_mnist1d()["train"]["x"].shape[1])),
            build_optimizer(c.optimizer, c.steps))


def compute_closed_forms(config, log) -> dict:
    """Part "closed_forms": largest error of each map vs brute force, with and without D."""
    c = config.closed_forms
    u, d, lam, eta = random_preconditioned_prox_problems(c.seed, c.samples)
    tau = lam * eta / d
    out = {"error": {}, "error_without_d": {}, "zero_fraction": {}, "curves": {}}
    u_curve = np.linspace(-3.0, 3.0, 121)
    with jax.enable_x64(True):
        for kind in KINDS:
            q = EXPONENTS[kind]
            closed = np.asarray(preconditioned_prox(kind, jnp.asarray(u), jnp.asarray(lam),
                                                    jnp.asarray(eta), jnp.asarray(d)))
            without_d = np.asarray(PROX_MAPS[kind](jnp.asarray(u), jnp.asarray(lam * eta)))
            h = np.asarray(threshold(kind, jnp.asarray(tau)))
            brute = brute_force_prox(u, tau, q)
            away = np.abs(np.abs(u) - h) > 1e-6 * np.maximum(h, 1e-3)
            out["error"][kind] = float(np.max(np.abs(closed - brute)[away]))
            out["error_without_d"][kind] = float(np.max(np.abs(without_d - brute)[away]))
            out["zero_fraction"][kind] = float(np.mean(closed == 0))
            tau_c = np.full_like(u_curve, c.curve_tau)
            out["curves"][kind] = {
                "closed": np.asarray(PROX_MAPS[kind](jnp.asarray(u_curve),
                                                     jnp.asarray(tau_c))).tolist(),
                "brute": brute_force_prox(u_curve, tau_c, q).tolist(),
                "threshold": float(threshold(kind, c.curve_tau))}
    out["u_curve"] = u_curve.tolist()
    return out


def judge_closed_forms(config, m) -> dict:
    """Worst map's error, with the D-less maps' worst error as the baseline."""
    return {"closed_forms_match_brute_force": Measured(
        max(m["error"].values()), baseline=max(m["error_without_d"].values()),
        baseline_name="prox with tau = lambda eta (D dropped)")}


def compute_lasso(config, log) -> dict:
    """Part "lasso": preconditioned proximal gradient with and without D vs coordinate descent."""
    from sklearn.linear_model import Lasso

    c = config.lasso
    x, y = badly_scaled_sparse_regression(c.num_examples, c.dim, c.num_nonzero,
                                          c.scale_decades, c.seed)
    n = c.num_examples
    # scikit-learn's objective is ours: (1 / 2n) ||y - X w||^2 + alpha ||w||_1.
    cd = Lasso(alpha=c.penalty, fit_intercept=False, tol=1e-14, max_iter=1_000_000).fit(x, y)
    w_cd = cd.coef_
    hessian = x.T @ x / n
    variants = {"with_d": np.diag(hessian), "without_d": np.diag(hessian),
                "no_preconditioner": np.ones(c.dim)}
    out = {"cd_nonzero": int(np.sum(w_cd != 0)), "rel_distance": {}, "trace": {}}
    with jax.enable_x64(True):
        for name, d in variants.items():
            eta = preconditioned_step_size(hessian, d)
            tau = c.penalty * eta / (d if name != "without_d" else np.ones_like(d))
            w, dist = preconditioned_proximal_gradient(hessian, x.T @ y / n, PROX_MAPS["l1"], d,
                                                       tau, eta, c.iterations, w_cd)
            scale = np.max(np.abs(w_cd))
            out["rel_distance"][name] = float(np.max(np.abs(np.asarray(w) - w_cd)) / scale)
            out["trace"][name] = (np.asarray(dist)[::max(1, c.iterations // 200)]
                                  / scale).tolist()
    out["condition_number"] = float(np.linalg.cond(hessian))
    return out


def judge_lasso(config, m) -> dict:
    """ProxGen's distance to CD; the D-less prox's distance is the baseline."""
    return {"lasso_prox_with_d_reaches_cd": Measured(
        m["rel_distance"]["with_d"], baseline=m["rel_distance"]["without_d"],
        baseline_name="prox without D (original ProxQuant)")}


def compute_mnist1d(config, log) -> dict:
    """Part "mnist1d": sparsity and test accuracy per prox kind and strength, subgradient
    baseline, and the subgradient net pruned to the target sparsity."""
    c = config.mnist1d
    data = load_mnist1d()
    train = {k: jnp.asarray(v) for k, v in data["train"].items()}
    test = {k: jnp.asarray(v) for k, v in data["test"].items()}
    policy = get_policy(config.precision)
    model = _mnist1d_model(config)
    seeds, strengths = list(range(c.seeds)), list(c.strengths)

    def train_grid(optimizer, members, member_seeds, hyper):
        tx = build_optimizer(optimizer, c.steps)
        states = create_train_states(model, tx, train["x"][:2], member_seeds,
                                     make_loss_scale(policy))
        if hyper:
            states = set_hyperparams(states, **hyper)
        states, _ = fit_grid(states, train, minibatches(c.batch_size),
                             loss=softmax_cross_entropy, steps=c.steps, data_seeds=member_seeds,
                             policy=policy, log=log, tags={"part": "mnist1d", "method": members},
                             label=f"mnist1d_{members}", verbose=False)
        return states.params

    out = {"accuracy": {}, "zero_fraction": {}}
    grid_seeds = [s for _ in strengths for s in seeds]
    for kind in KINDS:
        optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
        optimizer.prox.kind = kind
        params = train_grid(optimizer, kind, grid_seeds,
                            {"prox_strength": [s for s in strengths for _ in seeds]})
        shape = (len(strengths), len(seeds))
        out["accuracy"][kind] = members_accuracy(model, params, test).reshape(shape).tolist()
        out["zero_fraction"][kind] = zero_fraction(params, len(grid_seeds)).reshape(
            shape).tolist()
    optimizer = ml_collections.ConfigDict(c.optimizer.to_dict())
    optimizer.l1 = c.reference_strength
    sub = train_grid(optimizer, "l1_subgradient", seeds, None)
    out["subgradient"] = {"accuracy": members_accuracy(model, sub, test).tolist(),
                          "zero_fraction": zero_fraction(sub, len(seeds)).tolist()}
    pruned = magnitude_pruned_members(sub, len(seeds), c.target_sparsity)
    out["subgradient"]["pruned_accuracy"] = members_accuracy(model, pruned, test).tolist()
    return out


def _matched_accuracy(c, m) -> dict:
    return {kind: accuracy_at_sparsity(np.mean(m["zero_fraction"][kind], axis=1),
                                       np.mean(m["accuracy"][kind], axis=1), c.target_sparsity)
            for kind in KINDS}


def _binomial_tolerance(c, p: float) -> float:
    """z standard errors of a difference of two seed-mean accuracies on the 1000 test points."""
    return float(c.z * binomial_difference_se(p, 1000 * c.seeds))


def judge_mnist1d(config, m) -> dict:
    """Sparsity at the reference strength, matched-sparsity accuracy comparisons."""
    c = config.mnist1d
    ref = list(c.strengths).index(c.reference_strength)
    sparsity = min(float(np.mean(m["zero_fraction"][k][ref])) for k in KINDS)
    matched = _matched_accuracy(c, m)
    pruned = float(np.mean(m["subgradient"]["pruned_accuracy"]))
    tol = _binomial_tolerance(c, pruned)
    vs_pruned = min(matched[k] - pruned for k in KINDS)
    constant_vs_pruned = 1.0 / NUM_CLASSES - pruned
    half_vs_l1 = matched["l_half"] - matched["l1"]
    return {
        "prox_nets_are_sparse": Measured(
            sparsity, baseline=float(np.mean(m["subgradient"]["zero_fraction"])),
            baseline_name="Adam on the l1 subgradient"),
        "l1_prox_at_least_as_accurate_as_pruned_subgradient": Measured(
            matched["l1"] - pruned, at_least=-tol, baseline=constant_vs_pruned,
            baseline_name="constant predictor minus pruned subgradient net"),
        "prox_at_least_as_accurate_as_pruned_subgradient": Measured(
            vs_pruned, at_least=-tol, baseline=constant_vs_pruned,
            baseline_name="constant predictor minus pruned subgradient net"),
        "l_half_beats_l1_at_equal_sparsity": Measured(
            half_vs_l1, at_least=_binomial_tolerance(c, matched["l1"]),
            baseline=1.0 / NUM_CLASSES - matched["l1"],
            baseline_name="constant predictor minus the l1 prox net"),
    }


PARTS = (
    Part("closed_forms", compute_closed_forms, judge_closed_forms, reads=("closed_forms",)),
    Part("lasso", compute_lasso, judge_lasso, reads=("lasso",)),
    Part("mnist1d", compute_mnist1d, judge_mnist1d, reads=("mnist1d", "precision")),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Prox maps (closed form vs brute force, thresholds), lasso convergence, accuracy vs
    sparsity per method."""
    import matplotlib.pyplot as plt

    names = []
    if "closed_forms" in m:
        cf = m["closed_forms"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for kind in KINDS:
            line, = ax.plot(cf["u_curve"], cf["curves"][kind]["closed"],
                            label=f"{kind} closed form")
            ax.plot(cf["u_curve"][::4], cf["curves"][kind]["brute"][::4], "o", ms=3,
                    color=line.get_color())
            ax.axvline(cf["curves"][kind]["threshold"], color=line.get_color(), ls=":", lw=1)
        ax.set(xlabel="u (preconditioned step)", ylabel="prox(u), tau = 1",
               title="Closed forms (lines), brute force (dots), thresholds (dotted)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "prox_maps.png"))
    if "lasso" in m:
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, trace in m["lasso"]["trace"].items():
            ax.semilogy(np.maximum(trace, 1e-16), label=name.replace("_", " "))
        ax.axhline(config.lasso.max_rel_distance, color="k", ls="--", label="claim bound")
        ax.set(xlabel=f"iteration / {max(1, config.lasso.iterations // 200)}",
               ylabel="sup distance to CD solution (relative)",
               title=f"Ill-conditioned lasso (cond {m['lasso']['condition_number']:.0e})")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "lasso.png"))
    if "mnist1d" in m:
        mm = m["mnist1d"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for kind in KINDS:
            ax.plot(np.mean(mm["zero_fraction"][kind], 1), np.mean(mm["accuracy"][kind], 1),
                    "o-", label=f"prox {kind}")
        sub = mm["subgradient"]
        ax.plot(np.mean(sub["zero_fraction"]), np.mean(sub["accuracy"]), "ks",
                label="l1 subgradient")
        ax.plot(config.mnist1d.target_sparsity, np.mean(sub["pruned_accuracy"]), "kx", ms=9,
                label="subgradient, magnitude-pruned")
        ax.axvline(config.mnist1d.target_sparsity, color="gray", ls=":")
        ax.set(xlabel="fraction of parameters exactly zero", ylabel="test accuracy",
               title="MNIST-1D MLP, Adam + prox")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "accuracy_vs_sparsity.png"))
    return names
