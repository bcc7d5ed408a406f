"""The learning-rate finder: the LR range test (Smith 2017, "Cyclical Learning Rates for
Training Neural Networks", WACV, Sec. 3.3; the fastai / PyTorch Lightning `lr_find`),
cross-checked against the stability bound 2 / lambda_max of gradient descent on the local
quadratic. It runs training steps, so it lives in train/ (optim/ stays pure optax). A pure
function of the state: the caller's state is read, never changed (no buffer is donated).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dl_theory.data.batching import Batch, Sampler
from dl_theory.optim.build import is_injected_value, set_hyperparam
from dl_theory.theory.sharpness import hessian_top_eigenvalue
from dl_theory.train.losses import Loss
from dl_theory.train.state import TrainState
from dl_theory.train.step import make_train_step

# The usable range is where the smoothed loss has made the central 80% of its fall: from 10%
# to 90% of the way from its first value to its minimum (a rise-time definition, robust to
# the flat noisy start and to the flat bottom, which a slope-sign rule is not).
_FALL_FRACTIONS = (0.1, 0.9)


@dataclasses.dataclass(frozen=True)
class LRFindResult:
    """The outcome of `lr_find`; arrays have one entry per swept rate that was used ([T]).

    losses_T[i] is the training loss on the batch drawn after the update with rate lrs_T[i]
    (the loss that this update produced); smoothed_T is its centred running median.
    suggestion, usable_range = (lo, hi) and lr_at_min are None when the loss never fell.
    sharpness is lambda_max of the loss Hessian at the initial parameters (on the first
    batch) and stability_bound = 2 / sharpness, the largest stable step of gradient descent
    on the local quadratic; both None when not computed (model too large) or sharpness <= 0.
    """

    lrs_T: np.ndarray
    losses_T: np.ndarray
    smoothed_T: np.ndarray
    initial_loss: float
    diverged: bool
    suggestion: float | None
    usable_range: tuple[float, float] | None
    lr_at_min: float | None
    sharpness: float | None
    stability_bound: float | None


def _learning_rate_setter(opt_state: Any) -> Callable[[Any, jax.Array], Any]:
    """(opt_state, lr) -> opt_state with its injected learning rate replaced by lr.

    Finds `hyperparams["learning_rate"]` of an `optax.inject_hyperparams` state wherever it
    sits: at the top, inside an optax.chain tuple, or under MultiSteps' `inner_opt_state`.
    """
    found = optax.tree_utils.tree_get_all_with_path(opt_state, "learning_rate",
                                                    is_injected_value)
    if len(found) != 1:
        raise ValueError(f"lr_find needs exactly one learning rate injected with "
                         f"optax.inject_hyperparams in the optimizer state (as build_optimizer "
                         f"does); found {len(found)}")
    schedule_states = optax.tree_utils.tree_get_all_with_path(opt_state, "hyperparams_states")
    if any("learning_rate" in states for _, states in schedule_states):
        raise ValueError("lr_find needs a constant learning rate: a schedule would overwrite "
                         "the swept rate at every update (build the optimizer with "
                         "schedule='constant')")
    dtype = found[0][1].dtype
    return lambda state, lr: set_hyperparam(state, learning_rate=jnp.asarray(lr, dtype))


def _sweep_program(train_step, sample_batch: Sampler, set_lr, smoothing: float,
                   diverge_factor: float):
    """(state, data, key, lrs_T) -> (losses [T+1], stopped [T+1]) as one lax.scan.

    Iteration t sets the rate lrs_T[t] and steps; its loss is the one *before* its update,
    so losses[t + 1] is the effect of rate t. The bias-corrected EMA of the losses decides
    divergence causally; once it fired, lax.cond skips the step (a real branch on CPU/GPU),
    so the rest of the fixed-length scan costs almost nothing and the diverging parameters
    are not pushed on to inf and NaN. Breaking out early instead would need chunks and a
    host round trip per chunk, for no gain at ~100 steps.
    """

    def sweep(state: TrainState, data: Batch, key: jax.Array, lrs_T: jax.Array):
        num_lrs = lrs_T.shape[0]

        def run(state, t):
            lr = lrs_T[jnp.minimum(t, num_lrs - 1)]  # the last iteration only measures
            state = state.replace(opt_state=set_lr(state.opt_state, lr))
            state, metrics = train_step(state, sample_batch(data, jax.random.fold_in(key, t)))
            return state, metrics["loss"].astype(jnp.float32)

        def skip(state, _t):
            return state, jnp.full((), jnp.nan, jnp.float32)

        def body(carry, t):
            state, avg, best, stopped = carry
            state, loss_t = jax.lax.cond(stopped, skip, run, state, t)
            avg = jnp.where(stopped, avg, smoothing * avg + (1.0 - smoothing) * loss_t)
            smooth = avg / (1.0 - smoothing ** (t + 1).astype(jnp.float32))
            best = jnp.minimum(best, smooth)
            stopped = stopped | ~jnp.isfinite(smooth) | (smooth > diverge_factor * best)
            return (state, avg, best, stopped), (loss_t, stopped)

        init = (state, jnp.zeros((), jnp.float32), jnp.full((), jnp.inf, jnp.float32),
                jnp.zeros((), bool))
        _, (losses, stopped) = jax.lax.scan(body, init, jnp.arange(num_lrs + 1))
        return losses, stopped

    return sweep


def _centered_median(x_T: np.ndarray, window: int) -> np.ndarray:
    """Running median over `window` points centred on each (shrinking at the ends). Unlike
    an EMA it does not lag (a lag shifts every feature of the curve to larger rates); unlike
    a mean it leaves a monotone curve unchanged and ignores a few outlying batches, such as
    the exploding losses at the end of the sweep."""
    half = window // 2
    return np.array([np.median(x_T[max(t - half, 0):t + half + 1]) for t in range(x_T.size)])


def _suggest(lrs_T: np.ndarray, smoothed_T: np.ndarray, window: int):
    """(suggestion, (lo, hi), lr_at_min) from the smoothed curve; Nones if it never fell."""
    i_min = int(np.argmin(smoothed_T))
    fall = smoothed_T[0] - smoothed_T[i_min]
    if i_min == 0 or not fall > 0:
        return None, None, None
    level_lo, level_hi = (smoothed_T[0] - f * fall for f in _FALL_FRACTIONS)
    # lo: from here on the loss stays below the 10% level (so an early noisy dip does not
    # count); hi: the first point after lo at the 90% level.
    i_lo = int(np.flatnonzero(smoothed_T[:i_min + 1] > level_lo)[-1]) + 1
    i_hi = i_lo + int(np.argmax(smoothed_T[i_lo:i_min + 1] <= level_hi))
    # Slope d(loss)/d(log lr) by central differences `half` points either side: a window,
    # not neighbouring points, so one noisy batch cannot make the steepest point.
    half, idx = max(1, window // 2), np.arange(lrs_T.size)
    ahead, behind = np.minimum(idx + half, idx[-1]), np.maximum(idx - half, 0)
    log_lr = np.log(lrs_T)
    slope_T = (smoothed_T[ahead] - smoothed_T[behind]) / (log_lr[ahead] - log_lr[behind])
    steepest = i_lo + int(np.argmin(slope_T[i_lo:i_hi + 1]))
    return float(lrs_T[steepest]), (float(lrs_T[i_lo]), float(lrs_T[i_hi])), float(lrs_T[i_min])


def _sharpness(state: TrainState, batch: Batch, loss: Loss) -> float:
    """lambda_max of the Hessian of the (deterministic, train=False) loss on `batch`."""

    def top(params, batch):
        def loss_fn(p):
            pred = state.apply_fn({"params": p, **state.model_state}, batch["x"], train=False)
            return loss(pred, batch["y"], batch.get("weight"))

        return hessian_top_eigenvalue(loss_fn, params).eigenvalue

    return float(jax.jit(top)(state.params, batch))


def lr_find(state: TrainState, data: Batch, sample_batch: Sampler, *, loss: Loss,
            min_lr: float = 1e-7, max_lr: float = 10.0, num_steps: int = 100,
            smoothing: float = 0.98, window: int = 11, diverge_factor: float = 4.0,
            data_seed: int = 0, curvature_max_params: int = 100_000) -> LRFindResult:
    """The learning-rate range test (Smith 2017, Sec. 3.3) on a copy of `state`.

    Rate t of num_steps is lr_t = min_lr (max_lr / min_lr)^(t / (num_steps - 1)), set through
    the optimizer's injected learning rate (so the optimizer must be built with
    `optax.inject_hyperparams` and a constant rate, as `build_optimizer` does by default);
    batch t is sample_batch(data, fold_in(key(data_seed), t)). The sweep stops (see
    `_sweep_program`) once the bias-corrected EMA of the loss, m_t / (1 - smoothing^(t+1)),
    exceeds diverge_factor times its minimum so far, or the loss is not finite.
    Under gradient accumulation (MultiSteps) a "step" is a micro-step.

    Suggestion rule: the steepest descent of the smoothed loss (a centred `window`-point
    running median) in log lr, by central differences over `window` points, searched within
    the usable range [lo, hi]: from lo on the smoothed loss stays below the level of 10% of
    its fall (from its first value to its minimum), and hi is where it first reaches 90% of
    that fall. The causal EMA is kept only for the
    stopping rule: its lag of ~smoothing / (1 - smoothing) steps (49 at 0.98) would shift
    the curve by a factor (max_lr / min_lr)^(lag / num_steps) in rate, which moves the
    usable range of a quadratic past 2 / lambda_max.
    Known weakness: the suggestion is a heuristic on the upper side. It depends on batch
    noise, on the sweep length (a faster sweep leaves fewer steps at each rate, so the loss
    falls later, at larger rates) and on the smoothing. The loss minimum (lr_at_min) lies
    beyond the stability bound even on a quadratic (an unstable mode needs steps to regrow),
    which is why the minimum itself is never suggested. The stability bound is exact for
    gradient descent on a quadratic; for momentum or adaptive methods it is only a scale.

    Args:
        state: the starting state; not modified.
        data, sample_batch: the training data and a sampler (dl_theory.data.batching).
        loss: a loss from dl_theory.train.losses (non-negative, for the divergence rule).
        min_lr, max_lr, num_steps: the sweep, 0 < min_lr < max_lr, num_steps >= 2.
        smoothing: EMA factor in [0, 1) of the stopping rule (0: the raw loss).
        window: points (odd, >= 1) of the centred median and of the slope's difference. A
            batch-loss noise of relative size s leaves ~1.25 s / sqrt(window) on it; the
            price is a resolution of window / num_steps of the sweep's decades (11 of 100
            steps over 8 decades: ~0.9 decade), so a noisy problem wants more steps.
        diverge_factor: > 1; stop when the smoothed loss exceeds this times its minimum.
        data_seed: seeds the batch draws.
        curvature_max_params: compute sharpness and stability_bound only for models with
            at most this many parameters (power iteration: up to 100 Hessian-vector
            products).
    """
    _check_lr_find_args(min_lr, max_lr, num_steps, smoothing, window, diverge_factor)
    set_lr = _learning_rate_setter(state.opt_state)
    lrs_T = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
    sweep = jax.jit(_sweep_program(make_train_step(loss), sample_batch, set_lr, smoothing,
                                   diverge_factor))
    key = jax.random.PRNGKey(data_seed)
    losses, stopped = (np.asarray(a) for a in
                       sweep(state, data, key, jnp.asarray(lrs_T, jnp.float32)))
    # losses[t + 1] belongs to lrs_T[t]; keep up to the step that tripped the stop (the
    # first rise is part of the picture) and drop non-finite values from the analysis.
    used = int(np.argmax(stopped)) if stopped.any() else num_steps
    paired = losses[1:used + 1]
    finite = int(np.argmax(~np.isfinite(paired))) if not np.isfinite(paired).all() else used
    lrs, paired = lrs_T[:finite], paired[:finite].astype(np.float64)
    smoothed = _centered_median(paired, window)
    suggestion, usable, at_min = _suggest(lrs, smoothed, window) if finite >= 2 else (None,) * 3
    sharpness = bound = None
    if sum(x.size for x in jax.tree.leaves(state.params)) <= curvature_max_params:
        sharpness = _sharpness(state, sample_batch(data, jax.random.fold_in(key, 0)), loss)
        bound = 2.0 / sharpness if sharpness > 0 else None
    return LRFindResult(lrs_T=lrs, losses_T=paired, smoothed_T=smoothed,
                        initial_loss=float(losses[0]), diverged=bool(stopped.any()),
                        suggestion=suggestion, usable_range=usable, lr_at_min=at_min,
                        sharpness=sharpness, stability_bound=bound)


def _check_lr_find_args(min_lr, max_lr, num_steps, smoothing, window, diverge_factor):
    if not 0 < min_lr < max_lr:
        raise ValueError(f"min_lr={min_lr!r}, max_lr={max_lr!r}; need 0 < min_lr < max_lr")
    if not isinstance(num_steps, int) or num_steps < 2:
        raise ValueError(f"num_steps={num_steps!r}; must be an integer >= 2")
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing={smoothing!r}; must be in [0, 1)")
    if not isinstance(window, int) or window < 1 or window % 2 == 0:
        raise ValueError(f"window={window!r}; must be an odd integer >= 1")
    if not diverge_factor > 1:
        raise ValueError(f"diverge_factor={diverge_factor!r}; must be > 1")


def plot_lr_find(result: LRFindResult, path_or_ax):
    """Loss against rate (log axis): raw and smoothed loss, the usable range shaded, the
    suggestion, and the stability bound 2 / lambda_max when known. `path_or_ax` is a
    matplotlib Axes to draw into, or a file path (PNG) to save a new figure to; returns the
    Axes."""
    from matplotlib.figure import Figure  # plotting is optional; keep it off the import path

    is_path = isinstance(path_or_ax, (str, os.PathLike))
    fig = Figure(figsize=(6, 4)) if is_path else None
    ax = fig.subplots() if is_path else path_or_ax
    ax.plot(result.lrs_T, result.losses_T, color="0.7", lw=1, label="loss")
    ax.plot(result.lrs_T, result.smoothed_T, color="C0", lw=2, label="smoothed loss")
    if result.usable_range is not None:
        ax.axvspan(*result.usable_range, color="C0", alpha=0.12, label="usable range")
        ax.axvline(result.suggestion, color="C1", ls="-",
                   label=f"suggestion {result.suggestion:.3g}")
    if result.stability_bound is not None:
        ax.axvline(result.stability_bound, color="C3", ls="--",
                   label=f"2/$\\lambda_{{max}}$ = {result.stability_bound:.3g}")
    # The exploding tail would flatten the rest of the curve: it is let run off the top.
    top = max(result.initial_loss, float(np.max(result.smoothed_T, initial=0.0)))
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
           title="learning-rate range test", ylim=(0.0, 1.2 * top))
    ax.legend(fontsize=8)
    if is_path:
        fig.savefig(path_or_ax, dpi=120, bbox_inches="tight")
    return ax
