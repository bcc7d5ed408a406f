"""Graphs for node classification, as edge lists: Zachary's karate club and stochastic block models.

A graph is a dict `{"senders": [E] int32, "receivers": [E] int32, "y": [N] int32,
"num_nodes": N}` with every undirected edge {u, v} listed in both directions (u -> v and
v -> u), no self-loops, sorted by (sender, receiver): the form message passing needs
(`jax.ops.segment_sum(messages_E, receivers_E, num_nodes)`). Sources: Zachary 1977, "An
information flow model for conflict and fission in small groups" (34 members, 78 ties, split
into the factions of Mr. Hi and the Officer); Holland, Laskey & Leinhardt 1983 (the
stochastic block model). networkx, needed for the karate club only, is an optional extra.
"""

from collections.abc import Sequence

import numpy as np

# networkx's `club` attribute, in the order of the class ids it gets here.
KARATE_FACTIONS = ("Mr. Hi", "Officer")


def _graph_from_pairs(
    u_P: np.ndarray, v_P: np.ndarray, y_N: np.ndarray
) -> dict[str, np.ndarray | int]:
    """Undirected pairs (u, v), u != v, each listed once -> the both-directions edge-list dict."""
    senders_E = np.concatenate([u_P, v_P]).astype(np.int32)
    receivers_E = np.concatenate([v_P, u_P]).astype(np.int32)
    order = np.lexsort((receivers_E, senders_E))
    return {
        "senders": senders_E[order],
        "receivers": receivers_E[order],
        "y": y_N.astype(np.int32),
        "num_nodes": len(y_N),
    }


def karate_club() -> dict[str, np.ndarray | int]:
    """Zachary's karate club: 34 nodes, 78 undirected edges (E = 156), y = faction.

    y[i] = 0 for "Mr. Hi" (the instructor, node 0) and 1 for "Officer" (node 33), from networkx's
    `club` node attribute; 17 members each. Edge weights are dropped. Source: Zachary 1977.
    """
    try:
        import networkx
    except ImportError as err:
        raise ImportError(
            "the karate club graph comes from networkx, which is not installed:"
            " pip install networkx (a dependency of dl_theory; reinstall with pip install -e .)"
        ) from err
    graph = networkx.karate_club_graph()
    u_P, v_P = np.array(list(graph.edges())).T
    y_N = np.array([KARATE_FACTIONS.index(graph.nodes[i]["club"]) for i in range(len(graph))])
    return _graph_from_pairs(u_P, v_P, y_N)


def stochastic_block_model(
    sizes: Sequence[int], p_in: float, p_out: float, seed: int = 0
) -> dict[str, np.ndarray | int]:
    """A stochastic block model: nodes in k communities, y = community id in [0, k).

    Nodes 0..sizes[0]-1 form community 0, the next sizes[1] community 1, and so on. Each pair
    {i, j}, i < j, is an edge independently with probability p_in if y[i] == y[j], else p_out;
    so a community of n nodes expects p_in * n (n - 1) / 2 internal edges. Drawn with
    `np.random.default_rng(seed)`; memory O(N^2). Source: Holland, Laskey & Leinhardt 1983.
    """
    for name, p in (("p_in", p_in), ("p_out", p_out)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name}={p}; must lie in [0, 1]")
    if len(sizes) == 0 or any(int(n) != n or n < 1 for n in sizes):
        raise ValueError(f"sizes={list(sizes)}; need one or more positive integers")
    y_N = np.repeat(np.arange(len(sizes)), np.asarray(sizes, dtype=np.int64))
    u_P, v_P = np.triu_indices(len(y_N), k=1)
    prob_P = np.where(y_N[u_P] == y_N[v_P], p_in, p_out)
    keep_P = np.random.default_rng(seed).random(len(prob_P)) < prob_P
    return _graph_from_pairs(u_P[keep_P], v_P[keep_P], y_N)


def few_labels_mask(y_N: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """A train mask with exactly `per_class` labelled nodes of each class; shape [N] bool.

    The semi-supervised node-classification setting (Kipf & Welling 2017 train a GCN on 20
    labels per class): the nodes of each class are drawn without replacement by
    `np.random.default_rng(seed)`; every other node is unlabelled (False).
    """
    y_N = np.asarray(y_N)
    if per_class < 1:
        raise ValueError(f"per_class={per_class}; must be at least 1")
    rng = np.random.default_rng(seed)
    mask_N = np.zeros(len(y_N), dtype=bool)
    for label in np.unique(y_N):
        members = np.flatnonzero(y_N == label)
        if len(members) < per_class:
            raise ValueError(
                f"per_class={per_class}, but class {label} has only {len(members)} nodes"
            )
        mask_N[rng.choice(members, size=per_class, replace=False)] = True
    return mask_N
