"""Precision policies (float32, bfloat16, float16 with dynamic loss scaling) and their step.

A policy names three dtypes (Micikevicius et al. 2018, "Mixed Precision Training"; the
jmp/Haiku convention): parameters are stored in `param_dtype` (the float32 "master copy" that
the optimizer updates, so its moments stay float32 too), layers compute in `compute_dtype`,
and what leaves the model is cast to `output_dtype` before the loss, which then reduces in
float32 (`dl_theory.train.losses`). Models apply the policy themselves: every model takes
`dtype` (compute) and `param_dtype` fields, built with `**policy.model_dtypes()`, and computes
normalisation statistics and softmax in float32 whatever `dtype` is.

float16 has 5 exponent bits (largest finite value 65504, smallest normal 2**-14), so small
gradients underflow; dynamic loss scaling multiplies the loss by S before differentiation and
divides the gradients by S, halving S (and skipping the update) when a gradient overflows
and doubling it after a run of finite steps. bfloat16 keeps float32's 8 exponent bits and
needs no scaling. The loss scale is `flax.training.dynamic_scale.DynamicScale`, which works
with current JAX (jmp 0.0.4 does too, but is unmaintained and not a dependency).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax.training.dynamic_scale import DynamicScale

from dl_theory.user_errors import ConfigError

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


def _cast_floating(tree: Any, dtype: Any) -> Any:
    """Casts the floating-point leaves of `tree` to `dtype`; integer and boolean leaves
    (labels, token ids, masks) are left alone."""

    def cast(x):
        x = jnp.asarray(x)
        return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

    return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class Policy:
    """The dtypes of parameters, of computation, and of the model's output.

    Frozen (hashable), so a policy can be a static argument of a jitted function.
    """

    param_dtype: Any
    compute_dtype: Any
    output_dtype: Any

    def __post_init__(self):
        for field in dataclasses.fields(self):
            dtype = jnp.dtype(getattr(self, field.name))
            if not jnp.issubdtype(dtype, jnp.floating):
                raise ValueError(f"{field.name}={dtype}; a policy dtype must be floating point")
            object.__setattr__(self, field.name, dtype)

    @property
    def loss_scaling(self) -> bool:
        """Whether training under this policy needs dynamic loss scaling (float16 compute)."""
        return self.compute_dtype == jnp.dtype(jnp.float16)

    def model_dtypes(self) -> dict[str, Any]:
        """The model fields that apply the policy: `MLP(..., **policy.model_dtypes())`."""
        return {"dtype": self.compute_dtype, "param_dtype": self.param_dtype}

    def cast_to_compute(self, tree: Any) -> Any:
        """Floating leaves of `tree` (inputs, or parameters) to `compute_dtype`."""
        return _cast_floating(tree, self.compute_dtype)

    def cast_to_param(self, tree: Any) -> Any:
        """Floating leaves of `tree` (e.g. gradients) to `param_dtype`."""
        return _cast_floating(tree, self.param_dtype)

    def cast_to_output(self, tree: Any) -> Any:
        """Floating leaves of `tree` (the model's output) to `output_dtype`."""
        return _cast_floating(tree, self.output_dtype)

    def __str__(self) -> str:
        return (f"params={self.param_dtype.name},compute={self.compute_dtype.name},"
                f"output={self.output_dtype.name}")


POLICIES: dict[str, Policy] = {
    "float32": Policy(jnp.float32, jnp.float32, jnp.float32),
    "bfloat16": Policy(jnp.float32, jnp.bfloat16, jnp.float32),
    "float16": Policy(jnp.float32, jnp.float16, jnp.float32),
}


def get_policy(name: str) -> Policy:
    """The policy registered under `name` (a config's `precision` key)."""
    if name not in POLICIES:
        raise ConfigError(f"precision={name!r}; known: {sorted(POLICIES)}")
    return POLICIES[name]


def make_loss_scale(policy: Policy, initial_scale: float = 2.0**15, period: int = 2000,
                    factor: float = 2.0, minimum_scale: float = 1.0) -> DynamicScale | None:
    """The initial dynamic loss scale for `policy`: None unless it computes in float16.

    Per step, with S the scale and c the count of consecutive finite steps: a non-finite
    gradient sets S <- max(S / factor, minimum_scale), c <- 0; a finite one when c = period
    sets S <- factor * S, c <- 0, otherwise c <- c + 1. So after `period` consecutive finite
    steps the next finite step doubles S (flax's counting: the doubled S is first used at
    step period + 2 of a finite run). The leaves are typed arrays (float32, int32) so that
    the scale can be the carry of a `lax.scan` and be stacked over a seed grid.
    """
    if not policy.loss_scaling:
        return None
    if initial_scale < minimum_scale or minimum_scale <= 0:
        raise ValueError(f"initial_scale={initial_scale}, minimum_scale={minimum_scale}; need "
                         "initial_scale >= minimum_scale > 0")
    if not isinstance(period, int) or period < 1 or factor <= 1:
        raise ValueError(f"period={period!r}, factor={factor}; need an integer period >= 1 "
                         "and factor > 1")
    return DynamicScale(growth_factor=factor, backoff_factor=1.0 / factor,
                        growth_interval=period, fin_steps=jnp.zeros((), jnp.int32),
                        scale=jnp.asarray(initial_scale, jnp.float32),
                        minimum_scale=minimum_scale)


DTYPE_COLUMNS = ("layer", "params", "activations", "gradients", "optimizer", "model_state")


def _layer_dtypes(tree: Any, drop_last: bool) -> dict[str, set[str]]:
    """Layer path ("Block_0/Dense_1") -> the dtype names of the leaves under it.

    The path is the sequence of dict keys to a leaf, without "__call__" (flax's key for a
    captured output) and, when `drop_last`, without the final key (a parameter's name).
    Leaves reached through no dict key (an optimizer's step count) belong to "(global)".
    """
    rows: dict[str, set[str]] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        keys = [str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey)]
        if drop_last and keys:
            keys = keys[:-1]
        name = "/".join(k for k in keys if k != "__call__") or "(global)"
        rows.setdefault(name, set()).add(jnp.dtype(leaf.dtype).name)
    return rows


def dtype_table(model: nn.Module, variables: Mapping[str, Any], x: jax.Array,
                tx: optax.GradientTransformation) -> list[dict[str, str]]:
    """One row per layer: the dtypes of its parameters, its outputs (activations, captured
    with `capture_intermediates`), the gradients of sum(output) with respect to its
    parameters, its optimizer state (`tx.init(params)`) and its other variables (batch
    statistics). Shapes only: everything is traced with `jax.eval_shape`, nothing runs.

    The "(global)" row holds what belongs to no layer: the model's output in "activations",
    the step count and injected hyper-parameters in "optimizer".
    """
    params = variables["params"]
    others = {k: v for k, v in variables.items() if k != "params"}

    def forward(params):
        return model.apply({"params": params, **others}, x, train=False,
                           capture_intermediates=True, mutable=["intermediates"])

    def total_output(params):
        out, _ = forward(params)
        return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in jax.tree.leaves(out))

    _, captured = jax.eval_shape(forward, params)
    model_state: dict[str, set[str]] = {}
    for collection in others.values():
        for name, dtypes in _layer_dtypes(collection, drop_last=True).items():
            model_state.setdefault(name, set()).update(dtypes)
    columns = {
        "params": _layer_dtypes(params, drop_last=True),
        "activations": _layer_dtypes(captured["intermediates"], drop_last=False),
        "gradients": _layer_dtypes(jax.eval_shape(jax.grad(total_output), params), True),
        "optimizer": _layer_dtypes(jax.eval_shape(tx.init, params), drop_last=True),
        "model_state": model_state,
    }
    layers = list(dict.fromkeys(name for column in columns.values() for name in column))
    layers.sort(key=lambda name: name == "(global)")
    return [{"layer": layer, **{column: ",".join(sorted(table.get(layer, ()))) or "-"
                                for column, table in columns.items()}}
            for layer in layers]


def format_dtype_table(rows: list[dict[str, str]]) -> str:
    """`dtype_table` rows as an aligned plain-text table with a header line."""
    widths = {c: max(len(c), *(len(row[c]) for row in rows)) for c in DTYPE_COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in DTYPE_COLUMNS).rstrip()]
    lines += ["  ".join(row[c].ljust(widths[c]) for c in DTYPE_COLUMNS).rstrip() for row in rows]
    return "\n".join(lines)
