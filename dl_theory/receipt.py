"""The reproducibility receipt in every results.json: versions, devices, config hash, commit."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import pathlib
import platform
import subprocess
from typing import Any

import jax

from dl_theory.train import compilation_cache

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml_collections", "numpy")


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


def environment_receipt(config_json: str, *, precision: str, seeds: Any) -> dict[str, Any]:
    """What a reader needs to reproduce a run: python and library versions, devices, default
    matmul precision, the precision policy, seeds, config hash, git commit, and the
    persistent compilation cache (directory or None, hits and misses so far)."""
    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {p: _version(p) for p in _PACKAGES},
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "default_matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
        "precision_policy": precision,
        "seeds": seeds,
        "config_hash": config_hash(config_json),
        "git": _git_commit(pathlib.Path(__file__).resolve().parent.parent),
        "compilation_cache": compilation_cache.status(),
    }
