"""The encoder-decoder transformer (Vaswani et al. 2017), pre-LN, from the blocks of
`dl_theory.models.transformer`.

It is trained with teacher forcing (`dl_theory.train.seq2seq_training`); its decoder keeps a
key/value cache (flax's `cache` collection, `decode=True`) that
`dl_theory.models.seq2seq_decoding` uses for greedy and beam-search decoding.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.size_checks import check_sizes
from dl_theory.models.transformer import InputEmbedding, TransformerStack, check_heads


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder (Vaswani et al. 2017), pre-LN: x = (src [B, S], tgt [B, T]) -> [B, T, V].

    The encoder reads src (padding hidden by `src_mask`, [B, S]); the decoder reads tgt,
    the target shifted right by the caller (teacher forcing), causally, and cross-attends
    to the encoder output. Logit t depends on all of src and on tgt[:, :t+1].
    With `src_pad_id` set, a call without `src_mask` hides the source positions holding
    that id (so `fit`, which passes x alone, trains on padded batches correctly). With
    `decode=True`, `decoder_logits` takes one target token [B, 1] per call and reads and
    extends the decoder's key/value cache (flax's `cache` collection), as `CausalLM` does.
    """

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_dim: int = 128
    max_len: int = 256
    dropout_rate: float = 0.0
    src_pad_id: int | None = None
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        if self.src_pad_id is not None and not 0 <= self.src_pad_id < self.src_vocab_size:
            raise ValueError(f"Seq2SeqTransformer: src_pad_id={self.src_pad_id}; must be in "
                             f"[0, src_vocab_size={self.src_vocab_size})")
        check_heads("Seq2SeqTransformer", self.d_model, self.num_heads, self.num_layers,
                    self.mlp_dim, self.max_len, self.src_vocab_size)
        check_sizes("Seq2SeqTransformer", tgt_vocab_size=self.tgt_vocab_size)
        super().__post_init__()

    def setup(self) -> None:
        common = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        stack = dict(num_layers=self.num_layers, num_heads=self.num_heads,
                     mlp_dim=self.mlp_dim, dropout_rate=self.dropout_rate, **common)
        self.src_embed = InputEmbedding(self.d_model, self.max_len, self.src_vocab_size,
                                        **common)
        self.encoder = TransformerStack(**stack)
        self.tgt_embed = InputEmbedding(self.d_model, self.max_len, self.tgt_vocab_size,
                                        self.decode, **common)
        self.decoder = TransformerStack(**stack, causal=True, decode=self.decode)
        self.head = nn.Dense(self.tgt_vocab_size, **common)
        self.dropout = nn.Dropout(self.dropout_rate)

    def source_mask(self, src: jax.Array, src_mask: jax.Array | None) -> jax.Array | None:
        """`src_mask`, or with `src_pad_id` set and no mask given, src != src_pad_id."""
        if src_mask is None and self.src_pad_id is not None:
            return src != self.src_pad_id
        return src_mask

    def encode(self, src: jax.Array, src_mask: jax.Array | None = None,
               train: bool = False) -> jax.Array:
        """The encoder output [B, S, D] (decoding reuses it at every step)."""
        h = self.dropout(self.src_embed(src), deterministic=not train)
        return self.encoder(h, train, self.source_mask(src, src_mask))

    def decoder_logits(self, tgt: jax.Array, encoded: jax.Array, src_mask: jax.Array | None,
                       train: bool = False) -> jax.Array:
        """Logits [B, T, V] of the decoder on tgt, cross-attending to `encoded` (the
        `encode` output for a source whose padding `src_mask` hides; None hides nothing)."""
        h = self.dropout(self.tgt_embed(tgt), deterministic=not train)
        h = self.decoder(h, train, context=encoded, context_mask=src_mask)
        return self.head(h)

    def __call__(self, x: tuple[jax.Array, jax.Array], train: bool = False,
                 src_mask: jax.Array | None = None) -> jax.Array:
        src, tgt = x
        src_mask = self.source_mask(src, src_mask)
        return self.decoder_logits(tgt, self.encode(src, src_mask, train), src_mask, train)
