"""Flax method interceptors (`nn.intercept_methods`) as explicit, hashable tracing context.

An interceptor changes the program a module traces to, but it lives on a thread-local stack
that JAX's compilation cache does not see, and that a worker thread does not inherit. The
compiled programs of `dl_theory.train` therefore take the interceptors active where the
call was made as a static argument (`active()`: part of the cache key) and trace under
exactly those (`installed(...)`), on whatever thread the tracing happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from flax.linen import module as flax_module


def active() -> tuple[Callable, ...]:
    """The interceptors active on this thread, outermost first."""
    return tuple(reversed(tuple(flax_module._global_interceptor_stack)))


@contextlib.contextmanager
def installed(interceptors: tuple[Callable, ...]) -> Iterator[None]:
    """Runs the block with exactly `interceptors` active (outermost first), whatever this
    thread had, and restores the thread's own stack afterwards."""
    stack = flax_module._global_interceptor_stack
    saved = stack._storage
    stack._storage = list(interceptors)
    try:
        yield
    finally:
        stack._storage = saved
