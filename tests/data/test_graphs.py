"""Karate club, stochastic block models, and few-label masks: counts and densities."""

import sys

import numpy as np
import pytest

from dl_theory.data.graphs import few_labels_mask, karate_club, stochastic_block_model


def undirected_pairs(graph):
    s, r = graph["senders"], graph["receivers"]
    return {(int(a), int(b)) for a, b in zip(s, r) if a < b}


def assert_symmetric_simple_sorted(graph):
    s, r = graph["senders"], graph["receivers"]
    assert s.dtype == np.int32 and r.dtype == np.int32 and graph["y"].dtype == np.int32
    assert not np.any(s == r)
    forward = set(zip(s.tolist(), r.tolist()))
    assert len(forward) == len(s) and forward == set(zip(r.tolist(), s.tolist()))
    order = np.lexsort((r, s))
    np.testing.assert_array_equal(order, np.arange(len(s)))
    assert 0 <= s.min() and s.max() < graph["num_nodes"] == len(graph["y"])


def test_karate_club_counts_and_factions():
    graph = karate_club()
    assert graph["num_nodes"] == 34
    assert len(graph["senders"]) == 2 * 78 and len(undirected_pairs(graph)) == 78
    assert_symmetric_simple_sorted(graph)
    degree = np.bincount(graph["senders"], minlength=34)
    assert degree[0] == 16 and degree[33] == 17 and degree.sum() == 156
    assert np.bincount(graph["y"]).tolist() == [17, 17]
    assert graph["y"][0] == 0 and graph["y"][33] == 1  # Mr. Hi and the Officer
    assert (0, 1) in undirected_pairs(graph) and (32, 33) in undirected_pairs(graph)


def test_karate_without_networkx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "networkx", None)
    with pytest.raises(ImportError, match=r"pip install networkx"):
        karate_club()


def test_sbm_edge_densities_match_p_in_and_p_out():
    sizes, p_in, p_out = (100, 120, 80), 0.2, 0.02
    graph = stochastic_block_model(sizes, p_in, p_out, seed=0)
    assert_symmetric_simple_sorted(graph)
    y = graph["y"]
    assert graph["num_nodes"] == 300 and np.bincount(y).tolist() == list(sizes)
    pairs = np.array(sorted(undirected_pairs(graph)))
    same = y[pairs[:, 0]] == y[pairs[:, 1]]
    within = sum(n * (n - 1) // 2 for n in sizes)
    between = 300 * 299 // 2 - within
    for p, edges, slots in ((p_in, same.sum(), within), (p_out, (~same).sum(), between)):
        # Binomial(slots, p): five standard deviations.
        assert abs(edges / slots - p) < 5 * np.sqrt(p * (1 - p) / slots)


def test_sbm_is_fixed_by_its_seed_and_extremes_are_exact():
    a, b, c = (stochastic_block_model((30, 30), 0.3, 0.1, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a["senders"], b["senders"])
    np.testing.assert_array_equal(a["receivers"], b["receivers"])
    assert undirected_pairs(a) != undirected_pairs(c)
    # p_in = 1, p_out = 0: two disjoint cliques of 4 and 3 nodes, 6 + 3 edges.
    cliques = stochastic_block_model((4, 3), 1.0, 0.0)
    assert undirected_pairs(cliques) == {
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3), (4, 5), (4, 6), (5, 6)
    }


@pytest.mark.parametrize(
    "sizes, p_in, p_out, match",
    [((10, 10), 1.5, 0.1, "p_in=1.5"), ((10,), 0.5, -0.1, "p_out=-0.1"),
     ((10, 0), 0.5, 0.1, "sizes"), ((), 0.5, 0.1, "sizes"), ((2.5,), 0.5, 0.1, "sizes")],
)
def test_sbm_bad_arguments_are_refused(sizes, p_in, p_out, match):
    with pytest.raises(ValueError, match=match):
        stochastic_block_model(sizes, p_in, p_out)


def test_few_labels_mask_picks_exactly_k_per_class():
    y = np.repeat(np.arange(3), (10, 20, 30))
    mask = few_labels_mask(y, per_class=4, seed=0)
    assert mask.dtype == bool and mask.shape == (60,)
    assert np.bincount(y[mask], minlength=3).tolist() == [4, 4, 4]
    np.testing.assert_array_equal(mask, few_labels_mask(y, per_class=4, seed=0))
    assert not np.array_equal(mask, few_labels_mask(y, per_class=4, seed=1))
    assert few_labels_mask(y, per_class=10, seed=0)[:10].all()


def test_few_labels_mask_refuses_more_than_a_class_holds():
    y = np.repeat(np.arange(2), (5, 3))
    with pytest.raises(ValueError, match="class 1 has only 3 nodes"):
        few_labels_mask(y, per_class=4)
    with pytest.raises(ValueError, match="per_class=0"):
        few_labels_mask(y, per_class=0)
