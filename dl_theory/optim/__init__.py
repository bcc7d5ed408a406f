"""Optimizers as optax chains built from config (optax only: nothing here runs steps)."""

from dl_theory.optim.build import (
    BASE_OPTIMIZERS,
    build_optimizer,
    current_hyperparam,
    optimizer_config,
    set_hyperparam,
    validate_optimizer_config,
)
from dl_theory.optim.schedules import SCHEDULES, build_schedule
from dl_theory.optim.swa import averaged_params, swa, swa_schedule

__all__ = [
    "BASE_OPTIMIZERS", "SCHEDULES", "averaged_params", "build_optimizer", "build_schedule",
    "current_hyperparam", "optimizer_config", "set_hyperparam", "swa", "swa_schedule",
    "validate_optimizer_config",
]
