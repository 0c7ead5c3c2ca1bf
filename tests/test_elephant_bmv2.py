"""The elephant control loop end to end on BMv2: the switch detects and reports the flow,
the manager pins it to the least-loaded segment list, the flow's packets move there."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from icpn.elephant_lab import control_loop_latency_s, elephant_lab, hashed_list, load_list

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
