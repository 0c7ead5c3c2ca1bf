"""Each study scenario matches its topology intent (topologies/<name>.yaml), so that the
BMv2 backend can run the same scenario: same switch names, same number of SR paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from icpn.study.scenarios import SCENARIOS, topology_mismatches

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_matches_its_topology(name: str) -> None:
    path = TOPOLOGIES / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"no topology intent {path}")
    scenario = SCENARIOS[name]
    intent = yaml.safe_load(path.read_text())
    headend, endpoint = scenario.paths[0].via[0], scenario.paths[0].via[-1]
    policies = [
        p for p in intent["sr_policies"] if p["headend"] == headend and p["endpoint"] == endpoint
    ]
    assert policies, f"no SR policy {headend} -> {endpoint} in {path}"
    assert topology_mismatches(scenario, intent["switches"], policies[0]["paths"]) == []


def test_mismatches_are_reported() -> None:
    scenario = SCENARIOS["data-ingestion"]
    problems = topology_mismatches(scenario, ["sh1", "nx1"], 2)
    assert len(problems) == 2 and "gz1" in problems[0]
