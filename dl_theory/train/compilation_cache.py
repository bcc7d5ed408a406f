"""JAX's persistent compilation cache: compiled programs written to disk, so that rerunning
an experiment (or the next experiment with the same model shapes) skips compilation.

`launch.py` turns it on by default in a user-level directory; `status()` tells the
reproducibility receipt whether it was on, where, and how many programs came from it.
"""

from __future__ import annotations

import collections
import os
import pathlib

import jax
from jax import monitoring

DEFAULT_DIR = "~/.cache/dl_theory/jax"
OFF_VALUES = ("false", "off", "none", "no", "0")
# Cache programs whose compilation took at least this long: below it, reading the entry
# back costs about as much as compiling.
MIN_COMPILE_SECS = 0.1

_events: collections.Counter = collections.Counter()
monitoring.register_event_listener(lambda name, **kwargs: _events.update([name]))


def enable(directory: str | None = None) -> str | None:
    """Turns the cache on in `directory` (None: $JAX_COMPILATION_CACHE_DIR if set, else
    `DEFAULT_DIR`), or off if that is one of `OFF_VALUES`; returns the absolute
    directory in use, or None. Programs that compiled in under
    $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS (default `MIN_COMPILE_SECS`) are not
    written. Call before anything is compiled."""
    directory = directory or os.environ.get("JAX_COMPILATION_CACHE_DIR") or DEFAULT_DIR
    if directory.strip().lower() in OFF_VALUES:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    path = pathlib.Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(
        os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECS)))
    return str(path)


def status() -> dict:
    """{"dir": the cache directory or None if off, "hits": programs read from it, "misses":
    programs compiled afresh} for this process so far."""
    on = jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir
    return {"dir": jax.config.jax_compilation_cache_dir if on else None,
            "hits": _events["/jax/compilation_cache/cache_hits"],
            "misses": _events["/jax/compilation_cache/cache_misses"]}
