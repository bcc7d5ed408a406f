"""The empirical neural tangent kernel and the linearised model's closed-form training.

Jacot, Gabriel & Hongler 2018 ("Neural Tangent Kernel", NeurIPS) and Lee et al. 2019
("Wide Neural Networks of Any Depth Evolve as Linear Models Under Gradient Descent",
NeurIPS): at parameters theta, Theta(x, x') = J(x) J(x')^T with J(x) = d f(theta, x) / d theta;
gradient flow on the first-order Taylor expansion of f around theta_0 has a closed form in
Theta_0, and a wide net's kernel barely moves during training (measured by
`relative_kernel_change`).

Written here because neural-tangents 0.6.5 (the latest release) imports tensorflow at import
time and its JAX core imports `jax.core.Jaxpr`, which jax 0.10 no longer has, so it neither
installs within our dependencies nor runs (checked in a throwaway directory).
"""

import functools
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# apply_fn(params, x_BxD) -> [B] or [B, K]; for a Flax module use
# `lambda p, x: model.apply({"params": p}, x)` (one stable function, so it compiles once).
ApplyFn = Callable[[Any, jax.Array], jax.Array]


@functools.partial(jax.jit, static_argnums=0)
def _jacobian_BxKxP(apply_fn: ApplyFn, params: Any, x: jax.Array) -> Any:
    """Per-leaf Jacobians of the [B, K] outputs, each leaf reshaped to [B, K, P_leaf]."""

    def outputs_BxK(p: Any) -> jax.Array:
        out = apply_fn(p, x)
        return out.reshape(out.shape[0], -1)

    jac = jax.jacrev(outputs_BxK)(params)
    return jax.tree.map(lambda j: j.reshape(j.shape[0], j.shape[1], -1), jac)


@jax.jit
def _contract_AxBxKxK(jac_a: Any, jac_b: Any) -> jax.Array:
    """sum over leaves of J_a J_b^T: [A, K, P] x [B, K, P] -> [A, B, K, K]."""
    # HIGHEST: on accelerators the default matmul precision is bf16-like, and small kernel
    # eigenvalues (which set the slow modes of training) would be lost to rounding.
    blocks = jax.tree.map(
        lambda a, b: jnp.einsum("ikp,jlp->ijkl", a, b, precision=jax.lax.Precision.HIGHEST),
        jac_a, jac_b)
    return functools.reduce(operator.add, jax.tree.leaves(blocks))


def _pad_to(x: jax.Array, size: int) -> jax.Array:
    """Repeats the last row so every chunk has one shape (one compilation, no NaN from zeros)."""
    if x.shape[0] == size:
        return x
    pad = jnp.repeat(x[-1:], size - x.shape[0], axis=0)
    return jnp.concatenate([x, pad], axis=0)


def empirical_ntk(
    apply_fn: ApplyFn,
    params: Any,
    x1: jax.Array,
    x2: jax.Array | None = None,
    batch_size: int = 64,
    trace_outputs: bool = False,
) -> jax.Array:
    """Empirical NTK Theta(x, x') = J(x) J(x')^T at `params` (Jacot et al. 2018).

    Args:
        apply_fn: `apply_fn(params, x_BxD) -> [B]` (scalar output) or `[B, K]`; `params` is any
            pytree. Inputs may have any trailing shape ([B, H, W, C] too). Must be hashable
            (every Python function is); a fresh lambda per call recompiles per call.
        params: the parameter pytree theta at which J = d f / d theta is taken.
        x1: inputs, shape [N1, ...].
        x2: inputs, shape [N2, ...]; None means x1, and then only the blocks on and above the
            diagonal are computed (the kernel is symmetric).
        batch_size: number of inputs per Jacobian chunk; bounds memory (see Cost).
        trace_outputs: for K outputs, return (1/K) sum_k Theta_kk, shape [N1, N2], instead of
            the full [N1, N2, K, K]. Dividing by K makes it equal to the per-output kernel when
            the K heads are exchangeable (the infinite-width case, Theta = theta (x) I_K).

    Returns:
        Shape [N1, N2] for scalar outputs (or with trace_outputs), else [N1, N2, K, K] with
        Theta[i, j, k, l] = <d f_k(x1_i) / d theta, d f_l(x2_j) / d theta>.

    Cost: with P parameters and chunks of b = batch_size inputs, each chunk's Jacobian is
    b*K reverse-mode passes (jax.jacrev, vmapped VJPs) held as [b, K, P] floats, and each
    [b, b] block costs b^2 K^2 P multiply-adds. The x1 chunk's Jacobian is reused across its
    row of blocks, the x2 chunks' are recomputed per row: about (N1 + N1 N2 / b) K backward
    passes plus N1 N2 K^2 P multiply-adds in all, and memory O(2 b K P + N1 N2 K^2) whatever
    N1, N2. Raise batch_size until 2 b K P floats approach the memory you can spare. The
    blocks are filled by a host loop, so call this outside jit (the per-block functions are jitted).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r}; must be a positive int")
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(f"x1.shape={x1.shape} and x2.shape={x2.shape} differ after the batch axis")
    out = jax.eval_shape(apply_fn, params, x1[:1])
    if out.ndim not in (1, 2) or out.shape[0] != 1:
        raise ValueError(f"apply_fn(params, x[:1]) has shape {out.shape}; expected [1] or [1, K]")
    scalar_output = out.ndim == 1
    num_outputs = 1 if scalar_output else out.shape[1]

    n1, n2 = x1.shape[0], x2.shape[0]
    b1, b2 = min(batch_size, n1), min(batch_size, n2)
    theta = np.zeros((n1, n2, num_outputs, num_outputs), dtype=np.dtype(out.dtype))
    for i in range(0, n1, b1):
        rows = min(b1, n1 - i)
        jac_a = _jacobian_BxKxP(apply_fn, params, _pad_to(x1[i:i + rows], b1))
        for j in range(i if symmetric else 0, n2, b2):
            cols = min(b2, n2 - j)
            same = symmetric and j == i
            jac_b = (jac_a if same
                     else _jacobian_BxKxP(apply_fn, params, _pad_to(x2[j:j + cols], b2)))
            block = np.asarray(_contract_AxBxKxK(jac_a, jac_b))[:rows, :cols]
            theta[i:i + rows, j:j + cols] = block
            if symmetric and not same:
                theta[j:j + cols, i:i + rows] = block.transpose(1, 0, 3, 2)
    if scalar_output:
        return jnp.asarray(theta[:, :, 0, 0])
    if trace_outputs:
        return jnp.asarray(np.trace(theta, axis1=2, axis2=3) / num_outputs)
    return jnp.asarray(theta)


def linearized_gradient_flow(
    theta_train: jax.Array,
    theta_test_train: jax.Array,
    f0_train: jax.Array,
    f0_test: jax.Array,
    y_train: jax.Array,
    lr: float | jax.Array,
    t: float | jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Outputs of the linearised model after gradient flow for time t (Lee et al. 2019).

    Normalisation: the loss is L = 1/(2N) sum_i ||f(x_i) - y_i||^2 over the N training points and
    the parameters follow d theta / dt = -lr grad L, so `t` counts gradient-descent steps of size
    lr (k small steps of GD approach t = k). The linearised model f_lin(theta, x) =
    f_0(x) + J_0(x)(theta - theta_0) then obeys df/dt = -(lr/N) Theta (f - y), whence

        f_t(X) = f_0(X) + (I - exp(-lr Theta t / N)) (y - f_0(X)),
        f_t(x) = f_0(x) + Theta(x, X) Theta^{-1} (I - exp(-lr Theta t / N)) (y - f_0(X)).

    Both use Theta = V diag(lam) V^T and phi(lam) = (1 - exp(-c lam)) / lam with c = lr t / N,
    so no inverse is formed: phi(0) = c is the exact limit, and a zero mode of Theta carries no
    test-point change either (Theta v = 0 implies J(X)^T v = 0, so Theta(x, X) v = 0). t = inf
    gives the kernel-regression limit with Theta's pseudo-inverse (eigenvalues below
    N * eps * max|lam| dropped as rounding noise).

    Args:
        theta_train: Theta(X, X), shape [N, N], symmetric PSD (a scalar or output-traced kernel;
            with K outputs the same kernel acts on every output, i.e. Theta (x) I_K).
        theta_test_train: Theta(X_test, X), shape [M, N].
        f0_train: f_0(X), shape [N] or [N, K].
        f0_test: f_0(X_test), shape [M] or [M, K] (same trailing shape as f0_train).
        y_train: targets, same shape as f0_train.
        lr: learning rate eta.
        t: time (in units of GD steps), a scalar >= 0 or inf. For many times, jax.vmap over t:
            the eigendecomposition does not depend on t and is computed once.

    Returns:
        (f_t(X) with the shape of f0_train, f_t(X_test) with the shape of f0_test).
    """
    n = theta_train.shape[0]
    if theta_train.shape != (n, n):
        raise ValueError(f"theta_train.shape={theta_train.shape}; expected square [N, N]")
    if theta_test_train.ndim != 2 or theta_test_train.shape[1] != n:
        raise ValueError(f"theta_test_train.shape={theta_test_train.shape}; expected [M, {n}]")
    if f0_train.shape != y_train.shape or f0_train.shape[0] != n:
        raise ValueError(f"f0_train.shape={f0_train.shape}, y_train.shape={y_train.shape};"
                         f" both must be [{n}] or [{n}, K]")
    if f0_test.shape != (theta_test_train.shape[0],) + f0_train.shape[1:]:
        raise ValueError(f"f0_test.shape={f0_test.shape}; expected"
                         f" {(theta_test_train.shape[0],) + f0_train.shape[1:]}")
    residual = (y_train - f0_train).reshape(n, -1)
    lam, vecs = jnp.linalg.eigh(theta_train)
    c = jnp.asarray(lr, lam.dtype) * jnp.asarray(t, lam.dtype) / n
    x = c * lam
    # -expm1(-x)/x is accurate for small x; the where keeps x == 0 from making 0/0.
    safe_x = jnp.where(x == 0, 1.0, x)
    phi_finite = c * jnp.where(x == 0, 1.0, -jnp.expm1(-safe_x) / safe_x)
    cutoff = n * jnp.finfo(lam.dtype).eps * jnp.max(jnp.abs(lam))
    kept = lam > cutoff
    phi_infinite = jnp.where(kept, 1.0 / jnp.where(kept, lam, 1.0), 0.0)
    phi = jnp.where(jnp.isinf(c), phi_infinite, phi_finite)
    # coef = Theta^{-1} (I - exp(-c Theta)) (y - f0), in the eigenbasis.
    coef = vecs @ (phi[:, None] * (vecs.T @ residual))
    f_train = f0_train + (theta_train @ coef).reshape(f0_train.shape)
    f_test = f0_test + (theta_test_train @ coef).reshape(f0_test.shape)
    return f_train, f_test


def relative_kernel_change(theta_t: jax.Array, theta_0: jax.Array) -> jax.Array:
    """||Theta_t - Theta_0||_F / ||Theta_0||_F over all entries, any equal shapes; a scalar.

    Lee et al. 2019 (Fig. 1) measure it shrinking like 1/sqrt(width) under NTK
    parametrisation: the sign that training stays in the lazy, linearised regime (Chizat,
    Oyallon & Bach 2019).
    """
    if theta_t.shape != theta_0.shape:
        raise ValueError(f"theta_t.shape={theta_t.shape} and theta_0.shape={theta_0.shape} differ")
    return jnp.linalg.norm((theta_t - theta_0).ravel()) / jnp.linalg.norm(theta_0.ravel())
