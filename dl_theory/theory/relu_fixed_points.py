"""Every solution of x = relu(A x + b), by enumerating activation patterns; Perron rescaling.

A solution with active set S (x_S > 0 or = 0 on the boundary, x_rest = 0) solves the linear
system (I - A_SS) x_S = b_S and must satisfy x_S >= 0 and (A x + b)_rest <= 0. Trying all
2^n sets finds every solution (exact for small n; a singular I - A_SS is reported, since a
continuum of solutions may then exist). El Ghaoui et al. (2021) use x = relu(2x + u)
as the example of an ill-posed implicit equation: two solutions at u = -1, none at u = 1.

Their well-posedness condition is lambda_pf(|A|) < 1 (the Perron-Frobenius eigenvalue), weaker
than ||A||_inf < 1: with |A| v = lambda v (v > 0) and S = diag(v)^-1, ||S A S^-1||_inf =
lambda, and since relu is positively homogeneous, x solves the model with A iff S x solves it
with S A S^-1 (and injection S b).
"""

from __future__ import annotations

import itertools

import numpy as np


def relu_fixed_points(a_NxN: np.ndarray, b_N: np.ndarray, atol: float = 1e-12) -> list[np.ndarray]:
    """Every x with x = relu(A x + b), each once (duplicates from boundary patterns merged)."""
    a_NxN, b_N = np.asarray(a_NxN, float), np.asarray(b_N, float)
    n = b_N.size
    solutions: list[np.ndarray] = []
    for pattern in itertools.product((False, True), repeat=n):
        active = np.array(pattern, bool)
        x = np.zeros(n)
        if active.any():
            system = np.eye(active.sum()) - a_NxN[np.ix_(active, active)]
            if abs(np.linalg.det(system)) < atol:
                raise ValueError(f"I - A_SS is singular for active set {np.flatnonzero(active)}"
                                 ": a continuum of solutions may exist")
            x[active] = np.linalg.solve(system, b_N[active])
        pre = a_NxN @ x + b_N
        if np.all(x[active] >= -atol) and np.all(pre[~active] <= atol):
            x = np.maximum(x, 0.0)
            if not any(np.allclose(x, s, atol=1e-9) for s in solutions):
                solutions.append(x)
    return solutions


def perron_rescaling(a_NxN: np.ndarray) -> tuple[np.ndarray, float]:
    """(s [N], lambda_pf(|A|)): the diagonal scaling s = 1 / v from the Perron vector v of |A|,
    for which ||diag(s) A diag(s)^-1||_inf = lambda_pf(|A|). Needs |A| irreducible (v > 0)."""
    eigenvalues, vectors = np.linalg.eig(np.abs(a_NxN))
    k = int(np.argmax(eigenvalues.real))
    v = np.abs(vectors[:, k].real)
    if np.any(v <= 0):
        raise ValueError("|A| is reducible (its Perron vector has a zero entry)")
    return 1.0 / v, float(eigenvalues[k].real)


def inf_norm(a_NxN: np.ndarray) -> float:
    """||A||_inf: the largest absolute row sum."""
    return float(np.max(np.sum(np.abs(a_NxN), axis=1)))


def picard_iterates(a_NxN: np.ndarray, injection_BxN: np.ndarray, num_steps: int) -> np.ndarray:
    """Picard iterates x_0 = 0, x_k+1 = relu(x_k A^T + injection), float64; [K + 1, B, N]."""
    xs = [np.zeros_like(injection_BxN, dtype=float)]
    for _ in range(num_steps):
        xs.append(np.maximum(xs[-1] @ a_NxN.T + injection_BxN, 0.0))
    return np.stack(xs)


def picard_errors(a_NxN, b_N, x_star_N, num_steps: int) -> np.ndarray:
    """Sup-norm errors ||x_k - x*||_inf of Picard from 0, k = 0..num_steps; shape [K + 1]."""
    xs = picard_iterates(a_NxN, b_N[None, :], num_steps)[:, 0]
    return np.max(np.abs(xs - x_star_N), axis=1)


def solve_by_picard(a_NxN, b_N, max_steps: int = 100_000) -> np.ndarray:
    """The fixed point of x = relu(A x + b) by Picard to float64 rounding (for contractions;
    an error if `max_steps` do not settle it)."""
    x = np.zeros_like(b_N, dtype=float)
    for _ in range(max_steps):
        new = np.maximum(a_NxN @ x + b_N, 0.0)
        if np.max(np.abs(new - x)) <= 1e-15 * max(1.0, np.max(np.abs(x))):
            return new
        x = new
    raise RuntimeError(f"Picard did not settle in {max_steps} steps (not a contraction?)")


def tight_contraction(rng: np.random.Generator, dim: int, root: float) -> np.ndarray:
    """A >= 0 with every row summing to `root`, so ||A||_inf = lambda_pf(A) = root: the case
    where the contraction bound kappa^k e0 is attained (all units active)."""
    p = rng.uniform(size=(dim, dim))
    return root * p / p.sum(1, keepdims=True)


def feedforward_as_implicit(weights: list[np.ndarray], biases: list[np.ndarray],
                            u_BxP: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(A [N, N], injection [B, N]) of the ReLU net h_l = relu(W_l h_l-1 + b_l), h_0 = u,
    written implicitly (El Ghaoui et al. 2021): the state is x = (h_L, ..., h_1),
    block l reads block l + 1, so A is strictly upper-triangular, and the first layer is the
    injection W_1 u + b_1. The top block of the fixed point is the net's output h_L."""
    num_layers, width = len(weights), biases[0].size
    n = num_layers * width
    a = np.zeros((n, n))
    injection = np.zeros((u_BxP.shape[0], n))
    for layer in range(num_layers):
        block = slice((num_layers - 1 - layer) * width, (num_layers - layer) * width)
        injection[:, block] = biases[layer]
        if layer == 0:
            injection[:, block] += u_BxP @ weights[0].T
        else:
            below = slice((num_layers - layer) * width, (num_layers - layer + 1) * width)
            a[block, below] = weights[layer]
    return a, injection
