"""Transformers: attention, pre-LN blocks, encoder classifiers, a causal LM, encoder-decoder.

Pre-LN block (Xiong et al. 2020, "On layer normalization in the transformer architecture"):

    x <- x + Dropout(Attention(LN(x)))                   self-attention (causal or not)
    x <- x + Dropout(CrossAttention(LN(x), context))     only with an encoder's context
    x <- x + Dropout(W_2 gelu(W_1 LN(x)))

Attention (Vaswani et al. 2017, Eq. 1, per head) is softmax(Q K^T / sqrt(d_head)) V with
the softmax in float32 whatever the compute dtype; LayerNorm statistics are float32 too.
Positions are learned embeddings (at most `max_len`). Masks are [B, T] booleans, True at
real (non-padding) positions; they mask attention keys, so padding is never attended to.

Models return [B, K] (classifiers) or [B, T, V] (language models) in the compute `dtype`.
The causal LM decodes with flax's `cache` collection (`decode=True`); `init_cache` and
`generate` are in `dl_theory.models.transformer_decoding`. The encoder-decoder built from
these blocks is `dl_theory.models.seq2seq.Seq2SeqTransformer`. The hybrid
classifier puts a 1-D conv stem under the encoder (in the spirit of Gulati et al. 2020 and of
ViT's hybrid model, Dosovitskiy et al. 2021).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.conv import with_channel_axis
from dl_theory.models.mlp import get_activation
from dl_theory.models.size_checks import check_sizes
from dl_theory.user_errors import ConfigError


def check_heads(owner: str, d_model: int, num_heads: int, num_layers: int, mlp_dim: int,
                max_len: int, vocab_size: int | None) -> None:
    """Raises `ConfigError` naming `owner` unless the sizes are positive and `num_heads`
    divides `d_model` (every transformer here checks its sizes with it)."""
    check_sizes(owner, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
                mlp_dim=mlp_dim, max_len=max_len, vocab_size=vocab_size)
    if d_model % num_heads:
        raise ConfigError(f"d_model={d_model}, num_heads={num_heads}; num_heads must divide"
                         " d_model")


def _key_mask(mask_BxT: jax.Array | None) -> jax.Array | None:
    """[B, T] real-token mask -> [B, 1, 1, T] attention mask over keys (all queries, heads)."""
    return None if mask_BxT is None else mask_BxT[:, None, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention, [B, T, D] -> [B, T, D]; see the module docstring.

    `causal=True` lets position t attend to positions <= t only. With `decode=True` it reads
    and extends the key/value cache in the `cache` collection one position per call (the
    causal mask then comes from the cache index). `mask` ([B, T] bool) hides padding keys.
    """

    num_heads: int
    causal: bool = False
    dropout_rate: float = 0.0
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False,
                 mask: jax.Array | None = None) -> jax.Array:
        attention_mask = _key_mask(mask)
        if self.causal and not self.decode:
            attention_mask = nn.combine_masks(attention_mask,
                                              nn.make_causal_mask(jnp.ones(x.shape[:2])))
        return nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, dtype=self.dtype, param_dtype=self.param_dtype,
            dropout_rate=self.dropout_rate, decode=self.decode, force_fp32_for_softmax=True,
            name="attention")(x, mask=attention_mask, deterministic=not train)


class TransformerBlock(nn.Module):
    """One pre-LN block (module docstring), [B, T, D] -> [B, T, D].

    Cross-attention to `context` ([B, S, D], keys masked by `context_mask`, [B, S]) is
    present only when a context is given, which makes it an encoder-decoder's decoder block.
    """

    num_heads: int
    mlp_dim: int
    causal: bool = False
    dropout_rate: float = 0.0
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, mask: jax.Array | None = None,
                 context: jax.Array | None = None,
                 context_mask: jax.Array | None = None) -> jax.Array:
        def norm(name: str) -> nn.LayerNorm:
            return nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name=name)

        def dropout(h: jax.Array) -> jax.Array:
            return nn.Dropout(self.dropout_rate)(h, deterministic=not train)

        h = SelfAttention(self.num_heads, self.causal, self.dropout_rate, self.decode,
                          dtype=self.dtype, param_dtype=self.param_dtype,
                          name="self_attention")(norm("norm_self")(x), train, mask)
        x = x + dropout(h)
        if context is not None:
            h = nn.MultiHeadDotProductAttention(
                num_heads=self.num_heads, dtype=self.dtype, param_dtype=self.param_dtype,
                dropout_rate=self.dropout_rate, force_fp32_for_softmax=True,
                name="cross_attention")(norm("norm_cross")(x), context,
                                        mask=_key_mask(context_mask), deterministic=not train)
            x = x + dropout(h)
        dense = nn.Dense(self.mlp_dim, dtype=self.dtype, param_dtype=self.param_dtype,
                         name="mlp_in")
        h = dense(norm("norm_mlp")(x))
        h = nn.Dense(x.shape[-1], dtype=self.dtype, param_dtype=self.param_dtype,
                     name="mlp_out")(nn.gelu(h))
        return x + dropout(h)


class TransformerStack(nn.Module):
    """`num_layers` TransformerBlocks then a final LayerNorm, [B, T, D] -> [B, T, D]."""

    num_layers: int
    num_heads: int
    mlp_dim: int
    causal: bool = False
    dropout_rate: float = 0.0
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, mask: jax.Array | None = None,
                 context: jax.Array | None = None,
                 context_mask: jax.Array | None = None) -> jax.Array:
        for layer in range(self.num_layers):
            x = TransformerBlock(self.num_heads, self.mlp_dim, self.causal, self.dropout_rate,
                                 self.decode, dtype=self.dtype, param_dtype=self.param_dtype,
                                 name=f"block_{layer}")(x, train, mask, context, context_mask)
        return nn.LayerNorm(dtype=self.dtype, param_dtype=self.param_dtype, name="norm_out")(x)


class PositionEmbedding(nn.Module):
    """Learned absolute positions: length T -> [1, T, D], rows offset..offset+T-1 of a table.

    The offset is 0, or with `decode=True` the number of positions already decoded, kept
    in the `cache` collection (so one-token calls get successive positions).
    """

    max_len: int
    features: int
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, length: int) -> jax.Array:
        if length > self.max_len:
            raise ValueError(f"sequence length {length} > max_len={self.max_len}")
        offset = jnp.zeros((), jnp.int32)
        if self.decode:
            initialized = self.has_variable("cache", "position")
            position = self.variable("cache", "position", lambda: jnp.zeros((), jnp.int32))
            if initialized:
                offset = position.value
                position.value = offset + length
        table = nn.Embed(self.max_len, self.features, dtype=self.dtype,
                         param_dtype=self.param_dtype,
                         embedding_init=nn.initializers.normal(0.02), name="table")
        return table(offset + jnp.arange(length))[None]


class InputEmbedding(nn.Module):
    """Tokens [B, T] (with `vocab_size`) or vectors [B, T, F] -> [B, T, D] plus positions."""

    features: int
    max_len: int
    vocab_size: int | None = None
    decode: bool = False  # positions continue from the cache (see PositionEmbedding)
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.vocab_size is None:
            if x.ndim != 3:
                raise ValueError(f"input shape {x.shape}; vectors need [B, T, F]"
                                 " (or set vocab_size for [B, T] tokens)")
            h = nn.Dense(self.features, dtype=self.dtype, param_dtype=self.param_dtype,
                         name="project")(x.astype(self.dtype))
        else:
            if x.ndim != 2:
                raise ValueError(f"input shape {x.shape}; tokens need [B, T]")
            h = nn.Embed(self.vocab_size, self.features, dtype=self.dtype,
                         param_dtype=self.param_dtype, name="token_embed")(x)
        return h + PositionEmbedding(self.max_len, self.features, self.decode,
                                     dtype=self.dtype, param_dtype=self.param_dtype,
                                     name="position")(x.shape[1])


def _masked_mean(h_BxTxD: jax.Array, mask_BxT: jax.Array | None) -> jax.Array:
    if mask_BxT is None:
        return h_BxTxD.mean(axis=1)
    total_BxD = jnp.sum(jnp.where(mask_BxT[..., None], h_BxTxD, 0), axis=1)
    count_Bx1 = jnp.maximum(mask_BxT.sum(axis=1), 1)[:, None]
    return (total_BxD / count_Bx1).astype(h_BxTxD.dtype)


class TransformerClassifier(nn.Module):
    """Encoder classifier: embed + positions, pre-LN encoder, mean over real positions, Dense.

    x: [B, T] tokens (with `vocab_size`) or [B, T, F] vectors; `mask` [B, T] marks real
    positions (default all). Returns [B, num_classes].
    """

    num_classes: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_dim: int = 128
    max_len: int = 512
    vocab_size: int | None = None
    dropout_rate: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_heads("TransformerClassifier", self.d_model, self.num_heads, self.num_layers,
                    self.mlp_dim, self.max_len, self.vocab_size)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False,
                 mask: jax.Array | None = None) -> jax.Array:
        h = InputEmbedding(self.d_model, self.max_len, self.vocab_size, dtype=self.dtype,
                           param_dtype=self.param_dtype, name="embed")(x)
        h = nn.Dropout(self.dropout_rate)(h, deterministic=not train)
        h = TransformerStack(self.num_layers, self.num_heads, self.mlp_dim,
                             dropout_rate=self.dropout_rate, dtype=self.dtype,
                             param_dtype=self.param_dtype, name="encoder")(h, train, mask)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(_masked_mean(h, mask))


class ConvTransformerClassifier(nn.Module):
    """Hybrid: 1-D conv stem, then a `TransformerClassifier` on the stem's feature sequence.

    Stem layer i: h <- act(Conv(conv_channels[i], kernel_size, stride=conv_stride)(h)), so
    [B, L, C] (or [B, L]) becomes [B, L / conv_stride**len(conv_channels), C'] before the
    encoder; `max_len` bounds that shortened length. Returns [B, num_classes].
    """

    num_classes: int
    conv_channels: Sequence[int] = (32,)
    kernel_size: int = 3
    conv_stride: int = 2
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_dim: int = 128
    max_len: int = 512
    dropout_rate: float = 0.0
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_heads("ConvTransformerClassifier", self.d_model, self.num_heads, self.num_layers,
                    self.mlp_dim, self.max_len, None)
        check_sizes("ConvTransformerClassifier", conv_channels=tuple(self.conv_channels),
                    kernel_size=self.kernel_size, conv_stride=self.conv_stride)
        get_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        act = get_activation(self.activation)
        h = with_channel_axis(x, spatial_dims=1).astype(self.dtype)
        for i, channels in enumerate(self.conv_channels):
            h = act(nn.Conv(channels, (self.kernel_size,), (self.conv_stride,), padding="SAME",
                            dtype=self.dtype, param_dtype=self.param_dtype, name=f"conv_{i}")(h))
        return TransformerClassifier(
            self.num_classes, self.d_model, self.num_heads, self.num_layers, self.mlp_dim,
            self.max_len, dropout_rate=self.dropout_rate, dtype=self.dtype,
            param_dtype=self.param_dtype, name="transformer")(h, train)


class CausalLM(nn.Module):
    """Decoder-only language model: tokens [B, T] -> next-token logits [B, T, vocab_size].

    h = E[x_t] + P[t];  h <- causal pre-LN blocks;  logits = E h (tied) or W h + b (untied).
    Logit t depends on tokens 0..t only. With `decode=True` each call takes [B, 1] (the next
    token) and must be applied with a `cache` collection (`transformer_decoding.init_cache`)
    and `mutable=["cache"]`; the logits equal those of the full-sequence call at that position.
    """

    vocab_size: int
    d_model: int = 64
    num_heads: int = 4
    num_layers: int = 2
    mlp_dim: int = 128
    max_len: int = 256
    tie_embeddings: bool = True
    dropout_rate: float = 0.0
    decode: bool = False
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_heads("CausalLM", self.d_model, self.num_heads, self.num_layers,
                    self.mlp_dim, self.max_len, self.vocab_size)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.ndim != 2:
            raise ValueError(f"input shape {x.shape}; CausalLM takes tokens [B, T]")
        token_embed = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype,
                               param_dtype=self.param_dtype,
                               embedding_init=nn.initializers.normal(0.02), name="token_embed")
        h = token_embed(x) + PositionEmbedding(self.max_len, self.d_model, self.decode,
                                               dtype=self.dtype, param_dtype=self.param_dtype,
                                               name="position")(x.shape[1])
        h = nn.Dropout(self.dropout_rate)(h, deterministic=not train)
        h = TransformerStack(self.num_layers, self.num_heads, self.mlp_dim, causal=True,
                             dropout_rate=self.dropout_rate, decode=self.decode,
                             dtype=self.dtype, param_dtype=self.param_dtype,
                             name="decoder")(h, train)
        if self.tie_embeddings:
            return token_embed.attend(h)
        return nn.Dense(self.vocab_size, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(h)
