"""Telemetry-driven re-steering, wired (icpn.steering): which list a measurement is about
(per-list FlowMonIDs, IOAM paths), the loop from samples to drains and restorations, the
per-list telemetry profiles the controller renders, and drains the controller keeps across
reconciliations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import finsy as fy
import pytest

from icpn.collector.altmark import AltmarkBlock
from icpn.collector.traces import TraceRecord
from icpn.controller.core import Controller
from icpn.controller.render import load_and_render
from icpn.features.ifit import IFIT_PROFILE, LIST_PROFILE_PRIORITY, list_flow_mon_id
from icpn.features.srv6 import SR_POLICY
from icpn.intent import IntentError
from icpn.packets.ioam import IOAMNode
from icpn.resteer import SteerSettings
from icpn.steering import ListFeed, Steering, list_paths
from tests.test_controller import INTENT
from tests.test_failover import GroupRecorder
from tests.test_resteer import group_list_ids

PER_LIST = INTENT.replace(
    "altmark: {flow_mon_id: 7, period_log2_us: 20}",
    "altmark: {flow_mon_id: 7, period_log2_us: 20, per_list: true}",
).replace(
    "  - {name: sh-nx, headend: sh1, endpoint: nx1, paths: 2}",
    "  - {name: sh-nx, headend: sh1, endpoint: nx1, paths: 2, max_latency_ms: 12}",
)
STEERED = PER_LIST + "steering: {max_loss: 0.02, bad_samples: 1, hold_s: 5}\n"


def table_of(entity: Any) -> Any:
    """The table of a table entry; None for the other entities (meters, say)."""
    return getattr(entity, "table_id", None)


def load(tmp_path: Path, text: str = STEERED) -> Any:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return load_and_render(path)


def test_each_list_of_a_per_list_profile_gets_its_own_flow_mon_id(tmp_path: Path) -> None:
    intent, configs = load(tmp_path)
    profiles = [e for e in configs["sh1"].entities if table_of(e) == IFIT_PROFILE]
    by_list = {
        dict(e.match).get("list_id", (None,))[0]: e.action.args["flow_mon_id"] for e in profiles
    }
    assert by_list == {None: 7, 1: 8, 2: 9}  # the profile's own, then 7 + list id
    assert all(e.priority == LIST_PROFILE_PRIORITY for e in profiles if "list_id" in e.match)
    paths = list_paths(intent)
    assert [(p.list_id, p.flow_mon_id, p.switches) for p in paths] == [
        (1, 8, ("sh1", "gz1", "nx1")),
        (2, 9, ("sh1", "wh1", "nx1")),
    ]
    assert paths[0].node_ids == (1, 2, 3) and paths[0].max_delay_ms == 12
    # without per_list: one FlowMonID for the policy, no list measured apart
    _, plain = load(tmp_path, INTENT)
    assert len([e for e in plain["sh1"].entities if table_of(e) == IFIT_PROFILE]) == 1
    assert list_flow_mon_id(7, 2) == 9


def test_a_list_flow_mon_id_taken_by_another_profile_is_refused(tmp_path: Path) -> None:
    trace_ioam = "    ioam: {namespace: 16, trace_type: 0xC00000, max_nodes: 4}\n"
    clash = PER_LIST.replace(
        trace_ioam,
        trace_ioam + "  - name: other\n    altmark: {flow_mon_id: 9, period_log2_us: 20}\n",
    )
    with pytest.raises(IntentError, match="FlowMonID 9, which another"):
        load(tmp_path, clash)


def block(flow: int, sent: int, received: int, number: int = 1) -> AltmarkBlock:
    packets = {"sh1": sent, "nx1": received} if received else {"sh1": sent}
    return AltmarkBlock(flow, 0, number, 0.0, packets, dict.fromkeys(packets, 0))


def trace(node_ids: tuple[int, ...], first_ns: int, export_ns: int) -> TraceRecord:
    nodes = tuple(
        IOAMNode(node_id=n, ts_sec=first_ns // 10**9, ts_frac=first_ns % 10**9) for n in node_ids
    )
    return TraceRecord(0.0, node_ids[-1], 0, export_ns, False, 16, 0xF00000, nodes, None)


def test_the_feed_maps_blocks_and_traces_to_their_lists(tmp_path: Path) -> None:
    intent, _ = load(tmp_path)
    feed = ListFeed(list_paths(intent), min_packets=20)
    sample = feed.loss(block(9, 100, 90), 1.0)
    assert sample is not None and sample.key == 1 and sample.loss == pytest.approx(0.1)
    everything_lost = feed.loss(block(8, 50, 0), 1.0)  # the endpoint counted nothing
    assert everything_lost is not None and everything_lost.loss == 1.0
    assert feed.loss(block(9, 10, 5), 1.0) is None  # too few packets to judge
    assert feed.loss(block(77, 100, 50), 1.0) is None  # no list has that FlowMonID
    assert feed.list_of_path((1, 4, 3)) == 1 and feed.list_of_path((4, 3)) == 1
    assert feed.list_of_path((1, 3)) is None and feed.list_of_path((1, None, 3)) is None
    assert feed.trace(trace((1, 2, 3), 10**9, 10**9 + 4_000_000)) == 0
    assert feed.trace(trace((1, 2, 3), 10**9, 10**9 + 6_000_000)) == 0
    (delay,) = feed.flush_delays(2.0)
    assert delay.key == 0 and delay.delay_ms == pytest.approx(5.0) and delay.packets == 2
    assert feed.flush_delays(3.0) == []


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_lossy_block_drains_its_list_and_the_hold_restores_it(tmp_path: Path) -> None:
    intent, _ = load(tmp_path)
    applied: list[tuple[str, int, set[int]]] = []

    async def apply(headend: str, policy: int, lists: set[int]) -> None:
        applied.append((headend, policy, set(lists)))

    async def check() -> None:
        clock = Clock()
        settings = SteerSettings(max_loss=0.02, bad_samples=1, hold_s=5.0, max_hold_s=20.0)
        steering = Steering(list_paths(intent), apply, settings, clock=clock)
        assert await steering.on_block(block(9, 100, 99)) is None  # 1 %: within bounds
        clock.now = 1.0
        drained = await steering.on_block(block(9, 100, 80, 2))
        assert drained is not None and "loss 20.00%" in drained.reason
        assert applied == [("sh1", 1, {2})] and steering.drained() == {("sh1", 1): {2}}
        clock.now = 2.0  # the other list, the policy's last in service, is kept
        assert await steering.on_block(block(8, 100, 50)) is None
        steering.on_trace(trace((1, 2, 3), 10**9, 10**9 + 30_000_000))  # 30 ms > 12 ms
        assert await steering.tick() == []  # its last list: delay noted, nothing drained
        clock.now = 6.0
        (restored,) = await steering.tick()
        assert applied[-1] == ("sh1", 1, set()) and steering.drained() == {}
        kinds = [e.kind for e in steering.events]
        assert kinds == ["loss", "loss", "drain", "loss", "delay", "restore"]
        assert steering.events[2].list_id == 2 and restored.at == 6.0

    asyncio.run(check())


def test_the_controller_keeps_drains_in_the_state_it_reconciles(tmp_path: Path) -> None:
    intent, configs = load(tmp_path)
    ctl = Controller(intent, configs, None, progress=lambda _m: None)

    def group() -> list[int]:
        (entry,) = [e for e in ctl.desired("sh1") if table_of(e) == SR_POLICY]
        assert isinstance(entry, fy.P4TableEntry)
        return group_list_ids(entry)

    assert group() == [1, 2]
    # no switch connected: kept, and written by the reconcile when it connects
    asyncio.run(ctl.set_drained("sh1", 1, {2}))
    assert ctl.drains == {("sh1", 1): {2}} and group() == [1]
    others = [e for e in ctl.desired("sh1") if table_of(e) != SR_POLICY]
    assert others == [e for e in configs["sh1"].entities if table_of(e) != SR_POLICY]
    with pytest.raises(ValueError, match="every segment list"):
        asyncio.run(ctl.set_drained("sh1", 1, {1, 2}))
    asyncio.run(ctl.set_drained("sh1", 1, set()))
    assert ctl.drains == {} and group() == [1, 2]


def test_traces_slower_than_the_policys_bound_drain_their_list(tmp_path: Path) -> None:
    intent, _ = load(tmp_path)
    applied: list[set[int]] = []

    async def apply(_headend: str, _policy: int, lists: set[int]) -> None:
        applied.append(set(lists))

    async def check() -> None:
        steering = Steering(list_paths(intent), apply, SteerSettings(bad_samples=1))
        steering.on_trace(trace((1, 4, 3), 10**9, 10**9 + 11_000_000))  # 11 ms: within 12
        assert await steering.tick() == [] and applied == []
        steering.on_trace(trace((4, 3), 10**9, 10**9 + 10_000_000))  # headend not traced
        steering.on_trace(trace((1, 4, 3), 10**9, 10**9 + 20_000_000))  # mean 15 ms
        steering.on_trace(trace((9, 9), 10**9, 10**9 + 90_000_000))  # no such path: ignored
        (drain,) = await steering.tick()
        assert "delay 15 ms > 12 ms" in drain.reason and applied == [{2}]

    asyncio.run(check())


def test_telemetrys_and_failovers_drains_are_one_set(tmp_path: Path) -> None:
    """A list drained by telemetry and one through a dead switch are both out of the group;
    neither cause's write brings back the other's; together covering every list, the dead
    path outranks the lossy one."""
    intent, configs = load(tmp_path)
    ctl = Controller(intent, configs, None, progress=lambda _m: None)
    paths = ctl.configs["sh1"].list_paths
    (dead,) = [i for i, nodes in paths.items() if "gz1" in nodes]
    (lossy,) = [i for i in paths if i != dead]

    def group() -> list[int]:
        (entry,) = [e for e in ctl.desired("sh1") if table_of(e) == SR_POLICY]
        assert isinstance(entry, fy.P4TableEntry)
        return group_list_ids(entry)

    async def check() -> None:
        headend = GroupRecorder()
        ctl.failover.switch_up("sh1", headend)
        ctl.failover.switch_down("gz1", "P4Runtime stream down")
        await ctl.failover.apply()
        assert ctl.out_of_service("sh1", 1) == {dead}
        assert headend.groups[-1] == [lossy]
        await ctl.set_drained("sh1", 1, {lossy})  # telemetry: every list out together
        assert ctl.out_of_service("sh1", 1) == {dead} and group() == [lossy]
        ctl.failover.switch_up("gz1", GroupRecorder())
        await ctl.failover.apply()  # gz1 back: telemetry's drain still holds
        assert headend.groups[-1] == [dead]
        assert ctl.out_of_service("sh1", 1) == {lossy} and group() == [dead]

    asyncio.run(check())
