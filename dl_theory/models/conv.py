"""Convolutional networks: plain CNNs and residual CNNs (ResNet basic blocks), 1-D or 2-D.

Layouts are channels-last: [B, L, C] for 1-D (`spatial_dims=1`) and [B, H, W, C] for 2-D
(`spatial_dims=2`). An input without its channel axis ([B, L] or [B, H, W]) is read as one
channel. Every model returns logits of shape [B, num_classes] in the compute `dtype`;
parameters are stored in `param_dtype`; batch-norm statistics are kept and computed in
float32 whatever the compute dtype. `activation` is a name in
`dl_theory.models.mlp.ACTIVATIONS`.

References: LeCun et al. 1998 (CNNs); He et al. 2016, "Deep residual learning for image
recognition" (basic block, projection shortcut); Ioffe & Szegedy 2015 (batch norm).
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from dl_theory.models.mlp import get_activation
from dl_theory.models.size_checks import check_sizes
from dl_theory.user_errors import ConfigError


def _no_pool(x: jax.Array, window_shape: tuple[int, ...], strides: tuple[int, ...]) -> jax.Array:
    del window_shape, strides
    return x


_POOLS: dict[str, Callable[..., jax.Array]] = {
    "max": nn.max_pool,
    "avg": nn.avg_pool,
    "none": _no_pool,
}


def _flatten(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def _spatial_mean(x: jax.Array) -> jax.Array:
    return x.mean(axis=tuple(range(1, x.ndim - 1)))


def _spatial_max(x: jax.Array) -> jax.Array:
    return x.max(axis=tuple(range(1, x.ndim - 1)))


_READOUTS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "mean": _spatial_mean,
    "max": _spatial_max,
    "flatten": _flatten,
}


def with_channel_axis(x: jax.Array, spatial_dims: int) -> jax.Array:
    """Adds a trailing channel axis when it is missing: [B, *S] -> [B, *S, 1]; [B, *S, C] kept.

    `spatial_dims` is the number of axes in S (1 for sequences, 2 for images).
    """
    if x.ndim == spatial_dims + 1:
        return x[..., None]
    if x.ndim != spatial_dims + 2:
        raise ValueError(f"input shape {x.shape} (ndim={x.ndim}); spatial_dims={spatial_dims}"
                         f" needs ndim {spatial_dims + 1} (no channel axis) or {spatial_dims + 2}")
    return x


def _check_choice(field: str, value: str, known: dict[str, Any]) -> None:
    if value not in known:
        raise ConfigError(f"{field}={value!r}; known: {sorted(known)}")


def _check_spatial_dims(spatial_dims: int) -> None:
    if spatial_dims not in (1, 2):
        raise ValueError(f"spatial_dims={spatial_dims}; allowed: 1 or 2")


class CNN(nn.Module):
    """Plain CNN: [conv -> activation -> pool] per entry of `channels`, readout, Dense head.

    h_0 = x;  h_{i+1} = pool(act(conv_i(h_i)));  logits = W readout(h_n) + b,
    shape [B, *S, C] -> [B, num_classes] (S is L or H, W; see the module docstring).
    Convolutions use 'SAME' padding and stride 1; `pool` ("max", "avg", "none") has window
    and stride `pool_size`; `readout` is "mean" or "max" over the spatial axes, or "flatten".
    Each layer's features come from `layer_features`, which the recurrent convolutional
    network (`dl_theory.models.recurrent.RCNN`) overrides; its convs are named `conv_{i}`.
    """

    num_classes: int
    channels: Sequence[int] = (16, 32)
    kernel_size: int = 3
    pool: str = "max"
    pool_size: int = 2
    readout: str = "mean"
    spatial_dims: int = 2
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_spatial_dims(self.spatial_dims)
        check_sizes(type(self).__name__, num_classes=self.num_classes,
                    channels=tuple(self.channels), kernel_size=self.kernel_size,
                    pool_size=self.pool_size)
        _check_choice("pool", self.pool, _POOLS)
        _check_choice("readout", self.readout, _READOUTS)
        get_activation(self.activation)
        super().__post_init__()

    def conv(self, features: int, name: str) -> nn.Conv:
        """A 'SAME'-padded, stride-1 convolution with this model's kernel size and dtypes."""
        return nn.Conv(features, (self.kernel_size,) * self.spatial_dims, padding="SAME",
                       dtype=self.dtype, param_dtype=self.param_dtype, name=name)

    def layer_features(self, x: jax.Array, i: int, features: int, train: bool) -> jax.Array:
        """Layer i before pooling: act(conv_i(x)), shape [B, *S, C_in] -> [B, *S, features]."""
        del train
        return get_activation(self.activation)(self.conv(features, f"conv_{i}")(x))

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = with_channel_axis(x, self.spatial_dims).astype(self.dtype)
        window = (self.pool_size,) * self.spatial_dims
        for i, features in enumerate(self.channels):
            x = self.layer_features(x, i, features, train)
            x = _POOLS[self.pool](x, window_shape=window, strides=window)
        x = _READOUTS[self.readout](x)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(x)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016, Fig. 2): y = act(F(x) + s(x)), or act(F(x)) if plain.

    F(x) = norm(conv3(act(norm(conv3(x, stride))))); the shortcut s is the identity, or a
    strided 1x1 convolution (+ norm) when the stride or the channel count changes.
    `residual=False` drops s (and its projection) and changes nothing else. With
    `batch_norm=False`, `norm` is the identity and the convolutions get biases.
    Shape [B, *S, C_in] -> [B, *S / strides, features].
    """

    features: int
    strides: int = 1
    spatial_dims: int = 2
    batch_norm: bool = True
    bn_momentum: float = 0.9
    residual: bool = True
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        conv = functools.partial(nn.Conv, self.features, use_bias=not self.batch_norm,
                                 padding="SAME", dtype=self.dtype, param_dtype=self.param_dtype)
        strides = (self.strides,) * self.spatial_dims

        def norm(name: str) -> Callable[[jax.Array], jax.Array]:
            if not self.batch_norm:
                return lambda h: h
            # Running averages at eval; BatchNorm reduces in float32 under any compute dtype.
            return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                                dtype=self.dtype, param_dtype=self.param_dtype, name=name)

        y = conv((3,) * self.spatial_dims, strides=strides, name="conv1")(x)
        act = get_activation(self.activation)
        y = act(norm("norm1")(y))
        y = conv((3,) * self.spatial_dims, name="conv2")(y)
        y = norm("norm2")(y)
        if not self.residual:
            return act(y)
        shortcut = x
        if self.strides != 1 or x.shape[-1] != self.features:
            shortcut = conv((1,) * self.spatial_dims, strides=strides, name="proj")(x)
            shortcut = norm("proj_norm")(shortcut)
        return act(y + shortcut)


class ResNet(nn.Module):
    """Residual CNN: stem conv, stages of basic blocks, global mean pool, Dense head.

    Stage s has `blocks_per_stage` blocks of `stage_channels[s]` channels; the first block
    of every stage after the first has stride 2 (He et al. 2016, CIFAR ResNets, Sec. 4.2,
    are stage_channels=(16, 32, 64), blocks_per_stage=n, depth 6n+2).
    Shape [B, *S, C] (or [B, *S]) -> [B, num_classes]. Call with `train=True` and
    `mutable=["batch_stats"]` to use and update batch statistics; `train=False` uses the
    running averages. `residual=False` gives the plain network of the same widths.
    """

    num_classes: int
    stage_channels: Sequence[int] = (16, 32, 64)
    blocks_per_stage: int = 2
    spatial_dims: int = 2
    batch_norm: bool = True
    bn_momentum: float = 0.9
    residual: bool = True
    activation: str = "relu"
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self) -> None:
        _check_spatial_dims(self.spatial_dims)
        check_sizes("ResNet", num_classes=self.num_classes,
                    stage_channels=tuple(self.stage_channels),
                    blocks_per_stage=self.blocks_per_stage)
        get_activation(self.activation)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = with_channel_axis(x, self.spatial_dims).astype(self.dtype)
        x = nn.Conv(self.stage_channels[0], (3,) * self.spatial_dims, padding="SAME",
                    use_bias=not self.batch_norm, dtype=self.dtype,
                    param_dtype=self.param_dtype, name="stem")(x)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                             dtype=self.dtype, param_dtype=self.param_dtype, name="stem_norm")(x)
        x = get_activation(self.activation)(x)
        for s, features in enumerate(self.stage_channels):
            for b in range(self.blocks_per_stage):
                x = BasicBlock(features, strides=2 if s > 0 and b == 0 else 1,
                               spatial_dims=self.spatial_dims, batch_norm=self.batch_norm,
                               bn_momentum=self.bn_momentum, residual=self.residual,
                               activation=self.activation, dtype=self.dtype,
                               param_dtype=self.param_dtype, name=f"stage{s}_block{b}")(x, train)
        x = _spatial_mean(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, param_dtype=self.param_dtype,
                        name="head")(x)


def conv_as_matmul(next_fun, args, kwargs, context):
    """Flax method interceptor (`with nn.intercept_methods(conv_as_matmul): ...`) that evaluates
    every 1-D `nn.Conv` ('SAME' padding, any stride) as patches [B, L', k, C] contracted with
    its kernel [k, C, F], plus bias: [B, L, C] -> [B, ceil(L / stride), F], with the same
    parameters (names, shapes, initialisers) and, to float rounding (~1e-6), the same values as
    `lax.conv_general_dilated` (XLA's padding split: floor(pad / 2) before). Other modules and
    methods pass through.

    Why: XLA:CPU runs the gradients of `lax.conv` ~10-20x slower inside a `lax.scan` body than
    outside (jax-ml/jax#12868), which is where `fit_grid` trains; the matmul form is not.
    Raises ValueError for other paddings or input ranks.
    """
    module = context.module
    if not (isinstance(module, nn.Conv) and context.method_name == "__call__"):
        return next_fun(*args, **kwargs)
    x_BxLxC = args[0]
    (width,) = module.kernel_size
    stride = module.strides[0] if isinstance(module.strides, tuple) else (module.strides or 1)
    length, channels = x_BxLxC.shape[1], x_BxLxC.shape[2]
    if module.padding != "SAME" or x_BxLxC.ndim != 3:
        raise ValueError(f"conv_as_matmul supports 1-D 'SAME' convolutions; got padding="
                         f"{module.padding!r}, input shape {x_BxLxC.shape}")
    kernel = module.param("kernel", module.kernel_init, (width, channels, module.features),
                          module.param_dtype)
    out_len = -(-length // stride)
    pad = max((out_len - 1) * stride + width - length, 0)
    padded = jnp.pad(x_BxLxC, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)))
    span = (out_len - 1) * stride + 1
    patches = jnp.stack([padded[:, i:i + span:stride] for i in range(width)], axis=2)
    y = jnp.einsum("blkc,kcf->blf", patches.astype(module.dtype), kernel.astype(module.dtype))
    if module.use_bias:
        bias = module.param("bias", module.bias_init, (module.features,), module.param_dtype)
        y = y + bias.astype(module.dtype)[None, None, :]
    return y
