"""Each study scenario matches its topology intent (topologies/<name>.yaml), so that the
BMv2 backend can run the same scenario: same switch names, same number of SR paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from icpn.intent import load_intent
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


#: Octets of a study frame on the bundle (900 octets of RDMA payload, SRv6 and telemetry
#: added; data-ingestion measured 1,170): a bound from above, so rates are not flattered.
WIRE_FRAME_BOUND = 1_250


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_sketch_can_report_every_qp_at_the_emulated_rate(name: str) -> None:
    """On BMv2 a study sends at ``bandwidth_scale`` of the real rates: the sketch's threshold
    (packets a window) must be within reach of the slowest QP there, or elephant splitting
    is never more than the deep hash (model-distribution's threshold of 200 a 1 s window
    against 9 frames: no report at all). At least twice the threshold."""
    path = TOPOLOGIES / f"{name}.yaml"
    if not path.exists():
        pytest.skip(f"no topology intent {path}")
    scenario = SCENARIOS[name]
    intent = load_intent(path)
    headend = scenario.paths[0].via[0]
    sketches = {
        p.sketch
        for p in intent.apn_policies
        if p.sketch is not None
        and any(s.name == p.sr_policy and s.headend == headend for s in intent.sr_policies)
    }
    if not sketches:
        pytest.skip(f"{name}: no sketch on the SR policy's APN policies")
    scale = intent.emulation.bandwidth_scale
    bundle_bps = sum(p.capacity_gbps for p in scenario.paths) * 1e9 * scale
    frames_per_s = scenario.offered_load * bundle_bps / 8 / WIRE_FRAME_BOUND
    traffic = scenario.traffic
    slowest = frames_per_s / traffic.roce_qps * (1 - traffic.elephant_rate_spread)
    for sketch in (s for s in intent.sketches if s.name in sketches):
        per_window = slowest * (1 << sketch.window_log2_us) * 1e-6
        assert per_window >= 2 * sketch.threshold, (
            f"{name}: the slowest QP sends {per_window:.1f} frames a window of "
            f"2^{sketch.window_log2_us} us at bandwidth_scale {scale}; threshold "
            f"{sketch.threshold}"
        )
