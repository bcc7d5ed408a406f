"""Implicit models: well-posedness and Picard iteration.

El Ghaoui, Gu, Travacca, Askari & Tsai ("Implicit deep learning", SIAM J. Math. Data Sci.
2021) predict y = C x + D u with x = relu(A x + B u + b). A strictly upper-triangular A is an
L-layer feed-forward net, and Picard iteration from 0 is exact after L steps; ||A||_inf =
kappa < 1 makes the map a sup-norm contraction, so the error after k steps is <= kappa^k e0
and the count to reach tol is <= ceil(log(tol / e0) / log kappa); lambda_pf(|A|) < 1 (their
Perron-Frobenius well-posedness condition) suffices after a diagonal rescaling; x =
relu(2x + u) is ill-posed (two solutions at u = -1, none at u = 1). Read: the abstract and
Section 1.1 (the model is their Eq. (1.1a) y = C x + D u, (1.1b) x = phi(A x + B u), in the
SIAM submission) and the official code's README (github.com/alicia-tsai/implicit-deep-learning:
phi "strictly increasing and component-wise non-expansive", Picard iteration for the forward
and gradient solves). The well-posedness section was not found, so the theorem numbers of
the ||A||_inf and lambda_pf(|A|) < 1 conditions are not cited.
`dl_theory.theory.relu_fixed_points` holds the solvers; training such models by implicit
differentiation (Bai, Kolter & Koltun 2019) is `experiments/implicit_training.py`.

Measured in float64. (1) triangular: an L-layer net written implicitly; Picard steps until
exact, and the output gap to the explicit net. (2) contraction: the worst per-step ratio
e_k+1 / e_k over kappas and random-sign A (ReLU switching on and off); iteration counts
against the formula on its tight case (A >= 0 with Perron root kappa, all units active, x*
nearly constant, so e_k = kappa^k e0 up to x*'s spread). (3) rescaling: a random A with
||A||_inf >> 1 but lambda_pf(|A|) < 1, rescaled by the Perron vector. (4) ill_posed:
activation patterns enumerated for relu(2x + u).

Run: python launch.py --config=experiments/implicit_models.py:quick --workdir=runs/implicit
quick: ~1 s on 2 CPU cores (plus start-up). paper: the same as quick (nothing here is trained or
sampled beyond a few fixed draws).
"""

from __future__ import annotations

import math

import ml_collections
import numpy as np

from dl_theory import report
from dl_theory.experiment import ClaimSpec, Measured, Part, config_from_presets
from dl_theory.hitting_times import hitting_time
from dl_theory.theory.relu_fixed_points import (
    feedforward_as_implicit,
    inf_norm,
    perron_rescaling,
    picard_errors,
    picard_iterates,
    relu_fixed_points,
    solve_by_picard,
    tight_contraction,
)
from dl_theory.user_errors import ConfigError

ELGHAOUI = "elghaoui2021"
CONTRACTION = ELGHAOUI + ", well-posedness: ||A||_inf < 1 makes a contraction"

CLAIMS = (
    ClaimSpec("triangular_exact_after_l_steps",
              "With A strictly upper-triangular (an L-layer net), Picard iteration from 0 is "
              "exact after at most L steps (steps until the iterate stops changing).",
              ELGHAOUI + ", feed-forward nets as implicit models", at_most="triangular.layers"),
    ClaimSpec("triangular_equals_explicit_net",
              "After L Picard steps the implicit model's output equals the explicit L-layer net's "
              "(largest absolute difference).", ELGHAOUI + ", feed-forward nets as implicit models",
              at_most="triangular.max_abs_diff",
              margin_why="the same products and sums in float64: equal to rounding; the "
                         "baseline (L - 1 steps) misses by O(1)"),
    ClaimSpec("picard_contracts_by_kappa",
              "With ||A||_inf = kappa each Picard step shrinks the sup-norm error by at least "
              "kappa (worst ratio (e_k+1 / e_k) / kappa over kappas, random-sign and tight-case "
              "A, and steps with e_k above ratio_floor e0).",
              CONTRACTION, at_most="contraction.max_ratio"),
    ClaimSpec("iteration_count_matches_formula",
              "On the contraction's tight case the Picard count to reach tol equals "
              "ceil(log(tol / e0) / log kappa) (largest |count - formula| over kappas).",
              CONTRACTION, at_most="contraction.max_count_gap",
              margin_why="an integer count against an exact formula: 0 is the claim, and the "
                         "random-sign baseline (where the formula is only an upper bound) "
                         "misses it by several steps"),
    ClaimSpec("perron_rescaling_is_well_posed",
              "A matrix with ||A||_inf > 1 but lambda_pf(|A|) < 1 is rescaled by the Perron "
              "vector to ||S A S^-1||_inf = lambda_pf(|A|) < 1.",
              ELGHAOUI + ", Perron-Frobenius well-posedness", at_most="rescaling.max_norm"),
    ClaimSpec("two_solutions_at_minus_one",
              "x = relu(2x + u) has exactly two solutions at u = -1 (activation patterns "
              "enumerated).", ELGHAOUI + ", ill-posed example", at_least=2, at_most=2),
    ClaimSpec("no_solution_at_plus_one",
              "x = relu(2x + u) has no solution at u = 1.", ELGHAOUI + ", ill-posed example",
              at_most=0),
)

_PRESETS = {
    "quick": dict(
        triangular=dict(layers=4, width=8, input_dim=5, batch=16, seed=0, max_abs_diff=1e-12),
        # Ratios use steps with e_k > ratio_floor e0 (e0 = |x*|_inf), where the rounding of
        # a dim-term matvec, <= dim eps |x*| = 1.1e-14 |x*|, is <= 1.1e-10 of e_k: a ratio is
        # off by <= 2.2e-10 relative, and max_ratio allows that, nothing more.
        contraction=dict(kappas=(0.5, 0.8, 0.9, 0.95), dim=50, draws=3, tol=1e-10,
                         seed=0, max_count_gap=1, ratio_floor=1e-4, max_ratio=1.000000001),
        rescaling=dict(dim=20, perron_root=0.8, scale_decades=2.0, seed=0, max_norm=0.999),
    ),
}
_PRESETS["paper"] = {**_PRESETS["quick"]}


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Every kappa is in (0, 1): the contraction (well-posedness) regime the claims are about."""
    kappas = tuple(config.contraction.kappas)
    if not all(0.0 < k < 1.0 for k in kappas):
        raise ConfigError(f"contraction.kappas={kappas}; allowed: numbers in (0, 1)")


def get_config(preset: str = "quick") -> ml_collections.ConfigDict:
    """Preset "quick" (tests) or "paper" (the same: nothing here is trained)."""
    return config_from_presets(_PRESETS, preset, PARTS)


def compute_triangular(config, log) -> dict:
    """Part "triangular": an L-layer ReLU net as an implicit model with A upper-triangular."""
    c = config.triangular
    rng = np.random.default_rng(c.seed)
    L, w = c.layers, c.width
    weights = [rng.normal(size=(w, c.input_dim)) / np.sqrt(c.input_dim)]
    weights += [rng.normal(size=(w, w)) / np.sqrt(w) for _ in range(L - 1)]
    biases = [rng.normal(size=w) * 0.1 for _ in range(L)]
    u = rng.normal(size=(c.batch, c.input_dim))
    h = u
    for wl, bl in zip(weights, biases):
        h = np.maximum(h @ wl.T + bl, 0.0)
    a, injection = feedforward_as_implicit(weights, biases, u)
    n = a.shape[0]
    xs = picard_iterates(a, injection, 3 * L)
    changes = [float(np.max(np.abs(xs[k + 1] - xs[k]))) for k in range(3 * L)]
    steps_to_exact = next(k for k in range(3 * L) if changes[k] == 0.0)
    dense = rng.normal(size=(n, n))
    dense *= 0.5 / inf_norm(dense)
    dense_xs = picard_iterates(dense, injection, 3 * L)
    dense_changes = [float(np.max(np.abs(d))) for d in np.diff(dense_xs, axis=0)]
    return {"steps_to_exact": steps_to_exact, "changes": changes,
            "output_gap": float(np.max(np.abs(xs[L][:, :w] - h))),
            "output_gap_before": float(np.max(np.abs(xs[L - 1][:, :w] - h))),
            "dense_changes": dense_changes,
            "dense_exact": sum(1 for d in dense_changes if d > 0.0),
            "upper_triangular": bool(np.all(np.tril(a) == 0))}


def judge_triangular(config, m) -> dict:
    """Steps to exact (baseline: a dense A of norm 0.5), output gap (baseline: L - 1 steps)."""
    return {"triangular_exact_after_l_steps": Measured(
                m["steps_to_exact"], baseline=m["dense_exact"],
                baseline_name="dense A, ||A||_inf = 0.5 (steps with a change)"),
            "triangular_equals_explicit_net": Measured(
                m["output_gap"], baseline=m["output_gap_before"],
                baseline_name="after L - 1 steps")}


def compute_contraction(config, log) -> dict:
    """Part "contraction": per-step ratios and iteration counts against the formula."""
    c = config.contraction
    rng = np.random.default_rng(c.seed)
    out = {"kappa": list(c.kappas), "worst_ratio": [], "tight_ratio": [], "count": [],
           "formula": [], "random_count": []}
    for kappa in c.kappas:
        worst, counts = 0.0, []
        for _ in range(c.draws):  # random signs: ReLU switches units on and off
            a = rng.normal(size=(c.dim, c.dim))
            a *= kappa / inf_norm(a)
            b_vec = rng.normal(size=c.dim)
            e = picard_errors(a, b_vec, solve_by_picard(a, b_vec), 400)
            keep = e[:-1] > c.ratio_floor * e[0]
            worst = max(worst, float(np.max(e[1:][keep] / e[:-1][keep])) / kappa)
            counts.append(int(hitting_time(e, c.tol)))
        out["worst_ratio"].append(worst)
        out["random_count"].append(int(np.mean(counts)))
        # Tight case: all units active and x* nearly constant, so e_k = kappa^k e0 (1 + 1e-3).
        tight, b_vec = tight_contraction(rng, c.dim, kappa), 1.0 + 1e-3 * rng.uniform(size=c.dim)
        e = picard_errors(tight, b_vec, np.linalg.solve(np.eye(c.dim) - tight, b_vec), 2000)
        keep = e[:-1] > c.ratio_floor * e[0]
        out["tight_ratio"].append(float(np.max(e[1:][keep] / e[:-1][keep])) / kappa)
        out["count"].append(int(hitting_time(e, c.tol)))
        out["formula"].append(math.ceil(math.log(c.tol / e[0]) / math.log(kappa)))
    # Baseline: a norm 1.2 kappa matrix (kappa = the smallest) breaks the per-step bound.
    kappa = min(c.kappas)
    over, b_vec = tight_contraction(rng, c.dim, 1.2 * kappa), 1.0 + rng.uniform(size=c.dim)
    e = picard_errors(over, b_vec, np.linalg.solve(np.eye(c.dim) - over, b_vec), 30)
    out["over_ratio"] = float(np.max(e[1:] / e[:-1])) / kappa
    return out


def judge_contraction(config, m) -> dict:
    """Worst ratio (baseline: norm 1.2 kappa); count gap (baseline: random-sign A)."""
    formula = np.asarray(m["formula"])
    return {"picard_contracts_by_kappa": Measured(
                max(m["worst_ratio"] + m["tight_ratio"]), baseline=m["over_ratio"],
                baseline_name="||A||_inf = 1.2 kappa"),
            "iteration_count_matches_formula": Measured(
                int(np.max(np.abs(np.asarray(m["count"]) - formula))),
                baseline=int(np.max(np.abs(np.asarray(m["random_count"]) - formula))),
                baseline_name="random-sign A (the formula is only an upper bound there)")}


def compute_rescaling(config, log) -> dict:
    """Part "rescaling": ||A||_inf >> 1 with lambda_pf(|A|) < 1, made well-posed by S."""
    c = config.rescaling
    rng = np.random.default_rng(c.seed)
    a0 = rng.normal(size=(c.dim, c.dim))
    s0 = 10.0 ** rng.uniform(-c.scale_decades / 2, c.scale_decades / 2, c.dim)
    a = (a0 / s0[:, None]) * s0[None, :]  # diag(s0)^-1 A0 diag(s0): same |A| spectrum
    _, root = perron_rescaling(a)
    a *= c.perron_root / root
    s, root = perron_rescaling(a)
    rescaled = s[:, None] * a / s[None, :]
    b_vec = rng.normal(size=c.dim)
    x_tilde = solve_by_picard(rescaled, s * b_vec)  # the rescaled model is a contraction
    x = x_tilde / s
    return {"norm": inf_norm(a), "perron_root": root, "rescaled_norm": inf_norm(rescaled),
            "original_equation_residual": float(np.max(np.abs(np.maximum(a @ x + b_vec, 0) - x)))}


def compute_ill_posed(config, log) -> dict:
    """Part "ill_posed": solutions of x = relu(a x + u) for a = 2 (ill-posed) and 0.5."""
    out = {}
    for a in (2.0, 0.5):
        for u in (-1.0, 1.0):
            sols = relu_fixed_points(np.array([[a]]), np.array([u]))
            out[f"a={a:g},u={u:g}"] = [float(x[0]) for x in sols]
    return out


def judge_ill_posed(config, m) -> dict:
    """Solution counts; baseline: the well-posed a = 0.5 (one solution each)."""
    return {"two_solutions_at_minus_one": Measured(len(m["a=2,u=-1"]),
                                                   baseline=len(m["a=0.5,u=-1"]),
                                                   baseline_name="x = relu(x/2 + u)"),
            "no_solution_at_plus_one": Measured(len(m["a=2,u=1"]),
                                                baseline=len(m["a=0.5,u=1"]),
                                                baseline_name="x = relu(x/2 + u)")}


PARTS = (
    Part("triangular", compute_triangular, judge_triangular, reads=("triangular",)),
    Part("contraction", compute_contraction, judge_contraction, reads=("contraction",)),
    Part("rescaling", compute_rescaling,
         lambda config, m: {"perron_rescaling_is_well_posed": Measured(
             m["rescaled_norm"], baseline=m["norm"], baseline_name="||A||_inf unscaled")},
         reads=("rescaling",)),
    Part("ill_posed", compute_ill_posed, judge_ill_posed, reads=()),
)


def figures(config, m: dict, workdir: str) -> list[str]:
    """Picard iteration count vs the contraction bound, per kappa."""
    import matplotlib.pyplot as plt

    names = []
    if "contraction" in m:
        cm = m["contraction"]
        fig, ax = plt.subplots(figsize=(6, 4.5))
        ax.plot(cm["kappa"], cm["formula"], "k-", label="ceil(log(tol/e0) / log kappa)")
        ax.plot(cm["kappa"], cm["count"], "o", label="measured, tight case")
        ax.plot(cm["kappa"], cm["random_count"], "s", label="measured, random-sign A")
        ax.set(xlabel="kappa = ||A||_inf", ylabel=f"Picard steps to {config.contraction.tol:g}",
               yscale="log", title="Iteration count vs the contraction bound")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
        names.append(report.save_figure(fig, workdir, "iteration_count.png"))
    return names
