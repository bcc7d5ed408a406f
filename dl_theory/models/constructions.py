"""Hand-set ReLU networks that approximation proofs construct.

Every network here is a `ReluNet`: a stack of dense layers `Dense_0 ... Dense_L` with ReLU after
all but the last, so `module.apply(variables, x_BxD)` evaluates it like any trained net and
`dl_theory.theory.regions.dense_params_to_layers` hands its weights to the region counter.

- Telgarsky (2016, "Benefits of depth in neural networks", Thm 1.1): the tent map
  t(x) = 2 min(x, 1 - x) composed k times is a sawtooth with 2**k affine pieces, computed by
  k hidden layers of width 2.
  Its width-m generalisation (a zigzag of m pieces per layer) has m**L pieces.
- Yarotsky (2017, "Error bounds for approximations with deep ReLU networks", Prop. 2, 3):
  x**2 on [0, 1] to sup error 2**(-2m-2) with m hidden layers of width 3; from it xy on
  [-1, 1]**2 by polarisation and x**p on [-1, 1] by repeated products.
- Hats and bumps (compactly supported pieces used in universality proofs): a 1-D hat from three
  ReLUs and a d-dimensional bump relu(sum_i hat(x_i) - (d - 1)) = relu(1 - |x - c|_1 / w).

Weights are built in float64 NumPy and cast once to the requested dtype; all weights are
dyadic rationals (sums of powers of two) unless a centre or width is not, so they are exact
in float32 too.
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# A network as data: [(W [d_in, d_out], b [d_out]), ...], ReLU after all but the last layer.
_Layers = list[tuple[np.ndarray, np.ndarray]]


class ReluNet(nn.Module):
    """Fully connected ReLU network: Dense_0 -> ReLU -> ... -> Dense_L (linear output).

    `widths` are the output widths of Dense_0 ... Dense_L, so `widths[:-1]` are the hidden
    widths and `widths[-1]` the output width; the input width comes from `x`.
    Shape [B, D] -> [B, widths[-1]].
    """

    widths: Sequence[int]
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths={tuple(self.widths)}; need at least one layer, all >= 1")
        super().__post_init__()

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics
        h = x_BxD
        for i, width in enumerate(self.widths):
            h = nn.Dense(int(width), dtype=self.dtype, param_dtype=self.param_dtype,
                         name=f"Dense_{i}")(h)
            if i < len(self.widths) - 1:
                h = nn.relu(h)
        return h


def _to_flax(layers: _Layers, dtype: Any) -> tuple[ReluNet, dict]:
    """Wraps a layer list as a `ReluNet` and its `{"params": ...}` variables."""
    module = ReluNet(widths=tuple(w.shape[1] for w, _ in layers), dtype=dtype, param_dtype=dtype)
    params = {f"Dense_{i}": {"kernel": jnp.asarray(w, dtype), "bias": jnp.asarray(b, dtype)}
              for i, (w, b) in enumerate(layers)}
    return module, {"params": params}


def _linear(w: Sequence[Sequence[float]], b: Sequence[float] | None = None) -> _Layers:
    w = np.asarray(w, np.float64)
    return [(w, np.zeros(w.shape[1]) if b is None else np.asarray(b, np.float64))]


def _compose(outer: _Layers, inner: _Layers) -> _Layers:
    """outer o inner: inner's linear output layer is folded into outer's first layer."""
    (w_in, b_in), (w_out, b_out) = inner[-1], outer[0]
    return inner[:-1] + [(w_in @ w_out, b_in @ w_out + b_out)] + outer[1:]


def _identity(dim: int, hidden_layers: int) -> _Layers:
    """z -> z through `hidden_layers` ReLU layers as relu(z) - relu(-z) (exact for any sign)."""
    eye = np.eye(dim)
    if hidden_layers == 0:
        return [(eye, np.zeros(dim))]
    first = (np.concatenate([eye, -eye], axis=1), np.zeros(2 * dim))
    middle = (np.block([[eye, -eye], [-eye, eye]]), np.zeros(2 * dim))
    last = (np.concatenate([eye, -eye], axis=0), np.zeros(dim))
    return [first] + [middle] * (hidden_layers - 1) + [last]


def _parallel(nets: Sequence[_Layers]) -> _Layers:
    """Nets reading the same input side by side; outputs concatenated, depths padded."""
    depth = max(len(net) for net in nets)
    nets = [_compose(_identity(net[-1][0].shape[1], depth - len(net)), net) for net in nets]
    layers = [(np.concatenate([net[0][0] for net in nets], axis=1),
               np.concatenate([net[0][1] for net in nets]))]
    for i in range(1, depth):
        blocks = [net[i][0] for net in nets]
        w = np.zeros((sum(b.shape[0] for b in blocks), sum(b.shape[1] for b in blocks)))
        r = c = 0
        for block in blocks:
            w[r:r + block.shape[0], c:c + block.shape[1]] = block
            r, c = r + block.shape[0], c + block.shape[1]
        layers.append((w, np.concatenate([net[i][1] for net in nets])))
    return layers


def _check_int(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r}; must be an integer >= {minimum}")


def tent_map(x_N: jax.Array) -> jax.Array:
    """The tent map t(x) = 2 min(x, 1 - x); shape [...] -> [...]. Maps [0, 1] onto [0, 1]."""
    return 2.0 * jnp.minimum(x_N, 1.0 - x_N)


def sawtooth(x_N: jax.Array, k: int) -> jax.Array:
    """The tent map composed k times on [0, 1]; shape [...] -> [...].

    Has 2**k affine pieces with breakpoints j / 2**k (Telgarsky 2016): the deep function that
    shallow networks need width exponential in k to approximate.
    """
    _check_int("k", k, 0)
    for _ in range(k):
        x_N = tent_map(x_N)
    return x_N


def sawtooth_net(k: int, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """The k-fold tent map as a ReLU net with k hidden layers of width 2; [B, 1] -> [B, 1].

    On [0, 1], t(z) = 2 relu(z) - 4 relu(z - 1/2); each hidden layer holds
    (relu(z), relu(z - 1/2)) for z the previous composite, so the net equals `sawtooth(x, k)`
    exactly on [0, 1] (Telgarsky 2016, proof of Thm 1.1). Outside [0, 1] it is not the sawtooth.
    """
    _check_int("k", k, 1)
    first = _linear([[1.0, 1.0]], [0.0, -0.5])
    tent_then_split = _linear([[2.0, 2.0], [-4.0, -4.0]], [0.0, -0.5])
    out = _linear([[2.0], [-4.0]])
    return _to_flax(first + tent_then_split * (k - 1) + out, dtype)


def zigzag_net(width: int, depth: int, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """A ReLU net with `depth` hidden layers of `width` units and width**depth affine pieces on
    [0, 1]; [B, 1] -> [B, 1]. `zigzag_net(2, k)` is `sawtooth_net(k)`.

    Each layer holds h_i = relu(z - i / m), i < m = width, of the previous composite z; the
    zigzag m h_0 + sum_{i >= 1} 2 m (-1)^i h_i rises and falls with slope +-m on each
    [i / m, (i + 1) / m], mapping [0, 1] onto [0, 1] m times, so depth compositions give m**depth
    pieces (Telgarsky 2015, Lemma 2.1's maximum (2m)**L is 2**L times more). Weights are exact
    when width is a power of two.
    """
    _check_int("width", width, 2)
    _check_int("depth", depth, 1)
    offsets = -np.arange(width) / width
    zig = width * np.where(np.arange(width) == 0, 1.0, 2.0 * (-1.0) ** np.arange(width))
    split = _linear(np.ones((1, width)), offsets)
    zig_then_split = _linear(np.outer(zig, np.ones(width)), offsets)
    return _to_flax(split + zig_then_split * (depth - 1) + _linear(zig[:, None]), dtype)


def yarotsky_square(x_N: jax.Array, m: int) -> jax.Array:
    """Yarotsky's f_m(x) = x - sum_{s=1}^m g_s(x) / 4**s, g_s the s-fold tent; [...] -> [...].

    f_m is the piecewise-linear interpolant of x**2 at the 2**m + 1 points j / 2**m, so on
    [0, 1]: 0 <= f_m(x) - x**2 <= 2**(-2m-2), with equality at the midpoints (2j+1) / 2**(m+1)
    (Yarotsky 2017, Prop. 2).
    """
    _check_int("m", m, 0)
    out, g = x_N, x_N
    for s in range(1, m + 1):
        g = tent_map(g)
        out = out - g / 4.0**s
    return out


def yarotsky_square_error(m: int) -> float:
    """sup_{x in [0,1]} |f_m(x) - x**2| = 2**(-2m-2), attained at x = (2j+1) / 2**(m+1)."""
    _check_int("m", m, 0)
    return 2.0 ** (-2 * m - 2)


def _square_layers(m: int) -> _Layers:
    """f_m as layers: m hidden layers of width 3 holding (relu(g), relu(g - 1/2), f).

    The third channel carries the running sum f_s through a ReLU unchanged because
    f_s >= x**2 >= 0 on [0, 1]; the first two rebuild g_{s+1} = 2 relu(g_s) - 4 relu(g_s - 1/2).
    """
    if m == 0:
        return _linear([[1.0]])
    layers = _linear([[1.0, 1.0, 1.0]], [0.0, -0.5, 0.0])  # (relu(g_0), relu(g_0-1/2), f_0)
    for s in range(1, m + 1):
        # g_s = 2 u1 - 4 u2 and f_s = u3 - g_s / 4**s in terms of the units u of layer s.
        g_s = np.array([2.0, -4.0, 0.0])
        f_s = np.array([0.0, 0.0, 1.0]) - g_s / 4.0**s
        if s < m:
            layers += _linear(np.stack([g_s, g_s, f_s], axis=1), [0.0, -0.5, 0.0])
        else:
            layers += _linear(f_s[:, None])
    return layers


def yarotsky_square_net(m: int, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """Yarotsky's f_m (see `yarotsky_square`) as a ReLU net; [B, 1] -> [B, 1].

    m hidden layers of width 3 (for m = 0 a single linear layer, f_0(x) = x); valid on [0, 1],
    where sup |f_m - x**2| = 2**(-2m-2) and f_m has 2**m linear pieces (Yarotsky 2017, Prop. 2).
    """
    _check_int("m", m, 0)
    return _to_flax(_square_layers(m), dtype)


def _abs_layers() -> _Layers:
    return _linear([[1.0, -1.0]]) + _linear([[1.0], [1.0]])


def _product_layers(m: int) -> _Layers:
    """xy = 2 f_m(|x + y| / 2) - f_m(|x|) / 2 - f_m(|y|) / 2 for (x, y) in [-1, 1]**2."""
    square_of_abs = _compose(_square_layers(m), _abs_layers())
    branches = [_compose(square_of_abs, _linear(sel)) for sel in ([[1.0], [0.0]],
                                                                 [[0.0], [1.0]],
                                                                 [[0.5], [0.5]])]
    return _compose(_linear([[-0.5], [-0.5], [2.0]]), _parallel(branches))


def yarotsky_product_net(m: int, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """Approximate product xy on [-1, 1]**2 by polarisation; [B, 2] -> [B, 1].

    xy = ((x + y)**2 - x**2 - y**2) / 2 = 2 ((x+y)/2)**2 - x**2 / 2 - y**2 / 2, with each square
    of a number in [-1, 1] computed as f_m(|z|) (|z| = relu(z) + relu(-z) in [0, 1]). As
    0 <= f_m - (.)**2 <= eps = 2**(-2m-2), the error lies in [-eps, 2 eps], so
    sup |net - xy| <= 2**(-2m-1) (Yarotsky 2017, Prop. 3). m + 1 hidden layers: width 6, then 9.
    """
    _check_int("m", m, 0)
    return _to_flax(_product_layers(m), dtype)


def yarotsky_product_error_bound(m: int) -> float:
    """Bound 2 * 2**(-2m-2) = 2**(-2m-1) on |product net - xy| over [-1, 1]**2."""
    return 2.0 * yarotsky_square_error(m)


def yarotsky_monomial_net(p: int, m: int, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """Approximate x**p on [-1, 1] by p - 1 chained products; [B, 1] -> [B, 1].

    P_1 = x, P_k = clip(prod_m(x, P_{k-1})) with clip to [-1, 1] (relu(z+1) - relu(z-1) - 1),
    x carried alongside as relu(x) - relu(-x). Clipping onto [-1, 1], which holds x**k, never
    increases the error and keeps the next product's inputs in its domain, so
    |P_k - x**k| <= 2**(-2m-1) + |x| |P_{k-1} - x**(k-1)| and sup |P_p - x**p| <= (p - 1) 2**(-2m-1)
    (Yarotsky 2017, Prop. 3 with repeated multiplication). (p - 1)(m + 2) hidden layers, width 11.
    """
    _check_int("p", p, 1)
    _check_int("m", m, 0)
    clip = _linear([[1.0, 1.0]], [1.0, -1.0]) + _linear([[1.0], [-1.0]], [-1.0])
    step = _parallel([_linear([[1.0], [0.0]]), _compose(clip, _product_layers(m))])
    layers = _linear([[1.0, 1.0]])  # x -> (x, P_1 = x)
    for _ in range(p - 1):
        layers = _compose(step, layers)
    return _to_flax(_compose(_linear([[0.0], [1.0]]), layers), dtype)


def yarotsky_monomial_error_bound(p: int, m: int) -> float:
    """Bound (p - 1) 2**(-2m-1) on |monomial net - x**p| over [-1, 1]."""
    _check_int("p", p, 1)
    return (p - 1) * yarotsky_product_error_bound(m)


def _check_width(half_width: float) -> None:
    if not half_width > 0:
        raise ValueError(f"half_width={half_width!r}; must be > 0")


def hat(x_N: jax.Array, center: float, half_width: float) -> jax.Array:
    """Hat h(x) = relu(1 - |x - c| / w): 1 at c, 0 outside [c - w, c + w]; [...] -> [...]."""
    _check_width(half_width)
    return jnp.maximum(0.0, 1.0 - jnp.abs(x_N - center) / half_width)


def hat_net(center: float, half_width: float, dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """`hat` from three ReLUs, one hidden layer; [B, 1] -> [B, 1].

    h(x) = (relu(x - c + w) - 2 relu(x - c) + relu(x - c - w)) / w, exactly `hat` on all of R.
    """
    _check_width(half_width)
    c, w = float(center), float(half_width)
    return _to_flax(_linear([[1.0, 1.0, 1.0]], [w - c, -c, -c - w])
                    + _linear([[1.0 / w], [-2.0 / w], [1.0 / w]]), dtype)


def bump(x_NxD: jax.Array, center: Sequence[float], half_width: float) -> jax.Array:
    """Bump B(x) = relu(1 - |x - c|_1 / w): 1 at c, 0 off the l1 ball; [N, D] -> [N]."""
    _check_width(half_width)
    c_D = jnp.asarray(center, x_NxD.dtype)
    if x_NxD.ndim != 2 or x_NxD.shape[1] != c_D.shape[0]:
        raise ValueError(f"x shape {x_NxD.shape}; expected [N, {c_D.shape[0]}] for this centre")
    return jnp.maximum(0.0, 1.0 - jnp.sum(jnp.abs(x_NxD - c_D[None, :]), axis=1) / half_width)


def bump_net(center: Sequence[float], half_width: float,
             dtype: Any = jnp.float32) -> tuple[ReluNet, dict]:
    """d-dimensional bump relu(sum_i h_i(x_i) - (d - 1)) with h_i 1-D hats; [B, d] -> [B, 1].

    Hidden widths (3d, 1). Inside the cube prod_i [c_i - w, c_i + w] the sum is
    d - |x - c|_1 / w; outside it some h_i = 0 and the sum is <= d - 1. Hence the net equals
    `bump` = relu(1 - |x - c|_1 / w) on all of R^d: compactly supported, peak 1 at c; the
    building block of the "sum of bumps" universality argument.
    """
    _check_width(half_width)
    c_D = np.asarray(center, np.float64)
    if c_D.ndim != 1 or c_D.size == 0:
        raise ValueError(f"center={center!r}; must be a non-empty 1-D sequence")
    d, w = c_D.size, float(half_width)
    w1 = np.kron(np.eye(d), np.ones((1, 3)))  # each input feeds its own three hat units
    b1 = np.stack([w - c_D, -c_D, -c_D - w], axis=1).reshape(-1)
    w2 = np.tile(np.array([1.0, -2.0, 1.0]) / w, d)[:, None]
    layers = _linear(w1, b1) + _linear(w2, [-(d - 1.0)]) + _linear([[1.0]])
    return _to_flax(layers, dtype)
