"""Tests for dl_theory/models/graph.py: segment-sum message passing against dense adjacency
products, padding and batching of graphs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dl_theory.models import graph as gnn

KEY = jax.random.key(0)


def _random_graph(seed, num_nodes, num_edges, features=3, symmetric=True):
    rng = np.random.default_rng(seed)
    senders = rng.integers(0, num_nodes, num_edges)
    receivers = rng.integers(0, num_nodes, num_edges)
    if symmetric:
        senders, receivers = (np.concatenate([senders, receivers]),
                              np.concatenate([receivers, senders]))
    nodes = rng.normal(size=(num_nodes, features)).astype(np.float32)
    return gnn.Graph(jnp.asarray(nodes), jnp.asarray(senders), jnp.asarray(receivers))


def _adjacency(graph):
    """A[r, s] = number of edges s -> r, as a dense matrix."""
    n = graph.nodes.shape[0]
    a = np.zeros((n, n), np.float32)
    np.add.at(a, (np.asarray(graph.receivers), np.asarray(graph.senders)), 1.0)
    return a


@pytest.mark.parametrize("symmetric", [True, False])
def test_gcn_propagate_equals_dense_normalised_adjacency(symmetric):
    graph = _random_graph(0, num_nodes=7, num_edges=9, symmetric=symmetric)
    a_hat = _adjacency(graph) + np.eye(7)
    d_inv_sqrt = np.diag(a_hat.sum(axis=1) ** -0.5)
    expected = d_inv_sqrt @ a_hat @ d_inv_sqrt @ np.asarray(graph.nodes)
    np.testing.assert_allclose(gnn.gcn_propagate(graph.nodes, graph), expected, rtol=1e-5,
                               atol=1e-6)


def test_gcn_equals_dense_two_layer_formula():
    graph = _random_graph(1, num_nodes=6, num_edges=7)
    model = gnn.GCN(features=(5, 2))
    params = model.init(KEY, graph)["params"]
    a_hat = _adjacency(graph) + np.eye(6)
    d_inv_sqrt = np.diag(a_hat.sum(axis=1) ** -0.5)
    norm = d_inv_sqrt @ a_hat @ d_inv_sqrt
    hidden = np.maximum(norm @ np.asarray(graph.nodes) @ params["layer_0"]["kernel"], 0.0)
    expected = norm @ hidden @ params["layer_1"]["kernel"]
    np.testing.assert_allclose(model.apply({"params": params}, graph), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_mpnn_equals_dense_all_pairs_messages(aggregation):
    graph = _random_graph(2, num_nodes=5, num_edges=6)
    model = gnn.MPNN(num_outputs=3, hidden=4, num_layers=2, aggregation=aggregation)
    params = model.init(KEY, graph)["params"]
    adjacency = _adjacency(graph)
    if aggregation == "mean":
        adjacency = adjacency / np.maximum(adjacency.sum(axis=1, keepdims=True), 1.0)

    def dense(name, x):
        return x @ np.asarray(params[name]["kernel"]) + np.asarray(params[name]["bias"])

    relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
    h = dense("embed", np.asarray(graph.nodes))
    n = h.shape[0]
    for layer in range(2):
        # pairs[r, s] = [h_s; h_r]: every possible edge s -> r, weighted by A[r, s].
        pairs = np.concatenate([np.broadcast_to(h[None, :, :], (n, n, 4)),
                                np.broadcast_to(h[:, None, :], (n, n, 4))], axis=-1)
        messages = relu(dense(f"message_{layer}", pairs))
        aggregated = np.einsum("rs,rsh->rh", adjacency, messages)
        h = relu(dense(f"update_{layer}", np.concatenate([h, aggregated], axis=-1)))
    np.testing.assert_allclose(model.apply({"params": params}, graph), dense("head", h),
                               rtol=1e-4, atol=1e-5)


# With num_nodes=12 there is no padding node: the padding edges join a real node to itself,
# so only the edge mask keeps them out.
@pytest.mark.parametrize("num_nodes", [12, 15])
@pytest.mark.parametrize("model", [gnn.GCN(features=(4, 3)), gnn.MPNN(num_outputs=3, hidden=4)])
def test_padded_batch_equals_graphs_one_by_one(model, num_nodes):
    graphs = [_random_graph(3, 4, 3), _random_graph(4, 5, 4), _random_graph(5, 3, 2)]
    batch = gnn.batch_graphs(graphs, num_nodes=num_nodes, num_edges=22)
    params = model.init(KEY, batch)
    out = model.apply(params, batch)
    start = 0
    for g in graphs:
        n = g.nodes.shape[0]
        np.testing.assert_allclose(out[start:start + n], model.apply(params, g), rtol=1e-5,
                                   atol=1e-5)
        start += n
    np.testing.assert_array_equal(out[start:], 0.0)


def test_batch_graphs_offsets_and_masks():
    g = gnn.Graph(jnp.ones((2, 1)), jnp.array([0]), jnp.array([1]))
    batch = gnn.batch_graphs([g, g], num_nodes=5, num_edges=3)
    np.testing.assert_array_equal(batch.senders, [0, 2, 4])
    np.testing.assert_array_equal(batch.receivers, [1, 3, 4])
    np.testing.assert_array_equal(batch.node_mask, [True] * 4 + [False])
    np.testing.assert_array_equal(batch.edge_mask, [True, True, False])
    with pytest.raises(ValueError, match="num_nodes=3"):
        gnn.batch_graphs([g, g], num_nodes=3, num_edges=3)


@pytest.mark.parametrize("model", [gnn.GCN(features=(4, 3)), gnn.MPNN(num_outputs=3, hidden=4)])
def test_bf16_compute(model):
    graph = _random_graph(6, 5, 4)
    params = model.init(KEY, graph)
    out = model.clone(dtype=jnp.bfloat16).apply(params, graph, train=True)
    assert out.shape == (5, 3) and out.dtype == jnp.bfloat16
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    np.testing.assert_allclose(out.astype(jnp.float32), model.apply(params, graph), atol=0.1,
                               rtol=0.1)


def test_bad_aggregation_names_the_value():
    with pytest.raises(ValueError, match="aggregation='max'"):
        gnn.MPNN(num_outputs=2, aggregation="max")
