"""build_optimizer: every training technique is one link of one optax chain, from config.

    MultiSteps(k) ( clip -> inject_hyperparams( [l2] -> [l1] -> base(lr) [+ prox]
                                                -> [decoupled wd] ) -> [swa] )

A link is present only when its key is set, so techniques compose in any combination. The
learning rate (and weight decay) are injected hyper-parameters: they live in the optimizer
state, the train step reports the current rate, and a grid of models can carry one rate per
member (`dl_theory.train.state.set_hyperparams`). Schedules count optimizer updates, so
under accumulation a warm-up of N steps stays N updates. With prox.kind set, the base step is
followed by ProxGen's proximal map with the base's own preconditioner
(`dl_theory.optim.proximal`); its strength is injected too (`prox_strength`), so a grid can
carry one strength per member.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any

import ml_collections
import optax

from dl_theory.optim.penalties import add_l1_subgradient, add_l2_gradient
from dl_theory.optim.proximal import PRECONDITIONERS, PROX_MAPS, proximal_step
from dl_theory.optim.schedules import SCHEDULES, build_schedule
from dl_theory.optim.swa import swa, swa_schedule
from dl_theory.user_errors import ConfigError

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
    accumulate_steps, swa.{start_step, frequency, learning_rate, min_learning_rate},
    prox.{kind ("none" or one of dl_theory.optim.proximal.PROX_MAPS), strength (lambda >= 0)}.
    """
    config = ml_collections.ConfigDict(dict(
        name="adam", learning_rate=1e-3, schedule="constant", decay_steps=0,
        final_lr_fraction=0.0, warmup_steps=0, decay_rate=0.1, boundaries=(), step_factor=0.1,
        pct_start=0.3, kwargs={},
        clip_global_norm=0.0, clip_value=0.0, clip_adaptive=0.0,
        weight_decay=0.0, l1=0.0, l2=0.0, accumulate_steps=1,
        swa=dict(start_step=0, frequency=1, learning_rate=0.0, min_learning_rate=0.0),
        prox=dict(kind="none", strength=0.0)))
    swa_overrides = overrides.pop("swa", {})
    prox_overrides = overrides.pop("prox", {})
    config.update(overrides)
    config.swa.update(swa_overrides)
    config.prox.update(prox_overrides)
    return config


_KNOWN_KEYS = set(optimizer_config().keys())
_KNOWN_SWA_KEYS = set(optimizer_config().swa.keys())
_KNOWN_PROX_KEYS = set(optimizer_config().prox.keys())
# Keys that must be finite reals >= 0 (0 switches the technique off), and what else they need.
_NONNEGATIVE = ("weight_decay", "l1", "l2", *_CLIPS, "decay_rate", "step_factor")
_FRACTIONS = ("final_lr_fraction", "pct_start")
_NONNEGATIVE_INTS = ("warmup_steps", "decay_steps")


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _real_error(key: str, value, *, low: float, low_open: bool = False,
                high: float | None = None) -> str | None:
    """None if `value` is a finite real in the range, else "key=value: what is allowed"."""
    allowed = (f"a finite number {'>' if low_open else '>='} {low:g}" if high is None
               else f"a finite number in [{low:g}, {high:g}]")
    if (not _is_real(value) or not math.isfinite(value) or value < low
            or (low_open and value == low) or (high is not None and value > high)):
        return f"{key}={value!r}; allowed: {allowed}"
    return None


def optimizer_config_errors(config: ml_collections.ConfigDict,
                            prefix: str = "optimizer") -> list[str]:
    """Every problem of an optimizer config (see `optimizer_config`), each "prefix.key=value;
    allowed: ...": unknown keys or names, non-finite or out-of-range numbers, non-integer
    counts, contradictory clipping. Keys absent from `config` take their defaults."""
    errors = []
    unknown = set(config.keys()) - _KNOWN_KEYS
    if unknown:
        errors.append(f"unknown optimizer keys {sorted(unknown)} in {prefix}; known: "
                      f"{sorted(_KNOWN_KEYS)}")
    name, schedule = config.get("name", "adam"), config.get("schedule", "constant")
    if name not in BASE_OPTIMIZERS:
        errors.append(f"{prefix}.name={name!r}; known: {sorted(BASE_OPTIMIZERS)}")
    if schedule not in SCHEDULES:
        errors.append(f"{prefix}.schedule={schedule!r}; known: {sorted(SCHEDULES)}")
    checks = [("learning_rate", dict(low=0.0, low_open=True))]
    checks += [(key, dict(low=0.0)) for key in _NONNEGATIVE]
    checks += [(key, dict(low=0.0, high=1.0)) for key in _FRACTIONS]
    for key, bounds in checks:
        if key in config or key == "learning_rate":
            errors.append(_real_error(f"{prefix}.{key}", config.get(key), **bounds))
    for key in _NONNEGATIVE_INTS:
        value = config.get(key, 0)
        if not _is_int(value) or value < 0:
            errors.append(f"{prefix}.{key}={value!r}; allowed: an integer >= 0")
    k = config.get("accumulate_steps", 1)
    if not _is_int(k) or k < 1:
        errors.append(f"{prefix}.accumulate_steps={k!r}; allowed: an integer >= 1")
    boundaries = config.get("boundaries") or ()
    if not all(_is_int(b) and b >= 0 for b in boundaries):
        errors.append(f"{prefix}.boundaries={tuple(boundaries)!r}; allowed: integers >= 0")
    for key, value in dict(config.get("kwargs") or {}).items():
        if _is_real(value) and not math.isfinite(value):
            errors.append(f"{prefix}.kwargs.{key}={value!r}; allowed: a finite number")
    clips = [key for key in _CLIPS if config.get(key)]
    if len(clips) > 1:
        errors.append(f"contradictory clipping {[f'{prefix}.{c}' for c in clips]}: set at most "
                      f"one of {sorted(_CLIPS)}")
    errors.extend(_swa_errors(config.get("swa"), f"{prefix}.swa"))
    errors.extend(_prox_errors(config.get("prox"), name, f"{prefix}.prox"))
    return [e for e in errors if e]


def _prox_errors(prox_config, base_name: str, prefix: str) -> list[str]:
    if not prox_config:
        return []
    unknown = set(prox_config.keys()) - _KNOWN_PROX_KEYS
    errors = [f"unknown keys {sorted(unknown)} in {prefix}; known: {sorted(_KNOWN_PROX_KEYS)}"
              ] if unknown else []
    kind, strength = prox_config.get("kind", "none"), prox_config.get("strength", 0.0)
    if kind != "none" and kind not in PROX_MAPS:
        errors.append(f"{prefix}.kind={kind!r}; known: {['none', *sorted(PROX_MAPS)]}")
    errors.append(_real_error(f"{prefix}.strength", strength, low=0.0))
    if kind in PROX_MAPS and base_name not in PRECONDITIONERS:
        errors.append(f"{prefix}.kind={kind!r} with optimizer name={base_name!r}: the proximal "
                      f"step needs a known preconditioner; allowed names: "
                      f"{sorted(PRECONDITIONERS)}")
    return errors


def _swa_errors(swa_config, prefix: str) -> list[str]:
    if not swa_config:
        return []
    errors = []
    unknown = set(swa_config.keys()) - _KNOWN_SWA_KEYS
    if unknown:
        errors.append(f"unknown keys {sorted(unknown)} in {prefix}; known: "
                      f"{sorted(_KNOWN_SWA_KEYS)}")
    for key, least in (("start_step", 0), ("frequency", 1)):
        value = swa_config.get(key, least)
        if not _is_int(value) or value < least:
            errors.append(f"{prefix}.{key}={value!r}; allowed: an integer >= {least}")
    for key in ("learning_rate", "min_learning_rate"):
        errors.append(_real_error(f"{prefix}.{key}", swa_config.get(key, 0.0), low=0.0))
    return errors


def validate_optimizer_config(config: ml_collections.ConfigDict,
                              prefix: str = "optimizer") -> None:
    """Raises `ConfigError` listing every problem `optimizer_config_errors` finds (unknown
    names, NaN/inf or out-of-range values, contradictory settings), before anything is built."""
    errors = optimizer_config_errors(config, prefix)
    if errors:
        raise ConfigError("; ".join(errors))


def _core_factory(name: str, kwargs: dict, l1: float, l2: float, prox_kind: str = "none"):
    """The injectable part: a function of the hyper-parameters that inject_hyperparams feeds
    (learning_rate, weight_decay and, with a proximal step, prox_strength; the rest is fixed
    here, outside its reach)."""

    def core(learning_rate, weight_decay, prox_strength=0.0):
        links = []
        if l2:
            links.append(add_l2_gradient(l2))
        if l1:
            links.append(add_l1_subgradient(l1))
        base = BASE_OPTIMIZERS[name](learning_rate=learning_rate, **kwargs)
        if prox_kind != "none":
            base = proximal_step(base, prox_kind, prox_strength, learning_rate,
                                 PRECONDITIONERS[name], kwargs)
        links.append(base)
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
    prox_config = config.get("prox") or {}
    prox_kind = prox_config.get("kind", "none")
    core = _core_factory(config.name, dict(config.get("kwargs") or {}), config.get("l1", 0.0),
                         config.get("l2", 0.0), prox_kind)
    hyperparams = dict(learning_rate=_learning_rate(config, total_steps),
                       weight_decay=float(config.get("weight_decay", 0.0)))
    if prox_kind != "none":
        hyperparams["prox_strength"] = float(prox_config.get("strength", 0.0))
    links = [_CLIPS[k](config[k]) for k in _CLIPS if config.get(k)]
    links.append(optax.inject_hyperparams(core)(**hyperparams))
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
