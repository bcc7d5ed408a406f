"""`--config.precision=bfloat16` reaches the models of every experiment that trains.

For each experiment, the model that `example_model` builds (the one `launch.py --dtypes`
prints) is traced under the bfloat16 policy: parameters, gradients and optimizer state must be
float32 and every layer's output bfloat16 (shapes only, nothing trains). One experiment, the
cheapest, then runs end to end under bfloat16, and so does implicit_training's trained part (its
fixed-point solve stays float32 under the policy: tests/models/test_implicit.py).
"""

import jax
import pytest
from harness import assert_every_claim_holds, run_quick_preset

from dl_theory import experiment
from dl_theory.train.precision import dtype_table

pytestmark = pytest.mark.experiment

TRAINING_EXPERIMENTS = (
    "universal_approximation", "depth_separation", "advantage_of_depth", "width_limits",
    "no_free_lunch", "double_descent", "information_plane", "optimizer_convergence",
    "training_regimes", "edge_of_stability", "learning_rates", "batch_size",
    "gradient_clipping", "weight_averaging", "regularisation", "graph_learning",
    "language_model", "error_decomposition", "curse_of_dimensionality", "linear_regions",
    "residual_depth", "sequence_memory", "inductive_bias", "barron_rate", "proximal_sparsity",
    "implicit_training", "sparse_coding_autoencoder", "federated_averaging", "active_learning",
    "representation_learning", "symbolic_integration",
)


@pytest.mark.parametrize("name", TRAINING_EXPERIMENTS)
def test_bfloat16_policy_reaches_the_model(name):
    module = experiment.load_experiment(name)
    config = module.get_config("quick")
    assert config.precision == "float32"  # the default leaves every measurement unchanged
    config.precision = "bfloat16"
    model, x_example, tx = module.example_model(config)
    variables = model.init(jax.random.PRNGKey(0), x_example)
    rows = dtype_table(model, variables, x_example, tx)
    column = {key: {row[key] for row in rows} - {"-"} for key in rows[0] if key != "layer"}
    assert column["params"] == {"float32"}, rows
    assert column["gradients"] == {"float32"}, rows
    assert column["activations"] == {"bfloat16"}, rows
    assert not any("bfloat16" in dtypes for dtypes in column["optimizer"]), rows


def test_no_free_lunch_runs_end_to_end_in_bfloat16(tmp_path):
    """The MLP trains with bfloat16 compute; Wolpert's uniform average is exactly 1/2 for any
    learner, and the other claims involve no training, so every claim must still hold."""
    payload = run_quick_preset("no_free_lunch", tmp_path, {"precision": "bfloat16"})
    assert payload["env"]["precision_policy"] == "bfloat16"
    assert payload["config"]["precision"] == "bfloat16"
    assert_every_claim_holds(payload)
    assert (tmp_path / "results.json").is_file()


def test_implicit_training_trains_in_bfloat16(tmp_path):
    """The implicit model and the MLP train on MNIST-1D with bfloat16 compute (300 steps):
    the float32 solve converges (no FixedPointError) and both models beat their untrained
    accuracy by far (chance is 0.1)."""
    payload = run_quick_preset("implicit_training", tmp_path,
                               {"precision": "bfloat16", "mnist1d.steps": 300},
                               selected_parts=["mnist1d"])
    assert payload["env"]["precision_policy"] == "bfloat16"
    m = payload["metrics"]["mnist1d"]
    for name in ("implicit", "mlp"):
        assert m[name][0] > m[f"{name}_untrained"][0] + 0.15, m
