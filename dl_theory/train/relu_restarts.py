"""Full-batch Adam restarts of a one-hidden-layer ReLU net: the gradient baseline of exact ERM.

The net is x -> relu(x @ w + b) @ v without output bias, the class that
`dl_theory.theory.exact_erm` optimises exactly; the loss is the mean squared error. All
restarts train together, `vmap` over starts of a `lax.scan` over steps, with Adam and a cosine
decay of the step size to zero (so a run ends at, not around, the stationary point it finds).
Training is float32, as the project trains; callers evaluate the final nets in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

Params = dict[str, np.ndarray]  # {"w": [R, n, w], "b": [R, w], "v": [R, w]}


def adam_restarts(x_DxN: np.ndarray, y_D: np.ndarray, starts: Params, *, steps: int,
                  learning_rate: float) -> Params:
    """The final parameters of one full-batch Adam run from each start (leading axis R)."""
    if steps < 1 or learning_rate <= 0:
        raise ValueError(f"steps={steps}, learning_rate={learning_rate}; need steps >= 1 and "
                         "learning_rate > 0")
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
    x, y = jnp.asarray(x_DxN, jnp.float32), jnp.asarray(y_D, jnp.float32)

    def loss(p):
        return jnp.mean((jax.nn.relu(x @ p["w"] + p["b"][None, :]) @ p["v"] - y) ** 2)

    def run(p):
        def step(carry, _):
            p, state = carry
            updates, state = tx.update(jax.grad(loss)(p), state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(step, (p, tx.init(p)), None, length=steps)[0][0]

    starts = {k: jnp.asarray(v, jnp.float32) for k, v in starts.items()}
    return {k: np.asarray(v) for k, v in jax.jit(jax.vmap(run))(starts).items()}


def restarts_above_optimum(losses_per_dataset, optima, scales, tol: float) -> tuple[int, int]:
    """(restarts whose loss exceeds their data set's optimum by more than tol * scale, all
    restarts), summed over data sets: losses_per_dataset[i] holds data set i's restart losses,
    optima[i] its exact optimum, scales[i] its loss scale (mean(y^2))."""
    misses = sum(int(np.sum(np.asarray(losses) - opt > tol * s))
                 for losses, opt, s in zip(losses_per_dataset, optima, scales))
    return misses, sum(len(losses) for losses in losses_per_dataset)
