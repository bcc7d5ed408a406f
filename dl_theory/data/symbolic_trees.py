"""Random unary-binary expression trees, uniform over trees with n internal nodes (Lample &
Charton 2020, "Deep learning for symbolic mathematics", Section 2.1 and Appendix C).

A tree has n internal nodes (operators); each is unary (one of p1 labels) or binary (one of p2
labels), and every leaf carries one of L labels. D(e, n) counts the labelled trees with n
internal nodes that can be grown from e empty nodes (a forest of e trees read left to right):

    D(0, n) = 0,   D(e, 0) = L^e,
    D(e, n) = L D(e - 1, n) + p1 D(e, n - 1) + p2 D(e + 1, n - 1)      (Appendix C.2)

(the first empty node is a leaf, a unary node, or a binary node). The sampler fills empty nodes
in prefix order: with e empty nodes and n operators left, the first k empty nodes become leaves
and the next one an operator of arity a with probability

    L^k p_a D(e - k - 1 + a, n - 1) / D(e, n),

which makes every labelled tree equally likely; labels are then drawn uniformly. The tree is
produced directly as its prefix (Polish) token sequence. The authors' code
(facebookresearch/SymbolicMathematics, src/envs/char_sp.py) uses the same table and step.
"""

import dataclasses
import functools

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Grammar:
    """Operator and leaf labels of the random trees (tokens of the grammar's prefix language).

    unary, binary: operator tokens (see `dl_theory.data.symbolic_prefix.GRAMMAR_OPERATORS` for
    the ones that have a meaning); leaves: "x" or integer literals such as "-3".
    """

    unary: tuple[str, ...] = ("exp", "log", "sqrt", "sin", "cos", "pow2")
    binary: tuple[str, ...] = ("add", "sub", "mul", "div")
    leaves: tuple[str, ...] = ("x", "-5", "-4", "-3", "-2", "-1", "1", "2", "3", "4", "5")

    @property
    def arity(self) -> dict[str, int]:
        """Token -> number of children (0 for leaves)."""
        table = {t: 0 for t in self.leaves}
        table.update({t: 1 for t in self.unary})
        table.update({t: 2 for t in self.binary})
        return table


def check_grammar(grammar: Grammar, key: str = "grammar", known_unary=(), known_binary=()) -> None:
    """Raises ValueError naming `key`.field if a label list is empty, repeats a token, shares a
    token with another list, or names an operator outside `known_unary` / `known_binary`."""
    lists = {"unary": grammar.unary, "binary": grammar.binary, "leaves": grammar.leaves}
    for field, tokens in lists.items():
        if not tokens:
            raise ValueError(f"{key}.{field}=(); give at least one token")
        if len(set(tokens)) != len(tokens):
            raise ValueError(f"{key}.{field}={tokens!r} repeats a token; labels must be distinct")
    for field, known in (("unary", known_unary), ("binary", known_binary)):
        unknown = [t for t in lists[field] if known and t not in known]
        if unknown:
            raise ValueError(f"{key}.{field} has unknown {unknown!r}; known: {sorted(known)}")
    for leaf in grammar.leaves:
        if leaf != "x" and not _is_int_literal(leaf):
            raise ValueError(f"{key}.leaves has {leaf!r}; leaves are 'x' or integer literals")
    if len(set(grammar.unary) | set(grammar.binary) | set(grammar.leaves)) != sum(
            len(t) for t in lists.values()):
        raise ValueError(f"{key}: a token is both an operator and a leaf, or unary and binary")


def _is_int_literal(token: str) -> bool:
    return token.lstrip("-").isdigit()


@functools.lru_cache(maxsize=64)
def tree_counts(max_ops: int, num_leaves: int, num_unary: int, num_binary: int
                ) -> tuple[tuple[int, ...], ...]:
    """Table D[e][n] (exact Python ints) for 0 <= n <= max_ops and 0 <= e <= max_ops + 1, the
    empty-node counts the sampler can reach (each binary node adds one)."""
    if max_ops < 0 or min(num_leaves, num_unary, num_binary) < 0:
        raise ValueError(f"max_ops={max_ops}, L={num_leaves}, p1={num_unary}, p2={num_binary}"
                         " must be >= 0")
    max_empty = max_ops + 1
    # Columns n = 0..max_ops; D(e, n) needs D(e + 1, n - 1), so compute e up to
    # max_empty + max_ops and keep the rows the sampler reaches.
    rows = max_empty + max_ops + 1
    table = [[0] * (max_ops + 1) for _ in range(rows)]
    for e in range(rows):
        table[e][0] = num_leaves ** e
    for n in range(1, max_ops + 1):
        for e in range(1, rows - n):
            table[e][n] = (num_leaves * table[e - 1][n] + num_unary * table[e][n - 1]
                           + num_binary * table[e + 1][n - 1])
    return tuple(tuple(table[e]) for e in range(max_empty + 1))


def _next_step_probabilities(table, empty: int, ops_left: int, num_leaves: int,
                             num_unary: int, num_binary: int) -> np.ndarray:
    """P(k leaves then an operator of arity a), flattened as [k * 2 + (a - 1)] for k < empty."""
    weights = []
    for k in range(empty):
        weights.append(num_leaves ** k * num_unary * table[empty - k][ops_left - 1])
        weights.append(num_leaves ** k * num_binary * table[empty - k + 1][ops_left - 1])
    total = table[empty][ops_left]
    # Exact integer weights; divide in Python to keep precision before converting to float.
    return np.array([w / total for w in weights], dtype=np.float64)


def sample_arities(rng: np.random.Generator, num_ops: int, num_leaves: int, num_unary: int,
                   num_binary: int) -> tuple[int, ...]:
    """The tree shape in prefix order as arities (0 leaf, 1 unary, 2 binary), uniform over
    labelled trees with `num_ops` internal nodes (each shape weighted by its labellings)."""
    table = tree_counts(num_ops, num_leaves, num_unary, num_binary)
    if table[1][num_ops] == 0:
        raise ValueError(f"no tree has {num_ops} internal nodes with L={num_leaves},"
                         f" p1={num_unary}, p2={num_binary}")
    arities: list[int] = []
    empty = 1
    for ops_left in range(num_ops, 0, -1):
        probs = _next_step_probabilities(table, empty, ops_left, num_leaves, num_unary,
                                         num_binary)
        choice = int(rng.choice(len(probs), p=probs / probs.sum()))
        skipped_leaves, unary_or_binary = divmod(choice, 2)
        arity = unary_or_binary + 1
        arities.extend([0] * skipped_leaves)
        arities.append(arity)
        empty = empty - skipped_leaves - 1 + arity
    arities.extend([0] * empty)
    return tuple(arities)


def sample_tree(rng: np.random.Generator, grammar: Grammar, num_ops: int) -> tuple[str, ...]:
    """A labelled tree with `num_ops` operators, uniform over all such trees of `grammar`,
    as prefix tokens."""
    arities = sample_arities(rng, num_ops, len(grammar.leaves), len(grammar.unary),
                             len(grammar.binary))
    labels = {0: grammar.leaves, 1: grammar.unary, 2: grammar.binary}
    return tuple(labels[a][int(rng.integers(len(labels[a])))] for a in arities)


def tree_shape(tokens: tuple[str, ...], grammar: Grammar) -> tuple[int, ...]:
    """The arity sequence (the unlabelled shape) of a prefix token sequence of `grammar`."""
    arity = grammar.arity
    return tuple(arity[t] for t in tokens)


def shape_weight(shape: tuple[int, ...], num_leaves: int, num_unary: int, num_binary: int
                 ) -> int:
    """Number of labellings of a shape: L^leaves p1^unary p2^binary."""
    return (num_leaves ** shape.count(0) * num_unary ** shape.count(1)
            * num_binary ** shape.count(2))


def enumerate_shapes(empty: int, num_ops: int) -> list[tuple[int, ...]]:
    """Every arity sequence (prefix order) of a forest grown from `empty` empty nodes with
    exactly `num_ops` internal nodes, by brute-force recursion (the independent count the
    recurrence is checked against; exponential, for small n only)."""
    if empty == 0:
        return [()] if num_ops == 0 else []
    shapes = [(0, *rest) for rest in enumerate_shapes(empty - 1, num_ops)]
    if num_ops > 0:
        shapes += [(1, *rest) for rest in enumerate_shapes(empty, num_ops - 1)]
        shapes += [(2, *rest) for rest in enumerate_shapes(empty + 1, num_ops - 1)]
    return shapes


def count_blind_arities(rng: np.random.Generator, num_ops: int, num_leaves: int,
                        num_unary: int, num_binary: int) -> tuple[int, ...]:
    """A sampler that ignores D: it picks (leaves skipped, arity) uniformly among the options
    at each step. Every tree stays reachable, but shapes are not weighted by their number of
    labellings, so it is not uniform (the baseline a uniformity test must reject); same
    signature as `sample_arities` (the labels are not used)."""
    del num_leaves, num_unary, num_binary
    arities, empty = [], 1
    for _ in range(num_ops):
        skipped, arity = int(rng.integers(empty)), int(rng.integers(1, 3))
        arities += [0] * skipped + [arity]
        empty += arity - skipped - 1
    return tuple(arities + [0] * empty)


def shape_chi_square(sampler, num_ops: int, num_leaves: int, num_unary: int, num_binary: int,
                     num_samples: int, seed: int = 0) -> float:
    """p-value of Pearson's chi-square test that `sampler` (signature of `sample_arities`)
    draws tree shapes with n = `num_ops` in proportion to their numbers of labellings, i.e.
    uniformly over labelled trees; every shape of `enumerate_shapes(1, num_ops)` is a cell."""
    shapes = enumerate_shapes(1, num_ops)
    index = {shape: i for i, shape in enumerate(shapes)}
    counts = np.zeros(len(shapes))
    rng = np.random.default_rng(seed)
    for _ in range(num_samples):
        counts[index[sampler(rng, num_ops, num_leaves, num_unary, num_binary)]] += 1
    weights = np.array([shape_weight(s, num_leaves, num_unary, num_binary) for s in shapes],
                       float)
    return float(stats.chisquare(counts, num_samples * weights / weights.sum()).pvalue)
