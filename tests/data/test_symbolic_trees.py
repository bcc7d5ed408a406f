"""Counting and uniform sampling of unary-binary trees (Lample & Charton 2020, Appendix C)."""

import numpy as np
import pytest

from dl_theory.data.symbolic_trees import (
    Grammar,
    check_grammar,
    count_blind_arities,
    enumerate_shapes,
    sample_arities,
    sample_tree,
    shape_chi_square,
    shape_weight,
    tree_counts,
    tree_shape,
)


def test_schroeder_numbers_when_every_label_set_has_one_element():
    """With L = p1 = p2 = 1, D(1, n) counts unary-binary tree shapes: 1, 2, 6, 22, 90, 394."""
    table = tree_counts(5, 1, 1, 1)
    assert [table[1][n] for n in range(6)] == [1, 2, 6, 22, 90, 394]
    assert all(table[0][n] == 0 for n in range(1, 6))


@pytest.mark.parametrize("leaves, unary, binary", [(1, 1, 1), (3, 2, 4), (11, 6, 4)])
def test_recurrence_matches_brute_force_enumeration(leaves, unary, binary):
    """D(e, n) = sum over brute-force shapes of L^leaves p1^unary p2^binary, e <= 3, n <= 5."""
    table = tree_counts(5, leaves, unary, binary)
    for empty in range(1, 4):
        for ops in range(6):
            brute = sum(shape_weight(s, leaves, unary, binary)
                        for s in enumerate_shapes(empty, ops))
            assert table[empty][ops] == brute, (empty, ops)


@pytest.mark.parametrize("ops, leaves, unary, binary, num", [(4, 1, 1, 1, 9000),
                                                             (3, 2, 1, 2, 6000)])
def test_sampler_is_uniform_over_labelled_trees_chi_square(ops, leaves, unary, binary, num):
    """Chi-square over all shapes (90 at n = 4, 22 at n = 3), expected counts proportional
    to each shape's number of labellings; uniform at the 0.1 % level (fixed seed), while the
    same test rejects a sampler that ignores the counts (p < 1e-6): the test has power."""
    p_uniform = shape_chi_square(sample_arities, ops, leaves, unary, binary, num)
    p_biased = shape_chi_square(count_blind_arities, ops, leaves, unary, binary, num)
    assert p_uniform > 1e-3
    assert p_biased < 1e-6


def test_labels_are_uniform_and_tokens_follow_the_shape():
    grammar = Grammar(unary=("exp", "sin"), binary=("add", "mul", "sub"), leaves=("x", "1"))
    rng = np.random.default_rng(1)
    trees = [sample_tree(rng, grammar, 3) for _ in range(3000)]
    assert all(tree_shape(t, grammar).count(0) == tree_shape(t, grammar).count(2) + 1
               for t in trees)
    assert all(sum(a > 0 for a in tree_shape(t, grammar)) == 3 for t in trees)
    leaves = [tok for t in trees for tok in t if tok in grammar.leaves]
    share_x = leaves.count("x") / len(leaves)
    # Binomial s.e. of a share near 1/2 from >= 3000 draws is <= 0.0092: 5 s.e. = 0.046.
    assert abs(share_x - 0.5) < 0.046


def test_check_grammar_names_the_bad_key():
    with pytest.raises(ValueError, match=r"data.grammar.unary has unknown \['foo'\]"):
        check_grammar(Grammar(unary=("foo",)), "data.grammar", ("exp",), ("add",))
    with pytest.raises(ValueError, match="data.grammar.leaves has 'y'"):
        check_grammar(Grammar(leaves=("x", "y")), "data.grammar")
    with pytest.raises(ValueError, match="data.grammar.binary=\\(\\)"):
        check_grammar(Grammar(binary=()), "data.grammar")
    with pytest.raises(ValueError, match="repeats a token"):
        check_grammar(Grammar(leaves=("x", "x")), "data.grammar")


@pytest.mark.parametrize("leaves, unary, binary", [(1, 1, 1), (3, 2, 4), (11, 15, 4)])
def test_counts_satisfy_the_papers_closed_recurrence(leaves, unary, binary):
    """E_n = D(1, n) obeys Lample & Charton's Eq. (2) (Section 2.3, derived in Appendix B):
    (n + 1) E_n = (p1 + 2 L p2)(2n - 1) E_{n-1} - p1^2 (n - 2) E_{n-2}."""
    table = tree_counts(10, leaves, unary, binary)
    counts = [table[1][n] for n in range(11)]
    assert counts[0] == leaves
    for n in range(2, 11):
        assert (n + 1) * counts[n] == ((unary + 2 * leaves * binary) * (2 * n - 1) * counts[n - 1]
                                       - unary ** 2 * (n - 2) * counts[n - 2])
