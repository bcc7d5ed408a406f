"""Graph neural networks on edge lists: a message-passing GNN and the GCN, node-level outputs.

A graph (or a batch of graphs stored as one disjoint union, each graph's node indices
offset by the nodes before it) is a `Graph`: node features [N, F] and E directed edges
sender -> receiver. Padding to static sizes is done with masks: padded edges carry no
message and padded nodes output zeros. An undirected graph lists each edge in both
directions. Messages are summed at receivers with `jax.ops.segment_sum`, so the cost is
O(E) and never forms the N x N adjacency.

Models are called as `model.apply(variables, graph, train=False)` and return [N, K] in
the compute `dtype`. `activation` is a name in `dl_theory.models.mlp.ACTIVATIONS`.

References: Kipf & Welling 2017, "Semi-supervised classification with graph
convolutional networks" (GCN, Eq. 2); Gilmer et al. 2017, "Neural message passing for
quantum chemistry" (MPNN); Battaglia et al. 2018 (graph networks, batching by disjoint
union as in jraph).
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.models.mlp import get_activation


class Graph(NamedTuple):
    """Node features and an edge list; masks mark real (True) versus padding (False) entries.

    nodes: [N, F] float; senders, receivers: [E] int in [0, N); node_mask: [N] bool or
    None (all real); edge_mask: [E] bool or None (all real).
    """

    nodes: jax.Array
    senders: jax.Array
    receivers: jax.Array
    node_mask: jax.Array | None = None
    edge_mask: jax.Array | None = None


def batch_graphs(graphs: Sequence[Graph], num_nodes: int, num_edges: int) -> Graph:
    """Disjoint union of `graphs`, padded to `num_nodes` nodes and `num_edges` edges.

    Graph g's node indices are shifted by the node count of graphs 0..g-1. Padding nodes
    have zero features; padding edges join the last node to itself and are masked out.
    Static sizes let one compiled program serve every batch (as jraph.pad_with_graphs).
    """
    total_nodes = sum(g.nodes.shape[0] for g in graphs)
    total_edges = sum(g.senders.shape[0] for g in graphs)
    if num_nodes < total_nodes or num_edges < total_edges:
        raise ValueError(f"num_nodes={num_nodes}, num_edges={num_edges}; the graphs have"
                         f" {total_nodes} nodes and {total_edges} edges")
    offsets = np.cumsum([0] + [g.nodes.shape[0] for g in graphs])[:-1]
    features = graphs[0].nodes.shape[1]
    pad_nodes, pad_edges = num_nodes - total_nodes, num_edges - total_edges
    nodes = np.concatenate([np.asarray(g.nodes) for g in graphs]
                           + [np.zeros((pad_nodes, features), np.asarray(graphs[0].nodes).dtype)])
    pad_index = np.full((pad_edges,), num_nodes - 1)
    senders = np.concatenate([np.asarray(g.senders) + o for g, o in zip(graphs, offsets)]
                             + [pad_index])
    receivers = np.concatenate([np.asarray(g.receivers) + o for g, o in zip(graphs, offsets)]
                               + [pad_index])
    return Graph(nodes=jnp.asarray(nodes),
                 senders=jnp.asarray(senders, jnp.int32),
                 receivers=jnp.asarray(receivers, jnp.int32),
                 node_mask=jnp.arange(num_nodes) < total_nodes,
                 edge_mask=jnp.arange(num_edges) < total_edges)


def _edge_mask(graph: Graph) -> jax.Array:
    if graph.edge_mask is None:
        return jnp.ones(graph.senders.shape, bool)
    return graph.edge_mask


def _masked_nodes(h_NxH: jax.Array, graph: Graph) -> jax.Array:
    if graph.node_mask is None:
        return h_NxH
    return jnp.where(graph.node_mask[:, None], h_NxH, 0)


def _sum_at_receivers(messages_ExH: jax.Array, graph: Graph) -> jax.Array:
    messages_ExH = jnp.where(_edge_mask(graph)[:, None], messages_ExH, 0)
    return jax.ops.segment_sum(messages_ExH, graph.receivers, num_segments=graph.nodes.shape[0])


def _mean_at_receivers(messages_ExH: jax.Array, graph: Graph) -> jax.Array:
    counts_N = jax.ops.segment_sum(_edge_mask(graph).astype(jnp.float32), graph.receivers,
                                   num_segments=graph.nodes.shape[0])
    total_NxH = _sum_at_receivers(messages_ExH, graph)
    return (total_NxH / jnp.maximum(counts_N, 1.0)[:, None]).astype(messages_ExH.dtype)


AGGREGATIONS: dict[str, Callable[[jax.Array, Graph], jax.Array]] = {
    "sum": _sum_at_receivers,
    "mean": _mean_at_receivers,
}


def gcn_propagate(h_NxH: jax.Array, graph: Graph) -> jax.Array:
    """D^-1/2 (A + I) D^-1/2 h with A[r, s] = #edges s -> r and D = diag(rowsum(A + I)).

    Shape [N, H] -> [N, H]. Per node: out_i = h_i / d_i + sum_{e: s -> i} h_s / sqrt(d_i d_s),
    with d_i = 1 + (real edges into i); masked edges count for nothing. The degrees and
    weights are computed in float32 and applied in h's dtype.
    """
    mask_E = _edge_mask(graph)
    degree_N = 1.0 + jax.ops.segment_sum(mask_E.astype(jnp.float32), graph.receivers,
                                         num_segments=h_NxH.shape[0])
    inv_sqrt_N = jax.lax.rsqrt(degree_N)
    weight_E = inv_sqrt_N[graph.receivers] * inv_sqrt_N[graph.senders]
    messages_ExH = h_NxH[graph.senders] * weight_E[:, None].astype(h_NxH.dtype)
    self_NxH = h_NxH * (inv_sqrt_N * inv_sqrt_N)[:, None].astype(h_NxH.dtype)
    return self_NxH + _sum_at_receivers(messages_ExH, graph)


class GCN(nn.Module):
    """Graph convolutional network (Kipf & Welling 2017, Eq. 2): [N, F] -> [N, features[-1]].

    H_{l+1} = act(Â H_l W_l) for every layer but the last, which is linear (logits),
    Â = D^-1/2 (A + I) D^-1/2 (see `gcn_propagate`). W_l has no bias, as in the equation.
    """

    features: Sequence[int] = (16, 2)
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        get_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: Graph, train: bool = False) -> jax.Array:
        act = get_activation(self.activation)
        h = graph.nodes.astype(self.dtype)
        for layer, width in enumerate(self.features):
            h = nn.Dense(width, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                         name=f"layer_{layer}")(h)
            h = gcn_propagate(h, graph)
            if layer < len(self.features) - 1:
                h = act(h)
        return _masked_nodes(h, graph)


class MPNN(nn.Module):
    """Message-passing GNN (Gilmer et al. 2017, Eq. 1-2, with MLP message and update).

    h_i <- W_in x_i + b, then `num_layers` rounds of
        m_e = act(W_m [h_s; h_r] + b_m)                  for each edge e = s -> r,
        a_i = AGG_{e: s -> i} m_e                         (`aggregation`: "sum" or "mean"),
        h_i <- act(W_u [h_i; a_i] + b_u),
    and node outputs W_out h_i + b_out. Shape [N, F] -> [N, num_outputs].
    """

    num_outputs: int
    hidden: int = 32
    num_layers: int = 2
    aggregation: str = "sum"
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation={self.aggregation!r}; known: {sorted(AGGREGATIONS)}")
        get_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, graph: Graph, train: bool = False) -> jax.Array:
        def dense(width: int, name: str) -> nn.Dense:
            return nn.Dense(width, dtype=self.dtype, param_dtype=self.param_dtype, name=name)

        act = get_activation(self.activation)
        h = dense(self.hidden, "embed")(graph.nodes.astype(self.dtype))
        for layer in range(self.num_layers):
            pair_Ex2H = jnp.concatenate([h[graph.senders], h[graph.receivers]], axis=-1)
            messages = act(dense(self.hidden, f"message_{layer}")(pair_Ex2H))
            aggregated = AGGREGATIONS[self.aggregation](messages, graph)
            h = act(dense(self.hidden, f"update_{layer}")(
                jnp.concatenate([h, aggregated], axis=-1)))
        return _masked_nodes(dense(self.num_outputs, "head")(h), graph)
