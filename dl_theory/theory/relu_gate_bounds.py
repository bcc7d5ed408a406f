"""Convergence and poisoning bounds for the non-gradient ReLU-gate update (Neuro-Tron / GLMtron).

The update (Karmakar & Mukherjee, Neural Networks 2022, arXiv 2005.04211, their mini-batch
algorithm) is w' = w + (eta / b) sum_i (y_i - relu(w . x_i)) x_i, with fresh inputs x_i from a
law symmetric about 0. Write D = w - w*, Sigma = E[x x^T], lambda_1 / lambda_max its extreme
eigenvalues, gamma = lambda_max(E[|x|^2 x x^T]), M2 = E|x|^2. relu(z) = (z + |z|) / 2 and the
symmetry x -> -x give the two identities the analysis rests on:

    E[(relu(w.x) - relu(w*.x)) x] = Sigma D / 2,    E[(relu(w.x) - relu(w*.x)) D.x] = D'Sigma D / 2.

With g = (relu(w.x) - relu(w*.x)) x, E|g|^2 <= gamma |D|^2 and the mini-batch variance, one step
gives E|D'|^2 <= rho |D|^2 with

    rho = 1 - eta lambda_1 + eta^2 a2,    a2 = (1 - 1/b) lambda_max^2 / 4 + gamma / b,

minimised by eta = lambda_1 / (2 a2) (rho = 1 - lambda_1^2 / (4 a2)). So E|D_t|^2 <= rho^t |D_0|^2,
and by Jensen the mean of log|D_t| falls at least at (1/2) log rho per step.

Poisoning: with probability beta (independent of x) the label gets an additive xi, |xi| <= theta,
chosen by an adversary who may look at x. Then |E[xi x]| <= beta theta kappa with kappa =
sqrt(lambda_max) >= sup_|u|=1 E|u.x|, E[xi^2 |x|^2] <= beta theta^2 M2, and

    E|D'|^2 <= rho |D|^2 + 2 eta (m + eta c) |D| + eta^2 d,   m = beta theta kappa,
    c = (1 - 1/b) lambda_max m / 2 + sqrt(gamma beta M2) theta / b,
    d = (1 - 1/b) m^2 + beta theta^2 M2 / b,

so u_t = E|D_t|^2 obeys u_t+1 <= rho u_t + 2 eta (m + eta c) sqrt(u_t) + eta^2 d (Jensen on
E|D|), an increasing map whose iterates bound u_t at every t and tend to its fixed point. For small
eta the radius is 2 m / lambda_1 = 2 beta theta kappa / lambda_1, which the attack
xi = theta sign(u.x) reaches up to the factor E|u.x| / kappa (isotropic inputs): the bound is
tight in the worst case. These are re-derivations in the paper's setting (its full text was
not available here), not its printed constants.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class InputMoments:
    """The moments of an input law that the bounds use (Monte Carlo or exact)."""

    lambda_min: float  # smallest eigenvalue of E[x x^T]
    lambda_max: float  # largest eigenvalue of E[x x^T]
    gamma: float  # largest eigenvalue of E[|x|^2 x x^T]
    second_moment: float  # E|x|^2


def input_moments(x_NxD) -> InputMoments:
    """Monte Carlo moments from samples [N, D] (float64 accumulation)."""
    x = np.asarray(x_NxD, dtype=np.float64)
    num = x.shape[0]
    sq_norm_N = np.sum(x * x, axis=1)
    second = x.T @ x / num
    fourth = (x * sq_norm_N[:, None]).T @ x / num
    eig = np.linalg.eigvalsh(second)
    return InputMoments(float(eig[0]), float(eig[-1]), float(np.linalg.eigvalsh(fourth)[-1]),
                        float(np.mean(sq_norm_N)))


def _a2(batch: int, mom: InputMoments) -> float:
    return (1.0 - 1.0 / batch) * mom.lambda_max ** 2 / 4.0 + mom.gamma / batch


def contraction_factor(step_size: float, batch: int, mom: InputMoments) -> float:
    """rho with E|w_t+1 - w*|^2 <= rho E|w_t - w*|^2 (realizable labels)."""
    return 1.0 - step_size * mom.lambda_min + step_size ** 2 * _a2(batch, mom)


def best_step_size(batch: int, mom: InputMoments) -> float:
    """The step size minimising rho: lambda_1 / (2 a2)."""
    return mom.lambda_min / (2.0 * _a2(batch, mom))


def log_error_slope_bound(step_size: float, batch: int, mom: InputMoments) -> float:
    """(1/2) log rho: the bound on the per-step slope of the mean of log|w_t - w*|."""
    rho = contraction_factor(step_size, batch, mom)
    if not 0.0 < rho < 1.0:
        raise ValueError(f"step_size={step_size} gives rho={rho}: outside (0, 1), no "
                         "geometric guarantee")
    return 0.5 * math.log(rho)


def poisoned_mean_square_bound(step_size: float, batch: int, mom: InputMoments,
                               attack_prob: float, attack_size: float,
                               initial_sq_error: float, steps: int) -> np.ndarray:
    """Bounds on E|w_t - w*|^2 for t = 0..steps under a label attack of probability
    `attack_prob` and magnitude <= `attack_size` (module docstring); shape [steps + 1]."""
    rho = contraction_factor(step_size, batch, mom)
    if not rho < 1.0:
        raise ValueError(f"step_size={step_size} gives rho={rho} >= 1: no bound")
    kappa = math.sqrt(mom.lambda_max)
    m = attack_prob * attack_size * kappa
    c = ((1.0 - 1.0 / batch) * mom.lambda_max * m / 2.0
         + math.sqrt(mom.gamma * attack_prob * mom.second_moment) * attack_size / batch)
    d = (1.0 - 1.0 / batch) * m ** 2 + attack_prob * attack_size ** 2 * mom.second_moment / batch
    linear, constant = 2.0 * step_size * (m + step_size * c), step_size ** 2 * d
    bound = np.empty(steps + 1)
    bound[0] = initial_sq_error
    for t in range(steps):
        bound[t + 1] = rho * bound[t] + linear * math.sqrt(bound[t]) + constant
    return bound
