"""Mixtures over expression sizes and their disjoint splits (dl_theory/data/symbolic_splits)."""

import pytest

from dl_theory.data.symbolic import GenerationConfig
from dl_theory.data.symbolic_splits import mixed_pairs, split, unseen

SMALL = GenerationConfig(num_ops=2, max_len=24, seconds=1.0)


def test_mixture_tags_sizes_and_keeps_problems_distinct(tmp_path):
    examples, stats = mixed_pairs("bwd", SMALL, {1: 6, 2: 10}, seed=3, cache_dir=tmp_path)
    problems = [problem for problem, _, _ in examples]
    assert len(problems) == len(set(problems))
    assert {num_ops for _, _, num_ops in examples} == {1, 2}
    assert sorted(stats) == [1, 2] and stats[2]["accepted"] == 10
    again, _ = mixed_pairs("bwd", SMALL, {1: 6, 2: 10}, seed=3, cache_dir=tmp_path)
    assert again == examples


def test_split_is_disjoint_and_exhaustive_and_unseen_drops_training_problems():
    examples = [((f"p{i}",), ("s",), 1 + i % 3) for i in range(20)]
    train, test = split(examples, 5, seed=0)
    assert len(test) == 5 and len(train) == 15
    assert {e[0] for e in train}.isdisjoint({e[0] for e in test})
    assert sorted(train + test) == sorted(examples)
    assert split(examples, 5, seed=0) == (train, test)
    other = [train[0], ((("new",)), ("s",), 2), test[0]]
    kept, dropped = unseen(other, train)
    assert dropped == 1 and kept == other[1:]
    with pytest.raises(ValueError, match="num_test=20; must be in"):
        split(examples, 20, seed=0)
