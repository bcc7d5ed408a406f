"""The suite page without a browser: index.html parsed with the standard library and compared
with the results.json files it was built from; report.md; escaping; no network assets."""

import json
import pathlib
import subprocess
import sys
import urllib.parse

import pytest
from page_parser import PageParser
from tiny_suite import FIGURE, TRICKY_STATEMENT, build_small_suite, expected_counts

from dl_theory import report_page

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    suite_dir, _ = build_small_suite(tmp_path_factory.mktemp("page"))
    summary = report_page.write_page(suite_dir)
    text = (suite_dir / "index.html").read_text()
    parser = PageParser()
    parser.feed(text)
    return suite_dir, summary, text, parser


def test_summary_numbers_match_results_json(page):
    suite_dir, summary, _, parser = page
    counts = expected_counts(suite_dir)
    assert counts == {"held": 5, "expected-negative": 2, "unexpected": 1, "claims": 8}
    for key in ("held", "expected-negative", "unexpected"):
        assert int(parser.by_id[f"count-{key}"]) == counts[key]
    assert int(parser.by_id["count-failed"]) == 1
    assert parser.by_id["summary-line"] == report_page.summary_line(summary)
    assert "3 experiments (1 failed), 8 claims: 5 held, 2 expected negative" in \
        parser.by_id["summary-line"]


def test_one_row_per_claim_in_order_with_its_verdict(page):
    suite_dir, _, _, parser = page
    expected = []
    for name in ("good", "surprising"):
        for claim in json.loads((suite_dir / name / "results.json").read_text())["claims"]:
            expected.append((name, claim["id"], report_page.claim_verdict(claim)))
    assert [(r["attrs"]["data-experiment"], r["attrs"]["data-claim"], r["attrs"]["data-verdict"])
            for r in parser.rows] == expected
    surprising = [r for r in parser.rows if r["attrs"]["data-verdict"] == "unexpected"]
    assert [r["attrs"]["data-claim"] for r in surprising] == ["a_mean_small"]
    assert surprising[0]["cells"][-1] == "NO"


def test_source_links_to_the_bibliography_and_published_gap(page):
    _, _, _, parser = page
    row = next(r for r in parser.rows if r["attrs"]["data-claim"] == "b_mean_large")
    assert row["attrs"]["data-papers"] == "wolpert1996"
    assert row["cells"][2] == "Wolpert 1996, Thm 1"
    assert {"href": "https://doi.org/10.1162/neco.1996.8.7.1341", "title": "wolpert1996"} \
        in parser.links
    assert row["cells"][6] == "1 (Table 9); ours +100.0%"  # measured mean(b) = 2.0
    assert row["cells"][4] == "2"


def test_text_is_escaped(page):
    _, _, text, parser = page
    assert "<b>not bold</b>" not in text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text
    row = next(r for r in parser.rows if r["attrs"]["data-claim"] == "a_mean_small")
    assert TRICKY_STATEMENT in row["cells"][1]
    assert "RuntimeError: part a fails on purpose" in text  # the failed run's traceback


def test_figures_by_relative_path_and_no_network_assets(page):
    suite_dir, _, text, parser = page
    sources = [img["src"] for img in parser.images]
    assert sources == [urllib.parse.quote(f"{n}/{FIGURE}") for n in ("good", "surprising")]
    for src in sources:
        assert (suite_dir / urllib.parse.unquote(src)).is_file()
    assert all("src" not in script for script in parser.scripts)  # inline only
    assert not [link for link in parser.links if link.get("rel") == "stylesheet"]
    assert "receipt" in text and "config hash" in text


def test_relative_gap_only_for_numbers():
    assert report_page.relative_gap(3.0, {"value": 2.0, "where": "Thm 1"}) == 0.5
    assert report_page.relative_gap(1.0, {"value": -2.0, "where": "Thm 1"}) == 1.5
    assert report_page.relative_gap(1.0, {"value": "exponential", "where": "Thm 1"}) is None
    assert report_page.relative_gap(None, {"value": 2.0, "where": "Thm 1"}) is None
    assert report_page.relative_gap(1.0, {"value": 0.0, "where": "Thm 1"}) is None


def test_report_md_and_launch_report_rebuild(page):
    suite_dir, summary, _, _ = page
    (suite_dir / "index.html").unlink()
    out = subprocess.run([sys.executable, str(ROOT / "launch.py"), f"--report={suite_dir}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == report_page.summary_line(summary)
    assert (suite_dir / "index.html").is_file()
    markdown = (suite_dir / "report.md").read_text()
    assert report_page.summary_line(summary) in markdown
    assert markdown.count("| good | a_mean_small:") == 1
    assert "## broken: failed" in markdown
