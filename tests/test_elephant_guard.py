"""The elephant manager's defences against crafted reports (docs/elephants.md "Crafted
traffic"): per-port and per-APN quotas on the override table and the report queue, and pins
that their own counters must confirm."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from icpn.constants import FlowKeyType
from icpn.elephant import ElephantManager, ManagerSettings, PolicyPaths
from icpn.features.sketch import ElephantReport, FlowKey
from tests.test_elephant import LISTS, FakeSwitch

ELEPHANT_PPS = 1000.0
POLICY = PolicyPaths(1, "fc00:1::1", LISTS, elephant_rate=ELEPHANT_PPS)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def report(qp: int, *, port: int = 1, apn: int = 0x70001) -> ElephantReport:
    return ElephantReport(
        FlowKey("2001:db8:1::10", "2001:db8:2::10", dest_qp=qp),
        FlowKeyType.SRC_DST_QP,
        apn,
        1,
        500,
        1,
        port,
    )


def manager(switch: FakeSwitch, clock: Clock, **settings: Any) -> ElephantManager:
    return ElephantManager(switch, [POLICY], ManagerSettings(**settings), clock=clock)


def test_one_port_holds_at_most_its_share_of_the_table() -> None:
    async def check() -> None:
        switch, clock = FakeSwitch(), Clock()
        mgr = manager(switch, clock, max_overrides=8, port_quota=0.25)
        for qp in range(100, 110):  # the attacker's port 9: ten claims
            mgr.offer(report(qp, port=9))
        for qp in range(1, 5):  # four real elephants on other ports
            mgr.offer(report(qp, port=qp))
        await mgr.place_pending()
        attacker = [qp for qp in switch.overrides if qp >= 100]
        assert len(attacker) == 2 == mgr.tenant_entries(("port", 9))
        assert sorted(qp for qp in switch.overrides if qp < 100) == [1, 2, 3, 4]
        assert mgr.stats.over_quota == 8

    asyncio.run(check())


def test_one_apn_holds_at_most_its_share_of_the_report_queue() -> None:
    switch, clock = FakeSwitch(), Clock()
    mgr = manager(switch, clock, max_pending=10, apn_quota=0.3)
    for qp in range(20):
        mgr.offer(report(qp, port=qp, apn=0x70009))  # many ports, one APN
    mgr.offer(report(99, port=1))
    assert len(mgr.pending) == 4  # 3 of APN 0x70009, and the other APN's report
    assert mgr.stats.over_quota == 17


def test_a_pin_its_counter_does_not_confirm_is_removed_and_stays_out() -> None:
    async def check() -> None:
        switch, clock = FakeSwitch(), Clock()
        mgr = manager(switch, clock, verify_after_s=1.0, refute_hold_s=30.0)
        await mgr.poll()
        mgr.offer(report(1))  # a real elephant
        mgr.offer(report(2))  # a claim: a mouse the sketch overestimated
        await mgr.place_pending()
        clock.now += 0.5
        switch.hits = {1: (1000, 10**6), 2: (5, 5000)}
        await mgr.poll()
        assert sorted(switch.overrides) == [1, 2]  # not measured long enough to judge
        clock.now += 0.7
        switch.hits = {1: (2400, 2 * 10**6), 2: (12, 12000)}
        await mgr.poll()
        assert sorted(switch.overrides) == [1]
        assert (mgr.stats.confirmed, mgr.stats.refuted) == (1, 1)
        mgr.offer(report(2))  # reported again next window: ignored while refuted
        assert not mgr.pending and mgr.stats.refuted_reports == 1
        clock.now += 31
        mgr.offer(report(2))  # after the hold: a claim again
        assert list(mgr.pending) == [(1, report(2).flow)]

    asyncio.run(check())


def test_a_confirmed_elephant_is_never_evicted_for_an_unconfirmed_claim() -> None:
    """Even when the claim's first measurement is faster than the confirmed elephant."""

    async def check() -> None:
        switch, clock = FakeSwitch(), Clock()
        mgr = manager(switch, clock, max_overrides=2, verify_after_s=1.0)
        await mgr.poll()
        mgr.offer(report(1))
        mgr.offer(report(2))
        await mgr.place_pending()
        clock.now += 1.5
        switch.hits = {1: (300, 30_000), 2: (900, 90_000)}  # 200 pps: refuted; 600: confirmed
        await mgr.poll()
        assert sorted(switch.overrides) == [2]
        mgr.offer(report(3))
        await mgr.place_pending()
        clock.now += 0.5
        switch.hits = {2: (1200, 120_000), 3: (1000, 10**6)}  # 3: fast, but for 0.5 s only
        await mgr.poll()
        assert (
            mgr.pinned[(1, report(3).flow)].bytes_per_s
            > mgr.pinned[(1, report(2).flow)].bytes_per_s
        )
        mgr.offer(report(5))
        await mgr.place_pending()  # full: evicts 3 (unconfirmed), not 2 (colder)
        assert sorted(switch.overrides) == [2, 5]

    asyncio.run(check())


def test_quotas_and_confirmation_are_checked() -> None:
    with pytest.raises(ValueError, match="port_quota"):
        ManagerSettings(port_quota=0)
    with pytest.raises(ValueError, match="confirm_fraction"):
        ManagerSettings(confirm_fraction=1.5)


def test_a_flow_reported_again_counts_once_against_its_latest_tenant() -> None:
    async def check() -> None:
        switch, clock = FakeSwitch(), Clock()
        mgr = manager(switch, clock, max_pending=8, port_quota=0.25)  # 2 per port
        mgr.offer(report(1, port=3))
        mgr.offer(report(1, port=3))
        mgr.offer(report(1, port=4))  # the same flow, seen on another port now
        mgr.offer(report(2, port=3))
        mgr.offer(report(3, port=3))
        assert [k[1].dest_qp for k in mgr.pending] == [1, 2, 3]
        assert mgr.stats.over_quota == 0
        await mgr.place_pending()
        assert mgr.tenant_entries(("port", 4)) == 1 and mgr.tenant_entries(("port", 3)) == 2

    asyncio.run(check())
