"""The trivial answerers of the symbolic-integration task."""

import numpy as np
import pytest

from dl_theory.data.symbolic_baselines import (
    most_frequent_answer,
    nearest_neighbour_answers,
    ngram_features,
)

PAIRS = [
    (("mul", "INT+", "2", "x"), ("pow", "x", "INT+", "2")),
    (("cos", "x"), ("sin", "x")),
    (("exp", "x"), ("exp", "x")),
    (("add", "INT+", "1", "exp", "x"), ("add", "x", "exp", "x")),
    (("mul", "INT+", "3", "x"), ("sin", "x")),
]


def test_most_frequent_answer():
    assert most_frequent_answer(PAIRS) == ("sin", "x")
    with pytest.raises(ValueError, match="train_pairs is empty"):
        most_frequent_answer([])


def test_ngram_features_count_tokens_and_adjacent_pairs():
    features = ngram_features([("cos", "x"), ("x",)])
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-6)
    assert np.count_nonzero(features[0]) == 3  # cos, x, (cos, x)
    assert np.count_nonzero(features[1]) == 1


def test_retrieval_copies_exact_matches_and_prefers_the_closest_problem():
    problems = [p for p, _ in PAIRS] + [("add", "INT+", "2", "exp", "x")]
    answers = nearest_neighbour_answers(PAIRS, problems, chunk=2)
    assert answers[:5] == [s for _, s in PAIRS]
    assert answers[5] == ("add", "x", "exp", "x")  # 1 + exp(x) is the nearest to 2 + exp(x)
