"""Every solution of x = relu(A x + b), by enumerating activation patterns; Perron rescaling.

A solution with active set S (x_S > 0 or = 0 on the boundary, x_rest = 0) solves the linear
system (I - A_SS) x_S = b_S and must satisfy x_S >= 0 and (A x + b)_rest <= 0. Trying all
2^n sets finds every solution (exact for small n; a singular I - A_SS is reported, since a
continuum of solutions may then exist). El Ghaoui et al. (2021), Sec. 3, use x = relu(2x + u)
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
