"""Failover without a switch (icpn.controller.failover): which lists a dead switch takes
out of which groups, when they come back, what is left alone (the endpoint's death, a dead
headend), and that pinned elephants move and telemetry's drains are kept. The same on BMv2,
with a switch killed under a running controller, is in test_failover_bmv2.py."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import finsy as fy

from icpn.controller.failover import Failover, neighbours
from icpn.controller.render import SwitchConfig, load_and_render
from icpn.elephant import ElephantManager, ManagerSettings
from icpn.p4rt import P4RuntimeError
from tests.test_controller import INTENT, rendered
from tests.test_elephant import report
from tests.test_resteer import SteeringSwitch, group_list_ids

# INTENT: sh1 reaches nx1 over gz1 and over wh1 (two lists of policy 1).


class GroupRecorder:
    """A headend's writes of SR policy groups, as list ids."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []

    async def modify(self, entities: Any, **_: Any) -> None:
        self.groups += [group_list_ids(e) for e in entities if e.table_id == "sr_policy"]


def lists_via(configs: dict[str, SwitchConfig], switch: str) -> set[int]:
    return {i for i, nodes in configs["sh1"].list_paths.items() if switch in nodes}


def test_each_list_knows_the_switches_on_its_path(tmp_path: Path) -> None:
    configs = rendered(tmp_path)
    paths = sorted(configs["sh1"].list_paths.values())
    assert paths == [("sh1", "gz1", "nx1"), ("sh1", "wh1", "nx1")]
    assert not configs["gz1"].list_paths  # only headends have lists


def test_a_dead_transit_leaves_the_group_and_comes_back_once_reconciled(tmp_path: Path) -> None:
    async def check() -> None:
        configs = rendered(tmp_path)
        journal = tmp_path / "events.jsonl"
        failover = Failover(configs, journal=journal)
        headend = GroupRecorder()
        failover.switch_up("sh1", headend)
        await failover.apply()
        assert headend.groups == []  # nothing down: the group as rendered stays
        via_gz1 = lists_via(configs, "gz1")
        failover.switch_down("gz1", "P4Runtime stream down")
        await failover.apply()
        assert len(headend.groups) == 1
        assert set(headend.groups[-1]) == set(configs["sh1"].list_paths) - via_gz1
        assert failover.drained("sh1", 1) == via_gz1
        await failover.apply()
        assert len(headend.groups) == 1  # nothing changed: nothing written
        failover.switch_up("gz1", GroupRecorder())
        await failover.apply()
        assert sorted(headend.groups[-1]) == sorted(configs["sh1"].list_paths)
        kinds = [(e.kind, e.switch, e.list_ids) for e in failover.events]
        assert kinds == [
            ("down", "gz1", ()),
            ("drain", "sh1", tuple(sorted(via_gz1))),
            ("up", "gz1", ()),
            ("restore", "sh1", tuple(sorted(via_gz1))),
        ]
        assert len(journal.read_text().splitlines()) == 4

    asyncio.run(check())


def test_the_endpoints_death_and_a_dead_headend_change_nothing(tmp_path: Path) -> None:
    async def check() -> None:
        configs = rendered(tmp_path)
        failover = Failover(configs)
        headend = GroupRecorder()
        failover.switch_up("sh1", headend)
        failover.switch_down("nx1", "P4Runtime stream down")  # on every list: nowhere to go
        await failover.apply()
        assert headend.groups == []
        failover.switch_down("sh1", "P4Runtime stream down")
        failover.switch_down("wh1", "P4Runtime stream down")
        await failover.apply()
        assert headend.groups == []  # the headend is down: nothing to write to
        failover.switch_up("nx1", GroupRecorder())
        again = GroupRecorder()
        failover.switch_up("sh1", again)  # reconciled whole: drained anew
        await failover.apply()
        assert again.groups == [
            sorted(configs["sh1"].list_paths.keys() - lists_via(configs, "wh1"))
        ]

    asyncio.run(check())


def test_switches_not_up_after_the_grace_count_as_down(tmp_path: Path) -> None:
    async def check() -> None:
        configs = rendered(tmp_path)
        failover = Failover(configs)
        headend = GroupRecorder()
        for name in ("sh1", "wh1", "nx1"):
            failover.switch_up(name, headend if name == "sh1" else GroupRecorder())
        failover.not_up_since_start(list(configs))
        assert set(failover.down) == {"gz1"}
        await failover.apply()
        assert headend.groups == [
            sorted(configs["sh1"].list_paths.keys() - lists_via(configs, "gz1"))
        ]

    asyncio.run(check())


def test_pins_on_the_dead_path_move_and_telemetrys_drain_is_kept(tmp_path: Path) -> None:
    """With an elephant manager, failover drains through it: the group loses the list and
    the flows pinned there move at once; a list telemetry drained stays drained after the
    dead switch's lists come back."""

    async def check() -> None:
        # a third plane through gz2, so that one list can be drained by each cause
        three = (
            INTENT.replace(
                "  nx1:\n",
                "  gz2: {grpc: 127.0.0.1:5, router_mac: 00:00:00:00:aa:05, sid: fc00:5::1, "
                "ioam_node_id: 5}\n  nx1:\n",
            )
            .replace(
                '  - {a: "sh1:4", b: "nx1:3", km: 2600, capacity_gbps: 10}\n',
                '  - {a: "sh1:4", b: "nx1:3", km: 2600, capacity_gbps: 10}\n'
                '  - {a: "sh1:5", b: "gz2:1", km: 1000, capacity_gbps: 100}\n'
                '  - {a: "gz2:2", b: "nx1:4", km: 1000, capacity_gbps: 100}\n',
            )
            .replace("paths: 2}", "paths: 3}")
        )
        configs = rendered(tmp_path, three)
        (policy,) = configs["sh1"].policies
        assert len(policy.lists) == 3
        switch = SteeringSwitch()
        switch.list_bytes = {sl.list_id: 0 for sl in policy.lists}
        manager = ElephantManager(switch, [policy], ManagerSettings())
        for qp in range(1, 13):
            manager.offer(report(qp))
        await manager.place_pending()
        via_gz1 = lists_via(configs, "gz1")
        via_wh1 = lists_via(configs, "wh1")
        on_gz1 = [qp for qp in switch.overrides if switch.pinned_list_id(qp) in via_gz1]
        assert on_gz1, "some elephants were placed on gz1's list"
        await manager.set_drained(1, via_wh1)  # telemetry found wh1's path lossy
        failover = Failover(configs)
        failover.switch_up("sh1", switch, manager)
        failover.switch_down("gz1", "P4Runtime stream down")
        await failover.apply()
        remaining = set(configs["sh1"].list_paths) - via_gz1 - via_wh1
        assert set(switch.groups[-1]) == remaining
        assert all(switch.pinned_list_id(qp) in remaining for qp in switch.overrides)
        failover.switch_up("gz1", GroupRecorder())
        await failover.apply()
        assert set(switch.groups[-1]) == set(configs["sh1"].list_paths) - via_wh1

    asyncio.run(check())


def test_a_group_entry_is_what_the_writer_gets(tmp_path: Path) -> None:
    """Without a manager the headend gets an SR policy entry: same policy id and headend."""

    async def check() -> None:
        configs = rendered(tmp_path)
        written: list[fy.P4TableEntry] = []

        class Writer:
            async def modify(self, entities: Any, **_: Any) -> None:
                written.extend(entities)

        failover = Failover(configs)
        failover.switch_up("sh1", Writer())
        failover.switch_down("wh1", "gRPC not answering")
        await failover.apply()
        (entry,) = [e for e in written if e.table_id == "sr_policy"]
        assert dict(entry.match or {}) == {"sr_policy_id": 1}

    asyncio.run(check())


def test_ecmp_routes_lose_their_next_hops_towards_a_dead_neighbour(tmp_path: Path) -> None:
    """sh1 reaches h2's network over gz1 (port 2) and wh1 (port 3): with wh1 down the route
    keeps gz1 only; a route whose only next hop is dead is left alone; wh1 back, whole."""

    async def check() -> None:
        path = tmp_path / "intent.yaml"
        path.write_text(INTENT)
        intent, configs = load_and_render(path)
        written: list[fy.P4TableEntry] = []

        class Writer:
            async def modify(self, entities: Any, **_: Any) -> None:
                written.extend(e for e in entities if e.table_id == "routing_v6")

        failover = Failover(configs, links=neighbours(intent))
        failover.switch_up("sh1", Writer())
        failover.switch_down("wh1", "P4Runtime stream down")
        await failover.apply()
        by_prefix = {str(dict(e.match or {})["ipv6_dst"]): e for e in written}
        assert ports_of(by_prefix["2001:db8:2::/64"]) == [2]
        assert "fc00:4::1/128" not in by_prefix  # wh1's own SID: its only next hop is wh1
        assert all(3 not in ports_of(e) for e in written)
        count = len(written)
        assert ("ecmp-drain", "sh1") in [(e.kind, e.switch) for e in failover.events]
        failover.switch_up("wh1", Writer())
        await failover.apply()
        assert len(written) == 2 * count
        assert all(sorted(ports_of(e)) == [2, 3] for e in written[count:])

    asyncio.run(check())


def ports_of(entry: fy.P4TableEntry) -> list[int]:
    action = entry.action
    assert isinstance(action, fy.P4IndirectAction) and action.action_set is not None
    return [int(a.args["port"]) for _, a in action.action_set]


def test_a_refused_write_is_retried_and_recorded_once(tmp_path: Path) -> None:
    async def check() -> None:
        configs = rendered(tmp_path)

        class Flaky(GroupRecorder):
            refusals = 3

            async def modify(self, entities: Any, **kwargs: Any) -> None:
                if self.refusals:
                    self.refusals -= 1
                    raise P4RuntimeError("sh1: write failed: UNAVAILABLE")
                await super().modify(entities, **kwargs)

        failover = Failover(configs)
        headend = Flaky()
        failover.switch_up("sh1", headend)
        task = asyncio.create_task(failover.run())
        try:
            failover.switch_down("gz1", "P4Runtime stream down")
            for _ in range(100):  # bounded: 5 s
                if headend.groups:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert headend.groups == [
            sorted(configs["sh1"].list_paths.keys() - lists_via(configs, "gz1"))
        ]
        assert [e.kind for e in failover.events].count("stuck") == 1

    asyncio.run(check())
