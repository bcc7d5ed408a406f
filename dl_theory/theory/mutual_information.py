"""Mutual-information estimators for the information plane (I(X;T), I(T;Y)) of a layer T.

Shwartz-Ziv & Tishby 2017 ("Opening the Black Box of Deep Neural Networks via Information")
plot, per layer T and epoch, I(X;T) against I(T;Y) estimated by binning the activations;
Saxe et al. 2018 ("On the Information Bottleneck Theory of Deep Learning", ICLR) show that the
"compression phase" this reveals depends on the activation (tanh vs ReLU) and on the
estimator, and add a kernel (KDE) estimate: T plus Gaussian noise, whose MI is bounded by
pairwise distances (Kolchinsky & Tracey 2017, "Estimating Mixture Entropy with Pairwise
Distances", Entropy).

Fragility, which the experiments must carry in their claims: for a deterministic network the
true I(X;T) is infinite when X is continuous, and exactly log N when X is uniform on N
distinct inputs and T is injective on them (as it is for generic weights and continuous
activations), so any other value is a property of the estimator. The binned I(X;T) = H(bin(T))
ranges from 0 (one bin) to log N (every input in its own cell) as num_bins grows, and the KDE
value likewise moves from 0 to log N as the noise variance falls; "compression" is a fall of
these numbers, which saturating activations produce by pushing units into a few edge bins.
Plug-in entropies are also biased low by about (occupied cells - 1) / (2 N) nats (Miller 1955).

NumPy only: these run on host arrays of activations, not inside jit.
"""

import numpy as np

_LOG_BASES = {"bits": 2.0, "nats": np.e}

# Kolchinsky & Tracey 2017, Sec. 4: the KL divergence gives an upper bound on the mixture
# entropy and the Bhattacharyya distance a lower bound; for two Gaussians with covariance s2 * I,
# D = ||h_i - h_j||^2 / (divisor * s2).
_PAIRWISE_DIVISOR = {"upper": 2.0, "lower": 8.0}


def _log_base(unit: str) -> float:
    if unit not in _LOG_BASES:
        raise ValueError(f"unit={unit!r}; known: {sorted(_LOG_BASES)}")
    return float(np.log(_LOG_BASES[unit]))


def _symbol_ids(a: np.ndarray) -> np.ndarray:
    """Maps each row of a ([N] or [N, D], any dtype) to an int id in [0, #distinct rows)."""
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"array of shape {a.shape}; expected [N] or [N, D]")
    # One opaque byte-string per row: np.unique then sorts N keys instead of comparing rows
    # column by column (Shwartz-Ziv & Tishby's code does the same).
    rows = np.ascontiguousarray(a).view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))
    _, ids = np.unique(rows.ravel(), return_inverse=True)
    return ids.ravel()


def _entropy_of_ids(ids: np.ndarray) -> float:
    """Plug-in entropy in nats of the empirical distribution of int ids."""
    p = np.bincount(ids) / ids.shape[0]
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def entropy(labels: np.ndarray, unit: str = "bits") -> float:
    """Plug-in entropy H(A) = -sum_a p(a) log p(a) of the rows of labels ([N] or [N, D]).

    Each distinct row is one symbol; p is its empirical frequency. unit: "bits" or "nats".
    """
    return _entropy_of_ids(_symbol_ids(labels)) / _log_base(unit)


def mutual_information(a: np.ndarray, b: np.ndarray, unit: str = "bits") -> float:
    """Plug-in I(A;B) = H(A) + H(B) - H(A, B) of two discrete arrays ([N] or [N, D] each).

    Rows are symbols (so a binned layer [N, D] is one variable). Biased upward by about
    (|A| - 1)(|B| - 1) / (2 N) nats when A and B are independent.
    """
    ids_a, ids_b = _symbol_ids(a), _symbol_ids(b)
    if ids_a.shape != ids_b.shape:
        raise ValueError(f"a has {ids_a.shape[0]} rows and b has {ids_b.shape[0]}; must match")
    joint = ids_a * (ids_b.max() + 1) + ids_b
    h = _entropy_of_ids(ids_a) + _entropy_of_ids(ids_b) - _entropy_of_ids(joint)
    return h / _log_base(unit)


def bin_activations(
    t: np.ndarray, num_bins: int, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Discretises activations into num_bins equal bins over one range; int array, shape of t.

    The range is value_range, or [min(t), max(t)] over all units and samples (Shwartz-Ziv &
    Tishby use [-1, 1] for tanh; Saxe et al. [0, max] for ReLU). Values outside a given range
    fall into the edge bins.
    """
    if not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins={num_bins!r}; must be a positive int")
    t = np.asarray(t, dtype=np.float64)
    lo, hi = (float(t.min()), float(t.max())) if value_range is None else value_range
    if not hi > lo:
        if value_range is not None:
            raise ValueError(f"value_range={value_range!r}; need low < high")
        return np.zeros(t.shape, dtype=np.int64)  # constant activations: a single bin
    scaled = np.floor((t - lo) / (hi - lo) * num_bins).astype(np.int64)
    return np.clip(scaled, 0, num_bins - 1)


def binned_mutual_information(
    a: np.ndarray,
    b: np.ndarray,
    num_bins: int,
    value_range: tuple[float, float] | None = None,
    unit: str = "bits",
) -> float:
    """I(bin(A); bin(B)) for continuous a, b ([N] or [N, D]), binned as in `bin_activations`.

    Both use value_range when it is given, else each its own [min, max].

    For jointly Gaussian scalars with correlation rho the target is -1/2 log(1 - rho^2) nats;
    the estimate loses information to coarse bins and gains bias from fine ones.
    """
    return mutual_information(
        bin_activations(a, num_bins, value_range), bin_activations(b, num_bins, value_range), unit)


def binned_information_plane(
    t: np.ndarray,
    y: np.ndarray,
    num_bins: int = 30,
    value_range: tuple[float, float] | None = None,
    unit: str = "bits",
) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) by binning, as Shwartz-Ziv & Tishby 2017 and Saxe et al. 2018.

    Args:
        t: layer activations, shape [N, D], one row per distinct input x (the data set is the
            input distribution, uniform over its rows).
        y: labels, shape [N] (or [N, D_y] rows).
        num_bins: bins per unit (30 in Shwartz-Ziv & Tishby), over value_range or t's range.
        value_range: (low, high) for the bins; None means [min(t), max(t)].
        unit: "bits" (as in the papers' figures) or "nats".

    Returns:
        I(X;T) = H(bin(T)), exact for T a deterministic function of X (H(T|X) = 0), and
        I(T;Y) = H(bin(T)) - H(bin(T) | Y).
    """
    t = np.asarray(t)
    if t.ndim != 2:
        raise ValueError(f"t.shape={t.shape}; expected [N, D]")
    binned = bin_activations(t, num_bins, value_range)
    return entropy(binned, unit), mutual_information(binned, y, unit)


def _kde_pairwise_term(h: np.ndarray, noise_variance: float, divisor: float,
                       chunk: int = 1024) -> float:
    """-1/N sum_i log(1/N sum_j exp(-||h_i - h_j||^2 / (divisor * s2))) in nats.

    Rows are taken `chunk` at a time, so memory is O(chunk N) rather than O(N^2).
    """
    n = h.shape[0]
    sq_norms = np.sum(h * h, axis=1)
    total = 0.0
    for start in range(0, n, chunk):
        rows = h[start:start + chunk]
        dists = sq_norms[start:start + chunk, None] + sq_norms[None, :] - 2.0 * rows @ h.T
        logits = -np.maximum(dists, 0.0) / (divisor * noise_variance)
        peak = logits.max(axis=1, keepdims=True)
        log_mean = peak[:, 0] + np.log(np.mean(np.exp(logits - peak), axis=1))
        total -= float(np.sum(log_mean))
    return total / n


def kde_information_plane(
    t: np.ndarray,
    y: np.ndarray,
    noise_variance: float = 0.1,
    bound: str = "upper",
    unit: str = "bits",
) -> tuple[float, float]:
    """(I(X;T'), I(T';Y)) for T' = T + N(0, noise_variance I), by pairwise-distance bounds.

    With T = h(X) deterministic and X uniform over the N rows, T' is a mixture of N Gaussians
    and H(T'|X) is the noise entropy, so (Kolchinsky & Tracey 2017, Sec. 4)

        I(X;T') <=/>= -1/N sum_i log(1/N sum_j exp(-||h_i - h_j||^2 / (c s2))),

    an upper bound with c = 2 (KL divergence) and a lower bound with c = 8 (Bhattacharyya
    distance); `bound` picks which. I(T';Y) is
    estimated as H(T') - sum_y p(y) H(T'|Y=y) with each entropy replaced by the same bound, as
    in Saxe et al. 2018 (their code: noise variance 0.1, the default here); a difference of
    two upper bounds is an estimate, not a bound. I(X;T') falls from log N towards 0 as
    noise_variance grows: the estimate is only meaningful at one stated noise level.

    Args:
        t: activations h(x), shape [N, D], one row per input.
        y: labels, shape [N] (or [N, D_y] rows).
        noise_variance: s2 > 0, the variance of the added noise per unit.
        bound: "upper" (KL) or "lower" (Bhattacharyya).
        unit: "bits" or "nats".

    Returns:
        (I(X;T'), I(T';Y)) in `unit`.

    Cost: time O(N^2 D), memory O(1024 N) (pairwise distances 1024 rows at a time).
    """
    if bound not in _PAIRWISE_DIVISOR:
        raise ValueError(f"bound={bound!r}; known: {sorted(_PAIRWISE_DIVISOR)}")
    if not noise_variance > 0:
        raise ValueError(f"noise_variance={noise_variance!r}; must be > 0")
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 2:
        raise ValueError(f"t.shape={t.shape}; expected [N, D]")
    ids_y = _symbol_ids(y)
    if ids_y.shape[0] != t.shape[0]:
        raise ValueError(f"t has {t.shape[0]} rows and y has {ids_y.shape[0]}; must match")
    divisor = _PAIRWISE_DIVISOR[bound]
    # The noise entropy D/2 log(2 pi e s2) appears in every term and cancels from both MIs.
    i_xt = _kde_pairwise_term(t, noise_variance, divisor)
    conditional = sum(np.mean(ids_y == k) * _kde_pairwise_term(t[ids_y == k], noise_variance,
                                                               divisor)
                      for k in np.unique(ids_y))
    scale = _log_base(unit)
    return i_xt / scale, (i_xt - conditional) / scale
