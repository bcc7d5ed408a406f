"""Optimizers as optax chains built from config (optax only: nothing here runs steps)."""

from dl_theory.optim.build import BASE_OPTIMIZERS, build_optimizer, build_schedule

__all__ = ["BASE_OPTIMIZERS", "build_optimizer", "build_schedule"]
