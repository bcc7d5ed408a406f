"""The linear probe: it separates separable features, equals scikit-learn's logistic
regression with the same penalty, and ignores padding features."""

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from dl_theory.train.linear_probe import fit_probe, probe_accuracies, standardise

RNG = np.random.default_rng(0)
N, D, C = 300, 6, 3
X = RNG.normal(size=(N, D)).astype(np.float32)
Y = RNG.integers(0, C, N).astype(np.int32)
X_TEST = RNG.normal(size=(200, D)).astype(np.float32)
Y_TEST = RNG.integers(0, C, 200).astype(np.int32)


def _accuracy(train, test, *, l2=1e-3, iterations=100):
    acc, grad_norm = probe_accuracies(jnp.asarray(train)[None], jnp.asarray(Y),
                                      jnp.asarray(test)[None], jnp.asarray(Y_TEST),
                                      num_classes=C, l2=l2, iterations=iterations)
    return float(acc[0]), float(grad_norm[0])


def test_linearly_separable_features_are_probed_perfectly():
    # Class c is the corner 3 e_c plus small noise: linearly separable by a margin.
    def separable(labels):
        return (3.0 * np.eye(C)[labels] + 0.3 * RNG.normal(size=(labels.size, C))).astype(
            np.float32)

    acc, grad_norm = _accuracy(separable(Y), separable(Y_TEST))
    assert acc == 1.0
    assert grad_norm < 1e-4
    # On features unrelated to the labels the same probe is near chance: the test can fail.
    assert _accuracy(X, X_TEST)[0] < 0.5


def test_probe_on_the_raw_input_is_sklearn_logistic_regression():
    """Same objective (mean cross-entropy + l2/2 ||W||^2 = sklearn's with C = 1 / (N l2)),
    same minimiser: predicted probabilities agree to float32 optimisation accuracy."""
    l2 = 1e-2
    z, z_test = standardise(jnp.asarray(X), jnp.asarray(X_TEST))
    params, grad_norm = fit_probe(z, jnp.asarray(Y), num_classes=C, l2=l2, iterations=100)
    # scikit-learn in float64: given float32 its L-BFGS stops ~1e-4 short of the optimum.
    reference = LogisticRegression(C=1.0 / (N * l2), tol=1e-12, max_iter=10_000).fit(
        np.asarray(z, np.float64), Y)
    probs = np.array(jnp.exp(jnp.asarray(z_test) @ params["W"] + params["b"][None]))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, reference.predict_proba(np.asarray(z_test, np.float64)),
                               atol=1e-5)
    assert float(grad_norm) < 1e-5
    expected = reference.score(np.asarray(z_test, np.float64), Y_TEST)
    assert _accuracy(X, X_TEST, l2=l2)[0] == pytest.approx(expected)


def test_standardise_uses_train_statistics_and_keeps_constant_features_at_zero():
    train = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    test = np.array([[2.0, 7.0]], np.float32)
    z, z_test = standardise(jnp.asarray(train), jnp.asarray(test))
    np.testing.assert_allclose(np.asarray(z), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(np.asarray(z_test), [[0.0, 2.0]])


def test_zero_padding_features_change_nothing():
    padded = np.pad(X, ((0, 0), (0, 4)))
    padded_test = np.pad(X_TEST, ((0, 0), (0, 4)))
    acc, _ = _accuracy(X, X_TEST)
    assert _accuracy(padded, padded_test)[0] == acc
