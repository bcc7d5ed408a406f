"""build_optimizer: one optax GradientTransformation from a ConfigDict.

The base optimizer is wrapped in `optax.inject_hyperparams`, so the learning rate (constant
or scheduled) lives in the optimizer state: the train step reports it as a metric, and a grid
of models can carry one learning rate per member (`dl_theory.train.state.set_hyperparams`).
"""

from __future__ import annotations

import functools
from typing import Callable

import ml_collections
import optax

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


def build_schedule(config: ml_collections.ConfigDict,
                   total_steps: int | None = None) -> float | optax.Schedule:
    """The learning rate: a float, or a schedule from `config.schedule`.

    "constant": config.learning_rate. "cosine": cosine decay from learning_rate to
    learning_rate * config.get("final_lr_fraction", 0) over config.decay_steps updates
    (default: `total_steps`, the length of the run).
    """
    name = config.get("schedule", "constant")
    if name == "constant":
        return config.learning_rate
    if name == "cosine":
        decay_steps = config.get("decay_steps") or total_steps
        if not decay_steps or decay_steps < 1:
            raise ValueError(f"schedule='cosine' needs decay_steps >= 1; got {decay_steps!r}")
        return optax.cosine_decay_schedule(config.learning_rate, decay_steps,
                                           alpha=config.get("final_lr_fraction", 0.0))
    raise ValueError(f"schedule={name!r}; known: ['constant', 'cosine']")


def build_optimizer(config: ml_collections.ConfigDict,
                    total_steps: int | None = None) -> optax.GradientTransformation:
    """The optimizer `config.name` with `config.learning_rate` (and `config.schedule`, whose
    length defaults to `total_steps`); `config.kwargs` (optional) go to the optax optimizer,
    e.g. {"b1": 0.9} for adam or {"momentum": 0.5} for sgd."""
    if config.name not in BASE_OPTIMIZERS:
        raise ValueError(f"optimizer.name={config.name!r}; known: {sorted(BASE_OPTIMIZERS)}")
    if config.learning_rate is None or config.learning_rate <= 0:
        raise ValueError(f"optimizer.learning_rate={config.learning_rate!r}; must be > 0")
    base = BASE_OPTIMIZERS[config.name]
    kwargs = dict(config.get("kwargs", {}))
    return optax.inject_hyperparams(base)(learning_rate=build_schedule(config, total_steps),
                                          **kwargs)
