"""A small suite directory for the suite runner's and the page's tests: variants of the tiny
protocol-v2 experiment (tests/tiny_parts.py) run by `dl_theory.suite.run_suite`.

  good        4 claims: 3 held, 1 expected negative; one claim with a bibliography source,
              a published number (Table 9: 1.0 against our 2.0) and a statement full of
              HTML; one figure whose file name has a space
  surprising  a_max lowered so a_mean_small fails: 1 unexpected verdict
  broken      part a raises: the suite records it failed, with its traceback, and goes on
"""

from __future__ import annotations

import json
import pathlib

from tiny_parts import TINY_PARTS_EXPERIMENT

from dl_theory import suite

TRICKY_STATEMENT = 'mean(a) <= a_max & "<b>not bold</b>"'
FIGURE = "tiny means.png"

_FIGURES = '''

def figures(config, measurements, workdir):
    import matplotlib.pyplot as plt

    from dl_theory.report import save_figure
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(measurements["a"]["values"])
    return [save_figure(fig, workdir, "tiny means.png")]
'''


def _variant(**replacements: str) -> str:
    text = TINY_PARTS_EXPERIMENT
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def write_variants(directory: pathlib.Path) -> list[pathlib.Path]:
    """Writes good.py, surprising.py and broken.py into `directory`; their paths."""
    published = ('ClaimSpec("b_mean_large", "mean(b) >= 1", "wolpert1996, Thm 1", '
                 'at_least=1.0, published=Published(1.0, "Table 9"))')
    common = {
        'ClaimSpec("a_mean_small", "mean(a) <= a_max"':
            f'ClaimSpec("a_mean_small", {TRICKY_STATEMENT!r}',
        'ClaimSpec("b_mean_large", "mean(b) >= 1", "test", at_least=1.0)': published,
        "import ClaimSpec, Measured, Part": "import ClaimSpec, Measured, Part, Published",
    }
    texts = {"good": _variant(**common) + _FIGURES,
             "surprising": _variant(**common, **{"a_max=2.0": "a_max=1.0"}) + _FIGURES,
             "broken": _variant(**common, **{'fail_in=""': 'fail_in="a"'}) + _FIGURES}
    paths = []
    for name, text in texts.items():
        path = directory / f"{name}.py"
        path.write_text(text)
        paths.append(path)
    return paths


def build_small_suite(directory: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """Runs the three variants as a suite into `directory/suite`; (suite dir, suite record)."""
    experiments = directory / "experiments"
    experiments.mkdir(parents=True, exist_ok=True)
    paths = write_variants(experiments)
    suite_dir = directory / "suite"
    record = suite.run_suite(suite_dir, "quick", [str(p) for p in paths])
    return suite_dir, record


def expected_counts(suite_dir: pathlib.Path) -> dict[str, int]:
    """Claims held / expected negative / unexpected, counted from the results.json files
    (independently of dl_theory.report_page)."""
    counts = {"held": 0, "expected-negative": 0, "unexpected": 0, "claims": 0}
    for results in sorted(suite_dir.glob("*/results.json")):
        if (results.parent / "status").read_text().startswith("complete"):
            for claim in json.loads(results.read_text())["claims"]:
                counts["claims"] += 1
                expected = claim["expected_holds"]
                if claim["holds"] != expected:
                    counts["unexpected"] += 1
                elif expected:
                    counts["held"] += 1
                else:
                    counts["expected-negative"] += 1
    return counts
