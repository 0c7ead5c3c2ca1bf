"""Traffic studies (DESIGN.md section 6): a scenario x placement policies, run on a backend
(the reference model, or BMv2), reported under ``build/studies/<name>/``.

``run_study("data-ingestion")`` or ``icpn study data-ingestion``.
"""

from icpn.study.policies import POLICIES
from icpn.study.runner import BACKENDS, StudyResult, run_study
from icpn.study.scenarios import SCENARIOS, Scenario, get_scenario

__all__ = [
    "BACKENDS",
    "POLICIES",
    "SCENARIOS",
    "Scenario",
    "StudyResult",
    "get_scenario",
    "run_study",
]
