"""Learning-rate schedules from config, each a thin name over an optax schedule.

Schedules count optimizer updates: under gradient accumulation (optax.MultiSteps) the
inner optimizer, and so its schedule, advances once per k micro-batches.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import ml_collections
import optax

from dl_theory.user_errors import ConfigError

Schedule = Callable[[int], float]


def _decay_steps(config, total_steps):
    steps = config.get("decay_steps") or total_steps
    if not steps or steps < 1:
        raise ConfigError(f"schedule={config.schedule!r} needs optimizer.decay_steps >= 1 (or a "
                         f"run length); got {steps!r}")
    return int(steps)


def _constant(config, total_steps):
    return config.learning_rate


def _linear(config, total_steps):
    """Linear decay from learning_rate to learning_rate * final_lr_fraction."""
    lr = config.learning_rate
    return optax.linear_schedule(lr, lr * config.get("final_lr_fraction", 0.0),
                                 _decay_steps(config, total_steps))


def _exponential(config, total_steps):
    """lr * decay_rate ** (step / decay_steps)."""
    return optax.exponential_decay(config.learning_rate, _decay_steps(config, total_steps),
                                   config.get("decay_rate", 0.1))


def _step(config, total_steps):
    """Piecewise constant: multiply by `step_factor` at each of `boundaries` (updates)."""
    boundaries = config.get("boundaries")
    if not boundaries:
        raise ConfigError("schedule='step' needs optimizer.boundaries, e.g. (1000, 2000)")
    factor = config.get("step_factor", 0.1)
    return optax.piecewise_constant_schedule(config.learning_rate,
                                             {int(b): factor for b in boundaries})


def _cosine(config, total_steps):
    """Cosine decay to learning_rate * final_lr_fraction (Loshchilov & Hutter 2017)."""
    return optax.cosine_decay_schedule(config.learning_rate, _decay_steps(config, total_steps),
                                       alpha=config.get("final_lr_fraction", 0.0))


def _warmup_cosine(config, total_steps):
    """Linear warm-up from 0 over `warmup_steps`, then cosine decay (Goyal et al. 2017)."""
    warmup = config.get("warmup_steps", 0)
    decay = _decay_steps(config, total_steps)
    if not 0 <= warmup < decay:
        raise ConfigError(f"warmup_steps={warmup} must be in [0, decay_steps={decay})")
    lr = config.learning_rate
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, decay,
                                              end_value=lr * config.get("final_lr_fraction", 0.0))


def _one_cycle(config, total_steps):
    """One-cycle policy (Smith & Topin 2019): up to learning_rate, then far below it."""
    return optax.cosine_onecycle_schedule(_decay_steps(config, total_steps), config.learning_rate,
                                          pct_start=config.get("pct_start", 0.3))


def _inverse_sqrt(config, total_steps):
    """learning_rate / sqrt(t) at the t-th update, t = 1, 2, ... (optax counts from 0): the
    alpha_t = alpha / sqrt(t) of online convex optimisation (Zinkevich 2003; Reddi et al. 2018,
    Thm 1 and Thm 4). Never reaches zero, so it needs no decay_steps."""
    lr = config.learning_rate
    return lambda count: lr / jnp.sqrt(jnp.asarray(count, jnp.float32) + 1.0)


SCHEDULES: dict[str, Callable] = {
    "constant": _constant, "linear": _linear, "exponential": _exponential, "step": _step,
    "cosine": _cosine, "warmup_cosine": _warmup_cosine, "one_cycle": _one_cycle,
    "inverse_sqrt": _inverse_sqrt,
}


def build_schedule(config: ml_collections.ConfigDict,
                   total_steps: int | None = None) -> float | Schedule:
    """The learning rate of `config.schedule` (default "constant"): a float or a schedule of
    the update count. `decay_steps` defaults to `total_steps`, the run's update count."""
    name = config.get("schedule", "constant")
    if name not in SCHEDULES:
        raise ConfigError(f"optimizer.schedule={name!r}; known: {sorted(SCHEDULES)}")
    return SCHEDULES[name](config, total_steps)
