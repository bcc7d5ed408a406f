"""The run's files: results.json, report.md, figures, and the verdict table.

Files are written atomically (to a temporary name, then renamed), so a run that fails or is
killed leaves either the previous file or none, never a half-written one. results.json is
always valid JSON: a non-finite number becomes null, and `non_finite` lists where and what it
was. `dl_theory.run_directory` decides where the files go (staged, then promoted).
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import tempfile
from typing import Any

import jax
import matplotlib

matplotlib.use("Agg")  # figures are files; no display is ever needed
import matplotlib.pyplot as plt  # noqa: E402


def _umask() -> int:
    """The process's umask. Read from /proc where it can be: os.umask can only read it by
    setting it, and for that instant another thread's new files would get mode 0666."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | pathlib.Path, text: str) -> None:
    """Writes `text` to `path` via a temporary file in the same directory and a rename.

    The file gets the permissions any new file of the user gets (0666 minus the umask), not
    mkstemp's private 0600, so colleagues can read a run directory as they read the rest."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


_MAX_LISTED_NON_FINITE = 40


def json_safe(value: Any, path: str = "", non_finite: dict[str, str] | None = None) -> Any:
    """`value` with every non-finite float replaced by None; its dotted path and original
    text are added to `non_finite`."""
    if isinstance(value, dict):
        return {k: json_safe(v, f"{path}{k}.", non_finite) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, f"{path}{i}.", non_finite) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        if non_finite is not None:
            non_finite[path.rstrip(".")] = repr(value)
        return None
    return value


def save_figure(fig, workdir: str | pathlib.Path, name: str) -> str:
    """Saves a matplotlib figure as `workdir/name` (PNG), closes it and returns the file name."""
    if jax.process_index() == 0:  # the run directory belongs to process 0
        fig.savefig(pathlib.Path(workdir) / name, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return name


def _fmt(value: Any) -> str:
    if value is None:  # a non-finite value in results.json
        return "non-finite"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _measured_text(claim: dict[str, Any]) -> str:
    text = _fmt(claim["measured"])
    if claim.get("interval"):
        lo, hi = claim["interval"]
        text += f" [{_fmt(lo)}, {_fmt(hi)}]"
    return text


def verdict_text(claim: dict[str, Any]) -> str:
    """yes / NO, marked when the spec expects the claim to fail (a known negative result):
    "no (expected)" is not a surprise, "YES (expected no)" is."""
    expected = claim.get("expected_holds", True)
    if claim["holds"]:
        return "yes" if expected else "YES (expected no)"
    return "NO" if expected else "no (expected)"


def surprises(payload: dict[str, Any]) -> list[str]:
    """Ids of the claims whose verdict differs from the expected one (what --strict fails on)."""
    return [c["id"] for c in payload["claims"] if c["holds"] != c.get("expected_holds", True)]


def verdict_rows(payload: dict[str, Any]) -> list[list[str]]:
    """One row per claim: id, source, expected, measured (with interval), holds."""
    return [[c["id"], c["source"], c["expected"], _measured_text(c), verdict_text(c)]
            for c in payload["claims"]]


_HEADER = ["claim", "source", "expected", "measured", "holds"]


def verdict_table(payload: dict[str, Any]) -> str:
    """The verdict table as aligned plain text, for the terminal."""
    rows = [_HEADER] + verdict_rows(payload)
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    held = sum(c["holds"] for c in payload["claims"])
    negative = sum(not c.get("expected_holds", True) for c in payload["claims"])
    lines.append(f"{held}/{len(payload['claims'])} claims hold, {negative} expected not to; "
                 f"{len(surprises(payload))} surprises "
                 f"({payload['experiment']}:{payload['preset']}, {payload['wall_s']:.1f} s)")
    if payload.get("missing_parts"):
        lines.append(f"not judged: the claims of parts {payload['missing_parts']} (not run)")
    return "\n".join(lines)


def _markdown(payload: dict[str, Any]) -> str:
    rows = verdict_rows(payload)
    table = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    table += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    statements = [f"- **{c['id']}**: {c['statement']}"
                  + (f" *Expected not to hold: {c['why']}*" if not c.get("expected_holds", True)
                     else "") for c in payload["claims"]]
    figures = [f"![{name}]({name})" for name in payload["figures"]]
    env = payload["env"]
    return "\n".join([
        f"# {payload['experiment']} ({payload['preset']})", "",
        *table, "", "## Claims", "", *statements, "", "## Figures", "", *figures, "",
        "## Environment", "",
        f"jax {env['versions']['jax']} on {env['device_count']} x {env['device_kind']} "
        f"({env['backend']}); precision {env['precision_policy']}; config {env['config_hash']}; "
        f"wall {payload['wall_s']:.1f} s", ""])


def write_report(payload: dict[str, Any], workdir: str | pathlib.Path) -> None:
    """Writes results.json and report.md for a finished run."""
    workdir = pathlib.Path(workdir)
    non_finite: dict[str, str] = {}
    safe = json_safe(payload, non_finite=non_finite)
    if non_finite:
        # Named one by one up to a few dozen; a diverged curve would list every step.
        listed = dict(list(non_finite.items())[:_MAX_LISTED_NON_FINITE])
        safe["non_finite"] = {path: f"{text} (written as null)" for path, text in listed.items()}
        if len(non_finite) > len(listed):
            safe["non_finite"]["..."] = (f"{len(non_finite) - len(listed)} more non-finite "
                                         "values, also written as null")
    write_atomic(workdir / "results.json", json.dumps(safe, indent=2, allow_nan=False) + "\n")
    write_atomic(workdir / "report.md", _markdown(payload))
