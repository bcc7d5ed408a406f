"""config_checks: the generic rules pass every preset and catch bad values at any depth."""

import math

import ml_collections
import pytest

from dl_theory import config_checks, experiment
from dl_theory.user_errors import ConfigError

PRESETS = [(name, preset) for name in experiment.available_experiments()
           for preset in ("quick", "paper")]


@pytest.mark.parametrize("name, preset", PRESETS, ids=[f"{n}:{p}" for n, p in PRESETS])
def test_every_preset_of_every_experiment_passes(name, preset):
    module = experiment.load_experiment(name)
    config_checks.validate_experiment_config(module, module.get_config(preset), preset)


def _config(**values):
    return ml_collections.ConfigDict(values)


@pytest.mark.parametrize("values, message", [
    (dict(a=dict(b=dict(threshold=math.nan))), "a.b.threshold=nan; allowed: finite"),
    (dict(part=dict(factors=(0.9, math.inf))), "part.factors=(0.9, inf)"),
    (dict(steps=0), "steps=0; allowed: integers >= 1"),
    (dict(part=dict(num_test=-1)), "part.num_test=-1"),
    (dict(widths=(8, 2.5)), "widths=(8, 2.5); allowed: a non-empty sequence of integers >= 1"),
    (dict(widths=("8",)), "widths=('8',)"),
    (dict(widths=()), "widths=(); allowed: a non-empty"),
    (dict(seeds=0), "seeds=0"),
    (dict(seeds=(0, -1)), "seeds=(0, -1); allowed: a non-empty sequence of integers >= 0"),
    (dict(data=dict(seed=-2)), "data.seed=-2; allowed: integers >= 0"),
    (dict(dropout_rate=1.5), "dropout_rate=1.5; allowed: numbers in [0, 1]"),
    (dict(noise_std=-0.1), "noise_std=-0.1; allowed: numbers >= 0"),
    (dict(precision="fp8"), "precision='fp8'; allowed: one of"),
    (dict(m=dict(activation="relux")), "m.activation='relux'"),
    (dict(eval_every=True), "eval_every=True"),
])
def test_generic_rules_name_the_dotted_key_value_and_what_is_allowed(values, message):
    errors = config_checks.config_errors(_config(**values))
    assert len(errors) == 1 and message in errors[0], errors


def test_legal_values_pass_and_seeds_may_be_a_count_or_a_list():
    assert config_checks.config_errors(_config(
        seeds=3, data=dict(seeds=(0, 5)), steps=1, decay_steps=0, warmup_steps=0, seed=0,
        dropout_rate=0.0, precision="bfloat16", widths=(1, 2), threshold=-2.5,
        flag=True, name="anything")) == []


def test_optimizer_sections_are_checked_at_any_depth_with_their_full_key():
    from dl_theory.optim import optimizer_config
    config = _config(part=dict(inner=dict(optimizer=optimizer_config(
        learning_rate=math.nan, weight_decay=math.inf, decay_rate=math.nan,
        clip_global_norm=-1.0))))
    text = "; ".join(config_checks.config_errors(config))
    for key in ("learning_rate=nan", "weight_decay=inf", "decay_rate=nan",
                "clip_global_norm=-1.0"):
        assert f"part.inner.optimizer.{key}" in text, text


def test_types_and_keys_follow_the_preset():
    reference = _config(sizes=((16, 1), (32, 2)), rates=(0.1, 1.0), count=3, name="a",
                        part=dict(x=1.0))
    bad = _config(sizes=((16,),), rates=(1, "x"), count=3, name=4, part=dict(x=1, y=2))
    text = "; ".join(config_checks.config_errors(bad, reference))
    assert "sizes=((16,),); allowed: a sequence of 2-tuples" in text
    assert "rates=(1, 'x')" in text and "name=4; allowed: a string" in text
    assert "unknown config key part.y" in text
    assert "part.x" not in text.replace("part.y", "")  # an integer where a float was is fine


def test_validate_reports_every_problem_in_one_line_and_runs_the_experiment_hook():
    module = experiment.load_experiment("language_model")
    config = module.get_config("quick")
    config.steps, config.min_margin_bits = 0, math.nan
    with pytest.raises(ConfigError) as info:
        config_checks.validate_experiment_config(module, config, "quick")
    message = str(info.value)
    assert "\n" not in message and "steps=0" in message and "min_margin_bits=nan" in message
    config = module.get_config("quick")
    config.head_dim = 5  # a value only the experiment's own hook can judge
    with pytest.raises(ConfigError, match="head_dim=5"):
        config_checks.validate_experiment_config(module, config, "quick")


# Experiments whose training has no float16 loss scaling (the others build their states with
# `make_loss_scale`, or train no flax model and have no precision key).
WITHOUT_LOSS_SCALING = ("active_learning", "federated_averaging", "gradient_clipping",
                        "sparse_coding_autoencoder")


@pytest.mark.parametrize("name", experiment.available_experiments())
def test_float16_is_refused_exactly_where_training_has_no_loss_scaling(name):
    """Experiments are loaded here, not at collection (loading all of them takes seconds)."""
    module = experiment.load_experiment(name)
    config = module.get_config("quick")
    if "precision" not in config:  # nothing to refuse: no flax model trains under a policy
        assert name not in WITHOUT_LOSS_SCALING
        return
    config.precision = "float16"
    if name not in WITHOUT_LOSS_SCALING:
        config_checks.validate_experiment_config(module, config, "quick")
        return
    with pytest.raises(ConfigError, match=r"precision='float16'; allowed here: "
                       r"\['bfloat16', 'float32'\] \(this experiment's training has no "
                       r"float16 loss scaling\)"):
        config_checks.validate_experiment_config(module, config, "quick")


def test_a_part_of_its_own_may_not_ask_for_float16_either():
    module = experiment.load_experiment("federated_averaging")
    config = module.get_config("quick")
    config.mnist1d.precision = "float16"
    with pytest.raises(ConfigError, match=r"^mnist1d\.precision='float16'; allowed here"):
        config_checks.validate_experiment_config(module, config, "quick")
