"""Precision policies: casts, dynamic loss scaling, skipped steps, float32 optimizer moments,
bfloat16/float16 rounding and range, the per-layer dtype table."""


import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from dl_theory.models.mlp import MLP
from dl_theory.optim import build_optimizer
from dl_theory.train import precision
from dl_theory.train.losses import mean_squared_error
from dl_theory.train.state import create_train_state
from dl_theory.train.step import make_train_step


def scaled_state(policy, tx, x_example, seed=0, **scale_kwargs):
    model = MLP(widths=(16, 16), out_dim=1, **policy.model_dtypes())
    return create_train_state(model, tx, x_example, seed,
                              loss_scale=precision.make_loss_scale(policy, **scale_kwargs))


def adam(lr=1e-2):
    return build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=lr)))


def regression_data(n=32, seed=0, offset=0.0):
    x = jax.random.normal(jax.random.PRNGKey(seed), (n, 3))
    return {"x": x, "y": jnp.sin(x[:, :1]) + offset}


def adam_state(opt_state):
    """The ScaleByAdamState wherever it sits in the optimizer chain."""
    is_adam = lambda node: isinstance(node, optax.ScaleByAdamState)  # noqa: E731
    (found,) = [n for n in jax.tree.leaves(opt_state, is_leaf=is_adam) if is_adam(n)]
    return found


def run_steps(step, state, batch, num_steps):
    def body(state, _):
        return step(state, batch)

    return jax.jit(lambda s: jax.lax.scan(body, s, None, length=num_steps))(state)


def test_get_policy_names_the_known_policies():
    assert str(precision.get_policy("bfloat16")) == "params=float32,compute=bfloat16,output=float32"
    assert precision.get_policy("float16").loss_scaling
    assert not precision.get_policy("bfloat16").loss_scaling
    with pytest.raises(ValueError, match=r"precision='fp8'; known: \['bfloat16', 'float16', "
                                         r"'float32'\]"):
        precision.get_policy("fp8")
    with pytest.raises(ValueError, match="compute_dtype=int32"):
        precision.Policy(jnp.float32, jnp.int32, jnp.float32)


def test_casts_touch_only_floating_leaves():
    policy = precision.get_policy("bfloat16")
    tree = {"x": jnp.ones((2, 3)), "labels": jnp.arange(2), "mask": jnp.ones(2, bool)}
    cast = policy.cast_to_compute(tree)
    assert (cast["x"].dtype, cast["labels"].dtype, cast["mask"].dtype) == (
        jnp.bfloat16, jnp.int32, jnp.bool_)
    assert policy.cast_to_param(cast)["x"].dtype == jnp.float32
    assert policy.cast_to_output(cast["x"]).dtype == jnp.float32


def test_bfloat16_policy_keeps_params_float32_computes_bf16_and_loss_float32():
    policy = precision.get_policy("bfloat16")
    data = regression_data()
    state = scaled_state(policy, adam(), data["x"][:1])
    assert state.loss_scale is None
    step = make_train_step(mean_squared_error, policy)
    state, metrics = run_steps(step, state, data, 3)
    assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype(jnp.float32)}
    assert metrics["loss"].dtype == jnp.float32
    _, captured = state.apply_fn({"params": state.params}, policy.cast_to_compute(data["x"]),
                                 capture_intermediates=True, mutable=["intermediates"])
    activations = jax.tree.leaves(captured["intermediates"])
    assert len(activations) == 4 and {a.dtype for a in activations} == {jnp.dtype(jnp.bfloat16)}
    # The same training as in float32, to within what 8 significant bits allow.
    state32 = scaled_state(precision.get_policy("float32"), adam(), data["x"][:1])
    state32, metrics32 = run_steps(
        make_train_step(mean_squared_error,
                                                  precision.get_policy("float32")),
        state32, data, 3)
    np.testing.assert_allclose(metrics["loss"], metrics32["loss"], rtol=2e-2)


def test_float32_policy_step_equals_the_plain_train_step_on_a_plain_train_state():
    policy = precision.get_policy("float32")
    data = regression_data()
    state = create_train_state(MLP(widths=(16, 16), out_dim=1), adam(), data["x"][:1], 0)
    mixed, m_mixed = run_steps(make_train_step(mean_squared_error,
                                                                         policy), state, data, 5)
    plain, m_plain = run_steps(make_train_step(mean_squared_error), state, data, 5)
    jax.tree.map(np.testing.assert_array_equal, mixed.params, plain.params)
    np.testing.assert_array_equal(m_mixed["loss"], m_plain["loss"])


def test_loss_scale_halves_on_overflow_and_doubles_after_a_finite_run():
    # d(S * sum(4 p))/dp computed in float16 is 4 S: it overflows (> 65504) for S >= 2**14.
    def objective(p):
        return jnp.sum((p.astype(jnp.float16) * jnp.float16(4.0)).astype(jnp.float32))

    scale = precision.make_loss_scale(precision.get_policy("float16"), period=2)
    p = jnp.ones(3, jnp.float32)
    scales, finite = [], []
    for _ in range(8):
        scales.append(float(scale.scale))
        scale, is_finite, value, grad = scale.value_and_grad(objective)(p)
        finite.append(bool(is_finite))
        if is_finite:
            np.testing.assert_array_equal(grad, 4.0)
            assert float(value) == 12.0
    # Halve, halve, then 2 finite steps counted, the 3rd finite step doubles; overflow again.
    assert scales == [2.0**15, 2.0**14, 2.0**13, 2.0**13, 2.0**13, 2.0**14, 2.0**13, 2.0**13]
    assert finite == [False, False, True, True, True, False, True, True]


def test_loss_scale_never_drops_below_the_minimum():
    scale = precision.make_loss_scale(precision.get_policy("float16"), initial_scale=4.0)
    for _ in range(4):
        scale, is_finite, _, _ = scale.value_and_grad(lambda p: jnp.sum(p) * jnp.inf)(
            jnp.ones(2))
        assert not is_finite
    assert float(scale.scale) == 1.0


def test_make_loss_scale_only_for_float16_and_rejects_bad_settings():
    assert precision.make_loss_scale(precision.get_policy("bfloat16")) is None
    assert precision.make_loss_scale(precision.get_policy("float32")) is None
    fp16 = precision.get_policy("float16")
    with pytest.raises(ValueError, match="initial_scale=0.5, minimum_scale=1.0"):
        precision.make_loss_scale(fp16, initial_scale=0.5)
    with pytest.raises(ValueError, match="period=0"):
        precision.make_loss_scale(fp16, period=0)


def test_overflowing_float16_step_is_skipped_then_training_resumes():
    policy = precision.get_policy("float16")
    # Targets of 100: dloss/dpred ~ 200 / 8, times S = 2**15 overflows float16 in the backward
    # pass, although the forward pass (loss ~ 1e4) is finite.
    data = regression_data(n=8, offset=100.0)
    state = scaled_state(policy, adam(), data["x"][:1])
    step = jax.jit(make_train_step(mean_squared_error, policy))
    new, metrics = step(state, data)
    assert float(metrics["grads_finite"]) == 0.0 and np.isfinite(float(metrics["loss"]))
    jax.tree.map(np.testing.assert_array_equal, new.params, state.params)
    jax.tree.map(np.testing.assert_array_equal, new.opt_state, state.opt_state)
    assert int(new.step) == 1 and float(new.loss_scale.scale) == 2.0**14

    history = [metrics]
    for _ in range(15):
        new, metrics = step(new, data)
        history.append(metrics)
    finite = np.array([float(m["grads_finite"]) for m in history])
    scales = np.array([float(m["loss_scale"]) for m in history])
    first = int(np.argmax(finite))
    assert 0 < first < 12
    np.testing.assert_array_equal(scales[:first + 1], 2.0 ** (15 - np.arange(first + 1)))
    assert int(adam_state(new.opt_state).count) == int(finite.sum())  # updates only
    assert not np.array_equal(new.params["Dense_0"]["kernel"], state.params["Dense_0"]["kernel"])


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_adam_moments_stay_float32_under_low_precision_compute(name):
    policy = precision.get_policy(name)
    data = regression_data()
    state = scaled_state(policy, adam(), data["x"][:1], initial_scale=2.0**4)
    state, _ = run_steps(make_train_step(mean_squared_error, policy),
                         state, data, 3)
    moments_state = adam_state(state.opt_state)
    assert int(moments_state.count) == 3
    moments = jax.tree.leaves((moments_state.mu, moments_state.nu))
    assert len(moments) == 12 and {m.dtype for m in moments} == {jnp.dtype(jnp.float32)}


def test_bfloat16_rounds_to_nearest_even_with_relative_error_at_most_2_pow_minus_8():
    x = jax.random.normal(jax.random.PRNGKey(0), (100_000,), jnp.float32)
    rel = np.abs(np.asarray(x.astype(jnp.bfloat16).astype(jnp.float32) - x)) / np.abs(x)
    assert rel.max() <= 2.0**-8
    assert rel.max() > 0.9 * 2.0**-8  # the bound is attained: 8 significant bits, not 9
    # Truncating the low 16 bits instead would break the bound.
    truncated = (np.asarray(x).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    assert (np.abs(truncated - np.asarray(x)) / np.abs(np.asarray(x))).max() > 2.0**-8
    # Ties go to the even significand: 1 + 2**-8 is halfway between 1 and 1 + 2**-7.
    ties = jnp.array([1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20], jnp.float32)
    np.testing.assert_array_equal(ties.astype(jnp.bfloat16).astype(jnp.float32),
                                  [1.0, 1 + 2.0**-6, 1 + 2.0**-7])


def test_float16_overflows_above_65504_where_bfloat16_does_not():
    x = jnp.array([65504.0, 70000.0, 1e30], jnp.float32)
    fp16 = np.asarray(x.astype(jnp.float16).astype(jnp.float32))
    bf16 = np.asarray(x.astype(jnp.bfloat16).astype(jnp.float32))
    assert fp16[0] == 65504.0 and np.isinf(fp16[1:]).all()
    assert np.isfinite(bf16).all() and (np.abs(bf16 - x) / x <= 2.0**-8).all()


def test_dtype_table_lists_each_layer_under_bfloat16():
    policy = precision.get_policy("bfloat16")
    model = MLP(widths=(8,), out_dim=2, **policy.model_dtypes())
    x = jnp.ones((4, 3))
    rows = precision.dtype_table(model, model.init(jax.random.PRNGKey(0), x), x, adam())
    assert rows == [
        {"layer": "Dense_0", "params": "float32", "activations": "bfloat16",
         "gradients": "float32", "optimizer": "float32", "model_state": "-"},
        {"layer": "Dense_1", "params": "float32", "activations": "bfloat16",
         "gradients": "float32", "optimizer": "float32", "model_state": "-"},
        {"layer": "(global)", "params": "-", "activations": "bfloat16", "gradients": "-",
         "optimizer": "float32,int32", "model_state": "-"},
    ]
    lines = precision.format_dtype_table(rows).splitlines()
    assert lines[0].split() == list(precision.DTYPE_COLUMNS) and len(lines) == 4
    assert lines[1].split() == ["Dense_0", "float32", "bfloat16", "float32", "float32", "-"]
