"""The IFIT collector without switches: reports built with the project's scapy layers,
sequence gaps, malformed datagrams, a real UDP socket, alternate-marking blocks from a fake
counter source (loss injected), CSV, Prometheus text, the live view and the CLI."""

from __future__ import annotations

import asyncio
import csv
import socket
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import finsy as fy
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from typer.testing import CliRunner

from icpn.collector import (
    AltmarkBlock,
    AltmarkMonitor,
    CollectorConfig,
    CsvExport,
    PrometheusExport,
    SequenceTracker,
    TraceCollector,
    decode_report,
    listen,
    live_view,
    run_collector,
)
from icpn.collector.cli import app
from icpn.collector.traces import MalformedReport
from icpn.constants import REPORT_UDP_PORT
from icpn.features.ifit import ALTMARK_COUNTER, altmark_index
from icpn.packets import IOAM, IOAMNode, IOAMTrace, TraceReport, preallocated_trace
from icpn.targets.bmv2.switch import free_tcp_port

NS = 0x10
TIMED = 0xF80000  # hop_lim/node_id, interfaces, ts seconds, ts fraction, transit delay
SRC, DST = "2001:db8:1::10", "2001:db8:2::10"


def node(node_id: int, sec: int | None, frac: int | None, transit: int | None = 700) -> IOAMNode:
    return IOAMNode(
        hop_lim=64 - node_id,
        node_id=node_id,
        ingress_if=1,
        egress_if=2,
        ts_sec=sec,
        ts_frac=frac,
        transit_delay=transit,
    )


def report(
    nodes: list[IOAMNode],
    *,
    sequence: int = 0,
    exporter: int = 3,
    trace_type: int = TIMED,
    max_nodes: int = 4,
    overflow: bool = False,
    export: tuple[int, int] = (20, 0),
) -> bytes:
    """A report as the decap node sends it: header, the IOAM option, inner IPv6 + ports."""
    trace = preallocated_trace(trace_type, max_nodes, NS, nodes)
    trace.O = int(overflow)
    inner = bytes(IPv6(src=SRC, dst=DST, nh=17) / UDP(sport=4242, dport=4791))[:44]
    return bytes(
        TraceReport(
            node_id=exporter,
            flags=0x80 if overflow else 0,
            seconds=export[0],
            nanoseconds=export[1],
            sequence=sequence,
            body=bytes(IOAM(data=trace)) + inner,
        )
    )


THREE_HOPS = [node(1, 10, 500), node(2, 10, 20_500, 900), node(3, 11, 100, 1100)]


# -- decoding --------------------------------------------------------------------------


def test_report_decodes_to_path_flow_and_header_fields() -> None:
    record = decode_report(report(THREE_HOPS, sequence=41, overflow=True), received_at=5.0)
    assert record.path == (1, 2, 3)
    assert (record.exporter, record.sequence, record.overflow) == (3, 41, True)
    assert (record.namespace_id, record.trace_type, record.received_at) == (NS, TIMED, 5.0)
    assert [n.hop_lim for n in record.nodes] == [63, 62, 61]
    assert record.flow is not None
    assert (record.flow.src, record.flow.dst, record.flow.src_port) == (SRC, DST, 4242)
    assert record.export_time_ns == 20 * 10**9


def test_hop_delays_are_timestamp_differences_in_ns() -> None:
    record = decode_report(report(THREE_HOPS))
    assert record.timestamps_ns == (10 * 10**9 + 500, 10 * 10**9 + 20_500, 11 * 10**9 + 100)
    # 20 us from node 1 to 2; node 2 at 10 s + 20.5 us to node 3 at 11 s + 0.1 us
    assert record.hop_delays_ns == (20_000, 10**9 - 20_400)
    assert record.transit_delays_ns == (700, 900, 1100)
    assert record.end_to_end_ns == 10 * 10**9 - 500  # export at 20 s


def test_unsynchronised_clocks_give_a_negative_delay_as_measured() -> None:
    record = decode_report(report([node(1, 50, 0), node(2, 3, 0)]))
    assert record.hop_delays_ns == (-47 * 10**9,)


def test_missing_timestamps_give_no_delay() -> None:
    nodes = [IOAMNode(hop_lim=9, node_id=7), IOAMNode(hop_lim=8, node_id=8)]
    record = decode_report(report(nodes, trace_type=0x800000))
    assert record.path == (7, 8)
    assert record.hop_delays_ns == (None,)
    assert record.transit_delays_ns == (None, None)


def test_empty_trace_has_an_empty_path() -> None:
    record = decode_report(report([]))
    assert record.path == () and record.hop_delays_ns == ()


# -- sequence gaps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequences", "lost", "late", "restarts"),
    [
        ([5, 6, 7], 0, 0, 0),
        ([5, 6, 9], 2, 0, 0),
        ([5, 9, 7], 3, 1, 0),
        ([2**32 - 2, 2**32 - 1, 1], 1, 0, 0),  # wraps: 0 missing
        ([900_000, 0, 1], 0, 0, 1),  # the exporter restarted
    ],
    ids=["in_order", "gap", "late", "wrap", "restart"],
)
def test_sequence_gaps(sequences: list[int], lost: int, late: int, restarts: int) -> None:
    tracker = SequenceTracker()
    for seq in sequences:
        tracker.observe(3, seq)
    state = tracker.exporters[3]
    assert (state.lost, state.late, state.restarts, state.received) == (
        lost,
        late,
        restarts,
        len(sequences),
    )


def test_sequences_are_per_exporter() -> None:
    collector = TraceCollector()
    for exporter, seq in [(3, 0), (4, 100), (3, 1), (4, 104), (3, 2)]:
        collector.handle_datagram(report(THREE_HOPS, exporter=exporter, sequence=seq))
    assert collector.sequences.exporters[3].lost == 0
    assert collector.sequences.exporters[4].lost == 3
    assert collector.sequences.lost == 3


# -- malformed datagrams -----------------------------------------------------------------


def _bad_option_type() -> bytes:
    good = bytearray(report(THREE_HOPS))
    good[20] = 0x11
    return bytes(good)


def _bad_nodelen() -> bytes:
    trace = preallocated_trace(0x800000, 2, NS, [IOAMNode(hop_lim=1, node_id=1)])
    trace.nodelen = 2
    return bytes(TraceReport(body=bytes(IOAM(data=trace))))


def _remaining_beyond_data() -> bytes:
    trace = IOAMTrace(namespace_id=NS, trace_type=0x800000, nodelen=1, remlen=9, node_data=bytes(8))
    return bytes(TraceReport(body=bytes(IOAM(data=trace))))


def _dex_option() -> bytes:
    body = bytes(IOAM(ioam_type=4, data=IOAMTrace(trace_type=0x800000)))
    return bytes(TraceReport(body=body))


MALFORMED: dict[str, Callable[[], bytes]] = {
    "short": lambda: b"\x11\x00",
    "version": lambda: bytes([0x21]) + report(THREE_HOPS)[1:],
    "type": lambda: bytes([0x12]) + report(THREE_HOPS)[1:],
    "option": lambda: report(THREE_HOPS)[:20] + b"\x31\xff\x00",
    "option_type": _bad_option_type,
    "dex": _dex_option,
    "trace_type": lambda: bytes(
        TraceReport(
            body=bytes(IOAM(data=IOAMTrace(trace_type=0x800002, nodelen=1, node_data=bytes(4))))
        )
    ),
    "nodelen": _bad_nodelen,
    "remaining_len": _remaining_beyond_data,
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_datagram_is_counted_not_raised(kind: str) -> None:
    collector = TraceCollector()
    assert collector.handle_datagram(MALFORMED[kind]()) is None
    assert collector.stats.datagrams == 1 and collector.stats.reports == 0
    assert sum(collector.stats.malformed.values()) == 1
    with pytest.raises(MalformedReport):
        decode_report(MALFORMED[kind]())
    # and the collector goes on
    assert collector.handle_datagram(report(THREE_HOPS)) is not None
    assert collector.stats.reports == 1


def test_random_garbage_never_raises() -> None:
    import random

    rng = random.Random(7)
    collector = TraceCollector()
    for _ in range(300):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        collector.handle_datagram(data)
    # a few random datagrams may pass every check; the rest are counted by reason
    assert collector.stats.datagrams == 300
    assert collector.stats.reports + sum(collector.stats.malformed.values()) == 300
    assert sum(collector.stats.malformed.values()) > 250


def test_malformed_reasons_are_distinguished() -> None:
    collector = TraceCollector()
    for kind in ("short", "short", "version", "nodelen"):
        collector.handle_datagram(MALFORMED[kind]())
    assert collector.stats.malformed == {"short": 2, "version": 1, "trace": 1}


# -- the UDP socket ----------------------------------------------------------------------


def test_reports_arrive_over_a_real_udp_socket() -> None:
    async def scenario() -> TraceCollector:
        collector = TraceCollector()
        transport, (host, port) = await listen(collector, "127.0.0.1", 0)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for seq in (0, 1, 3):
                    sender.sendto(report(THREE_HOPS, sequence=seq), (host, port))
                sender.sendto(b"not a report but plain text", (host, port))
            for _ in range(100):  # at most 2 s
                if collector.stats.datagrams == 4:
                    break
                await asyncio.sleep(0.02)
        finally:
            transport.close()
        return collector

    collector = asyncio.run(scenario())
    assert collector.stats.datagrams == 4
    assert collector.stats.reports == 3
    assert collector.stats.malformed == {"version": 1}
    assert collector.sequences.lost == 1
    latest = next(iter(collector.latest.values()))
    assert latest.path == (1, 2, 3) and latest.sequence == 3


# -- alternate marking -------------------------------------------------------------------

FLOW = 77
PERIOD_LOG2 = 20  # T = 1.048576 s, guard T/2


class FakeSwitch:
    """Holds ``altmark_colors`` cells; ``fail`` makes the next read raise."""

    def __init__(self) -> None:
        self.cells: dict[int, fy.P4CounterData] = {}
        self.fail = False
        self.reads = 0

    def count(self, flow_mon_id: int, colour: int, packets: int, size: int = 100) -> None:
        index = altmark_index(flow_mon_id, colour)
        old = self.cells.get(index, fy.P4CounterData())
        self.cells[index] = fy.P4CounterData(
            packet_count=old.packet_count + packets, byte_count=old.byte_count + packets * size
        )

    async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
        assert counter == ALTMARK_COUNTER
        self.reads += 1
        if self.fail:
            self.fail = False
            raise ConnectionError("switch down")
        return dict(self.cells)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_monitor(
    names: tuple[str, ...] = ("a", "b", "c"),
    sinks: list[Callable[[AltmarkBlock], None]] | None = None,
) -> tuple[AltmarkMonitor, dict[str, FakeSwitch], Clock]:
    switches = {n: FakeSwitch() for n in names}
    clock = Clock()
    monitor = AltmarkMonitor(
        switches, [FLOW], PERIOD_LOG2, clock=clock, wall_clock=lambda: 1000.0, sinks=sinks
    )
    return monitor, switches, clock


def send(switches: dict[str, FakeSwitch], colour: int, counts: dict[str, int]) -> None:
    for name, packets in counts.items():
        switches[name].count(FLOW, colour, packets)


def poll_at(monitor: AltmarkMonitor, clock: Clock, t: float) -> list[AltmarkBlock]:
    clock.now = t
    return asyncio.run(monitor.poll_once())


def test_block_loss_with_injected_loss_between_b_and_c() -> None:
    monitor, sw, clock = make_monitor()
    assert poll_at(monitor, clock, 0.0) == []  # all zero: exact baseline
    assert monitor.settled  # nothing counted, nothing open
    send(sw, 0, {"a": 100, "b": 100, "c": 97})  # 3 lost between b and c
    assert poll_at(monitor, clock, 0.3) == []
    assert not monitor.settled  # colour 0's packets are in no finished block yet
    send(sw, 1, {"a": 40, "b": 39, "c": 39})  # the colour switched; 1 lost a -> b
    assert poll_at(monitor, clock, 1.2) == []  # switch seen
    assert poll_at(monitor, clock, 1.5) == []  # guard (T/2 = 0.524 s) not over
    (block,) = poll_at(monitor, clock, 1.75)
    assert (block.flow_mon_id, block.colour, block.number) == (FLOW, 0, 1)
    assert block.packets == {"a": 100, "b": 100, "c": 97}
    assert block.octets == {"a": 10_000, "b": 10_000, "c": 9_700}
    losses = {(s.upstream, s.downstream, s.end_to_end): (s.sent, s.lost) for s in block.segments()}
    assert losses == {
        ("a", "b", False): (100, 0),
        ("b", "c", False): (100, 3),
        ("a", "c", True): (100, 3),
    }
    assert block.segments()[1].ratio == pytest.approx(0.03)
    # colour 1 then stays idle: its block ends one period after its last growth (+ guard)
    assert poll_at(monitor, clock, 2.6) == []  # 1.2 + T + T/2 = 2.77
    assert not monitor.settled
    (second,) = poll_at(monitor, clock, 2.8)
    assert monitor.settled  # every counted packet is in block 1 or 2
    assert (second.colour, second.number, second.packets) == (1, 2, {"a": 40, "b": 39, "c": 39})
    assert [s.lost for s in second.segments()] == [1, 0, 1]


def test_consecutive_blocks_of_one_colour_are_deltas() -> None:
    monitor, sw, clock = make_monitor(("a", "b"))
    poll_at(monitor, clock, 0.0)
    t = 0.0
    blocks = []
    for cycle, (sent, got) in enumerate([(10, 10), (20, 18), (5, 5)]):
        colour = cycle % 2
        send(sw, colour, {"a": sent, "b": got})
        for _ in range(8):  # bounded: 8 polls of 0.25 s per period
            t += 0.25
            blocks += poll_at(monitor, clock, t)
    t += 3.0
    blocks += poll_at(monitor, clock, t)
    assert [(b.colour, b.packets["a"], b.packets["b"]) for b in blocks] == [
        (0, 10, 10),
        (1, 20, 18),
        (0, 5, 5),
    ]


def test_late_growth_of_the_old_colour_merges_the_blocks() -> None:
    monitor, sw, clock = make_monitor(("a", "b"))
    poll_at(monitor, clock, 0.0)
    send(sw, 0, {"a": 10, "b": 9})
    poll_at(monitor, clock, 0.2)
    send(sw, 1, {"a": 5, "b": 5})
    poll_at(monitor, clock, 0.4)  # switch seen
    send(sw, 0, {"a": 3, "b": 3})  # colour 0 again before the guard: not finished
    assert poll_at(monitor, clock, 0.8) == []
    assert poll_at(monitor, clock, 1.3) == []
    blocks = poll_at(monitor, clock, 0.8 + 1.6)
    zero = [b for b in blocks if b.colour == 0]
    assert len(zero) == 1 and zero[0].packets == {"a": 13, "b": 12}


def test_monitor_started_mid_block_only_takes_a_baseline() -> None:
    monitor, sw, clock = make_monitor(("a", "b"))
    send(sw, 0, {"a": 50, "b": 48})  # in flight when the monitor starts
    poll_at(monitor, clock, 0.0)
    send(sw, 1, {"a": 7, "b": 7})
    poll_at(monitor, clock, 0.3)
    assert poll_at(monitor, clock, 1.0) == []  # colour 0 finished: baseline only
    send(sw, 0, {"a": 30, "b": 29})
    poll_at(monitor, clock, 1.5)
    blocks = poll_at(monitor, clock, 2.2)
    blocks += poll_at(monitor, clock, 4.0)
    by_colour = {b.colour: b.packets for b in blocks}
    # colour 0's first block was partial (never emitted); colour 1 had never been counted
    assert by_colour == {0: {"a": 30, "b": 29}, 1: {"a": 7, "b": 7}}
    assert len(blocks) == 2


def test_a_failed_read_closes_no_block_and_is_counted() -> None:
    seen: list[AltmarkBlock] = []
    monitor, sw, clock = make_monitor(("a", "b"), sinks=[seen.append])
    poll_at(monitor, clock, 0.0)
    send(sw, 0, {"a": 4, "b": 4})
    poll_at(monitor, clock, 0.2)
    send(sw, 1, {"a": 1, "b": 1})
    poll_at(monitor, clock, 0.4)
    sw["b"].fail = True
    assert poll_at(monitor, clock, 1.0) == []
    assert monitor.poll_errors == {"a": 0, "b": 1}
    assert [b.packets for b in poll_at(monitor, clock, 1.1)] == [{"a": 4, "b": 4}]
    assert seen == list(monitor.blocks) and monitor.latest[FLOW].packets == {"a": 4, "b": 4}


def test_reference_is_read_last() -> None:
    order: list[str] = []

    class Recording(FakeSwitch):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
            order.append(self.name)
            return await super().read_counters(counter)

    monitor = AltmarkMonitor({n: Recording(n) for n in "xyz"}, [FLOW], PERIOD_LOG2)
    asyncio.run(monitor.poll_once())
    assert order == ["y", "z", "x"]


def test_monitor_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one node"):
        AltmarkMonitor({}, [FLOW], 10)
    with pytest.raises(ValueError, match="period_log2_us"):
        AltmarkMonitor({"a": FakeSwitch()}, [FLOW], 48)


# -- exports -----------------------------------------------------------------------------


def sample_block(lost: int = 3) -> AltmarkBlock:
    return AltmarkBlock(
        flow_mon_id=FLOW,
        colour=1,
        number=4,
        finished_at=1234.5,
        packets={"a": 100, "b": 100, "c": 100 - lost},
        octets={"a": 1, "b": 1, "c": 1},
    )


def test_csv_rows(tmp_path: Path) -> None:
    with CsvExport(tmp_path, names={1: "gz", 2: "sh", 3: "bj"}) as out:
        collector = TraceCollector([out.on_trace])
        collector.handle_datagram(report(THREE_HOPS, sequence=8), received_at=99.5)
        collector.handle_datagram(report(THREE_HOPS, sequence=10), received_at=100.0)
        out.on_block(sample_block())
    traces = list(csv.DictReader((tmp_path / "traces.csv").open()))
    assert len(traces) == 2
    first, second = traces
    assert first["path"] == "gz;sh;bj" and first["exporter"] == "bj"
    assert first["hop_delays_ns"] == f"20000;{10**9 - 20400}"
    assert first["transit_delays_ns"] == "700;900;1100"
    assert (first["src"], first["dst"], first["dst_port"]) == (SRC, DST, "4791")
    assert (first["sequence"], first["lost_before"], second["lost_before"]) == ("8", "0", "1")
    assert first["received_at"] == "99.500000"
    blocks = list(csv.DictReader((tmp_path / "altmark.csv").open()))
    assert [(r["from_node"], r["to_node"], r["end_to_end"], r["lost"]) for r in blocks] == [
        ("a", "b", "0", "0"),
        ("b", "c", "0", "3"),
        ("a", "c", "1", "3"),
    ]
    assert blocks[1]["loss_ratio"] == "0.030000" and blocks[0]["block"] == "4"
    # reopening appends without a second header
    with CsvExport(tmp_path) as again:
        again.on_block(sample_block(0))
    lines = (tmp_path / "altmark.csv").read_text().splitlines()
    assert len(lines) == 1 + 3 + 3 and lines[0].startswith("finished_at,")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_exposition_has_the_values() -> None:
    prom = PrometheusExport(names={1: "gz"})
    collector = TraceCollector([prom.on_trace])
    for seq in (0, 1, 4):
        collector.handle_datagram(report(THREE_HOPS, sequence=seq))
    collector.handle_datagram(b"junk")
    prom.on_block(sample_block(3))
    prom.on_block(sample_block(2))
    prom.sync(collector, None)
    prom.sync(collector, None)  # idempotent
    values = samples(prom.exposition())
    assert values[("icpn_ifit_reports_total", (("exporter", "3"),))] == 3
    assert values[("icpn_ifit_reports_lost_total", (("exporter", "3"),))] == 2
    assert values[("icpn_ifit_reports_malformed_total", (("reason", "short"),))] == 1
    hop = (("from_node", "gz"), ("to_node", "2"))
    assert values[("icpn_ifit_hop_delay_seconds_count", hop)] == 3
    assert values[("icpn_ifit_hop_delay_seconds_sum", hop)] == pytest.approx(3 * 20e-6)
    assert values[("icpn_ifit_hop_delay_last_seconds", hop)] == pytest.approx(20e-6)
    assert values[("icpn_ifit_transit_delay_seconds_count", (("node", "3"),))] == 3
    seg = (("flow_mon_id", "77"), ("from_node", "b"), ("to_node", "c"))
    assert values[("icpn_altmark_segment_loss_packets", seg)] == 2  # the latest block
    assert values[("icpn_altmark_segment_lost_packets_total", seg)] == 5  # both blocks
    assert values[("icpn_altmark_segment_loss_ratio", seg)] == pytest.approx(0.02)
    assert values[("icpn_altmark_blocks_total", (("flow_mon_id", "77"),))] == 2
    e2e = (("flow_mon_id", "77"), ("from_node", "a"), ("to_node", "c"))
    assert values[("icpn_altmark_segment_loss_packets", e2e)] == 2


def test_live_view_shows_path_delays_and_loss() -> None:
    monitor = make_monitor()[0]
    monitor.latest[FLOW] = sample_block(3)
    collector = TraceCollector()
    collector.handle_datagram(report(THREE_HOPS))
    console = Console(record=True, width=250)
    console.print(live_view(collector, monitor, {1: "gz"}))
    text = console.export_text()
    assert "gz → 2 → 3" in text
    assert "20.0 999979.6" in text  # hop delays in us
    assert "b→c: 3 (3.00%)" in text
    assert "reports 1, lost 0, malformed 0" in text


# -- the service: socket, polling, CSV and Prometheus together ---------------------------


def test_run_collector_end_to_end_with_a_fake_network(tmp_path: Path) -> None:
    switches = {"a": FakeSwitch(), "b": FakeSwitch()}
    port = free_tcp_port()
    fetched: list[str] = []

    async def traffic(address: tuple[str, int]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for seq in (0, 2):
                sender.sendto(report(THREE_HOPS, sequence=seq), address)
        send(switches, 0, {"a": 6, "b": 5})
        await asyncio.sleep(0.15)
        send(switches, 1, {"a": 2, "b": 2})
        await asyncio.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            fetched.append(resp.read().decode())

    async def scenario() -> None:
        config = CollectorConfig(
            listen=("127.0.0.1", 0),
            flow_mon_ids=[FLOW],
            period_log2_us=17,  # 131 ms
            poll_interval_s=0.03,
            csv_dir=tmp_path,
            prometheus_port=port,
            prometheus_addr="127.0.0.1",
            duration_s=1.2,
        )
        tasks: list[asyncio.Task[None]] = []

        def started(c: object) -> None:
            address = getattr(c, "address", None)
            assert address is not None
            tasks.append(asyncio.ensure_future(traffic(address)))

        collector = await run_collector(config, switches, on_started=started)
        await asyncio.gather(*tasks)
        assert collector.traces.stats.reports == 2 and collector.traces.sequences.lost == 1
        assert collector.monitor is not None
        assert [b.packets for b in collector.monitor.blocks] == [
            {"a": 6, "b": 5},
            {"a": 2, "b": 2},
        ]

    asyncio.run(scenario())
    rows = list(csv.DictReader((tmp_path / "altmark.csv").open()))
    assert [(r["colour"], r["lost"]) for r in rows if r["end_to_end"] == "0"] == [
        ("0", "1"),
        ("1", "0"),
    ]
    assert len(list(csv.DictReader((tmp_path / "traces.csv").open()))) == 2
    assert fetched and 'icpn_ifit_reports_total{exporter="3"} 2.0' in fetched[0]
    lost_total = (
        'icpn_altmark_segment_lost_packets_total{flow_mon_id="77",from_node="a",to_node="b"}'
    )
    assert f"{lost_total} 1.0" in fetched[0]
    # the HTTP server was shut down with the collector
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1)


# -- the CLI ------------------------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "localhost"], "HOST:PORT"),
        (["--listen", "127.0.0.1:70000"], "HOST:PORT"),
        (["--listen", "::1:5000"], "brackets"),
        (["--listen", "[nope]:5000"], "not an IPv6 address"),
        (["--switch", "s1=127.0.0.1:9559"], "no FlowMonID"),
        (["--switch", "s1"], "NAME=HOST:PORT"),
        (["--switch", "s1=127.0.0.1:9559@x", "--flow-mon-id", "1"], "device id"),
        (["--path", "s9", "--switch", "s1=127.0.0.1:1", "--flow-mon-id", "1"], "unknown switch"),
        (["--flow-mon-id", "2000000"], "--flow-mon-id"),
        (["--period-log2-us", "48"], "--period-log2-us"),
        (["--duration", "-1"], "--duration"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_cli_bad_intent_names_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "intent.yaml"
    bad.write_text("switches: {s1: {grpc: nowhere}}\n")
    result = runner.invoke(app, ["--intent", str(bad), "--duration", "0"])
    assert result.exit_code == 2
    assert "bad intent" in result.output and "intent.yaml" in result.output


def test_cli_port_in_use_fails_with_exit_1() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["--listen", f"127.0.0.1:{port}", "--duration", "0.1"])
    assert result.exit_code == 1
    assert "error" in result.output


def test_cli_bounded_run_writes_csv_headers(tmp_path: Path) -> None:
    started = time.monotonic()
    result = runner.invoke(
        app, ["--listen", "127.0.0.1:0", "--duration", "0.3", "--csv", str(tmp_path), "--watch"]
    )
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 10
    assert "reports 0, lost 0, malformed 0, altmark blocks 0" in result.output
    assert (tmp_path / "traces.csv").read_text().startswith("received_at,exporter,")
    assert (tmp_path / "altmark.csv").read_text().startswith("finished_at,flow_mon_id,")


def test_cli_unreachable_switch_fails_with_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("icpn.collector.service.CONNECT_TIMEOUT_S", 0.5)
    port = free_tcp_port()  # nothing listens there
    result = runner.invoke(
        app,
        [
            "--listen",
            "127.0.0.1:0",
            "--switch",
            f"s1=127.0.0.1:{port}",
            "--flow-mon-id",
            "5",
            "--duration",
            "0.2",
        ],
    )
    assert result.exit_code == 1, result.output
    assert "error" in result.output


def test_default_port_is_the_report_port() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert str(REPORT_UDP_PORT) in result.output


INTENT = """\
switches:
  s1: {grpc: "127.0.0.1:50001", router_mac: "00:00:00:00:aa:01", sid: "fc00:1::1",
       ioam_node_id: 1}
  s2: {grpc: "127.0.0.1:50002", device_id: 3, router_mac: "00:00:00:00:aa:02",
       sid: "fc00:2::1", ioam_node_id: 2}
  s3: {grpc: "127.0.0.1:50003", router_mac: "00:00:00:00:aa:03", sid: "fc00:3::1",
       ioam_node_id: 3}
telemetry:
  - name: training
    altmark: {flow_mon_id: 77, period_log2_us: 17}
"""


class CountsLater(FakeSwitch):
    """Zero at the first read; then ``packets`` of ``flow``, colour 0, have passed."""

    def __init__(self, packets: int, flow: int = FLOW) -> None:
        super().__init__()
        self.packets = packets
        self.flow = flow

    async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
        if self.reads == 1:
            self.count(self.flow, 0, self.packets)
        return await super().read_counters(counter)


def test_cli_polls_the_intent_switches_in_path_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib
    from collections.abc import AsyncIterator

    asked: list[dict[str, tuple[str, int]]] = []

    @contextlib.asynccontextmanager
    async def fake_connect(
        switches: dict[str, tuple[str, int]], tofino: object = None
    ) -> AsyncIterator[dict[str, FakeSwitch]]:
        asked.append(dict(switches))
        assert not tofino  # BMv2 switches only: read over P4Runtime
        yield {"s2": CountsLater(10), "s3": CountsLater(9)}

    monkeypatch.setattr("icpn.collector.cli.connect_readers", fake_connect)
    intent = tmp_path / "intent.yaml"
    intent.write_text(INTENT)
    args = ["--intent", str(intent), "--path", "s2,s3", "--listen", "127.0.0.1:0"]
    args += ["--poll-interval", "0.03", "--duration", "0.8", "--csv", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert asked == [{"s2": ("127.0.0.1:50002", 3), "s3": ("127.0.0.1:50003", 0)}]
    assert "altmark blocks 1" in result.output
    rows = list(csv.DictReader((tmp_path / "altmark.csv").open()))
    assert [(r["flow_mon_id"], r["from_node"], r["to_node"], r["lost"]) for r in rows] == [
        ("77", "s2", "s3", "1"),
        ("77", "s2", "s3", "1"),  # the end-to-end row (two nodes: the same segment)
    ]
    assert [r["end_to_end"] for r in rows] == ["0", "1"]
