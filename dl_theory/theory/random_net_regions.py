"""Region counts of random ReLU nets on random segments and 2-D slices (Hanin & Rolnick).

Hanin & Rolnick (2019a, "Complexity of linear regions in deep networks", Sec. 6; 2019b,
"Deep ReLU networks have surprisingly few activation patterns") count the regions of random
ReLU nets at He-normal initialisation along random lines and in 2-D slices of input space.
This module holds that protocol; the counting itself is exact (`dl_theory.theory.regions`):

- `he_normal_layers`: W ~ N(0, 2 / fan_in), b ~ N(0, bias_std^2), as float64 (W, b) layers;
- `stack_layers_as_flax` / `unstack_flax_params`: the same nets as Flax `MLP` params stacked
  over nets (to train them as one vmapped grid) and back;
- `random_segments` / `mean_breakpoints`: breakpoints (pieces - 1) on segments [a, b] with
  a, b ~ N(0, I), averaged per net, and per unit length;
- `random_square_slice` / `mean_slice_regions`: activation regions met by squares centred at
  the typical input norm, in planes orthogonal to the centre, averaged per net;
- `zigzag_breakpoints`: the same counts for hand-set zigzag nets, which attain the maximum's
  growth N**L (the control that random nets' counts are set against).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.models.constructions import zigzag_net
from dl_theory.theory import regions


def he_normal_layers(rng: np.random.Generator, input_dim: int, widths,
                     bias_std: float) -> regions.Layers:
    """[(W, b), ...] with W ~ N(0, 2 / fan_in) (He et al. 2015) and b ~ N(0, bias_std^2), for
    hidden `widths` and one linear output (the Hanin & Rolnick initialisation)."""
    sizes = [input_dim, *widths, 1]
    return [(rng.normal(size=(fan_in, fan_out)) * math.sqrt(2.0 / fan_in),
             bias_std * rng.normal(size=fan_out)) for fan_in, fan_out in zip(sizes[:-1], sizes[1:])]


def stack_layers_as_flax(nets: Sequence[regions.Layers]) -> dict:
    """Flax MLP params {"Dense_i": {"kernel" [S, in, out], "bias" [S, out]}} stacked over the
    S nets, float32 (the inverse of `unstack_flax_params` up to the float32 rounding)."""
    return {f"Dense_{i}": {"kernel": jnp.asarray(np.stack([net[i][0] for net in nets]),
                                                  jnp.float32),
                           "bias": jnp.asarray(np.stack([net[i][1] for net in nets]), jnp.float32)}
            for i in range(len(nets[0]))}


def unstack_flax_params(params) -> list[regions.Layers]:
    """Flax MLP params stacked over nets (leading axis S) -> S float64 layer lists."""
    num = jax.tree.leaves(params)[0].shape[0]
    return [regions.dense_params_to_layers(jax.tree.map(lambda a: np.asarray(a[s]), params))
            for s in range(num)]


def random_segments(input_dim: int, count: int,
                    seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` segments [a, b] with a, b ~ N(0, I_input_dim), drawn from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=input_dim), rng.normal(size=input_dim)) for _ in range(count)]


def mean_breakpoints(nets: Sequence[regions.Layers], input_dim: int, lines_per_net: int,
                     first_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per net: mean breakpoints on its segments and mean breakpoints per unit length; [S].

    Net s is counted on `random_segments(input_dim, lines_per_net, first_seed + s)`, so the
    same net index meets the same segments before and after training.
    """
    counts, densities = [], []
    for s, layers in enumerate(nets):
        per_line = [(regions.count_linear_pieces(layers, a, b) - 1, np.linalg.norm(b - a))
                    for a, b in random_segments(input_dim, lines_per_net, first_seed + s)]
        counts.append(np.mean([c for c, _ in per_line]))
        densities.append(np.mean([c / length for c, length in per_line]))
    return np.asarray(counts), np.asarray(densities)


def random_square_slice(rng: np.random.Generator,
                        input_dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, e1, e2): a random centre of norm sqrt(input_dim) and an orthonormal frame of the
    plane orthogonal to it, from one QR factorisation of a Gaussian [input_dim, 3] matrix."""
    frame, _ = np.linalg.qr(rng.normal(size=(input_dim, 3)))
    return math.sqrt(input_dim) * frame[:, 0], frame[:, 1], frame[:, 2]


def mean_slice_regions(nets: Sequence[regions.Layers], input_dim: int, slices_per_net: int,
                       half_extent: float, first_seed: int) -> np.ndarray:
    """Per net: mean number of activation regions met by its square slices
    {c + u e1 + v e2 : |u|, |v| <= half_extent}; [S]. Net s draws its `slices_per_net`
    slices with `random_square_slice` from default_rng(first_seed + s)."""
    out = []
    h = half_extent
    for s, layers in enumerate(nets):
        rng = np.random.default_rng(first_seed + s)
        counts = []
        for _ in range(slices_per_net):
            # Centre at the typical input norm sqrt(n_in), plane orthogonal to it: with tiny
            # biases the region density scales like 1 / |x|^2, so a random |c| would add
            # variance that has nothing to do with N.
            c, e1, e2 = random_square_slice(rng, input_dim)
            counts.append(regions.count_slice_regions(layers, c, e1, e2, (-h, h)))
        out.append(np.mean(counts))
    return np.asarray(out)


def zigzag_breakpoints(depth: int, neurons: Sequence[int]) -> list[int]:
    """Breakpoints on [0, 1] of hand-set zigzag nets of `depth` layers of width N / depth, for
    each N of `neurons`: (N / depth)**depth - 1, counted, not assumed (the maximum's growth)."""
    return [regions.count_linear_pieces(regions.dense_params_to_layers(
        zigzag_net(n // depth, depth)[1]), np.zeros(1), np.ones(1)) - 1 for n in neurons]
