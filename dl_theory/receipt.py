"""The reproducibility receipt in every results.json: versions, CPU and threads, devices, XLA
flags, config hash, commit.

Numbers that depend on summation order move with the CPU, the thread count and the device
count, so the receipt records all three, and the settings that choose them."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
from typing import Any

import jax

from dl_theory.train import compilation_cache

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml_collections", "numpy")
# Environment variables that set thread counts or XLA's behaviour (recorded when set).
THREAD_SETTINGS = ("XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                   "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "JAX_PLATFORMS",
                   "JAX_ENABLE_X64", "JAX_DEFAULT_MATMUL_PRECISION")


def config_hash(config_json: str) -> str:
    """sha256 of the resolved config's canonical JSON (sorted keys), first 16 hex digits."""
    canonical = json.dumps(json.loads(config_json), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit(repo_dir: pathlib.Path) -> dict[str, Any] | None:
    """HEAD and whether the work tree differs from it; None outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=repo_dir, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def git_commit() -> dict[str, Any] | None:
    """HEAD of the checkout this package lives in, and whether it is dirty."""
    return _git_commit(pathlib.Path(__file__).resolve().parent.parent)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else `platform.processor()`)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_threads() -> dict[str, Any]:
    """Cores the machine has (os.cpu_count) and this process may use (its affinity mask),
    and every thread or XLA setting of the environment (None when unset)."""
    usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count())
    return {"cpu_count": os.cpu_count(), "usable_cpus": usable,
            "settings": {name: os.environ.get(name) for name in THREAD_SETTINGS}}


def environment_receipt(config_json: str, *, precision: str, seeds: Any) -> dict[str, Any]:
    """What a reader needs to reproduce a run: python and library versions, CPU model and
    threads (with XLA_FLAGS and the thread variables), devices, default matmul precision,
    the precision policy, seeds, config hash, git commit, and the persistent compilation
    cache (directory or None, hits and misses so far)."""
    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: _version(p) for p in _PACKAGES},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "local_device_count": jax.local_device_count(),
        "cpu_model": cpu_model(),
        "threads": cpu_threads(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "process_count": jax.process_count(),
        "default_matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
        "precision_policy": precision,
        "seeds": seeds,
        "config_hash": config_hash(config_json),
        "git": _git_commit(pathlib.Path(__file__).resolve().parent.parent),
        "compilation_cache": compilation_cache.status(),
    }
