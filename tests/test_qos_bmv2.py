"""Differentiated bearing applied by the controller to BMv2 switches: traffic classes, tenant
meters and per-queue ECN read back as the intent says, a second run writes nothing, a tenant
taken out of the intent has its meter reset, and ``icpn ctl show`` shows the classes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import finsy as fy
import pytest

from icpn import qos
from icpn.bmv2 import Bmv2Switch
from icpn.controller import Controller
from icpn.p4rt import SwitchClient
from tests import test_controller_bmv2
from tests.test_controller_bmv2 import NAMES, controller, golden, intent_file
from tests.test_qos import INTENT

pytestmark = pytest.mark.bmv2

#: The controller tests' fixture: four BMv2, started once for this module.
switches = test_controller_bmv2.switches


async def _meters(ctl: Controller, name: str) -> list[fy.P4MeterEntry]:
    async with SwitchClient(ctl.target(name, election_id=1)) as client:
        cells = await client.read(fy.P4MeterEntry(qos.TENANT_METER))
    return [c for c in cells if c.config is not None]


def test_qos_intent_is_applied_read_back_and_reset(
    tmp_path: Path, switches: dict[str, Bmv2Switch]
) -> None:
    path = intent_file(tmp_path, switches, INTENT)
    ctl = controller(path)
    asyncio.run(ctl.apply())
    for name in NAMES:
        expected, actual = asyncio.run(golden(ctl, name))
        assert expected == actual, name
    meters = asyncio.run(_meters(ctl, "sh1"))
    assert [(m.index, m.config) for m in meters] == [
        (0, fy.P4MeterConfig(cir=125000, cburst=15000, pir=250000, pburst=30000))
    ]
    again = asyncio.run(controller(path).apply())
    assert all(len(p) == 0 for p in again.values()), {n: p.summary() for n, p in again.items()}

    path.write_text(path.read_text().split("tenants:")[0])
    plans = asyncio.run(controller(path).apply())
    # sh1 loses its tenant rule (deleted) and its meter (reset: a modify).
    assert plans["sh1"].summary().startswith("0 inserted, 1 modified, 1 deleted")
    assert asyncio.run(_meters(ctl, "sh1")) == []


def test_ctl_show_lists_the_traffic_classes(
    tmp_path: Path, switches: dict[str, Bmv2Switch]
) -> None:
    from typer.testing import CliRunner

    from icpn.cli import app

    path = intent_file(tmp_path, switches, INTENT)
    runner = CliRunner()
    assert runner.invoke(app, ["ctl", "run", "--once", "-i", str(path)]).exit_code == 0
    shown = runner.invoke(app, ["ctl", "show", "-i", str(path), "--switch", "sh1"])
    assert shown.exit_code == 0, shown.output
    assert "in sync with the intent" in shown.output
    assert "inference" in shown.output and "meter tenant_meter" in shown.output
    assert "tenant tenant-a: meter 0" in shown.output
