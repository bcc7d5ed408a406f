"""Token ids of the symbolic-math task and the verification of model answers."""

import numpy as np
import pytest
import sympy

from dl_theory.data.symbolic import verify_answers
from dl_theory.data.symbolic_batches import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    TOKEN_ID,
    decode_ids,
    decoder_inputs,
    encode_batch,
)
from dl_theory.data.symbolic_prefix import X, to_prefix


def test_encode_decode_round_trip_and_layout():
    sequences = [("add", "x", "INT+", "1"), ("x",)]
    ids, mask = encode_batch(sequences, 6)
    np.testing.assert_array_equal(ids[1], [TOKEN_ID["x"], EOS_ID, PAD_ID, PAD_ID, PAD_ID, PAD_ID])
    np.testing.assert_array_equal(mask[0], [True] * 5 + [False])
    np.testing.assert_array_equal(mask[1], [True, True] + [False] * 4)
    assert [decode_ids(row) for row in ids] == sequences
    np.testing.assert_array_equal(decoder_inputs(ids)[1], [BOS_ID, TOKEN_ID["x"], EOS_ID,
                                                           PAD_ID, PAD_ID, PAD_ID])


def test_decode_refuses_outputs_without_eos_or_with_special_tokens():
    x = TOKEN_ID["x"]
    assert decode_ids([x, x, x]) is None
    assert decode_ids([x, PAD_ID, EOS_ID]) is None
    assert decode_ids([BOS_ID, x, EOS_ID]) is None
    assert decode_ids([EOS_ID, x]) == ()


def test_encode_refuses_long_sequences_and_unknown_tokens():
    with pytest.raises(ValueError, match="sequence 0 has 3 tokens \\+ EOS > length=3"):
        encode_batch([("x", "x", "x")], 3)
    with pytest.raises(ValueError, match="outside the vocabulary: \\['sub'\\]"):
        encode_batch([("sub", "x", "x")], 5)


def test_verify_answers_counts_each_verdict_and_any_correct_hypothesis_solves():
    problems = [to_prefix(sympy.cos(X)), to_prefix(2 * X), to_prefix(sympy.exp(X))]
    hypotheses = [
        [to_prefix(-sympy.sin(X)), to_prefix(sympy.sin(X) + 1)],   # wrong, then right
        [("add", "x"), None],                                      # malformed twice
        [to_prefix(sympy.exp(X) * X)],                             # wrong
    ]
    solved, counts = verify_answers(problems, hypotheses)
    np.testing.assert_array_equal(solved, [True, False, False])
    assert counts == {"correct": 1, "wrong": 2, "malformed": 2, "timeout": 0}
