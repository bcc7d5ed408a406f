"""Prefix notation for sympy expressions: hand-written encodings, exact round trips, errors."""

import numpy as np
import pytest
import sympy

from dl_theory.data.symbolic_prefix import (
    VOCABULARY,
    PrefixError,
    UnencodableError,
    X,
    to_prefix,
    to_sympy,
    tree_to_sympy,
)
from dl_theory.data.symbolic_trees import Grammar, sample_tree


@pytest.mark.parametrize("expr, tokens", [
    (2 * X + 1, ("add", "INT+", "1", "mul", "INT+", "2", "x")),
    (X ** 3 - 120, ("add", "INT-", "1", "2", "0", "pow", "x", "INT+", "3")),
    (sympy.sqrt(X) / 2, ("mul", "div", "INT+", "1", "INT+", "2", "sqrt", "x")),
    (sympy.exp(X) * sympy.sin(X) * sympy.E, ("mul", "E", "mul", "exp", "x", "sin", "x")),
    (1 / X, ("pow", "x", "INT-", "1")),
])
def test_hand_written_encodings(expr, tokens):
    """Integers as INT+/INT- digits, n-ary add/mul right-nested, sqrt, rationals as div."""
    assert to_prefix(expr) == tokens
    assert to_sympy(tokens) == expr


def test_round_trip_is_exact_on_random_expressions():
    """to_sympy(to_prefix(e)) is e node for node (srepr) and to_prefix of it gives the same
    tokens, over 600 sampled trees with 1-8 operators (the unwritable ones, e.g. log(-1) =
    I pi, are counted and must stay a minority)."""
    grammar = Grammar(leaves=("x", "-2", "1", "2", "3"))
    rng = np.random.default_rng(0)
    written = unwritable = 0
    for _ in range(600):
        expr = tree_to_sympy(sample_tree(rng, grammar, int(rng.integers(1, 9))))
        try:
            tokens = to_prefix(expr)
        except UnencodableError:
            unwritable += 1
            continue
        back = to_sympy(tokens)
        assert sympy.srepr(back) == sympy.srepr(expr)
        assert to_prefix(back) == tokens
        assert set(tokens) <= set(VOCABULARY)
        written += 1
    assert written > 500 and unwritable > 0


def test_grammar_trees_read_with_the_grammar_meaning():
    tree = ("sub", "div", "x", "-2", "pow2", "exp", "x")
    assert sympy.simplify(tree_to_sympy(tree) - (-X / 2 - sympy.exp(2 * X))) == 0


@pytest.mark.parametrize("expr", [sympy.I * X, sympy.Integral(sympy.exp(X ** 2), X),
                                  sympy.erf(X), sympy.Float(0.5) * X, sympy.zoo])
def test_unwritable_expressions_raise(expr):
    with pytest.raises(UnencodableError):
        to_prefix(expr)


@pytest.mark.parametrize("tokens, message", [
    (("add", "x"), "lacks 1 operand"),
    (("x", "x"), "2 expressions where one"),
    (("mul", "2", "x"), "digit '2' at position 1 without INT"),
    (("add", "INT+", "x", "x"), "INT\\+ at position 1 has no digits"),
    (("foo",), "unknown token 'foo'"),
    ((), "0 expressions"),
])
def test_malformed_prefix_raises(tokens, message):
    with pytest.raises(PrefixError, match=message):
        to_sympy(tokens)
