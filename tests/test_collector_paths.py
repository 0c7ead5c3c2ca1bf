"""Segments and per-segment-list samples from the SR policies' real paths (issue 14 part 2):
the data-ingestion planes cut into fan-out and fan-in groups (not all switches chained),
reports of a colour counted per list against the list's own first node, the report socket
opened in another network namespace."""

from __future__ import annotations

import asyncio
import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from icpn.collector.altmark import AltmarkBlock
from icpn.collector.paths import (
    PathMeter,
    PathPlan,
    PathSample,
    SegmentGroup,
    plan_from_intent,
    plan_from_routes,
)
from icpn.collector.traces import bind_in_netns, decode_report
from icpn.controller.render import SrRoute
from icpn.intent import load_intent
from icpn.packets import FLAG_ALTMARK, FLAG_COLOUR, IOAM, IOAMNode, TraceReport, preallocated_trace
from icpn.paths import PROJECT_ROOT

TIMED = 0xF00000  # hop_lim/node_id, interfaces, ts seconds, ts fraction
IDS = {"sh1": 101, "gz1": 102, "gz2": 103, "gz3": 104, "gz4": 105, "nx1": 106}


def planes() -> PathPlan:
    return plan_from_intent(load_intent(PROJECT_ROOT / "topologies" / "data-ingestion.yaml"))


def test_planes_are_cut_into_fan_out_and_fan_in_not_chained() -> None:
    plan = planes()
    assert [(p.list_id, p.nodes, p.start) for p in plan.paths] == [
        (1, ("sh1", "gz1", "nx1"), "gz1"),
        (2, ("sh1", "gz2", "nx1"), "gz2"),
        (3, ("sh1", "gz3", "nx1"), "gz3"),
        (4, ("sh1", "gz4", "nx1"), "gz4"),
    ]
    gz = ("gz1", "gz2", "gz3", "gz4")
    assert plan.groups == {
        1: [SegmentGroup(1, ("sh1",), gz), SegmentGroup(1, gz, ("nx1",))],
    }
    assert plan.nodes()[0] == "sh1"  # the headend is the reference
    block = AltmarkBlock(
        1, 0, 1, 0.0, {"sh1": 100, "gz1": 25, "gz2": 24, "gz3": 25, "gz4": 25, "nx1": 97}, {}
    )
    losses = [
        (s.upstream, s.downstream, s.sent, s.lost, s.end_to_end) for s in plan.segments(block)
    ]
    assert losses == [
        ("sh1", "gz1+gz2+gz3+gz4", 100, 1, False),
        ("gz1+gz2+gz3+gz4", "nx1", 99, 2, False),
        ("sh1", "nx1", 100, 3, True),
    ]


def test_a_single_chain_is_measured_hop_by_hop_from_the_headend() -> None:
    routes = [SrRoute("p", 1, 1, ("a", "b", "c"), 3.0)]
    plan = plan_from_routes(routes, {"p": [9]}, {"a": 1, "b": 2, "c": 3})
    assert plan.paths[0].start == "a"
    assert plan.groups[9] == [SegmentGroup(9, ("a",), ("b",)), SegmentGroup(9, ("b",), ("c",))]


def test_lists_sharing_every_node_or_flows_get_no_per_list_start() -> None:
    routes = [SrRoute("p", 1, 1, ("a", "b"), 1.0), SrRoute("p", 1, 2, ("a", "b"), 1.0)]
    assert [p.start for p in plan_from_routes(routes, {"p": [5]}, {}).paths] == [None, None]
    one = [SrRoute("q", 1, 1, ("a", "b"), 1.0)]
    assert [p.start for p in plan_from_routes(one, {"q": [5, 6]}, {}).paths] == [None, None]


def report(path: list[str], colour: int | None, *, sequence: int = 0, t0_us: int = 0) -> bytes:
    """nx1's report of a packet that crossed ``path``, 10 ms per hop."""
    nodes = [
        IOAMNode(
            hop_lim=64 - i,
            node_id=IDS[name],
            ingress_if=1,
            egress_if=2,
            ts_sec=5,
            ts_frac=(t0_us + 10_000 * i) * 1000,
        )
        for i, name in enumerate(path)
    ]
    trace = preallocated_trace(TIMED, 4, 16, nodes)
    flags = 0 if colour is None else FLAG_ALTMARK | (FLAG_COLOUR if colour else 0)
    return bytes(
        TraceReport(
            node_id=IDS["nx1"], flags=flags, sequence=sequence, body=bytes(IOAM(data=trace))
        )
    )


def test_report_flags_give_the_colour() -> None:
    assert decode_report(report(["sh1", "gz1", "nx1"], 1)).altmark_colour == 1
    assert decode_report(report(["sh1", "gz1", "nx1"], 0)).altmark_colour == 0
    assert decode_report(report(["sh1", "gz1", "nx1"], None)).altmark_colour is None


def test_meter_counts_reports_per_list_and_colour_against_the_list_start() -> None:
    plan = planes()
    got: list[PathSample] = []
    meter = PathMeter(plan, [got.append])
    for i in range(10):  # list 2: 10 sent at gz2, 8 reported (2 lost gz2 -> nx1)
        if i < 8:
            meter.on_trace(decode_report(report(["sh1", "gz2", "nx1"], 0, sequence=i)), 0)
    meter.on_trace(decode_report(report(["sh1", "gz1", "nx1"], 1)), 0)  # the other colour
    meter.on_trace(decode_report(report(["sh1", "gz1", "nx1"], None)), 0)
    meter.on_trace(decode_report(report(["sh1", "gz3", "gz1"], 0)), 0)  # no such list
    assert (meter.uncoloured, meter.unmatched) == (1, 1)
    packets = {"sh1": 20, "gz1": 5, "gz2": 10, "gz3": 5, "gz4": 0, "nx1": 18}
    meter.on_block(AltmarkBlock(1, 0, 1, 1000.0, packets, {}))
    by_list = {s.list_id: s for s in got}
    two = by_list[2]
    assert (two.start, two.endpoint, two.sent, two.received, two.lost) == ("gz2", "nx1", 10, 8, 2)
    assert two.ratio == pytest.approx(0.2)
    assert two.delay_ms == pytest.approx(20.0)  # sh1 -> nx1: two hops of 10 ms
    assert (by_list[1].sent, by_list[1].received) == (5, 0)  # its colour-1 report is not here
    assert by_list[4].sent == 0 and by_list[4].delay_ms is None
    # the colour-1 block then takes the colour-1 report only
    meter.on_block(AltmarkBlock(1, 1, 2, 1001.0, {"sh1": 1, "gz1": 1, "nx1": 1}, {}))
    assert (meter.latest[("sh-nx", 1, 1)].sent, meter.latest[("sh-nx", 1, 1)].received) == (1, 1)


def test_a_baseline_block_discards_the_reports_counted_so_far() -> None:
    meter = PathMeter(planes())
    meter.on_trace(decode_report(report(["sh1", "gz2", "nx1"], 0)), 0)
    meter.on_baseline(1, 0)
    meter.on_block(AltmarkBlock(1, 0, 1, 0.0, {"gz2": 3, "nx1": 3}, {}))
    assert meter.latest[("sh-nx", 2, 1)].received == 0


@pytest.mark.netadmin
def test_reports_are_received_in_another_network_namespace() -> None:
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    name = f"icpn-ct{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        sock = bind_in_netns("::", 0, f"/run/netns/{name}")
        port = sock.getsockname()[1]
        # The process stayed in its own namespace: the same port is free here.
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as here:
            here.bind(("::", port))
        send = (
            "import socket; "
            f"socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(b'r', ('::1', {port}))"
        )
        subprocess.run(["ip", "netns", "exec", name, sys.executable, "-c", send], check=True)

        async def receive() -> bytes:
            loop = asyncio.get_running_loop()
            return await asyncio.wait_for(loop.sock_recv(sock, 16), 5)

        assert asyncio.run(receive()) == b"r"
        sock.close()
        with pytest.raises(OSError, match="namespace"):
            bind_in_netns("::", 0, "/proc/self/ns/uts")  # a namespace, not a network one
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_cli_measures_the_intent_policies_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``icpn collect --intent`` polls the switches on the policies' paths, headend first,
    and cuts blocks into the planes' fan-out and fan-in (no --path given)."""
    import contextlib
    from collections.abc import AsyncIterator

    from typer.testing import CliRunner

    from icpn.collector.cli import app
    from tests.test_collector import CountsLater

    asked: list[list[str]] = []
    counts = {"sh1": 10, "gz1": 4, "gz2": 6, "gz3": 0, "gz4": 0, "nx1": 9}

    @contextlib.asynccontextmanager
    async def fake_connect(
        switches: dict[str, tuple[str, int]], tofino: object = None
    ) -> AsyncIterator[dict[str, CountsLater]]:
        asked.append(list(switches))
        yield {name: CountsLater(counts[name], flow=1) for name in switches}

    monkeypatch.setattr("icpn.collector.cli.connect_readers", fake_connect)
    intent = PROJECT_ROOT / "topologies" / "data-ingestion.yaml"
    args = ["--intent", str(intent), "--period-log2-us", "17"]
    args += ["--listen", "127.0.0.1:0", "--poll-interval", "0.03", "--duration", "0.8"]
    result = CliRunner().invoke(app, [*args, "--csv", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert asked == [["sh1", "gz1", "nx1", "gz2", "gz3", "gz4"]]
    with (tmp_path / "altmark.csv").open() as f:
        rows = [(r["from_node"], r["to_node"], r["lost"]) for r in csv.DictReader(f)]
    assert rows == [
        ("sh1", "gz1+gz2+gz3+gz4", "0"),
        ("gz1+gz2+gz3+gz4", "nx1", "1"),
        ("sh1", "nx1", "1"),
    ]


def test_live_view_shows_each_lists_latest_sample() -> None:
    from rich.console import Console

    from icpn.collector.export import live_view

    meter = PathMeter(planes())
    meter.on_trace(decode_report(report(["sh1", "gz2", "nx1"], 0)), 0)
    meter.on_block(AltmarkBlock(1, 0, 1, 0.0, {"sh1": 4, "gz2": 4, "nx1": 1}, {}))
    console = Console(record=True, width=200)
    console.print(live_view(None, None, paths=meter))
    text = console.export_text()
    assert "gz2 → nx1" in text and "3 (75.00%)" in text


def test_cli_netns_names_what_it_cannot_find() -> None:
    from typer.testing import CliRunner

    from icpn.collector.cli import app

    for value, message in (("nosuchhost", "no lab host 'nosuchhost'"), ("/nope/ns", "no network")):
        result = CliRunner().invoke(app, ["--netns", value, "--duration", "0.1"])
        assert result.exit_code == 2 and message in result.output, result.output
