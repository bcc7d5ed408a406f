"""Eval-mode mean squared error of a model, alone or for every member of a stacked grid, and
the test accuracy of every member of a stacked grid of classifiers."""

from __future__ import annotations

import jax
import numpy as np

from dl_theory.train.losses import accuracy, mean_squared_error


def model_mse(model, params, model_state, data) -> jax.Array:
    """Eval-mode (train=False) mean squared error of one model on `data` {"x", "y"}."""
    pred = model.apply({"params": params, **model_state}, data["x"], train=False)
    return mean_squared_error(pred, data["y"])


def members_mse(model, params, model_state, data) -> np.ndarray:
    """Eval-mode MSE of every member of a stacked grid (leading axis of params), shape [G]."""
    return np.asarray(jax.vmap(lambda p, s: model_mse(model, p, s, data))(params, model_state))


def members_accuracy(model, params, data) -> np.ndarray:
    """Accuracy (arg-max logit = label) of every member of a stacked grid of classifiers
    without model state (leading axis of params) on `data` {"x", "y"}, shape [G]."""
    return np.asarray(jax.vmap(lambda p: accuracy(model.apply({"params": p}, data["x"]),
                                                  data["y"]))(params))
