"""The ReLU-gate updates against hand computations, the realizable fixed point, and the scans
against plain Python loops of the same steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.train.relu_gate import (
    GateKnobs,
    GateStream,
    full_batch_errors_over_seeds,
    gate_labels,
    minibatch_stream,
    neuro_tron_update,
    sgd_update,
    stream_errors_over_seeds,
)

X = jnp.array([[1.0, 2.0], [-1.0, 1.0]])
W_STAR = jnp.array([1.0, 0.5])
Y = jax.nn.relu(X @ W_STAR)  # (2, 0)


def test_labels_of_the_two_point_set():
    np.testing.assert_array_equal(Y, [2.0, 0.0])


def test_neuro_tron_step_by_hand_where_sgd_sees_no_gradient():
    # w . x = (-1.5, -1.5): both units off. Residuals y - relu(w.x) = (2, 0), so
    # w' = w + 0.1 * (2 * (1, 2) + 0) / 2 = (0.6, -0.8); SGD's gradient carries 1{w.x > 0} = 0.
    w = jnp.array([0.5, -1.0])
    np.testing.assert_allclose(neuro_tron_update(w, X, Y, 0.1), [0.6, -0.8], rtol=1e-6)
    np.testing.assert_array_equal(sgd_update(w, X, Y, 0.1), w)


def test_neuro_tron_and_sgd_agree_by_hand_when_the_active_units_are_the_residual_ones():
    # w . x = (3, 0): residuals (2 - 3, 0 - 0) = (-1, 0), so both steps give
    # w - 0.1 * (1, 2) / 2 = (0.95, 0.9).
    w = jnp.array([1.0, 1.0])
    np.testing.assert_allclose(neuro_tron_update(w, X, Y, 0.1), [0.95, 0.9], rtol=1e-6)
    np.testing.assert_allclose(sgd_update(w, X, Y, 0.1), [0.95, 0.9], rtol=1e-6)


@pytest.mark.parametrize("update", [neuro_tron_update, sgd_update])
def test_the_true_weight_is_an_exact_fixed_point_of_realizable_labels(update):
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 5))
    w_star = jax.random.normal(jax.random.PRNGKey(1), (5,))
    y = jax.nn.relu(x @ w_star)
    np.testing.assert_array_equal(update(w_star, x, y, 0.7), w_star)


def test_attack_moves_exactly_the_drawn_labels_by_theta_sign_u_x():
    u = jnp.array([0.0, 1.0])
    knobs = GateKnobs(0.1, attack_prob=0.5, attack_size=0.25)
    labels = gate_labels(X, W_STAR, knobs, u, jnp.zeros(2), jnp.array([0.2, 0.7]))
    np.testing.assert_allclose(labels, [2.0 + 0.25, 0.0], rtol=1e-6)  # only draw 0.2 < 0.5
    noisy = gate_labels(X, W_STAR, GateKnobs(0.1, label_noise=0.5), u, jnp.array([1.0, -2.0]),
                        jnp.zeros(2))
    np.testing.assert_allclose(noisy, [2.5, -1.0], rtol=1e-6)


def _stream(seeds=2, steps=5, batch=3, dim=4):
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    return GateStream(jax.random.normal(keys[0], (seeds, steps, batch, dim)),
                      jax.random.normal(keys[1], (seeds, steps, batch)),
                      jax.random.uniform(keys[2], (seeds, steps, batch)))


@pytest.mark.parametrize("method, update", [("neuro_tron", neuro_tron_update),
                                            ("sgd", sgd_update)])
def test_stream_scan_equals_a_python_loop_of_steps(method, update):
    stream = _stream()
    w0 = jax.random.normal(jax.random.PRNGKey(4), (2, 4))
    w_star = jax.random.normal(jax.random.PRNGKey(5), (2, 4))
    u = jnp.ones((2, 4)) / 2.0
    knobs = GateKnobs(0.3, label_noise=0.1, attack_prob=0.4, attack_size=0.2)
    errors = stream_errors_over_seeds(method, knobs, w0, w_star, u, stream)
    assert errors.shape == (2, 6)
    for s in range(2):
        w = w0[s]
        expected = [float(jnp.linalg.norm(w - w_star[s]))]
        for t in range(5):
            y = gate_labels(stream.x[s, t], w_star[s], knobs, u[s], stream.noise[s, t],
                            stream.attack_draw[s, t])
            w = update(w, stream.x[s, t], y, 0.3)
            expected.append(float(jnp.linalg.norm(w - w_star[s])))
        np.testing.assert_allclose(errors[s], expected, rtol=1e-5)


def test_full_batch_scan_equals_a_python_loop_on_the_first_rows():
    data = jax.random.normal(jax.random.PRNGKey(6), (1, 20, 3))
    w0, w_star = jnp.zeros((1, 3)), jnp.array([[1.0, -1.0, 0.5]])
    for size in (12, 20):  # the rows past `size` must play no part
        errors = full_batch_errors_over_seeds(4, 0.9, w0, w_star, data, size)
        rows = data[0, :size]
        w, y = w0[0], jax.nn.relu(rows @ w_star[0])
        expected = [float(jnp.linalg.norm(w - w_star[0]))]
        for _ in range(4):
            w = neuro_tron_update(w, rows, y, 0.9)
            expected.append(float(jnp.linalg.norm(w - w_star[0])))
        np.testing.assert_allclose(errors[0], expected, rtol=1e-5)


def test_minibatches_come_from_the_first_rows_only():
    data = jnp.arange(2 * 10 * 1, dtype=jnp.float32).reshape(2, 10, 1)
    stream = minibatch_stream(jax.random.PRNGKey(7), data, 4, steps=50, batch=3)
    assert stream.x.shape == (2, 50, 3, 1)
    rows = np.asarray(stream.x[..., 0]) - 10 * np.arange(2)[:, None, None]
    assert set(np.unique(rows)) == {0.0, 1.0, 2.0, 3.0}
    assert float(np.max(stream.attack_draw)) == 1.0 and float(np.max(np.abs(stream.noise))) == 0
