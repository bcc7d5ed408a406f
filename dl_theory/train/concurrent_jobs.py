"""Independent jobs of one experiment (a `fit_grid` per model or per sequence length, each
with its own initialisation and evaluation) run at the same time on host threads.

An experiment that trains several models one after the other leaves a core idle most of the
time on a 2-core CPU: XLA compiles one program on one thread, and a small model's chunk does
not fill both cores either. Two jobs in flight let one job's compilation run beside the
other's compilation or training (threads release the GIL while XLA compiles and runs). Every
job traces, compiles and runs the same programs on the same inputs as it would alone, and
XLA:CPU's results do not depend on the thread that runs a program, so each job's result is
bit-identical to running the jobs one after the other (tests/train/test_concurrent_jobs.py).

A worker thread sees what the calling thread set up with the Flax interceptors active at the
call (`dl_theory.train.interceptors`); other thread-local context (a `jax.default_device` or
`jax.default_matmul_precision` block around the call) is not carried over, so jobs should
state such things themselves. A `MetricsLog` may be shared by the jobs (its writes are
serialised); its records then arrive in the order the jobs reach them.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

from dl_theory.train import interceptors

Result = TypeVar("Result")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_jobs(jobs: Sequence[Callable[[], Result]], workers: int | None = None
             ) -> list[Result]:
    """[job() for job in jobs], with up to `workers` jobs running at once (default: one per
    usable core; 1 runs them in order on the calling thread). Jobs start in the order given,
    so put the longest first. The first job (in order) that raises has its exception
    re-raised once the jobs already running have ended; jobs not yet started are cancelled."""
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r}; must be a positive integer")
    workers = min(workers or usable_cores(), len(jobs))
    if workers <= 1:
        return [job() for job in jobs]
    active = interceptors.active()

    def run(job: Callable[[], Result]) -> Result:
        with interceptors.installed(active):
            return job()

    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="job") as pool:
        futures = [pool.submit(run, job) for job in jobs]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise
