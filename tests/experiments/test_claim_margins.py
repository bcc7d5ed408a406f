"""Protocol-level checks over every experiment's quick results: every claim expected to hold
records a baseline measured in the same run that its own bound rejects (so the claim could
have failed), and no claim holds more than `MARGIN_LIMIT` (100) times inside its bound unless
its spec says why (`margin_why`; see dl_theory/claim_margins.py for the factor).

The quick presets run once per session (the `quick_results` fixture): with the experiment's
own test module, or here when that module is not selected.
"""

import pytest

from dl_theory import experiment
from dl_theory.claim_margins import unexplained_margins

pytestmark = pytest.mark.experiment


@pytest.mark.parametrize("name", sorted(experiment.available_experiments()))
def test_no_claim_is_far_inside_its_bound_without_reason(name, quick_results):
    payload, _ = quick_results(name)
    module = experiment.load_experiment(name)
    margin_whys = {spec.id: spec.margin_why for spec in module.CLAIMS}
    problems = unexplained_margins(payload["claims"], margin_whys)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(experiment.available_experiments()))
def test_no_recorded_baseline_passes_its_claims_bound(name, quick_results):
    """A baseline is recorded to show that the claim could have failed; one that the bound
    accepts shows the opposite."""
    payload, _ = quick_results(name)
    passing = [f"{c['id']}: baseline {c['baseline']} ({c['baseline_name']}) passes "
               f"{c['expected']}" for c in payload["claims"] if c.get("baseline_holds")]
    assert not passing, "\n".join(passing)


@pytest.mark.parametrize("name", sorted(experiment.available_experiments()))
def test_every_claim_records_a_baseline_its_bound_rejects(name, quick_results):
    """A claim expected to hold must show it could have failed. Expected negative results are
    exempt: they fail already, which is their point."""
    payload, _ = quick_results(name)
    missing = [f"{c['id']}: measured {c['measured']}, {c['expected']}: no baseline recorded"
               for c in payload["claims"] if c["expected_holds"] and c.get("baseline") is None]
    assert not missing, "\n".join(missing)
