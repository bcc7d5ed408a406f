"""The README stays true: its two set-up commands and its worked example."""

import pathlib
import re

from dl_theory import experiment

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
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
    result = module.run(module.get_config("quick"), str(tmp_path))
    experiment.validate_result(module, result)
    assert all(claim.holds for claim in result.claims)
