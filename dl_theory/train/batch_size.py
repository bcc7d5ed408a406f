"""Batch-size finders: the largest batch whose compiled step fits a memory budget (mode
"memory"), or the critical batch size B_simple = tr(Sigma) / |G|^2 from the gradient noise
scale of McCandlish et al. 2018 ("An Empirical Model of Large-Batch Training", App. A.1; mode
"noise_scale"). Pure functions of the state: the caller's state is read, never changed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.data.batching import Batch, num_examples
from dl_theory.train.losses import Loss
from dl_theory.train.state import TrainState
from dl_theory.train.step import make_train_step

MEMORY_METHODS = ("auto", "analysis", "trial")


@dataclasses.dataclass(frozen=True)
class MemoryBatchSize:
    """The outcome of `max_batch_size_in_memory`.

    batch_size: the largest size found to fit; a step at that size was compiled and run.
    method: "analysis" (XLA's compiled memory analysis against the budget) or "trial"
    (run a step, catch out-of-memory). predicted_bytes maps each compiled size to its
    predicted peak bytes (empty under "trial" when the backend predicts nothing); outcome
    maps each probed size to "fits", "over budget", "out of memory" or "ran".
    """

    batch_size: int
    memory_limit_bytes: int | None
    method: str
    predicted_bytes: dict[int, int]
    outcome: dict[int, str]


def _batch_shapes(data: Batch, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
    return {k: jax.ShapeDtypeStruct((batch_size,) + tuple(v.shape[1:]), v.dtype)
            for k, v in data.items()}


def _tiled_batch(data: Batch, batch_size: int) -> dict[str, jax.Array]:
    """The first batch_size examples of data repeated cyclically (sizes may exceed N)."""
    idx = np.arange(batch_size) % num_examples(data)
    return {k: jnp.asarray(v)[idx] for k, v in data.items()}


def _peak_bytes(compiled) -> int | None:
    """XLA's predicted peak bytes of a compiled program (arguments, outputs and
    temporaries); None where the backend reports nothing (None, or all zeros)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    peak = getattr(stats, "peak_memory_in_bytes", 0)
    if not peak:
        peak = sum(getattr(stats, f"{name}_size_in_bytes", 0)
                   for name in ("argument", "output", "temp")) - stats.alias_size_in_bytes
    return int(peak) if peak > 0 else None


def _is_out_of_memory(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def _run_step(compiled, state: TrainState, batch: Batch) -> None:
    jax.block_until_ready(compiled(state, batch))


def _device_memory_limit() -> int | None:
    stats = jax.local_devices()[0].memory_stats()
    return None if not stats else stats.get("bytes_limit")


def step_memory_bytes(state: TrainState, data: Batch, *, loss: Loss,
                      batch_size: int) -> int | None:
    """Predicted peak bytes of one jitted train step (`make_train_step(loss)`, no donated
    buffers) on a batch of `batch_size` examples shaped like `data`'s; None where the
    backend's compiled memory analysis reports nothing. `fit`'s program also holds `data`
    and the scan's metrics, so leave that much headroom in the budget."""
    batch = _batch_shapes(data, batch_size)
    return _peak_bytes(jax.jit(make_train_step(loss)).lower(state, batch).compile())


def max_batch_size_in_memory(state: TrainState, data: Batch, *, loss: Loss,
                             memory_limit_bytes: int | None = None,
                             max_batch_size: int = 1 << 16, multiple_of: int = 1,
                             method: str = "auto") -> MemoryBatchSize:
    """The largest batch size (a multiple of `multiple_of`, at most `max_batch_size`) whose
    train step fits in memory.

    Search: doubling m, 2m, 4m, ... until a size fails, then bisection between the last
    fitting and the first failing size, so the answer b fits and b + multiple_of does not
    (when memory grows with the batch). A size fits under "analysis" when its compiled
    step's predicted peak (`step_memory_bytes`) is at most memory_limit_bytes (default: the
    device's `memory_stats()["bytes_limit"]`; CPU has none, so pass a budget); under
    "trial" when a step actually runs without an out-of-memory error (the budget is then the
    device itself). "auto" uses analysis where the backend predicts bytes, else trial. The
    returned size has always been run for one step; if that run fails despite the
    prediction, the search continues below it. Examples are `data`'s, repeated cyclically.
    """
    if method not in MEMORY_METHODS:
        raise ValueError(f"method={method!r}; known: {list(MEMORY_METHODS)}")
    for name, value in (("max_batch_size", max_batch_size), ("multiple_of", multiple_of)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}; must be a positive integer")
    if max_batch_size < multiple_of:
        raise ValueError(f"max_batch_size={max_batch_size} < multiple_of={multiple_of}")
    limit = memory_limit_bytes if memory_limit_bytes is not None else _device_memory_limit()
    if limit is None and method == "analysis":
        raise ValueError("method='analysis' needs memory_limit_bytes: this device reports no "
                         "memory limit (CPU has none)")
    if limit is not None and limit <= 0:
        raise ValueError(f"memory_limit_bytes={limit!r}; must be positive")
    step = jax.jit(make_train_step(loss))
    compiled: dict[int, Any] = {}
    predicted: dict[int, int] = {}
    outcome: dict[int, str] = {}
    use_analysis = method == "analysis" or (method == "auto" and limit is not None)

    def compiles(size: int) -> bool:
        if size not in compiled:
            try:
                compiled[size] = step.lower(state, _batch_shapes(data, size)).compile()
            except jax.errors.JaxRuntimeError as error:
                if not _is_out_of_memory(error):
                    raise
                compiled[size] = None
                outcome[size] = "out of memory"
            else:
                peak = _peak_bytes(compiled[size])
                if peak is not None:
                    predicted[size] = peak
        return compiled[size] is not None

    def runs(size: int) -> bool:
        if outcome.get(size) not in ("ran", "out of memory", "over budget"):
            try:
                _run_step(compiled[size], state, _tiled_batch(data, size))
                outcome[size] = "ran"
            except jax.errors.JaxRuntimeError as error:
                if not _is_out_of_memory(error):
                    raise
                outcome[size] = "out of memory"
        return outcome[size] == "ran"

    def fits(k: int) -> bool:
        nonlocal use_analysis
        size = k * multiple_of
        if not compiles(size):
            return False
        if use_analysis and size not in predicted:
            if method == "analysis":
                raise ValueError("method='analysis': the backend's compiled memory analysis "
                                 "reports no bytes; use method='trial'")
            use_analysis = False
        if not use_analysis:
            return runs(size)
        if predicted[size] > limit:
            outcome[size] = "over budget"
            return False
        outcome.setdefault(size, "fits")
        return outcome[size] != "out of memory"

    best = _largest_fitting(fits, max_batch_size // multiple_of)
    if best and not runs(best * multiple_of):
        # The prediction was optimistic: search below it again, now running every probe.
        best = _largest_fitting(lambda k: fits(k) and runs(k * multiple_of), best - 1)
    if best == 0:
        raise ValueError(f"batch_size={multiple_of} already does not fit (limit {limit} "
                         f"bytes, predicted {predicted.get(multiple_of)}): {outcome}")
    return MemoryBatchSize(best * multiple_of, limit, "analysis" if use_analysis else "trial",
                           predicted, outcome)


def _largest_fitting(fits: Callable[[int], bool], cap: int) -> int:
    """Largest k in [1, cap] with fits(k) (0 if none), assuming fits is monotone: doubling
    from 1, then bisection between the last k that fits and the first that does not."""
    last, k = 0, 1
    while k <= cap and fits(k):
        last, k = k, 2 * k
    first_failing = min(k, cap + 1)
    while first_failing - last > 1:
        mid = (last + first_failing) // 2
        last, first_failing = (mid, first_failing) if fits(mid) else (last, mid)
    return last


@dataclasses.dataclass(frozen=True)
class NoiseScale:
    """The outcome of `critical_batch_size` (McCandlish et al. 2018, App. A.1).

    b_simple = trace_sigma / grad_sq_norm, the ratio of the means over draws, with its
    delta-method standard error; batch_size is it rounded (None if |G|^2 was estimated
    <= 0, i.e. the gradient signal is not resolved). The per-draw unbiased estimates
    (shape [K]) and b_simple_running_K (the ratio of running means after k draws) show how
    the estimate settles.
    """

    batch_size: int | None
    b_simple: float
    b_simple_stderr: float
    trace_sigma: float
    grad_sq_norm: float
    trace_sigma_K: np.ndarray
    grad_sq_norm_K: np.ndarray
    b_simple_running_K: np.ndarray
    small_batch_size: int
    big_batch_size: int


def critical_batch_size(state: TrainState, data: Batch, *, loss: Loss, small_batch_size: int,
                        big_batch_size: int, num_draws: int = 64,
                        data_seed: int = 0) -> NoiseScale:
    """The simple noise scale B_simple = tr(Sigma) / |G|^2 at the state's parameters.

    G is the full gradient of the mean loss over the examples of `data` and Sigma the
    covariance of one example's gradient. A batch of B examples drawn uniformly with
    replacement has E|G_B|^2 = |G|^2 + tr(Sigma) / B, so two sizes b < B give unbiased
    estimates (McCandlish et al. 2018, eqs. A.2-A.3):
        |G|^2    ~ (B |G_B|^2 - b |G_b|^2) / (B - b),
        tr Sigma ~ (|G_b|^2 - |G_B|^2) / (1/b - 1/B).
    Each of num_draws draws takes a big batch and its first b examples as the small one (the
    paper's one-device share of the all-reduced batch); the two estimates are averaged over
    draws separately before their ratio is taken, as the paper recommends (the ratio of
    noisy estimates is biased). Gradients are those of the train step (train=True, dropout
    drawn per draw), so the loss must be an unweighted mean. B_simple approximates the
    critical batch size: larger batches give diminishing returns per example.
    """
    if not isinstance(small_batch_size, int) or not isinstance(big_batch_size, int) \
            or not 1 <= small_batch_size < big_batch_size:
        raise ValueError(f"small_batch_size={small_batch_size!r}, big_batch_size="
                         f"{big_batch_size!r}; need integers 1 <= small < big")
    if not isinstance(num_draws, int) or num_draws < 2:
        raise ValueError(f"num_draws={num_draws!r}; must be an integer >= 2")
    train_step, size = make_train_step(loss), num_examples(data)

    def sq_norms(state, data, key):
        def draw(k):
            data_key, dropout_key = jax.random.split(k)
            idx = jax.random.randint(data_key, (big_batch_size,), 0, size)
            big = jax.tree.map(lambda a: a[idx], data)
            small = jax.tree.map(lambda a: a[:small_batch_size], big)
            drawn = state.replace(rng=dropout_key)
            return tuple(train_step(drawn, b)[1]["grad_norm"].astype(jnp.float32) ** 2
                         for b in (small, big))

        return jax.lax.map(draw, jax.random.split(key, num_draws))

    key = jax.random.PRNGKey(data_seed)
    small_K, big_K = (np.asarray(a, np.float64) for a in jax.jit(sq_norms)(state, data, key))
    b, B = small_batch_size, big_batch_size
    grad_sq_K = (B * big_K - b * small_K) / (B - b)
    trace_K = (small_K - big_K) / (1.0 / b - 1.0 / B)
    trace, grad_sq = float(trace_K.mean()), float(grad_sq_K.mean())
    draws = np.arange(1, num_draws + 1)
    running = np.cumsum(trace_K) / draws / (np.cumsum(grad_sq_K) / draws)
    if grad_sq <= 0:
        return NoiseScale(None, math.inf, math.inf, trace, grad_sq, trace_K, grad_sq_K, running,
                          b, B)
    ratio = trace / grad_sq
    # Delta method for a ratio of means: Var(S/G) ~ Var(S - r G) / (K G^2).
    stderr = float(np.std(trace_K - ratio * grad_sq_K, ddof=1) / (math.sqrt(num_draws) * grad_sq))
    return NoiseScale(max(1, round(ratio)), ratio, stderr, trace, grad_sq, trace_K, grad_sq_K,
                      running, b, B)


BATCH_SIZE_FINDERS: dict[str, Callable[..., Any]] = {
    "memory": max_batch_size_in_memory,
    "noise_scale": critical_batch_size,
}


def find_batch_size(state: TrainState, data: Batch, *, loss: Loss, mode: str = "memory",
                    **options) -> MemoryBatchSize | NoiseScale:
    """The finder `BATCH_SIZE_FINDERS[mode]` with `options`: "memory" ->
    `max_batch_size_in_memory` (memory_limit_bytes, max_batch_size, multiple_of, method);
    "noise_scale" -> `critical_batch_size` (small_batch_size, big_batch_size, num_draws,
    data_seed). Both results carry `batch_size`."""
    if mode not in BATCH_SIZE_FINDERS:
        raise ValueError(f"mode={mode!r}; known: {sorted(BATCH_SIZE_FINDERS)}")
    return BATCH_SIZE_FINDERS[mode](state, data, loss=loss, **options)
