"""The check every model constructor runs on its sizes (widths, channels, heads, layers).

Flax would otherwise take `widths=(2.5,)` as a width of 2 (through int()) and `('8',)` as
a string until tracing fails deep inside; a zero size divides by zero or builds an empty
layer. Each model calls `check_sizes` in `__post_init__`, so a bad size fails at
construction, with the model's and the field's name, before anything is traced.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from dl_theory.user_errors import ConfigError


def _is_positive_int(value: Any) -> bool:
    """An integer >= 1: a Python or numpy integer, or an integer scalar array (anything
    with __index__), but not a bool, a float or a string."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        return operator.index(value) >= 1
    except TypeError:
        return False


def check_sizes(owner: str, **sizes: int | Sequence[int] | None) -> None:
    """Raises `ConfigError` unless every size is an integer >= 1; a sequence (e.g. hidden
    widths) may be empty but each element must be such an integer; None means "not used"."""
    for name, value in sizes.items():
        if value is None:
            continue
        is_sequence = isinstance(value, (tuple, list))
        if not (all(map(_is_positive_int, value)) if is_sequence else _is_positive_int(value)):
            allowed = "a sequence of integers >= 1" if is_sequence else "an integer >= 1"
            raise ConfigError(f"{owner}: {name}={value!r}; allowed: {allowed}")
