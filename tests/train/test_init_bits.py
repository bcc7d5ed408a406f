"""The compiled initialisation (`dl_theory.train.state._init_one`, compiled without XLA's
algebraic simplifier, its keys split by the shared `_seed_keys` program) gives the very bits
of the op-by-op initialisation every recorded result was measured with: dense,
convolutional, recurrent and transformer models (the causal LM and the hybrid share the
transformer's blocks and embeddings, the RCNN the CNN's layers), and under float16 dtypes
with a loss scale. (Compiled with the simplifier, or with LLVM at level 0, the bits move and
this test fails.)"""

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from dl_theory.models.mnist1d_architectures import ARCHITECTURES, architecture_inputs
from dl_theory.models.seq2seq import Seq2SeqTransformer
from dl_theory.optim import build_optimizer
from dl_theory.train import state as state_lib
from dl_theory.train.precision import get_policy, make_loss_scale

_SECTIONS = dict(
    logreg={}, mlp=dict(widths=(100, 100), activation="relu"),
    cnn=dict(channels=(25, 25, 25), kernel_size=5), gru=dict(hidden=32, readout="mean"),
    transformer=dict(d_model=32, num_heads=4, num_layers=1, mlp_dim=64))
_TOKENS = np.arange(12, dtype=np.int32).reshape(2, 6) % 7


def _models(dtypes):
    """(name, model, x_example) of each family, in the given policy dtypes."""
    x_mnist1d = np.linspace(-1, 1, 80, dtype=np.float32).reshape(2, 40)
    for name, section in _SECTIONS.items():
        model = ARCHITECTURES[name].build(ml_collections.ConfigDict(section), dtypes)
        yield name, model, architecture_inputs(name, x_mnist1d)
    yield "seq2seq", Seq2SeqTransformer(7, 11, d_model=8, num_heads=2, num_layers=2,
                                        mlp_dim=16, max_len=8, **dtypes), (_TOKENS, _TOKENS)


# Each family in float32; the MLP also in float16 dtypes, with a loss scale in the state.
_CASES = [("float32", *case) for case in _models(get_policy("float32").model_dtypes())] + [
    ("float16", *case) for case in _models(get_policy("float16").model_dtypes())
    if case[0] == "mlp"]


@pytest.mark.parametrize("precision, name, model, x", _CASES,
                         ids=[f"{p}-{n}" for p, n, _, _ in _CASES])
def test_the_compiled_initialisation_gives_the_op_by_op_bits(precision, name, model, x):
    tx = build_optimizer(ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-2)))
    loss_scale = make_loss_scale(get_policy(precision))
    compiled = state_lib._init_one(x, state_lib._seed_keys(np.int32(3)), loss_scale,
                                   model=model, tx=tx, active=())
    keys = jax.random.split(jax.random.PRNGKey(jnp.int32(3)), 3)
    op_by_op = state_lib._init_state(model, tx, x, keys, loss_scale)
    chex.assert_trees_all_equal(compiled, op_by_op)
