"""Telemetry-driven re-steering: when a segment list is drained and restored
(icpn.resteer), and what draining does (icpn.elephant.ElephantManager.set_drained: the SR
policy's group without the list, its pinned elephants moved off at once)."""

from __future__ import annotations

import asyncio
from typing import Any

import finsy as fy
import pytest

from icpn.elephant import ElephantManager, ManagerSettings, PolicyPaths
from icpn.resteer import Action, Resteer, SteerSettings
from tests.test_elephant import LISTS, FakeSwitch, report

# Two policies: 1 with lists 1-3 (bound 12 ms), 2 with list 9 alone.
LISTS_OF = {1: (1, 12.0), 2: (1, 12.0), 3: (1, 12.0), 9: (2, None)}


def steer(**settings: Any) -> Resteer:
    return Resteer(LISTS_OF, SteerSettings(**settings))


def test_two_lossy_blocks_in_a_row_drain_one_does_not() -> None:
    r = steer(max_loss=0.01, bad_samples=2)
    assert r.observe(1, 0.0, loss=0.05) is None  # a burst
    assert r.observe(1, 1.0, loss=0.0) is None
    assert r.observe(1, 2.0, loss=0.05) is None
    decision = r.observe(1, 3.0, loss=0.02)
    assert decision is not None and decision.action is Action.DRAIN
    assert "loss 2.00% > 1.00%" in decision.reason
    assert r.drained(1) == {1}


def test_delay_above_the_policys_bound_drains() -> None:
    r = steer(bad_samples=1)
    assert r.observe(2, 0.0, delay_ms=11.0) is None
    decision = r.observe(2, 1.0, delay_ms=15.0)
    assert decision is not None and decision.list_id == 2 and "delay" in decision.reason


def test_the_last_list_in_service_is_never_drained() -> None:
    r = steer(bad_samples=1)
    assert r.observe(9, 0.0, loss=0.5) is None  # policy 2's only list
    assert r.observe(1, 0.0, loss=0.5) is not None
    assert r.observe(2, 0.0, loss=0.5) is not None
    assert r.observe(3, 0.0, loss=0.5) is None  # policy 1's last one
    assert r.drained(1) == {1, 2}


def test_restored_after_the_hold_and_flaps_are_damped() -> None:
    r = steer(bad_samples=1, hold_s=10.0, max_hold_s=40.0)
    r.observe(1, 0.0, loss=0.5)
    assert r.due(9.9) == []
    (restore,) = r.due(10.0)
    assert restore.action is Action.RESTORE and r.drained(1) == set()
    r.observe(1, 12.0, loss=0.5)  # bad again within a hold of coming back: a flap
    assert r.hold_s(1) == 20.0
    assert r.due(31.9) == [] and len(r.due(32.0)) == 1
    r.observe(1, 33.0, loss=0.5)
    assert r.hold_s(1) == 40.0  # capped at max_hold_s
    r.observe(1, 34.0, loss=0.0)  # drained: samples are ignored
    assert len(r.due(73.0)) == 1
    r.observe(1, 74.0, loss=0.0)
    r.observe(1, 113.0, loss=0.0)  # healthy for a hold after coming back
    assert r.hold_s(1) == 10.0


def test_an_unknown_list_is_refused() -> None:
    with pytest.raises(ValueError, match="segment list 5"):
        steer().observe(5, 0.0, loss=0.0)


def group_list_ids(entry: fy.P4TableEntry) -> list[int]:
    action = entry.action
    assert isinstance(action, fy.P4IndirectAction) and action.action_set is not None
    return [int(a.args["list_id"]) for _, a in action.action_set]


class SteeringSwitch(FakeSwitch):
    """The fake of test_elephant that also keeps the SR policy group written."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[list[int]] = []

    async def modify(self, entities: Any, **kwargs: Any) -> None:
        overrides = [e for e in entities if e.table_id == "elephant_override"]
        self.groups += [group_list_ids(e) for e in entities if e.table_id == "sr_policy"]
        await super().modify(overrides, **kwargs)


def test_draining_moves_pins_off_past_the_latency_bound_and_restoring_puts_the_list_back() -> None:
    async def check() -> None:
        switch = SteeringSwitch()
        # list 1 is 5 ms slower than the others: normally no flow moves between them
        policy = PolicyPaths(1, "fc00:1::1", LISTS, latency_ms=(15.0, 10.0, 10.0))
        mgr = ElephantManager(switch, [policy], ManagerSettings())
        for qp in range(1, 13):
            mgr.offer(report(qp))
        await mgr.place_pending()
        on_2 = [qp for qp in switch.overrides if switch.pinned_list_id(qp) == 2]
        assert on_2, "some elephants were placed on list 2"
        moved = await mgr.set_drained(1, {2})
        assert moved == len(on_2)
        assert switch.groups[-1] == [1, 3]
        assert all(switch.pinned_list_id(qp) != 2 for qp in switch.overrides)
        mgr.offer(report(99))  # new elephants avoid the drained list
        await mgr.place_pending()
        assert switch.pinned_list_id(99) != 2
        assert await mgr.set_drained(1, set()) == 0
        assert switch.groups[-1] == [1, 2, 3]
        with pytest.raises(ValueError, match="every segment list"):
            await mgr.set_drained(1, {1, 2, 3})

    asyncio.run(check())
