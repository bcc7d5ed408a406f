"""build_optimizer: every training technique is one link of one optax chain, from config.

    MultiSteps(k) ( clip -> inject_hyperparams( [l2] -> [l1] -> base(lr) -> [decoupled wd] )
                   -> [swa] )

A link is present only when its key is set, so techniques compose in any combination. The
learning rate (and weight decay) are injected hyper-parameters: they live in the optimizer
state, the train step reports the current rate, and a grid of models can carry one rate per
member (`dl_theory.train.state.set_hyperparams`). Schedules count optimizer updates, so
under accumulation a warm-up of N steps stays N updates.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import ml_collections
import optax

from dl_theory.optim.penalties import add_l1_subgradient, add_l2_gradient
from dl_theory.optim.schedules import build_schedule
from dl_theory.optim.swa import swa, swa_schedule

BASE_OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    "sgd": optax.sgd,
    "momentum": functools.partial(optax.sgd, momentum=0.9),
    "nesterov": functools.partial(optax.sgd, momentum=0.9, nesterov=True),
    "adam": optax.adam,
    "adamw": optax.adamw,
    "amsgrad": optax.amsgrad,
    "adagrad": optax.adagrad,
    "adadelta": optax.adadelta,
    "rmsprop": optax.rmsprop,
    "lamb": optax.lamb,
    "lion": optax.lion,
}

_CLIPS = {"clip_global_norm": optax.clip_by_global_norm, "clip_value": optax.clip,
          "clip_adaptive": optax.adaptive_grad_clip}


def optimizer_config(**overrides: Any) -> ml_collections.ConfigDict:
    """The full optimizer config with every key present (so any technique can be switched on
    from the command line, e.g. --config.optimizer.swa.start_step=500), then `overrides`.

    name, learning_rate, schedule (+ decay_steps, final_lr_fraction, warmup_steps, decay_rate,
    boundaries, step_factor, pct_start), kwargs (to the optax optimizer), clip_global_norm |
    clip_value | clip_adaptive (at most one), weight_decay (decoupled), l1, l2,
    accumulate_steps, swa.{start_step, frequency, learning_rate, min_learning_rate}.
    """
    config = ml_collections.ConfigDict(dict(
        name="adam", learning_rate=1e-3, schedule="constant", decay_steps=0,
        final_lr_fraction=0.0, warmup_steps=0, decay_rate=0.1, boundaries=(), step_factor=0.1,
        pct_start=0.3, kwargs={},
        clip_global_norm=0.0, clip_value=0.0, clip_adaptive=0.0,
        weight_decay=0.0, l1=0.0, l2=0.0, accumulate_steps=1,
        swa=dict(start_step=0, frequency=1, learning_rate=0.0, min_learning_rate=0.0)))
    swa_overrides = overrides.pop("swa", {})
    config.update(overrides)
    config.swa.update(swa_overrides)
    return config


_KNOWN_KEYS = set(optimizer_config().keys())


def validate_optimizer_config(config: ml_collections.ConfigDict) -> None:
    """Clear errors for unknown names and contradictory settings, before anything is built."""
    unknown = set(config.keys()) - _KNOWN_KEYS
    if unknown:
        raise ValueError(f"unknown optimizer keys {sorted(unknown)}; known: {sorted(_KNOWN_KEYS)}")
    if config.name not in BASE_OPTIMIZERS:
        raise ValueError(f"optimizer.name={config.name!r}; known: {sorted(BASE_OPTIMIZERS)}")
    if config.learning_rate is None or config.learning_rate <= 0:
        raise ValueError(f"optimizer.learning_rate={config.learning_rate!r}; must be > 0")
    clips = [k for k in _CLIPS if config.get(k)]
    if len(clips) > 1:
        raise ValueError(f"contradictory clipping {clips}: set at most one of {sorted(_CLIPS)}")
    for key in ("weight_decay", "l1", "l2", *_CLIPS):
        if (config.get(key) or 0) < 0:
            raise ValueError(f"optimizer.{key}={config.get(key)}; must be >= 0")
    k = config.get("accumulate_steps", 1)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"optimizer.accumulate_steps={k!r}; must be an integer >= 1")
    swa_config = config.get("swa")
    if swa_config and swa_config.get("start_step"):
        if swa_config.get("frequency", 1) < 1:
            raise ValueError(f"optimizer.swa.frequency={swa_config.frequency}; must be >= 1")


def _core_factory(name: str, kwargs: dict, l1: float, l2: float):
    """The injectable part: a function of the hyper-parameters that inject_hyperparams feeds
    (only learning_rate and weight_decay; the rest is fixed here, outside its reach)."""

    def core(learning_rate, weight_decay):
        links = []
        if l2:
            links.append(add_l2_gradient(l2))
        if l1:
            links.append(add_l1_subgradient(l1))
        links.append(BASE_OPTIMIZERS[name](learning_rate=learning_rate, **kwargs))
        if name != "adamw":  # adamw decays by itself (its kwargs carry weight_decay)
            # Decoupled decay (Loshchilov & Hutter 2019): theta <- theta - lr * wd * theta.
            links.append(optax.add_decayed_weights(-learning_rate * weight_decay))
        return optax.chain(*links)

    return core


def _learning_rate(config, total_steps):
    schedule = build_schedule(config, total_steps)
    swa_config = config.get("swa")
    if not (swa_config and swa_config.get("start_step") and swa_config.get("learning_rate")):
        return schedule
    swa_lr = swa_schedule(swa_config.learning_rate, swa_config.get("frequency", 1),
                          swa_config.get("min_learning_rate") or None)
    base = schedule if callable(schedule) else optax.constant_schedule(schedule)
    return optax.join_schedules([base, swa_lr], [swa_config.start_step])


def _config_key(config, total_steps: int | None) -> str | None:
    """Canonical JSON of (config, total_steps), or None if a value has no JSON form (then
    the optimizer is built afresh: a key that is not a faithful copy could make two
    different configs share one chain)."""
    plain = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    try:
        return json.dumps([plain, total_steps], sort_keys=True)
    except TypeError:
        return None


_BUILT: dict[str, optax.GradientTransformation] = {}
_MAX_BUILT = 512


def build_optimizer(config: ml_collections.ConfigDict,
                    total_steps: int | None = None) -> optax.GradientTransformation:
    """The optax chain that `config` (see `optimizer_config`) describes. `total_steps` (the
    run's number of optimizer updates) is the default length of decaying schedules.

    Equal configs give the same chain object: the training state carries the chain as a
    static field, so programs compiled for it are reused by the next run with that config.
    """
    validate_optimizer_config(config)
    key = _config_key(config, total_steps)
    if key is None:
        return _build(config, total_steps)
    if key not in _BUILT:
        if len(_BUILT) >= _MAX_BUILT:
            _BUILT.pop(next(iter(_BUILT)))
        _BUILT[key] = _build(config, total_steps)
    return _BUILT[key]


def _build(config: ml_collections.ConfigDict,
           total_steps: int | None) -> optax.GradientTransformation:
    core = _core_factory(config.name, dict(config.get("kwargs") or {}), config.get("l1", 0.0),
                         config.get("l2", 0.0))
    links = [_CLIPS[k](config[k]) for k in _CLIPS if config.get(k)]
    links.append(optax.inject_hyperparams(core)(
        learning_rate=_learning_rate(config, total_steps),
        weight_decay=float(config.get("weight_decay", 0.0))))
    swa_config = config.get("swa")
    if swa_config and swa_config.get("start_step"):
        links.append(swa(swa_config.start_step, swa_config.get("frequency", 1)))
    tx = optax.chain(*links)
    k = config.get("accumulate_steps", 1)
    if k > 1:
        # Mean of the k micro-batch gradients; the train step weights each micro-batch's loss
        # by its share of the examples, so the mean equals the large batch's gradient even
        # for masked or unequal micro-batches.
        tx = optax.MultiSteps(tx, every_k_schedule=k).gradient_transformation()
    return tx


def is_injected_value(path, value) -> bool:
    """optax.tree_utils filter: a value in inject_hyperparams' `hyperparams` dict (not the
    schedule state it keeps under the same name in `hyperparams_states`)."""
    parent = path[-2] if len(path) >= 2 else None
    return getattr(parent, "name", None) == "hyperparams"


def current_hyperparam(opt_state, name: str = "learning_rate"):
    """The injected hyper-parameter `name` as used by the latest update (None if absent),
    wherever it sits in the chain (inside MultiSteps, before SWA, ...)."""
    return optax.tree_utils.tree_get(opt_state, name, filtering=is_injected_value)


def set_hyperparam(opt_state, **values):
    """The optimizer state with injected hyper-parameters replaced by `values` (the
    replacement lasts only if the hyper-parameter is constant, not scheduled)."""
    return optax.tree_utils.tree_set(opt_state, is_injected_value, **values)
