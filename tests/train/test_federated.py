"""FedAvg, FedProx and SCAFFOLD rounds against hand computations; the quadratic closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.theory import federated_quadratics as fq
from dl_theory.train import federated as fed


def _scalar_quadratic(params, batch):
    """f_i(w) = a_i / 2 (w - b_i)^2 for a client holding one example (a_i, b_i)."""
    return 0.5 * batch["a"][0] * (params - batch["b"][0]) ** 2


def _scalar_clients(a, b):
    return {"a": jnp.asarray(a, jnp.float32)[:, None], "b": jnp.asarray(b, jnp.float32)[:, None]}


def _one_round(rule, data, sizes, params=0.0, rounds=1):
    round_fn = fed.make_round(_scalar_quadratic, rule, sizes)
    state = fed.init_server(jnp.float32(params), len(sizes))
    for r in range(rounds):
        state = round_fn(state, data, jax.random.PRNGKey(r))
    return state


def test_fedavg_one_full_batch_step_is_one_centralised_gd_step():
    """E = 1, B = None, equal client sizes: the mean of the clients' one-step models is one GD
    step on the mean loss over the union of their data."""
    k, n, d, eta = 4, 5, 3, 0.2
    x = jax.random.normal(jax.random.PRNGKey(0), (k, n, d))
    y = jax.random.normal(jax.random.PRNGKey(1), (k, n))
    w0 = jnp.array([0.5, -1.0, 2.0])

    def mse(w, batch):
        return 0.5 * jnp.mean((batch["x"] @ w - batch["y"]) ** 2)

    round_fn = fed.make_round(mse, fed.LocalRule("fedavg", eta, 1, None), np.full(k, n))
    state = round_fn(fed.init_server(w0, k), {"x": x, "y": y}, jax.random.PRNGKey(2))
    union = {"x": x.reshape(k * n, d), "y": y.reshape(k * n)}
    centralised = w0 - eta * jax.grad(mse)(w0, union)
    np.testing.assert_allclose(state.params, centralised, rtol=1e-6, atol=1e-6)


def test_server_average_is_weighted_by_client_size():
    """Two clients, one GD step each from 0 at eta = 0.5: local models eta a_i b_i = 0.5 and
    -1.5; sizes 1 and 3 give (0.5 + 3 (-1.5)) / 4 = -1."""
    state = _one_round(fed.LocalRule("fedavg", 0.5, 1, None), _scalar_clients([1, 1], [1, -3]),
                       [1, 3])
    np.testing.assert_allclose(state.params, -1.0, rtol=1e-6)


def test_fedprox_with_large_mu_keeps_the_local_model_at_the_global_one():
    """One client, a = 2, b = 1, mu = 1000, eta = 1 / (a + mu): one step lands on the prox
    point a b / (a + mu) = 2 / 1002 and further steps stay there; mu = 0 moves to ~b."""
    a, mu = 2.0, 1000.0
    prox = fed.LocalRule("fedprox", 1.0 / (a + mu), 3, None, prox_mu=mu)
    state = _one_round(prox, _scalar_clients([a], [1.0]), [1])
    np.testing.assert_allclose(state.params, 2.0 / 1002.0, rtol=1e-5)
    plain = _one_round(fed.LocalRule("fedavg", 0.25, 3, None), _scalar_clients([a], [1.0]), [1])
    np.testing.assert_allclose(plain.params, 1 - 0.5 ** 3, rtol=1e-6)  # (1 - eta a)^3 left


def test_scaffold_control_variates_after_one_and_two_rounds_by_hand():
    """Clients a = (1, 3), b = (1, -1), eta = 0.1, two local steps, x = 0, all controls 0.
    Round 1: y = (0.19, -0.51), x = -0.16, c_i = -(y_i) / (2 eta) = (-0.95, 2.55), c = 0.8.
    Round 2 (corrections c - c_i = +-1.75): y = (-0.2721, -0.2909), x = -0.2815."""
    rule = fed.LocalRule("scaffold", 0.1, 2, None)
    data = _scalar_clients([1.0, 3.0], [1.0, -1.0])
    first = _one_round(rule, data, [1, 1])
    np.testing.assert_allclose(first.params, -0.16, atol=1e-6)
    np.testing.assert_allclose(first.client_controls, [-0.95, 2.55], atol=1e-5)
    np.testing.assert_allclose(first.control, 0.8, atol=1e-5)
    second = _one_round(rule, data, [1, 1], rounds=2)
    np.testing.assert_allclose(second.params, -0.2815, atol=1e-5)


def test_client_sampling_draws_round_c_k_distinct_clients_per_key():
    chosen = fed.sampled_clients(jax.random.PRNGKey(3), 8, 0.25)
    assert chosen.shape == (2,) and len(set(np.asarray(chosen).tolist())) == 2
    np.testing.assert_array_equal(chosen, fed.sampled_clients(jax.random.PRNGKey(3), 8, 0.25))
    assert fed.sampled_clients(jax.random.PRNGKey(3), 8, 0.01).shape == (1,)


def test_mini_batch_epochs_take_n_over_b_steps_per_epoch():
    assert fed.local_steps(10, fed.LocalRule(local_epochs=3, batch_size=4)) == 6
    assert fed.local_steps(10, fed.LocalRule(local_epochs=3, batch_size=None)) == 3


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method='fedsgd'"):
        fed.LocalRule("fedsgd")


def test_local_affine_map_matches_iterated_gd_with_prox():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    a = q @ np.diag([0.3, 1.0, 2.0]) @ q.T
    b, x = rng.normal(size=3), rng.normal(size=3)
    eta, mu, steps = 0.2, 0.7, 4
    w = x.copy()
    for _ in range(steps):
        w = w - eta * (a @ (w - b) + mu * (w - x))
    p, c = fq.local_affine_map(a, b, eta, steps, mu)
    np.testing.assert_allclose(p @ x + c, w, rtol=1e-12, atol=1e-12)


def test_fixed_point_is_the_minimiser_with_a_shared_hessian_or_one_step():
    rng = np.random.default_rng(1)
    a = np.stack([np.diag(rng.uniform(0.2, 1.0, 3)) for _ in range(4)])
    b = rng.normal(size=(4, 3))
    shared = np.repeat(a[:1], 4, axis=0)
    w = [1, 2, 3, 4]
    np.testing.assert_allclose(fq.federated_fixed_point(shared, b, w, 0.5, 7),
                               fq.global_minimiser(shared, b, w), rtol=1e-12)
    np.testing.assert_allclose(fq.federated_fixed_point(a, b, w, 0.5, 1),
                               fq.global_minimiser(a, b, w), rtol=1e-12)
    biased = fq.federated_fixed_point(a, b, w, 0.5, 7) - fq.global_minimiser(a, b, w)
    assert np.linalg.norm(biased) > 1e-3


def test_pathological_split_gives_most_clients_two_labels_and_iid_equal_shares():
    from dl_theory.data.federated_splits import client_split

    labels = np.repeat(np.arange(10), 400)  # 4000 examples, 400 per label
    patho = client_split("pathological", labels, 100, seed=0)
    iid = client_split("iid", labels, 100, seed=0)
    assert patho.shape == iid.shape == (100, 40)
    for split in (patho, iid):  # every example used exactly once
        np.testing.assert_array_equal(np.sort(split.ravel()), np.arange(4000))
    labels_per_client = [len(set(labels[row])) for row in patho]
    assert max(labels_per_client) == 2  # shards of 20 never straddle a label (400 = 20 x 20)
    assert np.mean([len(set(labels[row])) for row in iid]) > 8
    with pytest.raises(ValueError, match="split='dirichlet'"):
        client_split("dirichlet", labels, 100, seed=0)


def test_quadratic_rounds_reach_the_closed_form_fixed_point():
    """E = 3 local steps on heterogeneous quadratic clients: the simulated fixed point equals
    `federated_fixed_point` to float64 rounding, and differs from the global minimiser."""
    a, b = fq.random_quadratic_clients(0, 4, 3, 0.2, 1.0)
    weights = np.ones(4)
    with jax.enable_x64(True):
        sim = fed.quadratic_rounds(a, b, "fedavg", 0.3, 3, 400)
        closed = fq.federated_fixed_point(a, b, weights, 0.3, 3)
        w_opt = fq.global_minimiser(a, b, weights)
    assert sim.dtype == np.float64
    np.testing.assert_allclose(sim, closed, rtol=0, atol=1e-12)
    assert np.linalg.norm(sim - w_opt) > 1e-4


def test_classifier_accuracy_traces_shape_and_learning():
    """Two separable classes over 4 clients: one trace per (learning rate, seed, round);
    a zero learning rate keeps the initial accuracy, a positive one reaches 1."""
    from dl_theory.models.mlp import MLP

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 48)
    x = (rng.normal(size=(48, 2)) + 3.0 * (2 * y[:, None] - 1)).astype(np.float32)
    clients = {"x": jnp.asarray(x[:40].reshape(4, 10, 2)), "y": jnp.asarray(y[:40].reshape(4, 10))}
    test = {"x": jnp.asarray(x[40:]), "y": jnp.asarray(y[40:])}
    rule = fed.LocalRule("fedavg", 0.0, 1, None)
    traces = fed.classifier_accuracy_traces(MLP(widths=(8,), out_dim=2), rule, (0.0, 0.5),
                                            clients, test, rounds=5, seeds=2)
    assert traces.shape == (2, 2, 5)
    assert np.all(traces[0] == traces[0, 0, 0])
    assert np.all(traces[1, :, -1] == 1.0)
