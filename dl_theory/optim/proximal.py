"""Proximal steps with a diagonal preconditioner (ProxGen; Yun, Lozano & Yang, NeurIPS 2021).

ProxGen's update is x+ = argmin_x <m, x> + (1 / 2 eta) (x - x_t)^T D (x - x_t) + lambda R(x)
with D the optimizer's diagonal preconditioner (Adam: sqrt(v_hat) + eps; SGD: 1). For a
separable R = sum_i r(x_i) it splits per coordinate: with u = x_t - eta m / d (the
preconditioned step the base optimizer takes anyway) and tau = lambda eta / d,

    x+_i = argmin_x (1/2) (x - u_i)^2 + tau_i r(x),       r(x) = |x|^q, q in {0, 1/2, 2/3, 1}

(|x|^0 is the count [x != 0]). Every map below is that 1-D minimiser in closed form: it is 0
below a threshold h(tau) and the largest root of the stationarity equation above it:

    q = 0    hard threshold, h = sqrt(2 tau);                 x = u
    q = 1    soft threshold, h = tau;                         x = sign(u) (|u| - tau)
    q = 1/2  h = (3/2) tau^(2/3) (Xu et al. 2012);            with y = sqrt|x|, y^3 - |u| y +
             tau/2 = 0, solved by the trigonometric form of Cardano's formula
    q = 2/3  h = 2 (2 tau / 3)^(3/4) (Cao, Sun & Xu 2013);    with y = |x|^(1/3), y^4 - |u| y +
             2 tau / 3 = 0, solved by Ferrari's method with a hyperbolic resolvent root

Exactly at the threshold both 0 and the nonzero root minimise (the map takes 0). The optax
link `proximal_step` wraps a base optimizer: it lets the base take its step to u, reads D
from the base's state, and replaces the step by x+ - x_t. Taking the prox with tau = lambda eta
(ignoring D) after an adaptive step is ProxQuant's caveat (Bai et al. 2019), which ProxGen's
revised ProxQuant fixes; `experiments/proximal_sparsity.py` measures both.

Checked against the authors' official code (github.com/abcdxyzpqrst/proxgen, `opt.py`, classes
AdamL0, AdamL1, AdamL12, AdamL23; the paper's own equations were not at hand, only its
abstract, so no equation number is cited). With d = sqrt(v_hat) + eps and tau = lambda eta / d
as here, their thresholds are sqrt(2 tau), tau, (54^(1/3) / 4) (2 tau)^(2/3) = (3/2) tau^(2/3)
and (2/3) (3 (2 tau)^3)^(1/4) = 2 (2 tau / 3)^(3/4); their l_1/2 value (2/3) u (1 + cos((2/3)
(pi - phi))) with phi = arccos((tau / 4) (|u| / 3)^(-3/2)) is ours (arccos(-c) = pi - arccos c),
and their l_2/3 value is ours with Cao et al.'s lambda = 2 tau (the same arccosh argument
(27/16) u^2 (2 tau)^(-3/2), and their |A| is our sqrt(2 t)). Re-derived in float64 on 10^5
random (u, tau), the two agree to 4e-15 with identical zero patterns. Where they differ:
their non-convex maps act on weight matrices and kernels only (biases get the plain step) and
their optimizer also applies decoupled weight decay; here the prox acts on every parameter
and weight decay is the separate key `optimizer.weight_decay`. The numerical guards differ
too (they add 1e-4 or 100 to the zeroed entries; here the arccos argument is clipped and
arccosh taken in log space).
Which is right is decided by the brute-force minimiser (`experiments/proximal_sparsity.py`,
claim closed_forms_match_brute_force), not by either text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax


def prox_l0(u: jax.Array, tau: jax.Array) -> jax.Array:
    """argmin_x (1/2)(x - u)^2 + tau [x != 0], elementwise (broadcasting): u if |u| >
    sqrt(2 tau), else 0 (hard thresholding)."""
    return jnp.where(jnp.abs(u) > jnp.sqrt(2.0 * tau), u, jnp.zeros_like(u))


def prox_l1(u: jax.Array, tau: jax.Array) -> jax.Array:
    """argmin_x (1/2)(x - u)^2 + tau |x|, elementwise: sign(u) max(|u| - tau, 0)."""
    return jnp.sign(u) * jnp.maximum(jnp.abs(u) - tau, 0.0)


def prox_l_half(u: jax.Array, tau: jax.Array) -> jax.Array:
    """argmin_x (1/2)(x - u)^2 + tau |x|^(1/2), elementwise (Xu et al. 2012, half thresholding).

    Above h = (3/2) tau^(2/3): x = sign(u) (2|u|/3) (1 + cos(2 phi / 3)) with
    phi = arccos(-(3 sqrt(3) / 4) tau |u|^(-3/2)), the largest root y^2 of y^3 - |u| y + tau/2.
    """
    a = jnp.abs(u)
    safe_a = jnp.maximum(a, jnp.finfo(u.dtype).tiny)  # keeps the unused branch finite at u = 0
    cos_arg = jnp.clip(-(3.0 * jnp.sqrt(3.0) / 4.0) * tau * safe_a ** -1.5, -1.0, 1.0)
    root = (2.0 / 3.0) * safe_a * (1.0 + jnp.cos((2.0 / 3.0) * jnp.arccos(cos_arg)))
    return jnp.where(a > 1.5 * tau ** (2.0 / 3.0), jnp.sign(u) * root, jnp.zeros_like(u))


def prox_l_two_thirds(u: jax.Array, tau: jax.Array) -> jax.Array:
    """argmin_x (1/2)(x - u)^2 + tau |x|^(2/3), elementwise (Cao, Sun & Xu 2013).

    Above h = 2 (2 tau / 3)^(3/4): with b = 2 tau / 3, the resolvent cubic t^3 - b t - u^2/8
    has the root t = 2 sqrt(b/3) cosh(arccosh((3 u^2 / 16 b) sqrt(3 / b)) / 3), and
    x = sign(u) y^3 with y = (sqrt(2t) + sqrt(2|u| / sqrt(2t) - 2t)) / 2, the largest root of
    y^4 - |u| y + b.
    """
    a = jnp.abs(u)
    tiny = jnp.finfo(u.dtype).tiny
    b = jnp.maximum(2.0 * tau / 3.0, tiny)
    # arccosh(z) in log space: z ~ u^2 tau^(-3/2) overflows float32 for tiny tau.
    log_z = (jnp.log(3.0 * jnp.maximum(a, tiny) ** 2 / 16.0) + 0.5 * jnp.log(3.0)
             - 1.5 * jnp.log(b))
    z = jnp.exp(jnp.minimum(log_z, 20.0))
    arccosh_z = jnp.where(log_z < 20.0, jnp.arccosh(jnp.maximum(z, 1.0)), jnp.log(2.0) + log_z)
    t = 2.0 * jnp.sqrt(b / 3.0) * jnp.cosh(arccosh_z / 3.0)
    s = jnp.sqrt(2.0 * t)
    y = (s + jnp.sqrt(jnp.maximum(2.0 * a / s - 2.0 * t, 0.0))) / 2.0
    nonzero = jnp.where(tau > 0, jnp.sign(u) * y**3, u)  # tau = 0: the identity
    return jnp.where(a > 2.0 * (2.0 * tau / 3.0) ** 0.75, nonzero, jnp.zeros_like(u))


PROX_MAPS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "l0": prox_l0, "l_half": prox_l_half, "l_two_thirds": prox_l_two_thirds, "l1": prox_l1,
}
EXPONENTS = {"l0": 0.0, "l_half": 0.5, "l_two_thirds": 2.0 / 3.0, "l1": 1.0}


def penalty(kind: str, x: jax.Array) -> jax.Array:
    """r(x) = |x|^q elementwise for the kind's q (q = 0: the indicator [x != 0])."""
    q = EXPONENTS[kind]
    return (x != 0).astype(x.dtype) if q == 0 else jnp.abs(x) ** q


def threshold(kind: str, tau: jax.Array) -> jax.Array:
    """The smallest |u| whose prox is nonzero: h(tau) = (2-q)/(2-2q) (2 tau (1-q))^(1/(2-q))
    for q < 1 (sqrt(2 tau), (3/2) tau^(2/3), 2 (2 tau/3)^(3/4)) and tau for q = 1."""
    q = EXPONENTS[kind]
    if q == 1.0:
        return jnp.asarray(tau)
    return (2 - q) / (2 - 2 * q) * (2 * tau * (1 - q)) ** (1 / (2 - q))


def preconditioned_prox(kind: str, u, strength, learning_rate, preconditioner):
    """x+ = argmin_x (d / 2 eta)(x - u)^2 + lambda r(x) per coordinate: the prox map at
    tau = lambda eta / d. `u`, `preconditioner` (d > 0) are matching pytrees."""
    prox = PROX_MAPS[kind]
    return jax.tree.map(lambda x, d: prox(x, (strength * learning_rate / d).astype(x.dtype)),
                        u, preconditioner)


def _adam_preconditioner(base_state, params, kwargs: dict):
    """Adam's D = sqrt(v_hat + eps_root) + eps with v_hat = nu / (1 - b2^t), as optax.adam
    divides by it (t counts this update)."""
    b2, eps = kwargs.get("b2", 0.999), kwargs.get("eps", 1e-8)
    eps_root = kwargs.get("eps_root", 0.0)
    nu = optax.tree_utils.tree_get(base_state, "nu")
    count = optax.tree_utils.tree_get(base_state, "count")
    correction = 1.0 - jnp.asarray(b2, jnp.float32) ** count.astype(jnp.float32)
    return jax.tree.map(lambda v: jnp.sqrt(v / correction.astype(v.dtype) + eps_root) + eps, nu)


def _identity_preconditioner(base_state, params, kwargs: dict):
    """D = 1: plain and momentum SGD take the step -eta m unscaled."""
    return jax.tree.map(jnp.ones_like, params)


# Base optimizer name -> its diagonal preconditioner, read from the base's state after update.
PRECONDITIONERS: dict[str, Callable[[Any, Any, dict], Any]] = {
    "sgd": _identity_preconditioner, "momentum": _identity_preconditioner,
    "nesterov": _identity_preconditioner, "adam": _adam_preconditioner,
    "adamw": _adam_preconditioner,
}


def proximal_step(base: optax.GradientTransformation, kind: str, strength, learning_rate,
                  preconditioner: Callable[[Any, Any, dict], Any],
                  base_kwargs: dict | None = None) -> optax.GradientTransformation:
    """`base` followed by ProxGen's proximal map: the base's step takes x_t to u, and the
    returned update is prox(u, strength * learning_rate / d) - x_t, with d read from the base's
    state by `preconditioner(base_state, params, base_kwargs)` (see PRECONDITIONERS).

    The state is the base's own, so the link drops into any chain (clipping before it,
    MultiSteps around it, weight decay and SWA after it); learning_rate and strength may be
    injected hyper-parameters (arrays).
    """
    if kind not in PROX_MAPS:
        raise ValueError(f"prox kind={kind!r}; known: {sorted(PROX_MAPS)}")
    kwargs = dict(base_kwargs or {})

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("proximal_step needs params in update(grads, state, params)")
        steps, state = base.update(updates, state, params)
        u = optax.apply_updates(params, steps)
        d = preconditioner(state, params, kwargs)
        new = preconditioned_prox(kind, u, strength, learning_rate, d)
        return jax.tree.map(lambda n, p: (n - p).astype(p.dtype), new, params), state

    return optax.GradientTransformation(base.init, update_fn)
