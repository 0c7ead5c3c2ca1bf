"""The cloud-edge inference study: its queueing model (strict priority against FIFO, tail
drop, the trTCM at the edge), the goal on a short run, its outputs, its topology, and the
study list naming every study."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from icpn.cli import app
from icpn.qos import TrTcm
from icpn.study import inference
from icpn.study.inference import _metered, _serve
from icpn.study.runner import run_inference
from icpn.study.scenarios import SCENARIOS

TOPOLOGIES = Path(__file__).resolve().parents[1] / "topologies"
GBPS = 1e9
FRAME = 1500
SERVICE_S = FRAME * 8 / GBPS  # 12 us per frame at 1 Gbit/s


def _backlog_then_urgent(priority: bool) -> dict[int, float]:
    bulk = np.zeros(50)  # 50 frames at t = 0: 600 us of backlog
    urgent = [(1e-6, FRAME, 7)]  # one response frame right behind them
    done, lost, sent, dropped = _serve(
        bulk,
        urgent,
        size=FRAME,
        capacity_bps=GBPS,
        buffer_bytes=1e9,
        priority=priority,
        until=1.0,
    )
    assert not lost and dropped == 0 and sent == 50 * FRAME
    return done


def test_strict_priority_serves_the_urgent_frame_after_the_one_in_service() -> None:
    # the frame in service finishes (non-preemptive), then the urgent one goes
    assert _backlog_then_urgent(priority=True)[7] == pytest.approx(2 * SERVICE_S)


def test_fifo_puts_the_urgent_frame_behind_the_backlog() -> None:
    assert _backlog_then_urgent(priority=False)[7] == pytest.approx(51 * SERVICE_S)


def test_tail_drop_per_queue() -> None:
    bulk = np.zeros(20)
    urgent = [(0.0, FRAME, 1)]  # arrives with the bulk, after it
    buffer = 10 * FRAME
    _, lost, sent, dropped = _serve(
        bulk, urgent, size=FRAME, capacity_bps=GBPS, buffer_bytes=buffer, priority=False, until=1
    )
    assert sent == 10 * FRAME and dropped == 10 * FRAME and lost == {1}
    _, lost, _, _ = _serve(
        bulk, urgent, size=FRAME, capacity_bps=GBPS, buffer_bytes=buffer, priority=True, until=1
    )
    assert lost == set()  # its own queue has room


def test_trtcm_passes_the_peak_rate_of_a_steady_overload() -> None:
    """Twice the PIR offered, evenly spaced: after the bursts, the meter passes PIR."""
    pir = 1_000_000  # bytes/s
    times = np.arange(0, 1.0, FRAME / (2 * pir))
    kept = _metered(times, FRAME, TrTcm(pir // 2, 10 * FRAME, pir, 20 * FRAME))
    assert len(kept) * FRAME == pytest.approx(pir + 20 * FRAME, rel=0.01)


@pytest.fixture(scope="module")
def short_run() -> inference.InferenceRun:
    return inference.run(dataclasses.replace(inference.SCENARIO, duration_s=0.06), seed=3)


def test_differentiation_holds_the_goal_and_best_effort_does_not(
    short_run: inference.InferenceRun,
) -> None:
    def degradation(policy: str, q: int) -> float:
        p = short_run.policies[policy]
        return float(np.percentile(p.loaded_s, q) / np.percentile(p.idle_s, q) - 1)

    for q in (50, 99):
        assert degradation(inference.DIFFERENTIATED, q) <= 0.05
    assert degradation(inference.BEST_EFFORT, 50) > 0.5
    # the bulk keeps the bundle busy either way
    capacity = 20 * GBPS / 8 * short_run.scenario.duration_s
    for policy in (inference.BEST_EFFORT, inference.DIFFERENTIATED):
        assert sum(short_run.policies[policy].bulk_delivered_bytes) / capacity > 0.9
    pinned = short_run.policies[inference.DIFFERENTIATED].path
    assert set(pinned.tolist()) == {0}  # the direct path


def test_study_list_names_every_study() -> None:
    result = CliRunner().invoke(app, ["study", "--list"])
    assert result.exit_code == 0, result.output
    for name in [*SCENARIOS, inference.NAME]:
        assert name in result.output


def test_inference_study_writes_its_report(tmp_path: Path) -> None:
    result = run_inference(tmp_path, seed=2)
    names = {p.name for p in result.files}
    assert names == {
        "results.json",
        "requests.csv",
        "latency_cdf.png",
        "degradation.png",
        "bulk_goodput.png",
        "report.md",
    }
    figures = json.loads((tmp_path / "results.json").read_text())
    assert figures["goal_differentiated_pass"] is True
    assert figures["apn-differentiated_degradation_p99"] <= 0.05
    rows = (tmp_path / "requests.csv").read_text().splitlines()
    assert len(rows) == 1 + len(inference.POLICIES) * figures["requests"]


def test_inference_topology_matches_the_scenario() -> None:
    intent = yaml.safe_load((TOPOLOGIES / f"{inference.NAME}.yaml").read_text())
    sc = inference.SCENARIO
    assert set(sc.switches) <= set(intent["switches"])
    by_name = {p["name"]: p for p in intent["sr_policies"]}
    assert by_name["dc-ed-bulk"]["paths"] == len(sc.paths)
    assert by_name["dc-ed-latency"]["paths"] == 1
    km = sorted(link["km"] for link in intent["links"])
    assert km == sorted([200, 120, 140]) and sorted(p.km for p in sc.paths) == [200, 260]
    classes = {c["name"]: c["queue"] for c in intent["traffic_classes"]}
    assert classes["inference"] > classes["bulk"]


@pytest.mark.bmv2
def test_bmv2_queues_hold_the_goal_with_priority_and_not_without() -> None:
    """BMv2's own queues (the Thrift simple_switch, queue_probe.p4), a short run: responses
    in their own priority queue are not slowed by the full bulk queue; in the bulk's FIFO
    they wait behind it (the 5 ms buffer, scaled) or are tail-dropped."""
    from icpn.study import inference_bmv2

    try:
        run, em = inference_bmv2.run(requests=10, seconds=1.5, seed=5)
    except inference_bmv2.Unavailable as exc:
        pytest.skip(str(exc))
    assert em.depth_packets == 416  # 5 ms of 1500 B frames at 1 Gbit/s

    def degradation(policy: str) -> float:
        p = run.policies[policy]
        return float(np.percentile(p.loaded_s, 50) / np.percentile(p.idle_s, 50) - 1)

    assert degradation(inference.DIFFERENTIATED) <= 0.05
    assert degradation(inference.BEST_EFFORT) >= 0.5
