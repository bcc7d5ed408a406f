"""Cauchy regression: the constants of De et al.'s bound and the first-hit bookkeeping."""

import jax
import numpy as np
import optax
import pytest

from dl_theory.theory.cauchy_regression import (
    cauchy_problem,
    criticality_bound_constant,
    first_hit_steps,
    running_min_grad_norms,
)

PROBLEM = cauchy_problem(num_rows=50, dim=5, outlier_fraction=0.2, outlier_scale=10.0,
                         init_scale=1.0, seed=0)


def test_gradients_are_bounded_by_sigma():
    rng = np.random.default_rng(1)
    loss = lambda w: np.mean(np.log1p((PROBLEM.a @ w - PROBLEM.b) ** 2))  # noqa: E731
    grad = jax.grad(lambda w: jax.numpy.mean(jax.numpy.log1p((PROBLEM.a @ w - PROBLEM.b) ** 2)))
    norms = [float(np.linalg.norm(grad(3 * rng.standard_normal(5).astype(np.float32))))
             for _ in range(200)]
    assert max(norms) <= PROBLEM.sigma and loss(PROBLEM.w1) >= 0


def test_first_hit_steps_are_one_based_and_minus_one_when_never_reached():
    running_min = np.asarray([[3.0, 2.0, 1.0, 0.5]])
    assert first_hit_steps(running_min, np.asarray([[3.0, 1.5, 0.1]])).tolist() == [[1, 3, -1]]


def test_gradient_descent_running_min_falls_and_the_bound_needs_a_small_step():
    alpha = 0.5 / PROBLEM.lipschitz
    running_min = running_min_grad_norms(optax.sgd(alpha), [PROBLEM], np.zeros(1), 300)
    assert running_min.shape == (1, 300) and running_min[0, -1] < 0.1 * running_min[0, 0]
    with pytest.raises(ValueError, match="alpha"):
        criticality_bound_constant(PROBLEM, xi=0.1, alpha=1.0)
