"""Every value of an experiment's config checked before anything compiles.

The rules are declared once, by key name, and hold at every nesting level, so a new
experiment is checked without writing a line:

- every number is finite (NaN and inf are refused everywhere; no preset needs them);
- counts (steps, seeds, batch sizes, widths, depths, dims, `num_*`, `*_every`, ...) are
  integers >= 1, and a sequence of them is non-empty; seeds and offsets (`*_seed`,
  `warmup_steps`, `start_step`, ...) are integers >= 0;
- probabilities and fractions are in [0, 1]; rates, scales, tolerances and penalties >= 0;
- names (`precision`, `activation`) are registered ones;
- a section that is an optimizer config (it has name, learning_rate and schedule) is
  checked by `dl_theory.optim.build.optimizer_config_errors`;
- with the preset as reference, every value has the preset's type (an integer stays an
  integer, also inside a tuple; a pair stays a pair) and no key is unknown.

What generic rules cannot know (a name from an experiment's own registry, one value that
must divide another) an experiment states in an optional `validate_config(config)` next to
its presets, raising `ConfigError`. Every problem found is reported, in one line, each with
its full dotted key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import types
from collections.abc import Callable, Iterator
from typing import Any

import ml_collections

from dl_theory.models.mlp import ACTIVATIONS
from dl_theory.optim.build import optimizer_config_errors
from dl_theory.train.precision import POLICIES
from dl_theory.user_errors import ConfigError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Rule:
    """What every scalar under a matching key must satisfy; `allowed` words the message."""

    allowed: str
    accepts: Callable[[Any], bool]
    non_empty: bool = False  # a sequence under this key must have at least one element
    for_sequences: Rule | None = None  # the rule for a sequence value, if not this one


COUNT = Rule("integers >= 1", lambda v: _is_int(v) and v >= 1, non_empty=True)
INDEX = Rule("integers >= 0", lambda v: _is_int(v) and v >= 0)
# `seeds=3` is how many seeds (0, 1, 2); `seeds=(0, 5)` is which ones.
SEEDS = dataclasses.replace(COUNT, for_sequences=dataclasses.replace(INDEX, non_empty=True))
PROBABILITY = Rule("numbers in [0, 1]", lambda v: _is_real(v) and 0 <= v <= 1)
NONNEGATIVE = Rule("numbers >= 0", lambda v: _is_real(v) and v >= 0)
POSITIVE = Rule("numbers > 0", lambda v: _is_real(v) and v > 0)
PRECISION = Rule(f"one of {sorted(POLICIES)}", lambda v: v in POLICIES)
ACTIVATION = Rule(f"one of {sorted(ACTIVATIONS)}", lambda v: v in ACTIVATIONS)

# (leaf-key patterns, rule); the first matching entry applies, so exceptions come first.
RULES: tuple[tuple[tuple[str, ...], Rule], ...] = (
    (("seed", "*_seed", "warmup_steps", "decay_steps", "start_step"), INDEX),
    (("seeds", "*_seeds"), SEEDS),
    (("steps", "*_steps", "num_*", "*_size", "*_sizes", "sizes",
      "width", "*_width", "widths", "*_widths", "depth", "*_depth", "depths", "*_depths",
      "dim", "*_dim", "dims", "d_model", "hidden", "channels", "*_channels", "*_len",
      "lengths", "*_every", "frequency", "neurons", "restarts", "draws", "draw_sets",
      "trials", "rounds", "updates", "bins", "*_bins", "patience", "per_class",
      "power_iters", "micro_batch", "mlp_ratio", "k", "ks", "n", "period", "*_per_net",
      "grid_points", "grid_side", "*_stride"), COUNT),
    (("*_fraction", "dropout_rate", "label_noise", "pct_start", "b1", "b2", "beta1", "beta2",
      "momentum", "decay"), PROBABILITY),
    (("min_lr", "max_lr", "rates", "*_rates", "lengthscales", "bandwidth", "condition_number",
      "radius", "radii", "eps"), POSITIVE),
    (("learning_rate", "*_learning_rate", "*_learning_rates", "weight_decay", "l1", "l2",
      "clip_*", "*_std", "tolerance", "*_tolerance", "*_tol", "*_scale", "noise",
      "*_rel_error", "*_abs_diff", "*_penalty"), NONNEGATIVE),
    (("precision", "*_precision"), PRECISION),
    (("activation", "*_activation", "activations"), ACTIVATION),
)


def rule_for(key: str) -> Rule | None:
    """The rule for a leaf key name (the last part of a dotted key), or None."""
    for patterns, rule in RULES:
        if any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns):
            return rule
    return None


def _scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


def _show(key: str, value: Any) -> str:
    return f"{key}={tuple(value) if isinstance(value, list) else value!r}"


def _value_errors(key: str, value: Any) -> list[str]:
    """Finiteness of every number, then the rule of the key's name."""
    errors = []
    if any(_is_real(v) and not math.isfinite(v) for v in _scalars(value)):
        errors.append(f"{_show(key, value)}; allowed: finite numbers (no NaN or inf)")
        return errors
    rule = rule_for(key.rsplit(".", 1)[-1])
    if rule is None or (rule is PRECISION and value is None and "." in key):
        # A part's unset precision override (a placeholder): the part uses the top level's.
        return errors
    is_sequence = isinstance(value, (tuple, list))
    if is_sequence and rule.for_sequences is not None:
        rule = rule.for_sequences
    if (rule.non_empty and is_sequence and not value) or not all(
            map(rule.accepts, _scalars(value))):
        allowed = rule.allowed if not rule.non_empty or not is_sequence else (
            f"a non-empty sequence of {rule.allowed}")
        errors.append(f"{_show(key, value)}; allowed: {allowed}")
    return errors


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if _is_int(value):
        return "an integer"
    if _is_real(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


_PLURAL = {"a boolean": "booleans", "an integer": "integers", "a number": "numbers",
           "a string": "strings"}


def _type_errors(key: str, value: Any, reference: Any) -> list[str]:
    """`value` against the preset's `reference`: same kind of scalar, a sequence stays a
    sequence of the same kind (of pairs, if it was pairs)."""
    if reference is None:
        return []
    if isinstance(reference, (tuple, list)):
        if not isinstance(value, (tuple, list)):
            return [f"{_show(key, value)}; allowed: a sequence like {_show(key, reference)}"]
        if not reference:
            return []
        first = reference[0]
        if isinstance(first, (tuple, list)):
            bad = [v for v in value
                   if not isinstance(v, (tuple, list)) or len(v) != len(first)]
            if bad:
                return [f"{_show(key, value)}; allowed: a sequence of {len(first)}-tuples like "
                        f"{tuple(reference)!r}"]
        kinds = {_kind(r) for r in _scalars(reference)}
        if not all(_kind(v) in kinds or ({"a number"} <= kinds and _kind(v) == "an integer")
                   for v in _scalars(value)):
            plural = " or ".join(sorted(_PLURAL.get(k, k) for k in kinds))
            return [f"{_show(key, value)}; allowed: a sequence of {plural} like "
                    f"{tuple(reference)!r}"]
        return []
    expected, got = _kind(reference), _kind(value)
    if got == expected or (expected == "a number" and got == "an integer"):
        return []
    return [f"{_show(key, value)}; allowed: {expected}, like {reference!r}"]


def _is_optimizer_section(node: dict) -> bool:
    return {"name", "learning_rate", "schedule"} <= set(node)


def config_errors(config: ml_collections.ConfigDict | dict, reference=None,
                  prefix: str = "") -> list[str]:
    """Every problem of `config`, each "dotted.key=value; allowed: ...", checked against the
    rules by key name and, when given, the `reference` config (the preset) for types and
    unknown keys."""
    node = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    ref = reference.to_dict() if isinstance(reference, ml_collections.ConfigDict) else reference
    if prefix and _is_optimizer_section(node):
        return optimizer_config_errors(ml_collections.ConfigDict(node), prefix.rstrip("."))
    errors = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if ref is not None and key not in ref:
            errors.append(f"unknown config key {dotted}; known at this level: {sorted(ref)}")
            continue
        ref_value = None if ref is None else ref[key]
        if isinstance(value, dict):
            if ref_value is not None and not isinstance(ref_value, dict):
                errors.append(f"{dotted} is a section; allowed: {_kind(ref_value)}")
                continue
            errors.extend(config_errors(value, ref_value, f"{dotted}."))
            continue
        type_errors = _type_errors(dotted, value, ref_value)
        errors.extend(type_errors or _value_errors(dotted, value))
    return errors


def lookup(config: ml_collections.ConfigDict, dotted_key: str) -> Any:
    """The value at `dotted_key` ("a.b.c") of `config`."""
    node = config
    for part in dotted_key.split("."):
        node = node[part]
    return node


def check_choice(config: ml_collections.ConfigDict, dotted_key: str, known) -> None:
    """Raises `ConfigError` unless the value at `dotted_key` is one of `known` (for an
    experiment's `validate_config`: names from its own registries)."""
    value = lookup(config, dotted_key)
    if value not in known:
        raise ConfigError(f"{dotted_key}={value!r}; known: {sorted(known)}")


def check_precision_without_loss_scaling(config: ml_collections.ConfigDict) -> None:
    """Raises `ConfigError` if the top-level `precision` or a part's own `SECTION.precision`
    asks for float16 compute in an experiment whose training has no loss scaling: small
    float16 gradients would underflow to zero silently
    (`dl_theory.train.precision.make_loss_scale` is what `fit` uses)."""
    keys = ["precision"] if "precision" in config else []
    keys += [f"{name}.precision" for name, section in config.items()
             if isinstance(section, ml_collections.ConfigDict) and "precision" in section]
    for key in keys:
        if lookup(config, key) == "float16":
            allowed = sorted(name for name in POLICIES if name != "float16")
            raise ConfigError(f"{key}='float16'; allowed here: {allowed} (this experiment's "
                              "training has no float16 loss scaling)")


def validate_experiment_config(module: types.ModuleType, config: ml_collections.ConfigDict,
                               preset: str | None = None) -> None:
    """Raises `ConfigError` naming every bad value of `config`, an experiment `module`'s
    config (of `preset`, whose own config is the reference for types and keys): the
    generic rules of this module, then the module's own `validate_config(config)` if any."""
    reference = None
    if preset is not None:
        try:
            reference = module.get_config(preset)
        except ValueError:  # not a preset name (a caller's own config): no reference
            reference = None
    errors = config_errors(config, reference)
    if errors:
        raise ConfigError("; ".join(errors))
    hook = getattr(module, "validate_config", None)
    if hook is not None:
        hook(config)
