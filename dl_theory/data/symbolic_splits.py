"""Train and test sets of integration problems mixed over expression sizes, with no test
problem seen in training.

A mixture draws `counts[n]` pairs from trees with n operators for each n (one cached dataset
per n, `symbolic.cached_pairs`), keeps the first occurrence of a problem that two sizes
produce alike (simplification can merge them), and tags each pair with its n. The problems
of a mixture are distinct, so a random split of it (`split`) gives disjoint train and test
sets drawn from one distribution; a test set from another generator is made disjoint from
the training problems by dropping those it shares with them (`unseen`), and the number
dropped is reported. (Drawing a separate test set from the same generator would repeat many
training problems: the small sizes have few distinct problems.)
"""

import dataclasses
import os

import numpy as np

from dl_theory.data.symbolic import GenerationConfig, cached_pairs

# (problem tokens, solution tokens, number of operators of the generating tree)
Example = tuple[tuple[str, ...], tuple[str, ...], int]


def mixed_pairs(method: str, config: GenerationConfig, counts: dict[int, int], seed: int,
                cache_dir: str | os.PathLike) -> tuple[list[Example], dict[int, dict]]:
    """(examples, {n: generation stats}): `counts[n]` pairs by `method` from trees with n
    operators (`config.num_ops` is replaced by each n), problems distinct over the mixture."""
    examples, seen, stats = [], set(), {}
    for num_ops, count in sorted(counts.items()):
        dataset = cached_pairs(method, dataclasses.replace(config, num_ops=num_ops), seed,
                               count, cache_dir)
        stats[num_ops] = dict(dataset.stats)
        for problem, solution in dataset.pairs:
            if problem not in seen:
                seen.add(problem)
                examples.append((problem, solution, num_ops))
    return examples, stats


def split(examples: list[Example], num_test: int, seed: int
          ) -> tuple[list[Example], list[Example]]:
    """(train, test): `num_test` examples drawn at random (without replacement, from `seed`)
    for the test set, the rest, in their original order, for training."""
    if not 0 < num_test < len(examples):
        raise ValueError(f"num_test={num_test}; must be in (0, {len(examples)}), the number "
                         "of distinct examples")
    chosen = set(np.random.default_rng(seed).choice(len(examples), num_test, replace=False)
                 .tolist())
    train = [e for i, e in enumerate(examples) if i not in chosen]
    test = [e for i, e in enumerate(examples) if i in chosen]
    return train, test


def unseen(test: list[Example], train: list[Example]) -> tuple[list[Example], int]:
    """(the test examples whose problem is not a training problem, how many were dropped)."""
    train_problems = {problem for problem, _, _ in train}
    kept = [example for example in test if example[0] not in train_problems]
    return kept, len(test) - len(kept)
