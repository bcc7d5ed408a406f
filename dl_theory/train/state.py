"""TrainState: everything a training step changes, in one pytree."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from dl_theory.optim.build import current_hyperparam, set_hyperparam
from dl_theory.train import interceptors


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@dataclasses.dataclass(frozen=True, eq=False)
class ModuleApply:
    """`module.apply`, equal to another `ModuleApply` whose module is equal by value.

    A bound method `module.apply` compares its module by identity, so two calls that each
    build `MLP(widths=(8,))` would give states of different pytree structure and compile
    the same program twice. Flax modules are dataclasses: equal fields, equal computation.
    A module with an unhashable field (e.g. a list) falls back to identity.
    """

    module: nn.Module

    def __call__(self, variables, *args, **kwargs):
        return self.module.apply(variables, *args, **kwargs)

    def __eq__(self, other) -> bool:
        if not isinstance(other, ModuleApply):
            return False
        if self.module is other.module:
            return True
        return _hashable(self.module) and _hashable(other.module) and self.module == other.module

    def __hash__(self) -> int:
        return hash(self.module) if _hashable(self.module) else id(self.module)


@struct.dataclass
class TrainState:
    """Step counter, parameters, optimizer state, model state and RNG of one model.

    `model_state` holds the non-parameter variable collections (e.g. {"batch_stats": ...}),
    empty for stateless models; `loss_scale` is None except under float16. `apply_fn` and `tx`
    are static: stacking the states of many
    seeds along a leading axis (see `dl_theory.train.grid`) stacks only the arrays.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    model_state: Any
    rng: jax.Array
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    loss_scale: Any = None  # flax DynamicScale under float16 (dl_theory.train.precision)


def _init_variables(model: nn.Module, x_example, params_key, dropout_key):
    """The model's variables (params and any state) as training starts from them."""
    return model.init({"params": params_key, "dropout": dropout_key}, x_example, train=False)


@jax.jit
def _seed_keys(seed) -> jax.Array:
    """PRNGKey(seed) split into the (params, dropout, training) keys of a new state.

    One small program shared by every model, so a model's initialisation program need not
    compile the split (threefry, ~0.15 CPU-s per model on the 2-core CPU); integer
    arithmetic, so the keys are the same bits wherever they are computed."""
    return jax.random.split(jax.random.PRNGKey(seed), 3)


def _init_state(model: nn.Module, tx: optax.GradientTransformation, x_example, keys,
                loss_scale: Any) -> TrainState:
    params_key, dropout_key, rng = keys
    variables = dict(_init_variables(model, x_example, params_key, dropout_key))
    params = variables.pop("params")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      model_state=variables, rng=rng, apply_fn=ModuleApply(model), tx=tx,
                      loss_scale=loss_scale)


# XLA's algebraic simplifier, given the whole initialisation as one program, folds constant
# chains such as `normal(key) * 0.02` (flax's normal initialiser after jax.random.normal's own
# sqrt(2) factor) and changes such parameters by an ulp against the op-by-op initialisation
# every recorded result was measured with. Without that pass the compiled program gives the
# same bits; initialisation is a one-off, so the simplifier buys nothing here.
_SAME_BITS_AS_OP_BY_OP = {"xla_disable_hlo_passes": "algsimp"}


@functools.partial(jax.jit, static_argnames=("model", "tx", "active"),
                   compiler_options=_SAME_BITS_AS_OP_BY_OP)
def _init_one(x_example, keys, loss_scale, *, model, tx, active) -> TrainState:
    with interceptors.installed(active):
        return _init_state(model, tx, x_example, keys, loss_scale)


def _traced(*trees) -> bool:
    """Whether any argument is being traced: then the caller's program compiles the init
    (a nested jit may not carry its own compiler options)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(trees))


# Compiling an initialisation costs XLA:CPU ~45 ms per parameter array, paid once per model
# (a 64-block residual MLP: 6 CPU-s), while op by op each primitive compiles once per shape and
# is then reused by every array of that shape (the same net, once a net of those shapes had
# run: 0.25 CPU-s). For a one-hidden-layer MLP the compiled program is the cheaper (a width
# sweep's init: 5.5 against 7.5 CPU-s op by op). Measured on the 2-core CPU. So a model whose
# parameter arrays repeat their shapes this many times on average is initialised op by op.
_SHAPE_REPEATS_FOR_OP_BY_OP = 4


def _repeats_shapes(model: nn.Module, x_example) -> bool:
    """Whether `model`'s parameter arrays average `_SHAPE_REPEATS_FOR_OP_BY_OP` or more per
    distinct (shape, dtype): a deep stack of equal layers. Found by tracing, not running;
    `x_example` is any pytree of inputs (an array, a graph)."""
    leaves, treedef = jax.tree.flatten(x_example)
    return _repeats_shapes_for(model, treedef,
                               tuple((np.shape(leaf), _dtype_name(leaf)) for leaf in leaves))


def _dtype_name(leaf) -> str:
    return str(leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype)


@functools.lru_cache(maxsize=256)
def _repeats_shapes_for(model: nn.Module, treedef, leaf_signatures: tuple) -> bool:
    key = jax.random.PRNGKey(0)
    x_example = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(shape, dtype)
                                             for shape, dtype in leaf_signatures])
    params = jax.eval_shape(lambda x: _init_variables(model, x, key, key), x_example)["params"]
    leaves = jax.tree.leaves(params)
    distinct = {(leaf.shape, str(leaf.dtype)) for leaf in leaves}
    return len(leaves) >= _SHAPE_REPEATS_FOR_OP_BY_OP * len(distinct)


def create_train_state(model: nn.Module, tx: optax.GradientTransformation, x_example,
                       seed, loss_scale: Any = None) -> TrainState:
    """Initialises `model` on `x_example` (a batch of inputs) from an integer `seed`.

    Compiled, and reused by later calls with an equal model, the same optimizer object
    (`build_optimizer` returns one per config) and the same shapes; a deep stack of equal
    layers is initialised op by op instead, which costs it less (see
    `_SHAPE_REPEATS_FOR_OP_BY_OP`; the bits are the same either way). The seed may be traced.
    """
    keys = _seed_keys(seed if _traced(seed) else jnp.int32(seed))
    if _traced(x_example, seed, loss_scale):  # inside the caller's jit or vmap
        return _init_state(model, tx, x_example, keys, loss_scale)
    if _hashable(model) and _repeats_shapes(model, x_example):
        return _init_state(model, tx, x_example, keys, loss_scale)
    if _hashable(model) and _hashable(tx):
        return _init_one(x_example, keys, loss_scale, model=model, tx=tx,
                         active=interceptors.active())
    return jax.jit(functools.partial(_init_state, model, tx),
                   compiler_options=_SAME_BITS_AS_OP_BY_OP)(x_example, keys, loss_scale)


def create_train_states(model: nn.Module, tx: optax.GradientTransformation, x_example,
                        seeds, loss_scale: Any = None) -> TrainState:
    """The states of `len(seeds)` models stacked along a leading axis, for `fit_grid`.

    Member g is `create_train_state(..., seeds[g])`: one compiled program initialises one
    member and runs once per seed (a seed is an argument, not part of the program), and the
    members are stacked in host memory. Compiling a program vmapped over the seeds instead
    cost ~0.4 s more compilation per model shape (measured on the 2-core CPU), more than
    running the small program G times. Reused by later calls with an equal model, the same
    optimizer object and the same shapes.
    """
    if _traced(x_example, seeds, loss_scale):  # inside the caller's jit: one vmapped init
        return jax.vmap(lambda s: _init_state(model, tx, x_example, _seed_keys(s),
                                              loss_scale))(jnp.asarray(seeds, jnp.int32))
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or seeds.size == 0 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a non-empty 1-D sequence of integers; got {seeds!r}")
    return stack_members([create_train_state(model, tx, x_example, np.int32(seed), loss_scale)
                          for seed in seeds])


def stack_members(members: list[Any]) -> Any:
    """Trees of one structure stacked leaf by leaf along a new leading axis, in host memory
    (no program to compile per shape), each leaf placed as the first member's was."""
    host = jax.device_get(members)
    return jax.tree.map(lambda leaf, *hs: jax.device_put(np.stack(hs), leaf.sharding),
                        members[0], *host)


def set_hyperparams(states: TrainState, **values) -> TrainState:
    """Gives each grid member its own numeric hyper-parameter (e.g. learning_rate=[G] values).

    Needs an optimizer with the hyper-parameter injected (`build_optimizer` injects
    learning_rate and weight_decay) and a constant (not scheduled) value for it: a schedule
    would overwrite it at the next update.
    """
    for name, value in values.items():
        current = current_hyperparam(states.opt_state, name)
        if current is None:
            raise ValueError(f"hyper-parameter {name!r} is not injected in the optimizer state")
        value = jnp.asarray(value, dtype=current.dtype)
        if value.shape != current.shape:
            raise ValueError(f"{name}: need shape {current.shape} (one per member), "
                             f"got {value.shape}")
        values[name] = value
    return states.replace(opt_state=set_hyperparam(states.opt_state, **values))
