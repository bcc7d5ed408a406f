"""A linear probe: multinomial logistic regression fitted to convergence on frozen features.

The probe of a feature map phi is the minimiser of the strongly convex objective

    L(W, b) = mean_n CE(softmax(W^T z_n + b), y_n) + (l2 / 2) ||W||_F^2,
    z_n = (phi(x_n) - mu) / sigma    (train-set mean and standard deviation per feature),

found by full-batch L-BFGS (`optax.lbfgs`, zoom line search) for a fixed number of iterations
from W = 0, b = 0: deterministic (no batches, no initial draw), so a probe's accuracy varies only
with its features. The L2 term (bias unpenalised) makes the minimiser unique and equal to
scikit-learn's `LogisticRegression(C=1 / (N l2))` on the same standardised features; on the
raw input the probe IS logistic regression. Features that are constant on the train set
(dead ReLU units) get sigma = 1 and so stay constant (zero) for the probe.

Several probes with features of one width D run as one vmapped program (seeds, layers of equal
width); `probe_accuracies` returns test accuracy and the final gradient norm (the convergence
check) per probe.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax


def standardise(train_NxD: jax.Array, test_MxD: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Train and test features centred and scaled by the train set's per-feature mean and
    standard deviation (a zero standard deviation is replaced by 1)."""
    mean = train_NxD.mean(axis=0, keepdims=True)
    std = train_NxD.std(axis=0, keepdims=True)
    std = jnp.where(std > 0, std, 1.0)
    return (train_NxD - mean) / std, (test_MxD - mean) / std


def probe_objective(params: dict, z_NxD: jax.Array, y_N: jax.Array, l2: float) -> jax.Array:
    """Mean softmax cross-entropy of the linear map z W + b plus (l2 / 2) ||W||^2."""
    logits = z_NxD @ params["W"] + params["b"][None]
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, y_N).mean()
    return nll + 0.5 * l2 * jnp.sum(params["W"] ** 2)


def fit_probe(z_NxD: jax.Array, y_N: jax.Array, *, num_classes: int, l2: float,
              iterations: int) -> tuple[dict, jax.Array]:
    """The probe's parameters {"W": [D, C], "b": [C]} after `iterations` L-BFGS steps on
    standardised features z, and the final gradient norm of the objective."""
    params = {"W": jnp.zeros((z_NxD.shape[1], num_classes), z_NxD.dtype),
              "b": jnp.zeros((num_classes,), z_NxD.dtype)}

    def objective(p):
        return probe_objective(p, z_NxD, y_N, l2)

    solver = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry, _):
        p, state = carry
        value, grad = value_and_grad(p, state=state)
        updates, state = solver.update(grad, state, p, value=value, grad=grad,
                                       value_fn=objective)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(step, (params, solver.init(params)), None, length=iterations)
    grad_norm = optax.tree.norm(jax.grad(objective)(params))
    return params, grad_norm


@functools.partial(jax.jit, static_argnames=("num_classes", "iterations"))
def probe_accuracies(train_GxNxD: jax.Array, y_train_N: jax.Array, test_GxMxD: jax.Array,
                     y_test_M: jax.Array, *, num_classes: int, l2: float,
                     iterations: int) -> tuple[jax.Array, jax.Array]:
    """Test accuracy [G] and final gradient norm [G] of G independent probes, one per stacked
    feature set of width D (train [G, N, D], test [G, M, D]; labels shared), as one program."""

    def one(train_NxD, test_MxD):
        z_train, z_test = standardise(train_NxD, test_MxD)
        params, grad_norm = fit_probe(z_train, y_train_N, num_classes=num_classes, l2=l2,
                                      iterations=iterations)
        predicted = jnp.argmax(z_test @ params["W"] + params["b"][None], axis=-1)
        return jnp.mean(predicted == y_test_M), grad_norm

    return jax.vmap(one)(train_GxNxD, test_GxMxD)
