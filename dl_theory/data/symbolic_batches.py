"""Token ids for the symbolic-math seq2seq task: prefix token sequences <-> padded int arrays.

One vocabulary serves source and target: PAD = 0, BOS = 1, EOS = 2, then the prefix
language's `VOCABULARY`. A sequence is written as its ids then EOS, then PAD up to the array
length; the decoder reads the target shifted right behind BOS (teacher forcing), the layout
`dl_theory.models.seq2seq_decoding` decodes.
"""

import numpy as np

from dl_theory.data.symbolic_prefix import VOCABULARY

PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
TOKENS = ("<pad>", "<bos>", "<eos>", *VOCABULARY)
TOKEN_ID = {token: i for i, token in enumerate(TOKENS)}
VOCAB_SIZE = len(TOKENS)


def encode_batch(sequences, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids [N, length] int32: tokens, EOS, PAD..., mask [N, length] bool: True up to and
    including EOS). Raises ValueError for an unknown token or a sequence + EOS too long."""
    ids = np.full((len(sequences), length), PAD_ID, np.int32)
    for row, tokens in enumerate(sequences):
        if len(tokens) + 1 > length:
            raise ValueError(f"sequence {row} has {len(tokens)} tokens + EOS > length={length}")
        unknown = [t for t in tokens if t not in TOKEN_ID]
        if unknown:
            raise ValueError(f"sequence {row} has tokens outside the vocabulary: {unknown}")
        ids[row, :len(tokens)] = [TOKEN_ID[t] for t in tokens]
        ids[row, len(tokens)] = EOS_ID
    return ids, np.cumsum(ids == EOS_ID, axis=1) - (ids == EOS_ID) == 0


def decoder_inputs(target_ids: np.ndarray) -> np.ndarray:
    """[BOS, y_1, ..., y_{T-1}]: the target ids [N, T] shifted right behind BOS."""
    bos = np.full((target_ids.shape[0], 1), BOS_ID, target_ids.dtype)
    return np.concatenate([bos, target_ids[:, :-1]], axis=1)


def decode_ids(ids) -> tuple[str, ...] | None:
    """The tokens before the first EOS, or None if there is no EOS or a special token
    (PAD, BOS) comes before it (a malformed model output)."""
    tokens = []
    for i in np.asarray(ids).tolist():
        if i == EOS_ID:
            return tuple(tokens)
        if i in (PAD_ID, BOS_ID) or not 0 <= i < VOCAB_SIZE:
            return None
        tokens.append(TOKENS[i])
    return None
