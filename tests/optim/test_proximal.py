"""ProxGen's closed-form prox maps against a brute-force 1-D minimiser, and the optax link."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dl_theory.optim import build_optimizer, optimizer_config
from dl_theory.optim.proximal import (
    EXPONENTS,
    PROX_MAPS,
    preconditioned_prox,
    threshold,
)
from dl_theory.theory.scalar_minimiser import (
    brute_force_prox,
    lq_objective,
    random_preconditioned_prox_problems,
)
from dl_theory.user_errors import ConfigError


def _random_problems(seed: int, n: int = 10_000):
    """(u, d, lambda, eta) drawn over several decades; tau = lambda eta / d."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=n) * 10.0 ** rng.uniform(-2, 1, n)
    d = 10.0 ** rng.uniform(-4, 1, n)
    lam = 10.0 ** rng.uniform(-4, 0, n)
    eta = 10.0 ** rng.uniform(-3, -1, n)
    return u, d, lam, eta


@pytest.mark.parametrize("kind", sorted(PROX_MAPS))
def test_closed_form_equals_brute_force_away_from_threshold(kind):
    u, d, lam, eta = _random_problems(seed=1)
    tau = lam * eta / d
    with jax.enable_x64(True):
        closed = np.asarray(preconditioned_prox(kind, {"w": jnp.asarray(u)}, jnp.asarray(lam),
                                                jnp.asarray(eta), {"w": jnp.asarray(d)})["w"])
        h = np.asarray(threshold(kind, jnp.asarray(tau)))
    brute = brute_force_prox(u, tau, EXPONENTS[kind])
    away = np.abs(np.abs(u) - h) > 1e-6 * np.maximum(h, 1e-3)
    assert away.mean() > 0.99
    np.testing.assert_allclose(closed[away], brute[away], atol=1e-8, rtol=0)
    # Both sides of the threshold occur, so zero and nonzero branches are both tested.
    assert 0.05 < np.mean(closed == 0) < 0.95


@pytest.mark.parametrize("kind", sorted(PROX_MAPS))
def test_threshold_separates_zero_from_nonzero(kind):
    tau = np.full(2, 0.3)
    with jax.enable_x64(True):
        h = float(threshold(kind, jnp.asarray(0.3)))
        out = np.asarray(PROX_MAPS[kind](jnp.asarray([h * (1 - 1e-6), h * (1 + 1e-6)]),
                                         jnp.asarray(tau)))
    assert out[0] == 0.0 and out[1] != 0.0
    # At the threshold both candidates have the same objective (a tie between 0 and the root).
    if EXPONENTS[kind] < 1:
        assert lq_objective(out[1:], np.array([h]), tau[:1], EXPONENTS[kind])[0] == pytest.approx(
            lq_objective(np.zeros(1), np.array([h]), tau[:1], EXPONENTS[kind])[0], abs=1e-5)


def test_prox_maps_keep_shape_and_dtype_and_tau_zero_is_identity():
    u = jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
    for kind, prox in PROX_MAPS.items():
        out = prox(u, jnp.float32(0.0))
        assert out.shape == u.shape and out.dtype == u.dtype
        np.testing.assert_allclose(out, u, rtol=1e-6, err_msg=kind)


def test_adam_prox_link_uses_adams_preconditioner():
    """One Adam step from x0 with gradient g: u = x0 - eta sign(g) (|m_hat| / sqrt(v_hat) = 1),
    D = |g| + eps, so the l1 prox shrinks u by lambda eta / |g|."""
    x0, g = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.5, -0.25, 2.0])
    eta, lam = 0.1, 0.2
    tx = build_optimizer(optimizer_config(name="adam", learning_rate=eta,
                                          prox=dict(kind="l1", strength=lam)))
    updates, _ = tx.update({"w": g}, tx.init({"w": x0}), {"w": x0})
    new = optax.apply_updates({"w": x0}, updates)["w"]
    u = x0 - eta * jnp.sign(g)
    expected = jnp.sign(u) * jnp.maximum(jnp.abs(u) - lam * eta / (jnp.abs(g) + 1e-8), 0.0)
    np.testing.assert_allclose(new, expected, rtol=1e-5)


def test_sgd_prox_link_is_proximal_gradient_and_composes_with_accumulation():
    """SGD + l0 prox under MultiSteps(2): one update with the mean of two gradients, then hard
    thresholding at sqrt(2 lambda eta); clipping before it scales the gradient first."""
    x0 = jnp.array([1.0, 0.05, -0.3])
    grads = [jnp.array([1.0, 0.0, 1.0]), jnp.array([3.0, 0.0, -1.0])]
    config = optimizer_config(name="sgd", learning_rate=0.1, accumulate_steps=2,
                              clip_global_norm=10.0, prox=dict(kind="l0", strength=0.05))
    tx = build_optimizer(config)
    params, state = {"w": x0}, tx.init({"w": x0})
    for g in grads:
        updates, state = tx.update({"w": g}, state, params)
        params = optax.apply_updates(params, updates)
    u = x0 - 0.1 * (grads[0] + grads[1]) / 2
    expected = jnp.where(jnp.abs(u) > jnp.sqrt(2 * 0.05 * 0.1), u, 0.0)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-6)
    assert float(params["w"][1]) == 0.0


def test_prox_strength_is_an_injected_hyperparameter_under_a_schedule():
    from dl_theory.optim import current_hyperparam

    config = optimizer_config(name="adam", learning_rate=0.01, schedule="cosine", decay_steps=10,
                              prox=dict(kind="l_half", strength=1e-3))
    tx = build_optimizer(config)
    state = tx.init({"w": jnp.ones(3)})
    assert float(current_hyperparam(state, "prox_strength")) == pytest.approx(1e-3)


@pytest.mark.parametrize("prox, fragment", [
    (dict(kind="l_third"), "optimizer.prox.kind='l_third'; known:"),
    (dict(kind="l1", strength=-1e-4), "optimizer.prox.strength=-0.0001; allowed"),
    (dict(kind="l1", stength=1e-4), "unknown keys ['stength'] in optimizer.prox"),
])
def test_bad_prox_config_is_a_one_line_error_naming_the_key(prox, fragment):
    with pytest.raises(ConfigError) as err:
        build_optimizer(optimizer_config(prox=prox))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_prox_with_an_optimizer_of_unknown_preconditioner_is_refused():
    with pytest.raises(ConfigError, match="optimizer.prox.kind='l0' with optimizer name='lion'"):
        build_optimizer(optimizer_config(name="lion", prox=dict(kind="l0", strength=1e-3)))


def test_fit_with_a_prox_link_ends_with_exact_zeros_and_accumulation_matches_the_large_batch():
    """Through the public fit: Adam + l_half prox zeroes weights exactly (Adam with the same
    l1 subgradient zeroes none), and 4 micro-batches give the large batch's parameters."""
    from dl_theory.data.batching import full_batch
    from dl_theory.models.mlp import MLP
    from dl_theory.train.fit import fit
    from dl_theory.train.losses import mean_squared_error
    from dl_theory.train.state import create_train_state

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 4))
    data = {"x": x, "y": jnp.sin(x[:, :1])}
    model = MLP(widths=(16,), activation="tanh")

    def train(accumulate, **optimizer):
        tx = build_optimizer(optimizer_config(name="adam", learning_rate=0.01,
                                              accumulate_steps=accumulate, **optimizer))
        state = create_train_state(model, tx, x[:1], seed=0)
        state, _ = fit(state, data, full_batch(), loss=mean_squared_error,
                       steps=100 * accumulate, accumulate_steps=accumulate, verbose=False)
        return jax.tree.leaves(state.params)

    prox = train(1, prox=dict(kind="l_half", strength=1e-3))
    subgradient = train(1, l1=1e-3)
    assert sum(int(jnp.sum(p == 0)) for p in prox) > 0.3 * sum(p.size for p in prox)
    assert sum(int(jnp.sum(p == 0)) for p in subgradient) == 0
    accumulated = train(4, prox=dict(kind="l_half", strength=1e-3))
    for a, b in zip(prox, accumulated):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_random_prox_problems_span_their_stated_ranges():
    u, d, lam, eta = random_preconditioned_prox_problems(0, 10_000)
    assert u.shape == d.shape == lam.shape == eta.shape == (10_000,)
    assert 1e-4 <= d.min() and d.max() <= 10 and 1e-4 <= lam.min() and lam.max() <= 1
    assert 1e-3 <= eta.min() and eta.max() <= 0.1
    tau = lam * eta / d
    assert np.log10(tau.max() / tau.min()) > 9
    np.testing.assert_array_equal(u, random_preconditioned_prox_problems(0, 10_000)[0])
