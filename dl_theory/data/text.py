"""A character-level English corpus that ships with Python: the help texts of `pydoc_data.topics`.

The topics (79 in CPython 3.11, ~465k characters, ~100 distinct characters) are joined in
sorted-key order; the last `val_fraction` of the characters is the validation split. Windows
of L + 1 consecutive characters give next-character prediction pairs (x = first L, y = last L),
as in char-rnn / nanoGPT's shakespeare_char (`window_batches` draws them inside the training
loop; `contiguous_windows` tiles the validation split for evaluation). Unigram and bigram
bits-per-character with add-one (Laplace) smoothing are the baselines a language model must
beat (Shannon 1951; Manning & Schutze 1999, Sec. 6.2.2 for Laplace's law).
"""

import dataclasses
import functools
import pydoc_data.topics
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, Sampler


def corpus_text() -> str:
    """All `pydoc_data.topics` help texts joined in sorted-key order (each ends with a newline)."""
    topics = pydoc_data.topics.topics
    return "".join(topics[name] for name in sorted(topics))


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


@dataclasses.dataclass(frozen=True)
class CharVocab:
    """A character vocabulary: id i stands for `chars[i]`, with `chars` sorted by code point."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The sorted set of the characters of `text`."""
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        """The number of characters V."""
        return len(self.chars)

    @functools.cached_property
    def _codes_V(self) -> np.ndarray:
        return _codepoints("".join(self.chars))

    def encode(self, text: str) -> np.ndarray:
        """Text of T characters -> ids, shape [T] int32 in [0, V)."""
        codes_T = _codepoints(text)
        ids_T = np.searchsorted(self._codes_V, codes_T).clip(max=self.size - 1)
        unknown = codes_T != self._codes_V[ids_T]
        if unknown.any():
            missing = sorted({chr(c) for c in codes_T[unknown]})
            raise ValueError(f"characters {missing} are not in the vocabulary of {self.size}")
        return ids_T.astype(np.int32)

    def decode(self, ids_T: np.ndarray) -> str:
        """Ids, shape [T] with values in [0, V) -> text of T characters."""
        ids_T = np.asarray(ids_T)
        if ids_T.size == 0:
            return ""
        if ids_T.ndim != 1 or ids_T.min() < 0 or ids_T.max() >= self.size:
            raise ValueError(
                f"ids of shape {ids_T.shape}; need shape [T] with values in [0, {self.size})"
            )
        return self._codes_V[ids_T].astype("<u4").tobytes().decode("utf-32-le")


@dataclasses.dataclass(frozen=True, eq=False)
class CharCorpus:
    """A vocabulary and the encoded train / validation splits (shapes [T_train], [T_val] int32)."""

    vocab: CharVocab
    train_ids: np.ndarray
    val_ids: np.ndarray


def load_char_corpus(val_fraction: float = 0.1) -> CharCorpus:
    """The `pydoc_data.topics` corpus, vocabulary over all of it, the last `val_fraction` held out.

    The split is contiguous (not shuffled), so validation windows never overlap training text.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction={val_fraction}; must lie strictly between 0 and 1")
    text = corpus_text()
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    num_val = int(round(val_fraction * len(ids)))
    return CharCorpus(vocab=vocab, train_ids=ids[:-num_val], val_ids=ids[-num_val:])


def window_sampler(
    ids_T: np.ndarray, seq_len: int
) -> Callable[[jax.Array, int], dict[str, jax.Array]]:
    """A jitted `sample(key, batch_size) -> {"x": [B, L] int32, "y": [B, L] int32}`.

    Draws B start positions s uniformly from {0, ..., T - L - 1} and returns the windows
    `ids[s : s + L + 1]` split as x = window[:-1], y = window[1:] (y is x shifted by one, the
    next-character target). `batch_size` is static: each new value compiles once.
    """
    ids_T = np.asarray(ids_T)
    if ids_T.ndim != 1:
        raise ValueError(f"ids of shape {ids_T.shape}; need a 1-D sequence [T]")
    if not 1 <= seq_len < len(ids_T):
        raise ValueError(f"seq_len={seq_len}; need 1 <= seq_len < len(ids) = {len(ids_T)}")
    ids = jnp.asarray(ids_T, dtype=jnp.int32)
    offsets_W = jnp.arange(seq_len + 1)
    num_starts = len(ids_T) - seq_len

    @functools.partial(jax.jit, static_argnums=1)
    def sample(key: jax.Array, batch_size: int) -> dict[str, jax.Array]:
        starts_B = jax.random.randint(key, (batch_size,), 0, num_starts)
        windows_BxW = ids[starts_B[:, None] + offsets_W[None, :]]
        return {"x": windows_BxW[:, :-1], "y": windows_BxW[:, 1:]}

    return sample


def window_batches(seq_len: int, batch_size: int) -> Sampler:
    """A training-loop sampler `sample(data, key) -> {"x": [B, L] int32, "y": [B, L] int32}`.

    The same windows as `window_sampler`, drawn from `data["ids"]` (shape [T] int32, passed
    to the compiled program as an argument): B starts s ~ U{0, ..., T - L - 1}, x =
    ids[s : s + L], y = ids[s + 1 : s + L + 1]. Follows `dl_theory.data.batching`'s protocol,
    so it plugs into `fit` / `fit_grid` with data={"ids": train_ids}.
    """
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; must be a positive integer")
    offsets_W = jnp.arange(seq_len + 1)

    def sample(data: Batch, key: jax.Array) -> dict[str, jax.Array]:
        ids_T = data["ids"]
        if ids_T.ndim != 1 or not seq_len < ids_T.shape[0]:
            raise ValueError(f"seq_len={seq_len}; need data['ids'] of shape [T] with "
                             f"T > seq_len, got shape {ids_T.shape}")
        starts_B = jax.random.randint(key, (batch_size,), 0, ids_T.shape[0] - seq_len)
        windows_BxW = ids_T[starts_B[:, None] + offsets_W[None, :]].astype(jnp.int32)
        return {"x": windows_BxW[:, :-1], "y": windows_BxW[:, 1:]}

    return sample


def contiguous_windows(ids_T: np.ndarray, seq_len: int, num_windows: int) -> dict[str, np.ndarray]:
    """Non-overlapping evaluation windows {"x": [W, L], "y": [W, L]} from the start of ids.

    Window k is x = ids[kL : kL + L], y = ids[kL + 1 : kL + L + 1], so the y's tile
    ids[1 : WL + 1]: exactly the positions `unigram_bpc` / `bigram_bpc` score on
    ids[: WL + 1], which makes a model's bits per character comparable to theirs.
    """
    ids_T = np.asarray(ids_T)
    if seq_len < 1 or num_windows < 1 or num_windows * seq_len + 1 > len(ids_T):
        raise ValueError(f"seq_len={seq_len}, num_windows={num_windows}; need both >= 1 and "
                         f"num_windows * seq_len + 1 <= len(ids) = {len(ids_T)}")
    span = num_windows * seq_len
    return {"x": ids_T[:span].reshape(num_windows, seq_len).astype(np.int32),
            "y": ids_T[1:span + 1].reshape(num_windows, seq_len).astype(np.int32)}


def _check_ids(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> None:
    for name, ids in (("train_ids", train_ids), ("val_ids", val_ids)):
        if ids.ndim != 1 or len(ids) < 2:
            raise ValueError(f"{name} of shape {ids.shape}; need shape [T] with T >= 2")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(
                f"{name} spans [{ids.min()}, {ids.max()}]; need values in [0, {vocab_size})"
            )


def unigram_bpc(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the add-one unigram model p(c) = (n_c + 1) / (N + V).

    Counts n_c over train (N characters); scored on validation positions 1..M-1, the positions
    the bigram model scores, so the two baselines are comparable.
    """
    train_ids, val_ids = np.asarray(train_ids), np.asarray(val_ids)
    _check_ids(train_ids, val_ids, vocab_size)
    counts_V = np.bincount(train_ids, minlength=vocab_size) + 1.0
    log2p_V = np.log2(counts_V / counts_V.sum())
    return float(-log2p_V[val_ids[1:]].mean())


def bigram_bpc(train_ids: np.ndarray, val_ids: np.ndarray, vocab_size: int) -> float:
    """Bits per character of the add-one bigram model p(b | a) = (n_ab + 1) / (n_a + V).

    n_ab counts the pair (a, b) in train and n_a = sum_b n_ab; scored on validation positions
    1..M-1, each given the character before it.
    """
    train_ids, val_ids = np.asarray(train_ids), np.asarray(val_ids)
    _check_ids(train_ids, val_ids, vocab_size)
    pair_index = train_ids[:-1].astype(np.int64) * vocab_size + train_ids[1:]
    counts_VxV = np.bincount(pair_index, minlength=vocab_size * vocab_size).reshape(
        vocab_size, vocab_size
    ) + 1.0
    log2p_VxV = np.log2(counts_VxV / counts_VxV.sum(axis=1, keepdims=True))
    return float(-log2p_VxV[val_ids[:-1], val_ids[1:]].mean())
