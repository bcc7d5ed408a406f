"""Training one model under two precisions and deciding whether the results agree.

Shared by experiments/half_precision.py (bfloat16 vs float32, Kalamkar et al. 2019) and
experiments/loss_scaling.py (float16 with and without loss scaling, Micikevicius et al. 2018):
the MNIST-1D MLP trained as a seed grid under a precision policy, the small-gradient task
(loss and Adam's eps multiplied by a power of two c), and the agreement tolerance of two
S-seed means.
"""

from __future__ import annotations

import ml_collections
import numpy as np

from dl_theory.data.batching import minibatches
from dl_theory.data.mnist1d import NUM_CLASSES
from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.train.fit import fit_grid
from dl_theory.train.losses import accuracy, softmax_cross_entropy
from dl_theory.train.precision import get_policy, make_loss_scale
from dl_theory.train.state import create_train_states

# Adam variants whose update is invariant to a common gradient scale c once eps is scaled by c.
_SCALE_INVARIANT = ("adam", "adamw")


def mnist1d_mlp_config(widths: tuple[int, ...], steps: int, eval_every: int,
                       learning_rate: float) -> dict:
    """The `mlp` config section of both experiments: a ReLU MLP, batch 128, Adam with a
    cosine schedule and an explicit eps (which the small-gradient task scales)."""
    return dict(widths=widths, activation="relu", batch_size=128, steps=steps,
                eval_every=eval_every,
                optimizer=optimizer_config(name="adam", learning_rate=learning_rate,
                                           schedule="cosine", kwargs={"eps": 1e-8}))


def agreement_tolerance(reference_S: np.ndarray, z: float) -> float:
    """z * s * sqrt(2 / S): z standard errors of the difference of two S-seed means, with s the
    sample standard deviation (ddof=1) of the reference runs, shape [S] with S >= 2."""
    reference_S = np.asarray(reference_S, dtype=float)
    if reference_S.ndim != 1 or reference_S.size < 2:
        raise ValueError(f"reference of shape {reference_S.shape}; need [S] with S >= 2 seeds")
    return float(z * reference_S.std(ddof=1) * np.sqrt(2.0 / reference_S.size))


def multiplied_loss(multiplier: float):
    """c * softmax cross-entropy (reduced in float32): the small-gradient task's loss."""

    def loss(logits, labels, weight=None):
        return multiplier * softmax_cross_entropy(logits, labels, weight)

    return loss


def scaled_optimizer(optimizer: ml_collections.ConfigDict,
                     multiplier: float) -> ml_collections.ConfigDict:
    """The optimizer config for a loss multiplied by c: Adam's eps times c, so that the update
    m / (sqrt(v) + eps) is unchanged when every gradient is multiplied by c."""
    if optimizer.name not in _SCALE_INVARIANT:
        raise ValueError(f"optimizer.name={optimizer.name!r}; the small-gradient task needs a "
                         f"scale-invariant optimizer: one of {list(_SCALE_INVARIANT)}")
    scaled = ml_collections.ConfigDict(optimizer.to_dict())
    scaled.kwargs = {**scaled.kwargs, "eps": scaled.kwargs.get("eps", 1e-8) * multiplier}
    return scaled


def train_mnist1d_mlp(mlp: ml_collections.ConfigDict, data: dict, precision: str, seeds: int,
                      log, multiplier: float = 1.0, loss_scale: dict | None = None):
    """Trains the MLP of config section `mlp` on MNIST-1D `data` ({"train", "test"} splits)
    under `precision`, one member per seed 0..seeds-1, with the loss multiplied by
    `multiplier` (and Adam's eps likewise) and, if `loss_scale` (make_loss_scale's keyword
    arguments) is given, dynamic loss scaling. Returns (initial states, final states,
    history)."""
    policy = get_policy(precision)
    tx = build_optimizer(mlp.optimizer if multiplier == 1.0 else
                         scaled_optimizer(mlp.optimizer, multiplier), total_steps=mlp.steps)
    model = MLP(widths=tuple(mlp.widths), out_dim=NUM_CLASSES, activation=mlp.activation,
                **policy.model_dtypes())
    scale = make_loss_scale(policy, **loss_scale) if loss_scale is not None else None
    seed_list = list(range(seeds))
    initial = create_train_states(model, tx, data["train"]["x"][:2], seed_list, loss_scale=scale)
    label = f"mlp {precision}" + (f" x{multiplier:g}" if multiplier != 1 else "") + (
        " loss-scaled" if loss_scale is not None else "")
    final, history = fit_grid(
        initial, data["train"], minibatches(mlp.batch_size), loss=multiplied_loss(multiplier),
        steps=mlp.steps, data_seeds=seed_list, eval_data=data["test"],
        eval_every=mlp.eval_every, eval_metrics={"accuracy": accuracy}, policy=policy, log=log,
        tags={"part": "mlp", "precision": precision, "loss_multiplier": multiplier,
              "loss_scaling": loss_scale is not None}, label=label)
    return initial, final, history


def final_train_loss(history: dict, multiplier: float = 1.0) -> np.ndarray:
    """Mean training loss / multiplier over the last 10% of steps, per seed: shape [S]."""
    losses_SxT = np.asarray(history["loss"]) / multiplier
    return losses_SxT[:, -max(1, losses_SxT.shape[1] // 10):].mean(axis=1)
