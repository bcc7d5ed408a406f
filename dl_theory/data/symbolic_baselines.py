"""Trivial answerers for the symbolic-integration task, the baselines a trained model must beat:
the most frequent training answer, and retrieval (the answer of the most similar training
problem, similarity = cosine of token unigram + bigram counts)."""

import collections

import numpy as np

from dl_theory.data.symbolic_batches import TOKEN_ID, VOCAB_SIZE


def most_frequent_answer(train_pairs) -> tuple[str, ...]:
    """The solution that occurs most often among (problem, solution) pairs (ties: the first
    seen)."""
    if not train_pairs:
        raise ValueError("train_pairs is empty; the most frequent answer needs one pair")
    counts = collections.Counter(solution for _, solution in train_pairs)
    return counts.most_common(1)[0][0]


def ngram_features(sequences) -> np.ndarray:
    """[N, V + V^2] float32 counts of each token and each pair of adjacent tokens, each row
    scaled to unit length (zero rows stay zero)."""
    features = np.zeros((len(sequences), VOCAB_SIZE + VOCAB_SIZE ** 2), np.float32)
    for row, tokens in enumerate(sequences):
        ids = [TOKEN_ID[t] for t in tokens]
        np.add.at(features[row], ids, 1.0)
        np.add.at(features[row], [VOCAB_SIZE + a * VOCAB_SIZE + b
                                  for a, b in zip(ids, ids[1:])], 1.0)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def nearest_neighbour_answers(train_pairs, test_problems, chunk: int = 256
                              ) -> list[tuple[str, ...]]:
    """For each test problem, the solution of the training problem with the most similar
    n-gram profile (`ngram_features`, cosine); an exact copy of a training problem gets that
    problem's solution."""
    if not train_pairs:
        raise ValueError("train_pairs is empty; retrieval needs one pair")
    train = ngram_features([problem for problem, _ in train_pairs])
    answers = []
    for start in range(0, len(test_problems), chunk):
        similarity = ngram_features(test_problems[start:start + chunk]) @ train.T
        answers += [train_pairs[i][1] for i in np.argmax(similarity, axis=1)]
    return answers
