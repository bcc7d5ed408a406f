"""Scoring an integrator on test problems: decode, verify every answer with sympy, score the
trivial baselines alike, and the binomial intervals of the comparisons.

Each problem is solved or not (a Bernoulli outcome), so every accuracy and difference here
carries an interval from binomial error over the test problems.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dl_theory.data.symbolic import answer_verdict
from dl_theory.data.symbolic_baselines import most_frequent_answer, nearest_neighbour_answers
from dl_theory.data.symbolic_batches import BOS_ID, EOS_ID, PAD_ID, decode_ids, encode_batch
from dl_theory.data.symbolic_prefix import to_sympy
from dl_theory.models.seq2seq_decoding import beam_search, greedy_decode
from dl_theory.uncertainty import Estimate, wilson_interval


class Verifier:
    """`check_integral` with its verdicts remembered per (problem, answer), so an answer that
    two decoders (or a baseline) propose is checked once; `counts` tallies the verdicts of
    distinct checks: correct, wrong, malformed (not one prefix expression), timeout."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.counts = dict.fromkeys(("correct", "wrong", "malformed", "timeout"), 0)
        self._verdicts: dict = {}
        self._integrands: dict = {}

    def verdict(self, problem: tuple[str, ...], answer: tuple[str, ...] | None) -> str:
        """"correct", "wrong", "malformed" or "timeout" for one answer to one problem."""
        key = (problem, answer)
        if key not in self._verdicts:
            if problem not in self._integrands:
                self._integrands[problem] = to_sympy(problem)
            verdict = answer_verdict(self._integrands[problem], answer, self.seconds)
            self._verdicts[key] = verdict
            self.counts[verdict] += 1
        return self._verdicts[key]

    def solved(self, problem: tuple[str, ...], answers) -> bool:
        """Whether any of `answers` is correct (the paper's rule for a beam, Section 4.4)."""
        return any(self.verdict(problem, answer) == "correct" for answer in answers)


def evaluate(model, params, test, train, config, verifier: Verifier) -> dict:
    """Per test problem (lists, in test order): solved by greedy decoding, by beam search of
    `config.beam_size`, by beam size 1, by the most frequent training answer and by n-gram
    retrieval; plus the problem's length in tokens and its number of operators. `test` and
    `train` hold (problem, solution, num_ops) examples; decoding stops at `config.max_len`."""
    problems = [problem for problem, _, _ in test]
    source, _ = encode_batch(problems, config.max_len)
    variables, source = {"params": params}, jnp.asarray(source)
    decode = dict(max_len=config.max_len, bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID)
    greedy, _, _ = greedy_decode(model, variables, source, None, **decode)
    beams = {size: np.asarray(beam_search(model, variables, source, None, beam_size=size,
                                          **decode)[0]) for size in (config.beam_size, 1)}
    pairs = [(problem, solution) for problem, solution, _ in train]
    frequent = most_frequent_answer(pairs)
    retrieved = nearest_neighbour_answers(pairs, problems)
    out = {"greedy": [], "beam": [], "beam_size_1": [], "most_frequent": [], "retrieval": []}
    for i, problem in enumerate(problems):
        out["greedy"].append(verifier.solved(problem, [decode_ids(greedy[i])]))
        out["beam"].append(verifier.solved(problem, [
            decode_ids(row) for row in beams[config.beam_size][i]]))
        out["beam_size_1"].append(verifier.solved(problem, [decode_ids(beams[1][i][0])]))
        out["most_frequent"].append(verifier.solved(problem, [frequent]))
        out["retrieval"].append(verifier.solved(problem, [retrieved[i]]))
    out["problem_length"] = [len(problem) for problem in problems]
    out["num_ops"] = [num_ops for _, _, num_ops in test]
    return out


def paired_difference(a, b) -> Estimate:
    """mean(a) - mean(b) for two boolean outcomes on the same problems, with a 95% interval
    from the discordant problems alone (McNemar's view): of the d problems where the two
    differ, a solves k; the difference is d (2 q - 1) / N with q = k / d and its Wilson
    interval. No discordant problem: exactly 0 with an empty-width interval."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(b & ~a))
    discordant = only_a + only_b
    if discordant == 0:
        return Estimate(0.0, 0.0, 0.0, 0.95, "no discordant problems")
    q = wilson_interval(only_a, discordant)
    scale = discordant / len(a)
    return Estimate(scale * (2 * q.value - 1), scale * (2 * q.lo - 1), scale * (2 * q.hi - 1),
                    0.95, "Wilson on discordant pairs")


def short_minus_long(solved, lengths) -> Estimate:
    """Accuracy on the shortest third of the problems minus the longest third (by `lengths`,
    ties broken by position), with Newcombe's (1998) interval for a difference of two
    independent proportions from their Wilson intervals."""
    solved = np.asarray(solved, bool)
    order = np.argsort(np.asarray(lengths), kind="stable")
    third = len(order) // 3
    short, long = solved[order[:third]], solved[order[-third:]]
    p = wilson_interval(int(short.sum()), third)
    q = wilson_interval(int(long.sum()), third)
    difference = p.value - q.value
    return Estimate(difference,
                    difference - float(np.hypot(p.value - p.lo, q.hi - q.value)),
                    difference + float(np.hypot(p.hi - p.value, q.value - q.lo)),
                    0.95, "Newcombe hybrid score")
