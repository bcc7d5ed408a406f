"""The suite's page: index.html and report.md over the run directories of a suite directory.

Reads SUITE/NAME/results.json (and status, for a crashed experiment's traceback) and writes
SUITE/index.html and SUITE/report.md: a summary (claims held, expected negative results,
unexpected verdicts, per experiment and in total), one table row per claim (source linked
through references.bib, bound, measurement with its interval, baseline and whether the bound
rejects it, the paper's number with its location and our relative gap, verdict), each
experiment's figures and its receipt. The page is one self-contained file: figures by
relative path, the style and the small sorting / filtering script inline, nothing fetched
from the network, so it opens from disk.
"""

from __future__ import annotations

import html
import json
import pathlib
import urllib.parse
from typing import Any

from dl_theory import bibliography, report, report_page_assets, run_directory, suite
from dl_theory.user_errors import WorkdirError

VERDICTS = {"held": "held", "expected-negative": "expected negative result",
            "unexpected": "unexpected"}


def claim_verdict(claim: dict[str, Any]) -> str:
    """held (holds, as expected), expected-negative (fails, as its spec says) or
    unexpected (a verdict other than the expected one)."""
    expected = claim.get("expected_holds", True)
    if claim["holds"] != expected:
        return "unexpected"
    return "held" if expected else "expected-negative"


def relative_gap(measured: Any, published: dict[str, Any] | None) -> float | None:
    """(measured - published) / |published| when both are numbers (published nonzero)."""
    if not published or measured is None:
        return None
    value = published.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or value == 0:
        return None
    return (measured - value) / abs(value)


def load_suite(suite_dir: str | pathlib.Path) -> list[dict[str, Any]]:
    """One entry per run directory under `suite_dir` (sorted by name): name, state
    (complete / failed / running), results (the results.json payload when the run completed,
    else None) and the traceback of a failed run. An experiment that suite.json records as
    failed is failed here too, even with no run directory (it crashed before its run started,
    e.g. an experiment file that does not import) or an older complete one."""
    suite_dir = pathlib.Path(suite_dir)
    recorded = suite.read_suite_record(suite_dir)["experiments"]
    entries = {}
    for directory in sorted(p for p in suite_dir.iterdir() if p.is_dir()):
        state = run_directory.read_status(directory)
        if state is None:
            continue
        entry = {"name": directory.name, "state": state, "results": None, "traceback": ""}
        if state == "complete":
            entry["results"] = json.loads((directory / "results.json").read_text())
        else:
            status = (directory / run_directory.STATUS_FILE).read_text()
            entry["traceback"] = status.split("\n", 2)[2] if status.count("\n") >= 2 else ""
        entries[directory.name] = entry
    for name, record in recorded.items():
        if record.get("state") == "failed":
            entries[name] = {"name": name, "state": "failed", "results": None,
                             "traceback": record.get("traceback", "")}
    return [entries[name] for name in sorted(entries)]


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per experiment and in total: claims, held, expected negative, unexpected;
    experiments failed; summed wall time of the complete runs."""
    rows, total = [], {"claims": 0, "held": 0, "expected-negative": 0, "unexpected": 0}
    for entry in entries:
        counts = {"claims": 0, "held": 0, "expected-negative": 0, "unexpected": 0}
        for claim in (entry["results"] or {}).get("claims", []):
            counts["claims"] += 1
            counts[claim_verdict(claim)] += 1
        for key, value in counts.items():
            total[key] += value
        wall = (entry["results"] or {}).get("wall_s")
        rows.append({"name": entry["name"], "state": entry["state"], "wall_s": wall, **counts})
    return {"experiments": rows, "total": total,
            "failed": [r["name"] for r in rows if r["state"] != "complete"],
            "unexpected": total["unexpected"],
            "wall_s": sum(r["wall_s"] or 0.0 for r in rows)}


def summary_line(summary: dict[str, Any]) -> str:
    """The suite in one line, as launch.py prints it."""
    total = summary["total"]
    return (f"suite: {len(summary['experiments'])} experiments ({len(summary['failed'])} "
            f"failed), {total['claims']} claims: {total['held']} held, "
            f"{total['expected-negative']} expected negative results, {total['unexpected']} "
            f"unexpected; {summary['wall_s']:.0f} s of runs")


def _number(value: Any) -> str:
    return "non-finite" if value is None else (f"{value:.4g}" if isinstance(value, float)
                                               else str(value))


def measured_text(claim: dict[str, Any]) -> str:
    """The measurement with its 95 % interval when it has one."""
    text = _number(claim["measured"])
    if claim.get("interval"):
        text += f" [{_number(claim['interval'][0])}, {_number(claim['interval'][1])}]"
    return text


def baseline_text(claim: dict[str, Any]) -> str:
    """'constant predictor 0.93: rejected by the bound' or '' when none was recorded."""
    if claim.get("baseline") is None and not claim.get("baseline_name"):
        return ""
    judged = {True: "NOT rejected by the bound", False: "rejected by the bound",
              None: "not judged"}[claim.get("baseline_holds")]
    name = claim.get("baseline_name") or "baseline"
    return f"{name} {_number(claim.get('baseline'))}: {judged}"


def published_text(claim: dict[str, Any]) -> str:
    """'2.0 (Table 2); ours +3.1 %' or ''."""
    published = claim.get("published")
    if not published:
        return ""
    text = f"{_number(published['value'])} ({published['where']})"
    gap = relative_gap(claim["measured"], published)
    if gap is None:
        return text
    return text + (f"; ours {gap:+.1%}" if abs(gap) >= 5e-4 else "; ours within 0.05%")


def _source_html(source: str, refs: dict[str, bibliography.Reference]) -> str:
    parts = []
    for key, location in bibliography.citations(source):
        ref = refs.get(key)
        label = html.escape(ref.short_label() if ref else key)
        link = ref.link() if ref else None
        cite = (f'<a href="{html.escape(link, quote=True)}" title="{html.escape(key)}">{label}</a>'
                if link else label)
        parts.append(cite + (f", {html.escape(location)}" if location else ""))
    return "; ".join(parts)


def _claim_row(name: str, claim: dict[str, Any], refs) -> str:
    verdict = claim_verdict(claim)
    keys = " ".join(key for key, _ in bibliography.citations(claim["source"]))
    gap = relative_gap(claim["measured"], claim.get("published"))
    cells = [
        (name, name),
        (f"<b>{html.escape(claim['id'])}</b><br>{html.escape(claim['statement'])}", claim["id"]),
        (_source_html(claim["source"], refs), claim["source"]),
        (html.escape(claim["expected"]), claim["expected"]),
        (html.escape(measured_text(claim)), _number(claim["measured"])),
        (html.escape(baseline_text(claim)), baseline_text(claim)),
        (html.escape(published_text(claim)), "" if gap is None else f"{abs(gap):.6g}"),
        (html.escape(report.verdict_text(claim))
         + (f"<br><small>{html.escape(claim['why'])}</small>" if claim.get("why") else ""),
         verdict),
    ]
    tds = "".join(f'<td data-sort="{html.escape(str(key), quote=True)}">{text}</td>'
                  for text, key in cells)
    return (f'<tr class="claim {verdict}" data-verdict="{verdict}" '
            f'data-papers="{html.escape(keys, quote=True)}" data-experiment="{html.escape(name)}"'
            f' data-claim="{html.escape(claim["id"], quote=True)}">{tds}</tr>')


def _summary_html(summary: dict[str, Any]) -> str:
    def row(name, counts, state, wall):
        cells = [name, state, counts["claims"], counts["held"], counts["expected-negative"],
                 counts["unexpected"], "" if wall is None else f"{wall:.0f}"]
        return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"

    head = "".join(f"<th>{h}</th>" for h in ("experiment", "run", "claims", "held",
                                              "expected negative", "unexpected", "wall s"))
    body = "".join(row(r["name"], r, r["state"], r["wall_s"]) for r in summary["experiments"])
    total = summary["total"]
    foot = row("total", total, f"{len(summary['failed'])} failed", summary["wall_s"])
    numbers = "".join(
        f'<div class="count {key}"><span id="count-{key}">{total[key]}</span> {label}</div>'
        for key, label in VERDICTS.items())
    numbers += (f'<div class="count failed"><span id="count-failed">{len(summary["failed"])}'
                "</span> experiments failed</div>")
    return (f'<div class="counts">{numbers}</div><table id="summary"><thead><tr>{head}</tr>'
            f"</thead><tbody>{body}</tbody><tfoot>{foot}</tfoot></table>")


def _experiment_html(entry: dict[str, Any]) -> str:
    name, results = entry["name"], entry["results"]
    anchor = html.escape(name, quote=True)
    if results is None:
        return (f'<section id="{anchor}" class="experiment failed"><h3>{html.escape(name)}: '
                f'{html.escape(entry["state"])}</h3><pre class="traceback">'
                f'{html.escape(entry["traceback"])}</pre></section>')
    figures = "".join(
        f'<figure><img src="{html.escape(urllib.parse.quote(f"{name}/{fig}"), quote=True)}" '
        f'alt="{html.escape(fig, quote=True)}" loading="eager"><figcaption>{html.escape(fig)}'
        "</figcaption></figure>" for fig in results.get("figures", []))
    env = results.get("env", {})
    git = env.get("git") or {}
    receipt = {
        "preset": results.get("preset"),
        "versions": ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
        "python": env.get("python"),
        "device": f"{env.get('device_count')} x {env.get('device_kind')} "
                  f"({env.get('backend')}), {env.get('cpu_model', '')}",
        "precision": f"{env.get('precision_policy')}; default matmul "
                     f"{env.get('default_matmul_precision')}",
        "config hash": env.get("config_hash"),
        "commit": (git.get("commit", "none")[:12] + (" (dirty)" if git.get("dirty") else "")
                   if git else "not a git checkout"),
        "wall time": f"{results.get('wall_s', 0.0):.1f} s",
    }
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in receipt.items())
    return (f'<section id="{anchor}" class="experiment"><h3>{html.escape(name)}</h3>'
            f'<div class="figures">{figures}</div><table class="receipt">{rows}</table>'
            "</section>")


_CLAIM_HEADER = ("experiment", "claim", "source", "expected", "measured", "baseline",
                 "published (gap)", "verdict")


def render_html(entries: list[dict[str, Any]], summary: dict[str, Any],
                refs: dict[str, bibliography.Reference]) -> str:
    """The whole page as one HTML string (every text escaped)."""
    claim_rows = "".join(_claim_row(e["name"], c, refs) for e in entries
                         for c in (e["results"] or {}).get("claims", []))
    cited = sorted({key for e in entries for c in (e["results"] or {}).get("claims", [])
                    for key, _ in bibliography.citations(c["source"])},
                   key=lambda k: refs[k].short_label() if k in refs else k)
    papers = "".join(f'<option value="{html.escape(k, quote=True)}">'
                     f"{html.escape(refs[k].short_label() if k in refs else k)}</option>"
                     for k in cited)
    verdicts = "".join(f'<option value="{k}">{v}</option>' for k, v in VERDICTS.items())
    head = "".join(f'<th data-column="{i}" title="click to sort">{html.escape(h)}</th>'
                   for i, h in enumerate(_CLAIM_HEADER))
    sections = "".join(_experiment_html(e) for e in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dl_theory: reproduction report</title>
<style>{report_page_assets.CSS}</style></head>
<body data-script="not-run">
<h1>dl_theory: reproduction report</h1>
<p class="line" id="summary-line">{html.escape(summary_line(summary))}</p>
<h2>Summary</h2>{_summary_html(summary)}
<h2>Claims</h2>
<div class="filters"><label>verdict <select id="verdict-filter"><option value="">all</option>
{verdicts}</select></label> <label>paper <select id="paper-filter"><option value="">all</option>
{papers}</select></label> <span id="shown-count"></span> rows shown</div>
<table id="claims"><thead><tr>{head}</tr></thead><tbody>{claim_rows}</tbody></table>
<h2>Figures and receipts</h2>{sections}
<script>{report_page_assets.SCRIPT}</script>
</body></html>
"""


def render_markdown(entries: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    """report.md: the summary line, the per-experiment counts, every claim, failures."""
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["# dl_theory: reproduction report", "", summary_line(summary), "",
             "| experiment | run | claims | held | expected negative | unexpected |",
             "|---|---|---|---|---|---|"]
    lines += [f"| [{r['name']}]({r['name']}/report.md) | {r['state']} | {r['claims']} | "
              f"{r['held']} | {r['expected-negative']} | {r['unexpected']} |"
              for r in summary["experiments"]]
    lines += ["", "| " + " | ".join(_CLAIM_HEADER) + " |", "|" + "---|" * len(_CLAIM_HEADER)]
    for entry in entries:
        for c in (entry["results"] or {}).get("claims", []):
            lines.append("| " + " | ".join(cell(x) for x in (
                entry["name"], f"{c['id']}: {c['statement']}", c["source"], c["expected"],
                measured_text(c), baseline_text(c), published_text(c),
                report.verdict_text(c))) + " |")
    for entry in entries:
        if entry["results"] is None:
            lines += ["", f"## {entry['name']}: {entry['state']}", "", "```",
                      entry["traceback"].rstrip(), "```"]
    return "\n".join(lines) + "\n"


def write_page(suite_dir: str | pathlib.Path) -> dict[str, Any]:
    """Writes SUITE/index.html and SUITE/report.md from the run directories; the summary."""
    suite_dir = pathlib.Path(suite_dir)
    if not suite_dir.is_dir():
        raise WorkdirError(f"--report={suite_dir}: no such suite directory; give the --workdir "
                           "of a `launch.py --all` run")
    entries = load_suite(suite_dir)
    summary = summarize(entries)
    refs = bibliography.references()
    report.write_atomic(suite_dir / "index.html", render_html(entries, summary, refs))
    report.write_atomic(suite_dir / "report.md", render_markdown(entries, summary))
    return summary
