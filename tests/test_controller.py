"""Controller logic without a switch: rendering intent into entries, planning the
difference, reconciling against the in-process fake (only the difference written, a refused
batch rolled back), and refusing to write anything when a switch is unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path
from typing import Any, TypeVar

import finsy as fy
import pytest

from icpn.controller import Controller, ReconcileError, SwitchConfig, UnreachableError
from icpn.controller.reconcile import plan, reconcile
from icpn.controller.render import load_and_render
from icpn.intent import IntentError
from icpn.p4rt import SwitchClient, SwitchTarget
from tests.fake_p4runtime import FakeP4Runtime, entry, program_files, run_with_server

T = TypeVar("T")

# sh1 reaches nx1 over two planes of equal latency (via gz1 and via wh1) and a long direct
# link; nx1 decapsulates and hosts h2; the collector hangs off nx1 port 9.
INTENT = """\
switches:
  sh1:
    grpc: 127.0.0.1:1
    router_mac: 00:00:00:00:aa:01
    sid: fc00:1::1
    ioam_node_id: 1
    ports:
      1: {role: edge_trusted}
  gz1: {grpc: 127.0.0.1:2, router_mac: 00:00:00:00:aa:02, sid: fc00:2::1, ioam_node_id: 2}
  wh1: {grpc: 127.0.0.1:3, router_mac: 00:00:00:00:aa:04, sid: fc00:4::1, ioam_node_id: 4}
  nx1:
    grpc: 127.0.0.1:4
    router_mac: 00:00:00:00:aa:03
    sid: fc00:3::1
    decap_sid: fc00:3::d6
    ioam_node_id: 3
    ports:
      5: {role: edge_untrusted}
links:
  - {a: "sh1:2", b: "gz1:1", km: 1000, capacity_gbps: 100}
  - {a: "gz1:2", b: "nx1:1", km: 1000, capacity_gbps: 100}
  - {a: "sh1:3", b: "wh1:1", km: 1000, capacity_gbps: 100}
  - {a: "wh1:2", b: "nx1:2", km: 1000, capacity_gbps: 100}
  - {a: "sh1:4", b: "nx1:3", km: 2600, capacity_gbps: 10}
hosts:
  h1: {switch: sh1, port: 1, address: "2001:db8:1::10/64", mac: "00:00:00:00:01:10"}
  h2: {switch: nx1, port: 5, address: "2001:db8:2::10/64", mac: "00:00:00:00:02:10"}
collector: {address: "2001:db8:ff::10", attach: "nx1:9", mac: "00:00:00:00:ff:01"}
apn_policies:
  - name: ingest
    app_group: 7
    dscp: 34
    sr_policy: sh-nx
    telemetry: trace
    sketch: rdma
    classify:
      - {ipv6_dst: "2001:db8:2::/64"}
sr_policies:
  - {name: sh-nx, headend: sh1, endpoint: nx1, paths: 2}
telemetry:
  - name: trace
    altmark: {flow_mon_id: 7, period_log2_us: 20}
    ioam: {namespace: 16, trace_type: 0xC00000, max_nodes: 4}
sketches:
  - {name: rdma, threshold: 1000, window_log2_us: 20}
"""


def rendered(tmp_path: Path, text: str = INTENT) -> dict[str, SwitchConfig]:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return load_and_render(path)[1]


def entries(config: SwitchConfig, table: str) -> list[Any]:
    """One table's entries (typed loosely: tests index into matches and actions)."""
    return list(config.tables().get(table, []))


def route_ports(config: SwitchConfig, prefix: str) -> list[int]:
    route = next(e for e in entries(config, "routing_v6") if e.match["ipv6_dst"] == prefix)
    return sorted(action.args["port"] for _, action in route.action.action_set)


def test_routes_spread_over_equal_latency_next_hops(tmp_path: Path) -> None:
    configs = rendered(tmp_path)
    assert route_ports(configs["sh1"], "2001:db8:2::/64") == [2, 3]  # two planes, not direct
    assert route_ports(configs["sh1"], "2001:db8:1::/64") == [1]  # its own host
    assert route_ports(configs["gz1"], "fc00:1::1/128") == [1]
    assert route_ports(configs["nx1"], "2001:db8:ff::10/128") == [9]  # the collector
    # a switch's own SIDs are local SIDs, never routes
    assert all(
        e.match["ipv6_dst"] != "fc00:3::d6/128" for e in entries(configs["nx1"], "routing_v6")
    )
    assert {e.action.name for e in entries(configs["nx1"], "my_sid")} == {"end", "end_dt6", "end_x"}


def segment_lists(config: SwitchConfig) -> list[tuple[str, ...]]:
    (policy,) = entries(config, "sr_policy")
    return sorted(
        tuple(str(v) for k, v in sorted(a.args.items()) if k[0] == "s" and k[1:].isdigit())
        for _, a in policy.action.action_set
    )


def test_sr_paths_become_node_sid_lists(tmp_path: Path) -> None:
    config = rendered(tmp_path)["sh1"]
    # the planes tie, so each path keeps its plane's waypoint; the endpoint's last segment
    # is its decapsulation SID
    assert segment_lists(config) == [("fc00:2::1", "fc00:3::d6"), ("fc00:4::1", "fc00:3::d6")]
    assert [len(p.lists) for p in config.policies] == [2]
    assert config.detects_elephants
    assert [e.match["apn_id"] for e in entries(config, "apn_policy")] == ["0x70000/&0xffff0000"]
    assert entries(rendered(tmp_path)["gz1"], "apn_policy") == []  # only on the headend


def test_the_elephant_manager_gets_path_latencies_and_rebalance_settings(tmp_path: Path) -> None:
    text = (
        INTENT
        + "elephants:\n  poll_interval_s: 0.5\n  rebalance: {max_moves: 2, hold_down_polls: 3}\n"
    )
    config = rendered(tmp_path, text)["sh1"]
    (policy,) = config.policies
    assert policy.latency_ms == (10.0, 10.0)  # 2 x 1000 km at 5 us/km
    assert policy.capacity == (100.0, 100.0)
    placing = config.elephant_settings.placement
    assert (placing.max_moves, placing.hold_down_s) == (2, 1.5)  # 3 polls of 0.5 s
    assert (placing.trigger, placing.smoothing) == (0.03, 0.3)  # the defaults


def test_the_manager_verifies_pins_against_the_sketch_rate_with_quotas(tmp_path: Path) -> None:
    text = INTENT + "elephants:\n  port_quota: 0.25\n  confirm_fraction: 0.8\n"
    config = rendered(tmp_path, text)["sh1"]
    (policy,) = config.policies
    assert policy.elephant_rate == pytest.approx(1000 / 1.048576)  # 1000 packets per 2^20 us
    assert not policy.count_bytes
    settings = config.elephant_settings
    assert (settings.port_quota, settings.apn_quota, settings.confirm_fraction) == (0.25, 1, 0.8)


def test_the_sketch_hash_key_comes_from_the_intent_or_its_file(tmp_path: Path) -> None:
    from icpn.sketch_key import SketchHashKey

    assert rendered(tmp_path)["sh1"].sketch_hash_key is None  # drawn by the controller
    key = SketchHashKey.generate()
    text = INTENT + f"elephants:\n  hash_key: {key.to_hex()}\n"
    assert rendered(tmp_path, text)["sh1"].sketch_hash_key == key
    text = INTENT + "elephants:\n  hash_key_file: keys/sketch.key\n"
    kept = rendered(tmp_path, text)["sh1"].sketch_hash_key
    assert (tmp_path / "keys/sketch.key").stat().st_mode & 0o777 == 0o600
    assert rendered(tmp_path, text)["sh1"].sketch_hash_key == kept  # kept, not redrawn
    with pytest.raises(IntentError, match="hash_key"):
        rendered(tmp_path, INTENT + "elephants:\n  hash_key: abc\n")


def test_waypoints_are_dropped_where_routing_goes_anyway(tmp_path: Path) -> None:
    # without the wh1 plane, sh1->nx1 goes via gz1 only: one segment (the decap SID) does
    text = INTENT.replace('  - {a: "sh1:3", b: "wh1:1", km: 1000, capacity_gbps: 100}\n', "")
    text = text.replace("paths: 2}", "paths: 1}")
    assert segment_lists(rendered(tmp_path, text)["sh1"]) == [("fc00:3::d6",)]


def test_trace_export_goes_towards_the_collector(tmp_path: Path) -> None:
    configs = rendered(tmp_path)
    nx1 = configs["nx1"]
    (report,) = entries(nx1, "ioam_report")
    assert report.action.args["dmac"] == "00:00:00:00:ff:01"
    (session,) = [e for e in nx1.entities if isinstance(e, fy.P4CloneSessionEntry)]
    assert session.replicas is not None
    assert [getattr(r, "port", r) for r in session.replicas] == [9]
    assert entries(configs["gz1"], "ioam_report") == []  # gz1 does not decapsulate
    assert [e.action.args["id"] for e in entries(configs["gz1"], "ioam_node")] == [2]


def test_a_prefix_without_a_neighbour_mac_is_refused(tmp_path: Path) -> None:
    text = INTENT.replace('mac: "00:00:00:00:02:10"', "") + (
        "prefixes:\n  - {prefix: '2001:db8:9::/48', switch: nx1, port: 5}\n"
    )
    with pytest.raises(IntentError) as caught:
        rendered(tmp_path, text)
    assert any(
        "prefixes.0.port: port 5 of 'nx1' has no neighbor_mac" in p for p in caught.value.problems
    )


# -- reconciliation against the fake switch ------------------------------------------------


@pytest.fixture
def program(tmp_path: Path) -> tuple[Path, Path]:
    return program_files(tmp_path)


def client_for(server: FakeP4Runtime, program: tuple[Path, Path]) -> SwitchClient:
    return SwitchClient(SwitchTarget("fake", server.address, p4info=program[0], p4blob=program[1]))


def updates(server: FakeP4Runtime) -> list[tuple[int, int]]:
    """(update type, key) of every update the fake received."""
    return [
        (u.type, int.from_bytes(u.entity.table_entry.match[0].exact.value, "big"))
        for r in server.write_requests
        for u in r.updates
    ]


def test_plan_finds_inserts_modifies_and_deletes(program: tuple[Path, Path]) -> None:
    schema = fy.P4Schema(program[0])
    todo = plan([entry(1), entry(2, port=5), entry(3)], [entry(2), entry(3), entry(4)], schema)
    assert [e.match["k"] for e in todo.inserts] == [1]
    assert [e.match["k"] for e in todo.modifies] == [2]
    assert [e.match["k"] for e in todo.deletes] == [4]
    assert todo.unchanged == 1
    with pytest.raises(ValueError, match="twice"):
        plan([entry(1), entry(1, port=2)], [], schema)


def test_reconcile_writes_only_the_difference(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> list[tuple[int, int]]:
        async with client_for(server, program) as client:
            await client.insert([entry(k) for k in range(10)])
            server.write_requests.clear()
            desired = [entry(k, port=7 if k == 5 else 1) for k in range(1, 11)]
            todo = await reconcile(client, desired)
            assert todo.summary() == "1 inserted, 1 modified, 1 deleted, 8 unchanged"
            again = await reconcile(client, desired)
            assert len(again) == 0
        return updates(server)

    from finsy.proto import p4r

    assert run_with_server(check) == [
        (p4r.Update.DELETE, 0),
        (p4r.Update.MODIFY, 5),
        (p4r.Update.INSERT, 10),
    ]


def test_a_refused_entry_rolls_the_whole_write_back(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with client_for(server, program) as client:
            await client.insert([entry(k) for k in range(5)])
            before = dict(server.entities)
            server.reject_key = b"\x2a"  # canonical: no leading zero octets
            desired = [entry(k, port=2) for k in range(3)] + [entry(42), entry(43)]
            with pytest.raises(ReconcileError, match=r"entry rejected.*state was restored") as err:
                await reconcile(client, desired)
            assert err.value.restored
            assert server.entities == before  # deletes, modifies and 43's insert undone

    run_with_server(check)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def controller_for(tmp_path: Path, addresses: dict[str, str], program: tuple[Path, Path]) -> Any:
    text = "switches:\n" + "".join(
        f"  {name}: {{grpc: '{address}', router_mac: '00:00:00:00:aa:0{i}', sid: 'fc00:{i}::1'}}\n"
        for i, (name, address) in enumerate(addresses.items(), 1)
    )
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    intent = load_and_render(path)[0]
    configs = {name: SwitchConfig(name, [entry(i)]) for i, name in enumerate(addresses, 1)}
    from icpn.targets.bmv2.build import Artifacts

    return Controller(intent, configs, Artifacts("fake", program[1], program[0]))


def test_an_unreachable_switch_stops_the_run_before_any_write(
    tmp_path: Path, program: tuple[Path, Path]
) -> None:
    async def check(server: FakeP4Runtime) -> str:
        dead = f"127.0.0.1:{free_port()}"
        ctl = controller_for(tmp_path, {"up": server.address, "down": dead}, program)
        with pytest.raises(UnreachableError) as caught:
            await ctl.apply()
        assert server.write_requests == []  # the reachable switch was not touched
        return str(caught.value)

    message = run_with_server(check)
    assert "nothing was written" in message and "down (127.0.0.1:" in message
    assert "up (" not in message


def test_apply_reconciles_every_switch(tmp_path: Path, program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        ctl = controller_for(tmp_path, {"only": server.address}, program)
        plans = await ctl.apply()
        assert plans["only"].summary() == "1 inserted, 0 modified, 0 deleted, 0 unchanged"
        assert [u[1] for u in updates(server)] == [1]
        assert ctl.status["only"].last_plan is plans["only"]

    run_with_server(check)


def test_a_restarted_switch_is_reconnected_and_restored_promptly(
    tmp_path: Path, program: tuple[Path, Path]
) -> None:
    """The switch goes away for 3 s (long enough for gRPC's and finsy's reconnect back-offs
    to grow past 10 s) and comes back empty on the same port: the controller reconnects,
    pushes the pipeline and writes the state again, a fraction of a second after the
    switch accepts connections."""
    port = free_port()

    async def main() -> float:
        first = FakeP4Runtime()
        async with first.serving(port):
            ctl = controller_for(tmp_path, {"only": first.address}, program)
            status = ctl.status["only"]
            task = asyncio.ensure_future(ctl.run())
            try:
                await until(lambda: status.last_plan is not None, 10)
                assert len(first.entities) == 1
            except BaseException:
                task.cancel()
                raise
        try:
            await asyncio.sleep(3.0)
            assert status.connects == 1
            second = FakeP4Runtime()
            async with second.serving(port):
                serving = time.perf_counter()
                await until(lambda: status.connects == 2 and status.last_plan is not None, 10)
                restored = time.perf_counter() - serving
                assert second.config is not None  # the pipeline was pushed again
                assert len(second.entities) == 1  # and the state written again
                return restored
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    restored = asyncio.run(asyncio.wait_for(main(), 30))
    # finsy's own reconnect loop took over 10 s here; the bound leaves room for a loaded CI
    assert restored < 2.0, f"{restored:.2f} s"


async def until(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
