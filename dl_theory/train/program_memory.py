"""A bound on the compiled programs one process keeps alive.

`fit`'s programs are module-level `jax.jit`s, so JAX keeps every one it compiles for reuse by
later calls. Each program XLA:CPU compiles maps its machine code into dozens of memory regions
(measured here: about 250 regions per model width trained by `fit_grid`, init, chunk and
evaluation programs together), and Linux refuses a process more than `vm.max_map_count`
regions (65,530 by default). A long process that trains hundreds of model shapes (the whole
test suite, a suite of experiments in one process) crossed that limit, and the next
compilation crashed inside XLA with a segmentation fault. `release_if_crowded` drops every
cached program once the process holds more than half the limit: a dropped program that is
needed again is recompiled (or read back from the persistent compilation cache).
"""

from __future__ import annotations

import pathlib

import jax

from dl_theory.train import runners

_MAPS = pathlib.Path("/proc/self/maps")
_LIMIT = pathlib.Path("/proc/sys/vm/max_map_count")
DEFAULT_MAX_MAP_COUNT = 65530
# Of the limit, the share the process may use before cached programs are dropped: half
# leaves room for the programs one `fit` call compiles and for everything else mapped.
CROWDED_FRACTION = 0.5


def mapped_regions() -> int | None:
    """How many memory regions this process maps (None where /proc is not available)."""
    try:
        with _MAPS.open("rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def max_map_count() -> int:
    """The kernel's limit on a process's memory regions (its default where unreadable)."""
    try:
        return int(_LIMIT.read_text())
    except (OSError, ValueError):
        return DEFAULT_MAX_MAP_COUNT


def release() -> None:
    """Drops every cached compiled program (JAX's caches and the runners' record of what
    was compiled). Call between training calls, never inside a traced function."""
    jax.clear_caches()
    runners.forget_compiled()


def release_if_crowded(fraction: float = CROWDED_FRACTION) -> bool:
    """`release()` if this process maps more than `fraction` of `max_map_count()` regions;
    returns whether it did."""
    regions = mapped_regions()
    if regions is None or regions <= fraction * max_map_count():
        return False
    release()
    return True
