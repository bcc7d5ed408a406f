"""Fixed points of federated averaging on quadratic client losses, in closed form.

Client i has f_i(w) = 1/2 (w - b_i)^T A_i (w - b_i) (A_i symmetric positive definite) and
weight p_i (its share of the data). The global objective sum_i p_i f_i has the minimiser
w_opt = (sum_i p_i A_i)^{-1} sum_i p_i A_i b_i.

One local gradient step at step size eta on f_i plus FedProx's mu/2 |w - x|^2 (x the global
model) is w -> N_i w + eta A_i b_i + eta mu x with N_i = I - eta (A_i + mu I). Its fixed point
is z_i(x) = (A_i + mu I)^{-1} (A_i b_i + mu x), and E steps from w = x give
w_E = z_i + N_i^E (x - z_i): an affine map of x, w_E = P_i x + q_i, with
    P_i = N_i^E + (I - N_i^E) (A_i + mu I)^{-1} mu,   q_i = (I - N_i^E)(A_i + mu I)^{-1} A_i b_i.
For mu = 0 this is P_i = M_i = (I - eta A_i)^E, q_i = (I - M_i) b_i. The server's weighted mean
gives x -> sum p_i P_i x + sum p_i q_i, whose fixed point is
    x* = (sum_i p_i (I - P_i))^{-1} sum_i p_i q_i
(the round map contracts when every |eig(N_i)| < 1). With a shared Hessian (A_i = A, so
every P_i = P commutes with A) and mu = 0, x* = (I - M)^{-1} (I - M) sum p_i b_i = w_opt;
otherwise x* is biased, and the bias grows with E (E = 1: I - M_i = eta A_i, so x* = w_opt
exactly; large E: x* -> sum p_i b_i, the mean of the clients' minimisers). As mu -> infinity
(at fixed eta mu < 1, with N_i^E -> 0), I - P_i -> A_i / mu and x* -> w_opt: FedProx's bias
shrinks. SCAFFOLD's corrected local gradient at its fixed point is grad f(x*) exactly
(Karimireddy et al. 2020), so its fixed point is w_opt for every E.
"""

from __future__ import annotations

import numpy as np


def local_affine_map(a_DxD, b_D, learning_rate: float, steps: int,
                     prox_mu: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(P, q) with E = `steps` local GD steps from x mapping x to P x + q (module docstring)."""
    dim = b_D.shape[0]
    eye = np.eye(dim)
    shifted = a_DxD + prox_mu * eye
    n_power = np.linalg.matrix_power(eye - learning_rate * shifted, steps)
    solve = np.linalg.solve(shifted, np.column_stack([prox_mu * eye, a_DxD @ b_D]))
    p = n_power + (eye - n_power) @ solve[:, :dim]
    q = (eye - n_power) @ solve[:, dim]
    return p, q


def global_minimiser(a_KxDxD, b_KxD, weights_K) -> np.ndarray:
    """w_opt = (sum p_i A_i)^{-1} sum p_i A_i b_i."""
    p = np.asarray(weights_K, np.float64) / np.sum(weights_K)
    hessian = np.einsum("k,kij->ij", p, a_KxDxD)
    return np.linalg.solve(hessian, np.einsum("k,kij,kj->i", p, a_KxDxD, b_KxD))


def federated_fixed_point(a_KxDxD, b_KxD, weights_K, learning_rate: float, steps: int,
                          prox_mu: float = 0.0) -> np.ndarray:
    """x* = (sum p_i (I - P_i))^{-1} sum p_i q_i: FedAvg's (mu = 0) or FedProx's fixed point
    with full participation and E = `steps` local full-batch GD steps."""
    p = np.asarray(weights_K, np.float64) / np.sum(weights_K)
    dim = b_KxD.shape[1]
    lhs, rhs = np.zeros((dim, dim)), np.zeros(dim)
    for weight, a, b in zip(p, a_KxDxD, b_KxD):
        local_p, local_q = local_affine_map(a, b, learning_rate, steps, prox_mu)
        lhs += weight * (np.eye(dim) - local_p)
        rhs += weight * local_q
    return np.linalg.solve(lhs, rhs)


def round_contraction(a_KxDxD, weights_K, learning_rate: float, steps: int,
                      prox_mu: float = 0.0) -> float:
    """Spectral radius of the round map's linear part sum p_i P_i (< 1: rounds converge to x*
    geometrically at this rate)."""
    p = np.asarray(weights_K, np.float64) / np.sum(weights_K)
    dim = a_KxDxD.shape[1]
    linear = sum(weight * local_affine_map(a, np.zeros(dim), learning_rate, steps, prox_mu)[0]
                 for weight, a in zip(p, a_KxDxD))
    return float(np.max(np.abs(np.linalg.eigvals(linear))))


def random_quadratic_clients(seed: int, clients: int, dim: int, eigenvalue_low: float,
                             eigenvalue_high: float) -> tuple[np.ndarray, np.ndarray]:
    """K random SPD Hessians A_i [K, D, D] (random orthonormal eigenbases, eigenvalues uniform
    in [low, high]) and minimisers b_i ~ N(0, I) [K, D], from `seed`."""
    rng = np.random.default_rng(seed)
    hessians = []
    for _ in range(clients):
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        eig = rng.uniform(eigenvalue_low, eigenvalue_high, dim)
        hessians.append(basis @ np.diag(eig) @ basis.T)
    return np.stack(hessians), rng.normal(size=(clients, dim))


def quadratic_client_loss(params, batch):
    """f_i(w) = 1/2 (w - b_i)^T A_i (w - b_i) for a client whose batch holds its one (A_i, b_i)
    ({"a": [1, D, D], "b": [1, D]}): the loss the library's local steps differentiate."""
    residual = params - batch["b"][0]
    return 0.5 * residual @ batch["a"][0] @ residual
