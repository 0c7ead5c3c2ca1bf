"""One controller over both APIs: golden read-back of every table over BfRuntime (against a
fake bf_switchd that enforces the real bfrt.json of the compiled TNA program) and over
P4Runtime (against BMv2), in the same module; the BfRuntime client's refusals, digests,
counters and registers; Stratum's device config; a mixed BMv2 + Tofino intent dry-run.

No Tofino switch or model exists on these machines: the BfRuntime side runs against the
fake server only, with the schemas bf-p4c wrote. Without bf-p4c's output the BfRuntime
tests skip with the reason; without BMv2 the P4Runtime one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import finsy as fy
import pytest
from typer.testing import CliRunner

from icpn.bfrt.client import BfrtSwitchClient, BfRuntimeError
from icpn.bfrt.info import BfrtInfo
from icpn.bfrt.proto import stratum_bf_pb2
from icpn.bfrt.translate import MAX_PRIORITY, Translator
from icpn.cli import app
from icpn.controller import Controller, read_state
from icpn.controller.render import load_and_render
from icpn.controller.targets import ShapedSwitch, TargetError, tofino_program
from icpn.features.sketch import ELEPHANT_DIGEST
from icpn.p4rt.client import canonical
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch
from icpn.targets.tofino import build as tofino_build
from tests import fake_bfruntime
from tests.test_controller import INTENT


def _tofino_reason() -> str | None:
    try:
        program = tofino_program("tofino", "icpn")
    except TargetError as exc:
        reason = toolchain.tofino_unavailable_reason()
        return reason or str(exc)
    if not program.loadable:
        return f"{tofino_build.out_dir('tofino', 'icpn')}: bf-p4c wrote no binary"
    return None


_REASON = _tofino_reason()
needs_tofino_build = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

NAMES = ("sh1", "gz1", "wh1", "nx1")


def intent_text(addresses: dict[str, str], apis: dict[str, str]) -> str:
    """The controller tests' intent with each switch's address and (target, api)."""
    text = INTENT
    for i, name in enumerate(NAMES, 1):
        api = apis.get(name)
        old = f"grpc: 127.0.0.1:{i}"
        block = f"{old}\n" in text  # a block mapping (sh1, nx1) or a flow one (gz1, wh1)
        extra = ""
        if api:
            extra = (
                f"\n    target: tofino\n    api: {api}"
                if block
                else f", target: tofino, api: {api}"
            )
        text = text.replace(old, f"grpc: '{addresses[name]}'{extra}")
    return text


def write_intent(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return path


async def _golden_read_back(ctl: Controller, name: str) -> tuple[set[bytes], set[bytes]]:
    async with ctl.client(name, election_id=1) as client:
        actual = await read_state(client)
        schema = client.schema
    return {canonical(e, schema) for e in ctl.configs[name].entities}, {
        canonical(e, schema) for e in actual
    }


def run_with_fake(body: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run ``body(*args, server, address)`` against a fresh fake bf_switchd."""

    async def main() -> None:
        async with fake_bfruntime.serve() as (server, address):
            await body(*args, server, address)

    asyncio.run(main())


# -- golden read-back over both APIs ------------------------------------------------------


@needs_tofino_build
def test_golden_read_back_over_bfruntime(tmp_path: Path) -> None:
    run_with_fake(_golden_read_back_over_bfruntime, tmp_path)


async def _golden_read_back_over_bfruntime(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    text = intent_text(
        {n: address if n == "sh1" else f"127.0.0.1:{i}" for i, n in enumerate(NAMES, 1)},
        {"sh1": "bfruntime"},
    )
    intent, configs = load_and_render(write_intent(tmp_path, text))
    ctl = Controller(intent, {"sh1": configs["sh1"]}, None)
    plans = await ctl.apply()
    assert plans["sh1"].inserts and not plans["sh1"].deletes
    expected, actual = await _golden_read_back(ctl, "sh1")
    assert expected == actual and len(expected) > 10
    # what the switch holds, in its own terms: a selector group per one-shot entry
    groups = server.table_entries("IcpnIngress.srv6_headend.sr_selector")
    assert len(groups) == 1
    # a second controller run writes nothing: read-back compares exactly
    again = await Controller(intent, {"sh1": configs["sh1"]}, None).apply()
    assert len(again["sh1"]) == 0 and again["sh1"].unchanged == len(expected)


@pytest.mark.bmv2
def test_golden_read_back_over_p4runtime_on_bmv2(tmp_path: Path) -> None:
    if (reason := toolchain.bmv2_unavailable_reason()) is not None:
        pytest.skip(reason)
    with Bmv2Switch("sh1", Bmv2Options(num_ports=2, log_level="warn")) as switch:
        asyncio.run(_golden_on_bmv2(tmp_path, switch))


async def _golden_on_bmv2(tmp_path: Path, switch: Bmv2Switch) -> None:
    if True:
        text = intent_text(
            {
                n: switch.grpc_address if n == "sh1" else f"127.0.0.1:{i}"
                for i, n in enumerate(NAMES, 1)
            },
            {},
        )
        intent, configs = load_and_render(write_intent(tmp_path, text))
        ctl = Controller(intent, {"sh1": configs["sh1"]}, build.compile_program("icpn"))
        await ctl.apply()
        expected, actual = await _golden_read_back(ctl, "sh1")
        assert expected == actual and len(expected) > 10


# -- the BfRuntime client against the fake bf_switchd -------------------------------------


async def _connected(tmp_path: Path, address: str) -> tuple[Controller, BfrtSwitchClient]:
    text = intent_text({n: address for n in NAMES}, {n: "bfruntime" for n in NAMES})
    intent, configs = load_and_render(write_intent(tmp_path, text))
    ctl = Controller(intent, configs, None)
    client = ctl.client("sh1")
    assert isinstance(client, BfrtSwitchClient)
    await client.connect()
    return ctl, client


@needs_tofino_build
def test_pipeline_is_loaded_then_bound(tmp_path: Path) -> None:
    run_with_fake(_pipeline_is_loaded_then_bound, tmp_path)


async def _pipeline_is_loaded_then_bound(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    _ctl, client = await _connected(tmp_path, address)
    await client.close()
    assert server.program is not None and server.program.name == "icpn"
    profile = server.program.profiles[0]
    assert profile.binary == tofino_program("tofino", "icpn").binary.read_bytes()
    loaded = server.program
    _ctl, client = await _connected(tmp_path, address)  # same program: BIND, not reloaded
    await client.close()
    assert server.program is loaded


@needs_tofino_build
def test_refusals_name_the_table_and_the_reason(tmp_path: Path) -> None:
    run_with_fake(_refusals_name_the_table_and_the_reason, tmp_path)


async def _refusals_name_the_table_and_the_reason(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    _ctl, client = await _connected(tmp_path, address)
    try:
        route = fy.P4TableEntry(
            "routing_v4",
            match=fy.P4TableMatch(ipv4_dst="10.0.0.0/8"),
            action=fy.P4TableAction("no_route"),
        )
        await client.insert([route])
        with pytest.raises(
            BfRuntimeError, match=r"INSERT pipe.IcpnIngress.routing.routing_v4: .*already exists"
        ):
            await client.insert([route])
        # a table filled to its bfrt.json size refuses the next entry
        size = client.target.bfrt_info.table("IcpnIngress.my_station.my_station").size
        stations = [
            fy.P4TableEntry(
                "my_station",
                match=fy.P4TableMatch(eth_dst=0x020000000000 + i),
                action=fy.P4TableAction("set_my_station"),
            )
            for i in range(size + 1)
        ]
        with pytest.raises(BfRuntimeError, match=rf"no space \(size {size}\)"):
            await client.insert(stations)
        assert len(server.table_entries("IcpnIngress.my_station.my_station")) == size
        # a value wider than the field: refused before it reaches the wire
        wide = fy.P4TableEntry(
            "port_role", match=fy.P4TableMatch(port=1 << 12), action=fy.P4TableAction("NoAction")
        )
        with pytest.raises((BfRuntimeError, ValueError)):
            await client.insert([wide])
        # strict=False: deleting what is not there is not an error
        await client.delete([route])
        await client.delete([route], strict=False)
        with pytest.raises(BfRuntimeError, match="not found"):
            await client.delete([route])
    finally:
        await client.close()


@needs_tofino_build
def test_fake_enforces_bfrt_json_ids_and_widths(tmp_path: Path) -> None:
    """What the translator must get right, the server checks: raw updates with a wrong
    table id, key width or data field id are refused with bf_switchd's kind of error."""
    run_with_fake(_fake_enforces, tmp_path)


async def _fake_enforces(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    from icpn.bfrt.proto import bfruntime_pb2 as bfrt

    _ctl, client = await _connected(tmp_path, address)
    try:
        table = client.target.bfrt_info.table("IcpnIngress.my_station.my_station")
        action = table.action("IcpnIngress.my_station.set_my_station")
        good = bfrt.TableEntry(table_id=table.id)
        good.key.fields.add(field_id=table.key("eth_dst").id).exact.value = b"\x00" * 6
        good.data.action_id = action.id
        cases = {
            "table id 7 not found": bfrt.TableEntry(table_id=7),
            "5 octets, the field has 6": _with_key(good, b"\x00" * 5),
            "data field id 99 unknown": _with_data_field(good, 99),
        }
        for message, entry in cases.items():
            update = bfrt.Update(type=bfrt.Update.INSERT, entity=bfrt.Entity(table_entry=entry))
            with pytest.raises(BfRuntimeError, match=message):
                await client._write([update], strict=True)
        await client._write(
            [bfrt.Update(type=bfrt.Update.INSERT, entity=bfrt.Entity(table_entry=good))],
            strict=True,
        )
        assert len(server.table_entries(table.name)) == 1
    finally:
        await client.close()


def _with_key(entry: Any, value: bytes) -> Any:
    copy = type(entry)()
    copy.CopyFrom(entry)
    copy.key.fields[0].exact.value = value
    return copy


def _with_data_field(entry: Any, field_id: int) -> Any:
    copy = type(entry)()
    copy.CopyFrom(entry)
    copy.data.fields.add(field_id=field_id, stream=b"\x01")
    return copy


@needs_tofino_build
def test_digests_acked_counters_and_registers(tmp_path: Path) -> None:
    run_with_fake(_digests_acked_counters_and_registers, tmp_path)


async def _digests_acked_counters_and_registers(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    _ctl, client = await _connected(tmp_path, address)
    try:
        reports = client.digests("elephant_digest")
        sent = await server.send_digest(
            "elephant_digest",
            [
                {
                    "src": 1,
                    "dst": 2,
                    "proto": 17,
                    "sport": 4791,
                    "dport": 4791,
                    "dest_qp": 0x1234,
                    "key_type": 1,
                    "sr_policy_id": 1,
                    "estimate": 5000,
                }
            ],
        )
        got = await asyncio.wait_for(anext(reports), 5)
        (data,) = got.data
        assert data["dest_qp"] == 0x1234 and data["estimate"] == 5000 and data["sport"] == 4791
        await asyncio.sleep(0.1)
        assert (client.target.bfrt_info.learn_filter("elephant_digest").id, sent) in server.acks
        server.set_cell("IcpnIngress.drop_reasons", 3, **{"$COUNTER_SPEC_PKTS": 42})
        cells = await client.read_counters("drop_reasons")
        assert cells[3].packet_count == 42 and cells[2].packet_count == 0
        assert (await client.read_counter("drop_reasons", 3)).packet_count == 42
        server.set_cell("IcpnIngress.sketch.sketch_row0", 9, count=77, window=3)
        rows = await client.read_register("IcpnIngress.sketch.sketch_row0")
        assert rows[9] == {"count": [77] * 4, "window": [3] * 4}
    finally:
        await client.close()


@needs_tofino_build
def test_elephant_overrides_read_back_by_flow(tmp_path: Path) -> None:
    """The manager pins v1model-shaped override entries; on Tofino they travel keyed by the
    flow's fingerprint and come back (with their direct counters) keyed by the flow."""
    run_with_fake(_overrides_by_flow, tmp_path)


async def _overrides_by_flow(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    from icpn.elephant import OVERRIDE_HITS

    ctl, client = await _connected(tmp_path, address)
    try:
        await ctl._reconcile(client)
        switch = ShapedSwitch(client, ctl.intent.switches["sh1"])
        lists = ctl.configs["sh1"].policies[0].lists
        from icpn.features.sketch import FlowKey, elephant_override

        flow = FlowKey(
            src="2001:db8:1::10", dst="2001:db8:2::10", proto=17, sport=4791, dport=4791, dest_qp=7
        )
        pin = elephant_override(1, flow, ctl.configs["sh1"].policies[0].headend, lists[1])
        await switch.insert([pin])
        assert (
            server.set_direct_counter("IcpnIngress.srv6_headend.elephant_override", None, 10, 12000)
            == 1
        )
        (cell,) = await switch.read(fy.P4DirectCounterEntry(OVERRIDE_HITS))
        assert cell.table_entry.match == pin.match
        assert cell.data.byte_count == 12000 and cell.data.packet_count == 10
        assert switch.digest == "elephant_digest" and switch.digest != ELEPHANT_DIGEST
    finally:
        await client.close()


# -- translation details ------------------------------------------------------------------


@needs_tofino_build
def test_priorities_and_weights_survive_translation(tmp_path: Path) -> None:
    program = tofino_program("tofino", "icpn")
    schema = fy.P4Schema(program.p4info)
    translator = Translator(schema, BfrtInfo.load(program.bfrt_json))
    text = intent_text({n: "127.0.0.1:1" for n in NAMES}, {n: "bfruntime" for n in NAMES})
    intent, configs = load_and_render(write_intent(tmp_path, text))
    ctl = Controller(intent, configs, None)
    entry = next(
        e
        for e in ctl.configs["sh1"].entities
        if getattr(e, "table_id", "") == "acl" or getattr(e, "priority", 0)
    )
    update = (+entry).encode_update(schema)
    (out,) = translator.updates([update])
    prio_field = translator.table_for(update.entity.table_entry.table_id).keys["$MATCH_PRIORITY"].id
    (prio,) = [k for k in out.entity.table_entry.key.fields if k.field_id == prio_field]
    assert int.from_bytes(prio.exact.value, "big") == MAX_PRIORITY - entry.priority
    weighted = fy.P4TableEntry(
        "sr_policy",
        match=fy.P4TableMatch(sr_policy_id=9),
        action=fy.P4IndirectAction(
            [
                (3, fy.P4TableAction("h_encaps_1", list_id=1, src="fc00::1", s1="fc00::2")),
                (1, fy.P4TableAction("h_encaps_1", list_id=2, src="fc00::1", s1="fc00::3")),
            ]
        ),
    )
    outs = translator.updates([(+weighted).encode_update(schema)])
    kinds = [translator.info.table_by_id(u.entity.table_entry.table_id).table_type for u in outs]
    assert kinds == ["Action"] * 4 + ["Selector", "MatchAction_Indirect_Selector"]
    too_many = fy.P4TableEntry(
        "sr_policy",
        match=fy.P4TableMatch(sr_policy_id=10),
        action=fy.P4IndirectAction(
            [(17, fy.P4TableAction("h_encaps_1", list_id=1, src="fc00::1", s1="fc00::2"))]
        ),
    )
    with pytest.raises(ValueError, match="exceed the selector's group size 16"):
        translator.updates([(+too_many).encode_update(schema)])


@needs_tofino_build
def test_stratum_device_config_carries_the_compiled_program() -> None:
    program = tofino_program("tofino", "icpn")
    config = stratum_bf_pb2.BfPipelineConfig.FromString(program.stratum_config())
    assert config.p4_name == "icpn"
    assert json.loads(config.bfruntime_info)["tables"]
    (profile,) = config.profiles
    assert profile.binary == program.binary.read_bytes()
    assert json.loads(profile.context)["tables"] is not None
    assert list(profile.pipe_scope) == [0, 1, 2, 3]


@needs_tofino_build
def test_mixed_intent_dry_runs_offline_in_each_api(tmp_path: Path) -> None:
    text = intent_text(
        {n: f"127.0.0.1:{i}" for i, n in enumerate(NAMES, 1)},
        {"gz1": "p4runtime", "nx1": "bfruntime"},
    )
    path = write_intent(tmp_path, text)
    result = CliRunner().invoke(
        app, ["ctl", "run", "-i", str(path), "--once", "--dry-run", "--offline"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "sh1 (bmv2, p4runtime)" in out and "gz1 (tofino, p4runtime)" in out
    assert "nx1 (tofino, bfruntime)" in out
    assert "pipe.IcpnIngress.routing.ecmp_members" in out  # members of one-shot groups
    assert "pipe.IcpnIngress.routing.routing_v6" in out


def test_intent_refuses_bfruntime_on_bmv2(tmp_path: Path) -> None:
    text = INTENT.replace("grpc: 127.0.0.1:2,", "grpc: 127.0.0.1:2, api: bfruntime,")
    assert text != INTENT
    result = CliRunner().invoke(
        app,
        ["ctl", "run", "-i", str(write_intent(tmp_path, text)), "--once", "--dry-run", "--offline"],
    )
    assert result.exit_code == 2
    assert "BMv2 serves P4Runtime only" in result.output
    text = INTENT.replace("grpc: 127.0.0.1:2,", "grpc: 127.0.0.1:2, target: tofino, profile: nope,")
    result = CliRunner().invoke(
        app,
        ["ctl", "run", "-i", str(write_intent(tmp_path, text)), "--once", "--dry-run", "--offline"],
    )
    assert result.exit_code == 2 and "unknown TNA profile 'nope'" in result.output


@needs_tofino_build
def test_collector_reads_a_tofino_switch_over_bfruntime(tmp_path: Path) -> None:
    run_with_fake(_collector_reads, tmp_path)


async def _collector_reads(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    from icpn.collector import connect_readers
    from icpn.features.ifit import ALTMARK_COUNTER

    ctl, client = await _connected(tmp_path, address)  # the controller loads the program
    try:
        server.set_cell("IcpnIngress.ifit.altmark_colors", 14, **{"$COUNTER_SPEC_PKTS": 5})
        tofino = {"sh1": ctl.intent.switches["sh1"]}
        async with connect_readers({"sh1": (address, 0)}, tofino) as readers:
            cells = await readers["sh1"].read_counters(ALTMARK_COUNTER)
        assert cells[14].packet_count == 5 and cells[13].packet_count == 0
    finally:
        await client.close()


@needs_tofino_build
def test_running_controller_pins_a_reported_elephant_over_bfruntime(tmp_path: Path) -> None:
    """The whole loop on a Tofino target: the controller loads and reconciles the switch,
    an elephant digest arrives on the BfRuntime stream, the manager pins the flow, and the
    override lands in the TNA table keyed by the flow's fingerprint."""
    run_with_fake(_pins_over_bfruntime, tmp_path)


async def _pins_over_bfruntime(
    tmp_path: Path, server: fake_bfruntime.FakeBfRuntime, address: str
) -> None:
    from icpn.features.sketch import FlowKey
    from icpn.targets.tofino.p4info import flow_fingerprint

    text = intent_text({n: address for n in NAMES}, {n: "bfruntime" for n in NAMES})
    intent, configs = load_and_render(write_intent(tmp_path, text))
    ctl = Controller(intent, {"sh1": configs["sh1"]}, None)
    task = asyncio.ensure_future(ctl.run())
    try:
        await _until(lambda: ctl.status["sh1"].elephants is not None)
        flow = FlowKey(src="2001:db8:1::10", dst="2001:db8:2::10", dest_qp=0x77)
        report = {
            "src": int(ipaddress.IPv6Address(flow.src)),
            "dst": int(ipaddress.IPv6Address(flow.dst)),
            "proto": 0,
            "sport": 0,
            "dport": 0,
            "dest_qp": flow.dest_qp,
            "key_type": 1,
            "sr_policy_id": ctl.configs["sh1"].policies[0].sr_policy_id,
            "estimate": 9999,
        }
        await server.send_digest("elephant_digest", [report])
        table = "IcpnIngress.srv6_headend.elephant_override"
        await _until(lambda: len(server.table_entries(table)) == 1)
        (entry,) = server.table_entries(table)
        key = {f.field_id: int.from_bytes(f.exact.value, "big") for f in entry.key.fields}
        info = ctl.client("sh1").target.bfrt_info.table(table)  # type: ignore[union-attr]
        assert key[info.key("fingerprint").id] == flow_fingerprint(
            flow.match(report["sr_policy_id"])
        )
        assert ctl.status["sh1"].elephants.stats.reports == 1  # type: ignore[union-attr]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Poll ``condition()`` (bounded in time) until it holds."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


@needs_tofino_build
def test_p4runtime_on_tofino_pushes_stratums_device_config(tmp_path: Path) -> None:
    """A Tofino switch over P4Runtime (Stratum) gets the TNA P4Info and, as the device
    config, the BfPipelineConfig of the build: the exact bytes Stratum unpacks."""
    from tests.fake_p4runtime import run_with_server

    async def check(server: Any) -> None:
        text = intent_text({n: server.address for n in NAMES}, {"gz1": "p4runtime"})
        intent, configs = load_and_render(write_intent(tmp_path, text))
        ctl = Controller(intent, configs, None)
        client = ctl.client("gz1")
        async with client:
            assert client.is_primary
        program = tofino_program("tofino", "icpn")
        assert server.config is not None
        assert server.config.p4_device_config == program.stratum_config()
        names = {t.preamble.name for t in server.config.p4info.tables}
        assert "IcpnIngress.srv6_headend.elephant_override" in names
        assert {c.preamble.alias for c in server.config.p4info.counters} >= {"drop_reasons"}

    run_with_server(check)
