"""Accuracy of every member of a stacked grid of classifiers, against each member alone."""

import jax
import jax.numpy as jnp
import numpy as np

from dl_theory.models.mlp import MLP
from dl_theory.train.evaluate import members_accuracy


def test_members_accuracy_equals_each_member_alone():
    model = MLP(widths=(4,), out_dim=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (50, 2))
    members = [model.init(jax.random.PRNGKey(s), x[:1])["params"] for s in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *members)
    y = jnp.argmax(model.apply({"params": members[1]}, x), -1)  # member 1 is always right
    accuracy = members_accuracy(model, stacked, {"x": x, "y": y})
    alone = [float(jnp.mean(jnp.argmax(model.apply({"params": p}, x), -1) == y))
             for p in members]
    np.testing.assert_allclose(accuracy, alone)
    assert accuracy.shape == (3,) and accuracy[1] == 1.0 and accuracy.min() < 1.0
