"""Recurrent networks: vanilla RNN, LSTM and GRU over sequences, and the recurrent CNN.

Sequences are batch-major, [B, T, D] (or [B, T] of token ids when `vocab_size` is set, or
[B, T] of scalars read as D = 1). Padded batches are right-padded; because every layer runs
forward in time, the outputs at steps t < length never see the padding, and the
classifier's readout only reads steps before `lengths`. Hidden states and outputs are in
the compute `dtype` (the initial carry is cast to it, so that every cell keeps one carry
dtype through the scan); parameters are in `param_dtype`.

References: Elman 1990 (simple RNN, h_t = tanh(W_i x_t + W_h h_{t-1} + b)); Hochreiter &
Schmidhuber 1997 (LSTM); Cho et al. 2014 (GRU); Liang & Hu 2015, "Recurrent convolutional
neural network for object recognition" (RCNN).
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.conv import CNN
from dl_theory.models.mlp import get_activation
from dl_theory.models.size_checks import check_sizes
from dl_theory.user_errors import ConfigError

CELLS: dict[str, type[nn.RNNCellBase]] = {
    "rnn": nn.SimpleCell,
    "lstm": nn.LSTMCell,
    "gru": nn.GRUCell,
}


def _last_step(h_BxTxH: jax.Array, lengths_B: jax.Array) -> jax.Array:
    return jnp.take_along_axis(h_BxTxH, (lengths_B - 1)[:, None, None], axis=1)[:, 0]


def _valid_mean(h_BxTxH: jax.Array, lengths_B: jax.Array) -> jax.Array:
    mask_BxT = jnp.arange(h_BxTxH.shape[1])[None, :] < lengths_B[:, None]
    total_BxH = jnp.sum(jnp.where(mask_BxT[..., None], h_BxTxH, 0), axis=1)
    return (total_BxH / lengths_B[:, None]).astype(h_BxTxH.dtype)


READOUTS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "last": _last_step,
    "mean": _valid_mean,
}


class RecurrentEncoder(nn.Module):
    """`num_layers` stacked recurrent layers of `hidden` units: [B, T, D] -> [B, T, hidden].

    cell "rnn": h_t = tanh(W_i x_t + W_h h_{t-1} + b); "lstm" and "gru" are flax's
    LSTMCell and GRUCell. Layer l+1 reads the per-step outputs of layer l; h_0 = 0.
    With `vocab_size` set, x is [B, T] integer tokens, embedded to `hidden` dims first.
    """

    hidden: int = 64
    cell: str = "lstm"
    num_layers: int = 1
    vocab_size: int | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_sizes("RecurrentEncoder", hidden=self.hidden, num_layers=self.num_layers,
                    vocab_size=self.vocab_size)
        if self.cell not in CELLS:
            raise ConfigError(f"cell={self.cell!r}; known: {sorted(CELLS)}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.vocab_size is not None:
            x = nn.Embed(self.vocab_size, self.hidden, dtype=self.dtype,
                         param_dtype=self.param_dtype, name="embed")(x)
        elif x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3:
            raise ValueError(f"input shape {x.shape}; expected [B, T, D], or [B, T]")
        x = x.astype(self.dtype)
        for layer in range(self.num_layers):
            cell = CELLS[self.cell](self.hidden, dtype=self.dtype, param_dtype=self.param_dtype,
                                    name=f"layer_{layer}")
            carry = cell.initialize_carry(jax.random.key(0), x[:, 0].shape)
            carry = jax.tree.map(lambda c: c.astype(self.dtype), carry)
            x = nn.RNN(cell)(x, initial_carry=carry)
        return x


class SequenceClassifier(nn.Module):
    """Recurrent sequence classifier: logits = W readout(h_{1..T}) + b, [B, T, D] -> [B, K].

    `readout` "last" reads h at step lengths-1, "mean" averages h over steps < lengths.
    `lengths` (shape [B], ints in [1, T]) defaults to T for every sequence.
    """

    num_classes: int
    hidden: int = 64
    cell: str = "lstm"
    num_layers: int = 1
    readout: str = "last"
    vocab_size: int | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        check_sizes("SequenceClassifier", num_classes=self.num_classes, hidden=self.hidden,
                    num_layers=self.num_layers, vocab_size=self.vocab_size)
        if self.readout not in READOUTS:
            raise ConfigError(f"readout={self.readout!r}; known: {sorted(READOUTS)}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False,
                 lengths: jax.Array | None = None) -> jax.Array:
        h = RecurrentEncoder(self.hidden, self.cell, self.num_layers, self.vocab_size,
                             dtype=self.dtype, param_dtype=self.param_dtype,
                             name="encoder")(x, train)
        if lengths is None:
            lengths = jnp.full((h.shape[0],), h.shape[1], jnp.int32)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(READOUTS[self.readout](h, lengths))


class SequenceTagger(nn.Module):
    """Recurrent sequence-to-sequence tagger: y_t = W h_t + b, shape [B, T, D] -> [B, T, K].

    Step t depends on x_1..x_t only, so outputs before a right-padded sequence's length are
    exact; those at padded steps are to be masked in the loss.
    """

    num_classes: int
    hidden: int = 64
    cell: str = "lstm"
    num_layers: int = 1
    vocab_size: int | None = None
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        h = RecurrentEncoder(self.hidden, self.cell, self.num_layers, self.vocab_size,
                             dtype=self.dtype, param_dtype=self.param_dtype,
                             name="encoder")(x, train)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(h)


class RCNN(CNN):
    """Recurrent convolutional network (Liang & Hu 2015, Eq. 1-2), 1-D or 2-D.

    A `CNN` whose layers i >= `plain_layers` are recurrent convolutional layers (RCL),
    unrolled `steps` times with one recurrent kernel shared across steps:

        x_0 = act(conv_ff(u)),   x_{t+1} = act(conv_ff(u) + conv_rec(x_t)),   output x_steps,

    where u is the layer's input (computed once) and conv_rec has no bias. Pooling,
    readout and head are the CNN's; the feed-forward convs keep the CNN's names
    (`conv_{i}`) and the recurrent ones are `rec_conv_{i}`, so with steps=0 the network is
    exactly the CNN with the same `conv_{i}` parameters. The paper's first layer is
    feed-forward (plain_layers=1) and it uses local response normalisation in the RCL,
    which is left out here. Shapes as in `CNN`.
    """

    steps: int = 3
    plain_layers: int = 1

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps={self.steps}; need steps >= 0")
        super().__post_init__()

    def layer_features(self, x: jax.Array, i: int, features: int, train: bool) -> jax.Array:
        """Layer i: an RCL unrolled `steps` times, or act(conv_i(x)) for i < plain_layers."""
        del train
        feedforward = self.conv(features, f"conv_{i}")(x)
        act = get_activation(self.activation)
        h = act(feedforward)
        if i < self.plain_layers or self.steps == 0:
            return h
        recurrent = nn.Conv(features, (self.kernel_size,) * self.spatial_dims, padding="SAME",
                            use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                            name=f"rec_conv_{i}")
        for _ in range(self.steps):
            h = act(feedforward + recurrent(h))
        return h
