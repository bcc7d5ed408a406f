"""ImplicitModel: well-posedness projection, fixed point, implicit gradients vs finite
differences, and the non-convergence error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from dl_theory.models.implicit import (
    FixedPointError,
    ImplicitModel,
    picard,
    project_rows_to_l1_ball,
)
from dl_theory.theory.relu_fixed_points import (
    feedforward_as_implicit,
    perron_rescaling,
    relu_fixed_points,
)
from dl_theory.user_errors import ConfigError


def _model(**kwargs):
    defaults = dict(hidden=8, out_dim=3, kappa=0.9, tol=1e-13, max_iter=2000,
                    dtype=jnp.float64, param_dtype=jnp.float64)
    return ImplicitModel(**{**defaults, **kwargs})


def test_projection_bounds_the_inf_norm_and_is_the_l1_ball_projection():
    a = jax.random.normal(jax.random.PRNGKey(0), (6, 5)) * 3.0
    projected = project_rows_to_l1_ball(a, 0.7)
    np.testing.assert_allclose(jnp.abs(projected).sum(1), 0.7, rtol=1e-5)
    # Soft thresholding of each row at its own theta: signs kept, order of magnitudes kept.
    assert bool(jnp.all(projected * a >= 0))
    inside = a * 0.01
    np.testing.assert_array_equal(project_rows_to_l1_ball(inside, 0.7), inside)


def test_output_is_the_fixed_point_of_the_projected_equation():
    with jax.enable_x64(True):
        model = _model()
        u = jax.random.normal(jax.random.PRNGKey(1), (4, 5), jnp.float64)
        params = model.init(jax.random.PRNGKey(2), u)["params"]
        params = {**params, "A": params["A"] * 40.0}
        a = model.state_matrix(params["A"])
        assert float(jnp.abs(a).sum(1).max()) <= 0.9 + 1e-12
        inj = u @ params["B"]["kernel"] + params["B"]["bias"][None, :]
        x, _ = picard(lambda x: jax.nn.relu(x @ a.T + inj), jnp.zeros_like(inj), 1e-14, 5000)
        np.testing.assert_allclose(jax.nn.relu(x @ a.T + inj), x, atol=1e-13)
        expected = (x @ params["C"]["kernel"] + params["C"]["bias"][None, :]
                    + u @ params["D"]["kernel"])
        np.testing.assert_allclose(model.apply({"params": params}, u), expected, atol=1e-12)


def test_implicit_gradient_equals_unrolled_and_central_differences():
    with jax.enable_x64(True):
        model = _model()
        u = jax.random.normal(jax.random.PRNGKey(3), (5, 4), jnp.float64)
        params = model.init(jax.random.PRNGKey(4), u)["params"]
        params = {**params, "A": params["A"] * 20.0}

        def loss(p, m):
            return jnp.sum(jnp.sin(m.apply({"params": p}, u)))

        implicit = ravel_pytree(jax.grad(loss)(params, model))[0]
        unrolled = ravel_pytree(jax.grad(loss)(params, model.clone(gradient="unrolled",
                                                                   max_iter=500)))[0]
        np.testing.assert_allclose(implicit, unrolled, atol=1e-11)
        flat, unravel = ravel_pytree(params)
        f = jax.jit(lambda v: loss(unravel(v), model))
        h = 1e-6
        for i in np.random.default_rng(0).choice(flat.size, 25, replace=False):
            fd = (f(flat.at[i].add(h)) - f(flat.at[i].add(-h))) / (2 * h)
            assert float(implicit[i]) == pytest.approx(float(fd), abs=1e-8)
        # A short unrolled solve is measurably wrong: the comparison can fail.
        short = ravel_pytree(jax.grad(loss)(params, model.clone(gradient="unrolled",
                                                                max_iter=3)))[0]
        assert float(jnp.max(jnp.abs(short - implicit))) > 1e-3


def test_non_convergence_is_an_error_naming_the_residual():
    model = ImplicitModel(hidden=8, out_dim=2, kappa=0.99, tol=1e-7, max_iter=2)
    u = jnp.ones((3, 4)) * 10.0
    with pytest.raises(FixedPointError, match=r"residual max\|x_k\+1 - x_k\| = .* > tol=1e-07"):
        model.init(jax.random.PRNGKey(0), u)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(kappa=1.0), "kappa=1.0"), (dict(tol=0.0), "tol=0.0"),
    (dict(max_iter=0), "max_iter=0"), (dict(gradient="adjoint"), "gradient='adjoint'"),
])
def test_bad_settings_are_clear_errors(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        ImplicitModel(hidden=4, out_dim=2, **kwargs)


def test_relu_2x_plus_u_has_two_solutions_at_minus_one_and_none_at_one():
    two = relu_fixed_points(np.array([[2.0]]), np.array([-1.0]))
    assert sorted(float(x[0]) for x in two) == [0.0, 1.0]
    assert relu_fixed_points(np.array([[2.0]]), np.array([1.0])) == []
    assert len(relu_fixed_points(np.array([[0.5]]), np.array([1.0]))) == 1


def test_perron_rescaling_brings_the_inf_norm_to_the_perron_root():
    a = np.array([[0.0, 4.0], [0.1, 0.0]])
    s, root = perron_rescaling(a)
    assert root == pytest.approx(np.sqrt(0.4))
    np.testing.assert_allclose(np.abs(s[:, None] * a / s[None, :]).sum(1).max(), root)


def test_feedforward_net_written_implicitly_is_upper_triangular_with_the_same_output():
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(3, 2)), rng.normal(size=(3, 3)), rng.normal(size=(3, 3))]
    biases = [rng.normal(size=3) for _ in range(3)]
    u = rng.normal(size=(4, 2))
    a, injection = feedforward_as_implicit(weights, biases, u)
    assert np.all(np.tril(a) == 0)
    h = u
    for w, b in zip(weights, biases):
        h = np.maximum(h @ w.T + b, 0.0)
    x = np.zeros_like(injection)
    for _ in range(3):
        x = np.maximum(x @ a.T + injection, 0.0)
    np.testing.assert_allclose(x[:, :3], h, atol=1e-12)


def test_implicit_model_trains_with_fit_and_stays_well_posed():
    from dl_theory.data.batching import full_batch
    from dl_theory.optim import build_optimizer, optimizer_config
    from dl_theory.train.fit import fit
    from dl_theory.train.losses import mean_squared_error
    from dl_theory.train.state import create_train_state

    x = jax.random.normal(jax.random.PRNGKey(0), (32, 3))
    data = {"x": x, "y": jnp.sin(x[:, :1]) * jnp.cos(x[:, 1:2])}
    model = ImplicitModel(hidden=12, out_dim=1, kappa=0.7, tol=1e-5, max_iter=100)
    tx = build_optimizer(optimizer_config(name="adam", learning_rate=0.02))
    state = create_train_state(model, tx, x[:1], seed=0)
    first = float(mean_squared_error(model.apply({"params": state.params}, x), data["y"]))
    state, _ = fit(state, data, full_batch(), loss=mean_squared_error, steps=200,
                   verbose=False)
    last = float(mean_squared_error(model.apply({"params": state.params}, x), data["y"]))
    assert last < 0.5 * first
    a = model.state_matrix(state.params["A"])
    assert float(jnp.abs(a).sum(1).max()) <= 0.7 + 1e-6


def _while_loop_float_dtypes(jaxpr) -> list[set[str]]:
    """The floating dtypes carried by each while loop of a jaxpr, nested jaxprs included."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            found.append({v.aval.dtype.name for v in eqn.outvars
                          if jnp.issubdtype(v.aval.dtype, jnp.floating)})
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    found += _while_loop_float_dtypes(inner)
    return found


def test_under_bfloat16_the_solve_and_its_adjoint_stay_float32():
    """With dtype=bfloat16 the dense maps compute in bfloat16, but both Picard loops of the
    parameter gradient (the forward solve and the implicit adjoint) carry float32, so a tol of
    1e-5 (below bfloat16's spacing 2**-7 near 1) is met without FixedPointError."""
    model = ImplicitModel(hidden=16, out_dim=3, kappa=0.9, tol=1e-5, max_iter=300,
                          dtype=jnp.bfloat16, param_dtype=jnp.float32)
    u = jax.random.normal(jax.random.PRNGKey(0), (8, 5))
    params = model.init(jax.random.PRNGKey(1), u)["params"]
    params = {**params, "A": params["A"] * 40.0}  # the projection binds: many iterations

    def loss(p):
        return jnp.sum(model.apply({"params": p}, u).astype(jnp.float32) ** 2)

    assert model.apply({"params": params}, u).dtype == jnp.bfloat16
    loops = _while_loop_float_dtypes(jax.make_jaxpr(jax.grad(loss))(params).jaxpr)
    assert loops == [{"float32"}, {"float32"}]
    grads = jax.grad(loss)(params)
    assert all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g)))
               for g in jax.tree.leaves(grads))
