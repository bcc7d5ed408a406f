"""The README stays true: its two set-up commands and its worked example."""

import pathlib
import re
import subprocess
import sys

from dl_theory import bibliography, experiment, run_directory

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CI_SCRIPT = (pathlib.Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    first_block = re.search(r"```bash\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert first_block[0].startswith("pip install -e . && python launch.py --config=")
    assert first_block[1] == "pip install -e '.[test]' && python -m pytest"
    assert first_block[1] in CI_SCRIPT.splitlines()


def test_worked_example_runs_and_its_claim_holds(tmp_path):
    section = README.split("## Adding a theorem", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    path = tmp_path / "my_theorem.py"
    path.write_text(code)
    module = experiment.load_experiment(str(path))
    payload = run_directory.run(module, module.get_config("quick"), tmp_path / "run", "quick")
    assert [c["id"] for c in payload["claims"]] == [s.id for s in module.CLAIMS]
    assert all(claim["holds"] for claim in payload["claims"])
    refs = bibliography.references()
    assert [bibliography.unknown_keys(spec.source, refs) for spec in module.CLAIMS] == [[], []]
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                           str(ROOT / "ruff.toml"), str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_usage_opens_with_the_suite_command_and_a_screenshot_of_its_page():
    usage = README.split("## Running experiments", 1)[1]
    first = re.search(r"```bash\n(.*?)```", usage, re.S).group(1).strip().splitlines()[0]
    assert first.startswith("python launch.py --all --preset=quick --workdir=runs/suite")
    image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", usage).group(1)
    assert usage.index(image) < usage.index("python launch.py --list")
    assert (ROOT / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_lists_exactly_the_expected_negative_results():
    """The paragraph of expected negative results names every claim with
    expected_holds=False, and nothing else (it drifted when experiments changed)."""
    paragraph = README.split("These claims do not hold in the quick presets", 1)[1]
    paragraph = paragraph.split("\n\n", 1)[0]
    listed = set(re.findall(r"`(\w+\.\w+)`", paragraph))
    expected_negative = {f"{name}.{spec.id}"
                         for name in experiment.available_experiments()
                         for spec in experiment.load_experiment(name).CLAIMS
                         if not spec.expected_holds}
    assert listed == expected_negative, (sorted(listed - expected_negative),
                                         sorted(expected_negative - listed))
