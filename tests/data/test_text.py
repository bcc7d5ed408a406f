"""pydoc_data.topics character corpus: size, vocabulary, windows, and n-gram baselines."""

import math
from pydoc_data.topics import topics

import jax
import numpy as np
import pytest

from dl_theory.data.text import (
    CharVocab,
    bigram_bpc,
    contiguous_windows,
    corpus_text,
    load_char_corpus,
    unigram_bpc,
    window_batches,
    window_sampler,
)


@pytest.fixture(scope="module")
def corpus():
    return load_char_corpus()


def test_corpus_size_order_and_split(corpus):
    text = corpus_text()
    assert abs(len(text) - 465_000) < 46_500
    assert text == corpus_text()
    first, last = min(topics), max(topics)
    assert text.startswith(topics[first]) and text.endswith(topics[last])
    num_val = round(0.1 * len(text))
    assert len(corpus.val_ids) == num_val and len(corpus.train_ids) == len(text) - num_val
    assert corpus.train_ids.dtype == np.int32
    assert corpus.vocab.decode(corpus.val_ids) == text[-num_val:]


def test_vocabulary_is_the_sorted_character_set(corpus):
    text = corpus_text()
    assert corpus.vocab.chars == tuple(sorted(set(text)))
    assert 80 <= corpus.vocab.size <= 130
    ids = np.concatenate([corpus.train_ids, corpus.val_ids])
    assert ids.min() == 0 and ids.max() == corpus.vocab.size - 1
    assert corpus.vocab.decode(ids) == text


def test_encode_decode_round_trip_and_unknown_characters():
    vocab = CharVocab.from_text("ba…c")
    assert vocab.chars == ("a", "b", "c", "…")
    np.testing.assert_array_equal(vocab.encode("cab…"), [2, 0, 1, 3])
    assert vocab.decode(vocab.encode("a…bc…")) == "a…bc…"
    assert vocab.decode(np.array([], dtype=np.int32)) == ""
    with pytest.raises(ValueError, match=r"\['d', 'z'\]"):
        vocab.encode("zadd")
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        vocab.decode(np.array([0, 4]))


def test_windows_are_contiguous_text_and_y_is_x_shifted(corpus):
    sample = window_sampler(corpus.train_ids, seq_len=32)
    batch = sample(jax.random.key(0), 16)
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    assert x.shape == (16, 32) and y.shape == (16, 32)
    assert x.dtype == np.int32 and y.dtype == np.int32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    train_text = corpus.vocab.decode(corpus.train_ids)
    for row_x, row_y in zip(x, y):
        assert corpus.vocab.decode(np.append(row_x, row_y[-1])) in train_text
    again = sample(jax.random.key(0), 16)
    np.testing.assert_array_equal(np.asarray(again["x"]), x)
    assert not np.array_equal(np.asarray(sample(jax.random.key(1), 16)["x"]), x)


def test_window_starts_cover_exactly_every_valid_position():
    # ids 0..9 and L = 3: a window of 4 may start at 0..6 and nowhere else.
    sample = window_sampler(np.arange(10, dtype=np.int32), seq_len=3)
    x = np.asarray(sample(jax.random.key(0), 2000)["x"])
    starts = x[:, 0]
    np.testing.assert_array_equal(x, starts[:, None] + np.arange(3)[None, :])
    assert set(starts.tolist()) == set(range(7))


def test_window_batches_follow_the_sampler_protocol_and_draw_the_same_windows():
    ids = np.arange(10, dtype=np.int32)
    sample = window_batches(seq_len=3, batch_size=2000)
    batch = jax.jit(sample)({"ids": ids}, jax.random.key(0))
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    assert x.shape == y.shape == (2000, 3) and x.dtype == np.int32
    np.testing.assert_array_equal(x, x[:, :1] + np.arange(3)[None, :])
    np.testing.assert_array_equal(y, x + 1)
    assert set(x[:, 0].tolist()) == set(range(7))
    # Same key, same windows as the key-first window_sampler.
    np.testing.assert_array_equal(x, np.asarray(window_sampler(ids, 3)(jax.random.key(0),
                                                                        2000)["x"]))


def test_window_batches_refuse_bad_sizes():
    with pytest.raises(ValueError, match="batch_size=0"):
        window_batches(seq_len=3, batch_size=0)
    with pytest.raises(ValueError, match="seq_len=10"):
        window_batches(seq_len=10, batch_size=2)({"ids": np.arange(10)}, jax.random.key(0))


def test_contiguous_windows_tile_the_positions_the_baselines_score():
    windows = contiguous_windows(np.arange(20, dtype=np.int32), seq_len=4, num_windows=3)
    np.testing.assert_array_equal(windows["x"], np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(windows["y"], np.arange(1, 13).reshape(3, 4))
    with pytest.raises(ValueError, match="num_windows=5"):
        contiguous_windows(np.arange(20), seq_len=4, num_windows=5)


@pytest.mark.parametrize("seq_len", [0, 10, 11])
def test_bad_window_length_is_refused(seq_len):
    with pytest.raises(ValueError, match=f"seq_len={seq_len}"):
        window_sampler(np.arange(10, dtype=np.int32), seq_len=seq_len)


def test_baselines_match_laplace_closed_forms():
    train, val = np.array([0, 0, 1]), np.array([0, 1, 0])
    # Unigram: counts + 1 = (3, 2) over 5; scored positions are val[1:] = (1, 0).
    assert unigram_bpc(train, val, 2) == pytest.approx(-(math.log2(0.4) + math.log2(0.6)) / 2)
    # Bigram: train pairs (0,0), (0,1) -> rows (1+1, 1+1)/4 and (0+1, 0+1)/2: every p = 1/2.
    assert bigram_bpc(train, val, 2) == pytest.approx(1.0)
    # Characters unseen in train keep count 0 + 1 of 3 + 4: p = 1/7 each under V = 4.
    assert unigram_bpc(train, np.array([2, 3, 2]), 4) == pytest.approx(math.log2(7))
    with pytest.raises(ValueError, match=r"val_ids spans \[0, 5\]"):
        bigram_bpc(train, np.array([0, 5]), 4)


def test_bigram_beats_unigram_beats_uniform_on_the_corpus(corpus):
    args = (corpus.train_ids, corpus.val_ids, corpus.vocab.size)
    unigram, bigram = unigram_bpc(*args), bigram_bpc(*args)
    assert bigram < unigram - 0.5
    assert unigram < math.log2(corpus.vocab.size) - 1.0
    assert 2.5 < bigram < 4.5 and 4.0 < unigram < 5.5
