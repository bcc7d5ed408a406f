"""The suite page in a real browser: headless Chromium opens index.html from disk (no server,
no network), runs its inline script, and the DOM it dumps afterwards must show the summary
numbers and the claim rows of results.json, every figure loaded, and the filters working;
a screenshot is saved. Needs Debian's `chromium` package (.ci/run installs it)."""

import pathlib
import re
import shutil
import subprocess

import pytest
from page_parser import PageParser
from tiny_suite import build_small_suite, expected_counts

from dl_theory import report_page

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run",
          "--window-size=1400,1000", "--virtual-time-budget=10000")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium on PATH: the page's browser test needs it; install it with "
                "`apt-get install -y chromium` (as .ci/run does)")


def _run_chromium(profile: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run([_chromium(), *_FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    suite_dir, _ = build_small_suite(root)
    report_page.write_page(suite_dir)
    url = (suite_dir / "index.html").as_uri()
    dom = _run_chromium(root / "profile", "--dump-dom", url).stdout
    parser = PageParser()
    parser.feed(dom)
    return root, suite_dir, url, dom, parser


def test_script_ran_and_summary_matches_results_json(rendered):
    _, suite_dir, _, dom, parser = rendered
    assert 'data-script="ran"' in dom
    counts = expected_counts(suite_dir)
    for key in ("held", "expected-negative", "unexpected"):
        assert int(parser.by_id[f"count-{key}"]) == counts[key]
    assert int(parser.by_id["shown-count"]) == counts["claims"] == len(parser.rows)


def test_every_figure_loaded(rendered):
    _, _, _, dom, parser = rendered
    assert len(parser.images) == 2
    for image in parser.images:
        assert image.get("data-loaded") == "yes", image
        assert int(image["data-natural-width"]) > 100
    assert re.search(r'data-images-loaded="2/2"', dom)


@pytest.mark.parametrize("query, verdict", [("verdict=expected-negative", "expected-negative"),
                                            ("verdict=unexpected", "unexpected")])
def test_verdict_filter_shows_only_those_rows(rendered, query, verdict):
    root, suite_dir, url, _, _ = rendered
    dom = _run_chromium(root / "profile", "--dump-dom", f"{url}?{query}").stdout
    parser = PageParser()
    parser.feed(dom)
    shown = [r for r in parser.rows if "display: none" not in r["attrs"].get("style", "")]
    assert len(shown) == int(parser.by_id["shown-count"]) == expected_counts(suite_dir)[verdict]
    assert {r["attrs"]["data-verdict"] for r in shown} == {verdict}


def test_sorting_by_the_measured_column(rendered):
    root, _, url, _, _ = rendered
    dom = _run_chromium(root / "profile", "--dump-dom", f"{url}?sort=4").stdout
    parser = PageParser()
    parser.feed(dom)
    measured = [float(r["cells"][4].split()[0]) for r in parser.rows]
    assert len(measured) == 8 and measured == sorted(measured)
    assert measured != [float(r["cells"][4].split()[0]) for r in rendered[4].rows]


def test_paper_filter_and_screenshot(rendered):
    root, _, url, _, _ = rendered
    dom = _run_chromium(root / "profile", "--dump-dom", f"{url}?paper=wolpert1996").stdout
    parser = PageParser()
    parser.feed(dom)
    shown = [r for r in parser.rows if "display: none" not in r["attrs"].get("style", "")]
    assert [r["attrs"]["data-claim"] for r in shown] == ["b_mean_large", "b_mean_large"]
    screenshot = root / "report.png"
    _run_chromium(root / "profile", f"--screenshot={screenshot}", url)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000
