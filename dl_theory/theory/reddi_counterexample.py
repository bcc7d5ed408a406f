"""Reddi, Kale & Kumar's online counterexample to Adam (ICLR 2018, "On the convergence of Adam
and beyond", Sec. 3, Thm 1).

On x in F = [-1, 1] the losses are f_t(x) = C x for t mod 3 = 1 and f_t(x) = -x otherwise
(C > 2), so the best fixed point is x* = -1 and each period of 3 rounds costs (C - 2)(x + 1)
regret at x. A point that stays at the worst x = +1 has average regret R_T / T -> 2 (C - 2) / 3
(`regret_limit`); Adam with beta1 = 0, beta2 = 1 / (1 + C^2) drifts there, AMSGrad does not.

- `online_run`: a projected optax optimizer on the sequence, as one compiled `lax.scan`;
- `average_regret`: R_t / t against x* = -1 for the losses it returns;
- `regret_limit`: 2 (C - 2) / 3.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax


def online_run(tx: optax.GradientTransformation, C: float, x_init: float,
               rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """x_t and losses f_t(x_t), each [rounds], of a projected optimizer on Reddi's sequence.

    Round t = 1, 2, ... has gradient C if t mod 3 == 1 else -1; after each update x is
    projected onto [-1, 1] (clipping is the Euclidean projection in one dimension). x_1 =
    x_init, in float32.
    """

    def round_(carry, t):
        x, opt_state = carry
        grad = jnp.where(t % 3 == 1, C, -1.0)
        updates, opt_state = tx.update(grad, opt_state, x)
        return (jnp.clip(x + updates, -1.0, 1.0), opt_state), (x, grad * x)

    x0 = jnp.asarray(x_init, jnp.float32)
    steps = jnp.arange(1, rounds + 1)
    _, (xs, losses) = jax.jit(lambda: jax.lax.scan(round_, (x0, tx.init(x0)), steps))()
    return np.asarray(xs), np.asarray(losses)


def average_regret(losses_T: np.ndarray, C: float) -> np.ndarray:
    """R_t / t for t = 1..T, [T]: the losses' running sum minus that of the optimum x* = -1
    (f_t(-1) = -C if t mod 3 == 1 else 1), divided by t; float64."""
    t = np.arange(1, len(losses_T) + 1)
    optimum_loss = np.where(t % 3 == 1, -C, 1.0)
    return np.cumsum(losses_T - optimum_loss) / t


def regret_limit(C: float) -> float:
    """2 (C - 2) / 3: the average regret of staying at x = +1, where Thm 1 sends Adam."""
    return 2 * (C - 2) / 3
