"""The elephant control loop end to end on BMv2: the switch detects and reports the flow,
the manager pins it to the least-loaded segment list, the flow's packets move there; and
the manager moves a pinned elephant when its list fills up."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from icpn.elephant_lab import (
    LIST_PORT,
    control_loop_latency_s,
    drain_qps,
    elephant_lab,
    hashed_list,
    load_list,
    send_elephants,
)

pytestmark = pytest.mark.bmv2


def test_manager_moves_an_elephant_off_the_loaded_list() -> None:
    async def scenario() -> tuple[float | None, int, int]:
        async with elephant_lab() as lab:
            qp = next(q for q in range(1, 1000) if hashed_list(q) == 0)
            background = asyncio.ensure_future(load_list(lab, 0, packets=3000, rate_pps=400))
            try:
                await asyncio.sleep(0.6)  # the manager has measured list A's load by now
                latency = await control_loop_latency_s(lab, qp)
            finally:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            return latency, lab.manager.stats.installed, lab.manager.stats.reports

    latency, installed, reports = asyncio.run(scenario())
    assert reports >= 1 and installed == 1
    assert latency is not None, "the elephant never moved to the idle list"
    assert latency < 2.0


def test_manager_rebalances_a_pinned_elephant_when_its_list_fills() -> None:
    """Two elephants pinned; then mice (each below the threshold) load the list one of
    them is on with twice an elephant's rate: the manager moves that elephant to the other
    list (a MODIFY of its override, from the measured rates), and its packets follow."""
    a, b = [q for q in range(1, 1000) if hashed_list(q) == 0][:2]

    async def scenario() -> tuple[int, int, int, list[int]]:
        async with elephant_lab() as lab:
            pinned = lab.manager.pinned
            tasks = [asyncio.ensure_future(send_elephants(lab, [a, b], 100, seconds=12.0))]
            try:
                for _ in range(60):  # both pinned within 3 s
                    if len(pinned) == 2:
                        break
                    await asyncio.sleep(0.05)
                assert len(pinned) == 2, "the elephants were not both pinned"
                key = next(k for k in pinned if k[1].dest_qp == a)
                loaded = pinned[key].list_index
                await asyncio.sleep(0.5)
                tasks.append(
                    asyncio.ensure_future(load_list(lab, loaded, packets=2400, rate_pps=200))
                )
                for _ in range(100):  # moved within 5 s
                    await asyncio.sleep(0.05)
                    if pinned[key].list_index != loaded:
                        break
                moved_to = pinned[key].list_index
                with lab.receiver(LIST_PORT[moved_to]) as watch:
                    await asyncio.sleep(0.5)
                    seen = drain_qps(watch)
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            return loaded, moved_to, lab.manager.stats.moved, seen

    loaded, moved_to, moves, seen = asyncio.run(scenario())
    assert moved_to != loaded, "the elephant stayed on the list the mice filled"
    assert moves >= 1
    assert a in seen, "the moved elephant's packets do not leave by its new list"
