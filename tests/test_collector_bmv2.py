"""The collector against real switches: three BMv2 processes play headend (A: H.Encaps with
alternate marking and an IOAM trace), transit (B: fills the trace) and decapsulating node
(C: End.DT6, exports the trace report). The test relays frames between them through the
veths (store and forward, bursts of at most 8 — BMv2's pcap input loses long back-to-back
bursts), passes the report to the collector's UDP socket, and reads the colour counters
of all three as a backup P4Runtime client: the path decoded must be A (the headend adds its
own data), B, then C with the right ports, and every finished block must show zero loss
with all N packets accounted for."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.collector import AltmarkMonitor, TraceCollector, connect_readers, listen
from icpn.constants import REPORT_UDP_PORT, PortRole
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.ifit import (
    AltMarking,
    IoamTracing,
    collector_session,
    ioam_node,
    telemetry_profile,
    trace_export,
    trace_report,
)
from icpn.features.routing import NextHop, my_station, route
from icpn.features.srv6 import SegmentList, end_dt6, sr_policy
from icpn.p4rt import SwitchClient, SwitchTarget
from icpn.targets import veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

pytestmark = pytest.mark.bmv2

ROUTER_MAC = "00:00:00:00:aa:01"  # every switch's; the relay delivers frames to the next
HOST_MAC = "00:00:00:00:00:01"
HOST, SERVER = "2001:db8:1::10", "2001:db8:2::10"
HEADEND, DECAP_SID = "fc00:1::1", "fc00:9::d6"
APN_ID = 0x00070001
NAMESPACE = 0x10
TRACE_TYPE = 0xF80000  # node id, interfaces, timestamps, transit delay
FLOW = 321
PERIOD_LOG2_US = 19  # 524 ms colour periods; the guard (T/2) covers the relay's delay
NODE_IDS = {"a": 1, "b": 2, "c": 3}
COLLECTOR_PORT = 3
PACKETS = 24
BURST = 8
#: Bursts 300 ms apart span more than one colour period: at least two blocks.
BURST_GAP_S = 0.3
PACKET_OUTGOING = 4  # sockaddr_ll pkttype of frames the host itself sent


def entries(name: str) -> list[object]:
    nh = NextHop(2, ROUTER_MAC, ROUTER_MAC)
    common: list[object] = [my_station(ROUTER_MAC), ioam_node(NAMESPACE, NODE_IDS[name])]
    if name == "a":
        value, mask = 0x00070000, 0xFFFF0000
        return [
            *common,
            port_role(1, PortRole.EDGE_UNTRUSTED),
            classifier_rule(APN_ID, priority=10, ipv6_dst=f"{SERVER}/128"),
            telemetry_profile(
                1,
                altmark=AltMarking(FLOW, PERIOD_LOG2_US),
                ioam=IoamTracing(NAMESPACE, TRACE_TYPE, max_nodes=3),
            ),
            apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10, telemetry_profile=1),
            sr_policy(1, HEADEND, [SegmentList((DECAP_SID,))]),
            route("fc00:9::/32", [nh]),
        ]
    if name == "b":
        return [*common, route("fc00:9::/32", [nh])]
    return [
        *common,
        end_dt6(DECAP_SID),
        route("2001:db8:2::/48", [nh]),
        collector_session(7, COLLECTOR_PORT),
        trace_export(NAMESPACE, 7),
        trace_report(
            NAMESPACE,
            router_mac=ROUTER_MAC,
            collector_mac="00:00:00:00:c0:01",
            source="2001:db8:c0::3",
            collector="2001:db8:c0::1",
        ),
    ]


@dataclass
class Lab:
    switches: dict[str, Bmv2Switch]

    def port(self, name: str, port: int) -> socket.socket:
        return veth.capture_socket(self.switches[name].host_interfaces[port])


def receive(sock: socket.socket, count: int, timeout_s: float = 2.0) -> list[bytes]:
    """Up to ``count`` frames the switch sent out of this port, within ``timeout_s``."""
    frames: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(frames) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            break
        data, address = sock.recvfrom(65535)
        if address[2] != PACKET_OUTGOING:
            frames.append(data)
    return frames


@contextlib.asynccontextmanager
async def three_switches() -> AsyncIterator[Lab]:
    art = build.compile_program("icpn")
    with contextlib.ExitStack() as stack:
        switches = {
            name: stack.enter_context(
                Bmv2Switch(f"collector-{name}", Bmv2Options(num_ports=3, log_level="off"))
            )
            for name in NODE_IDS
        }
        async with contextlib.AsyncExitStack() as clients:
            for name, sw in switches.items():
                target = SwitchTarget(
                    f"ctl-{name}",
                    sw.grpc_address,
                    p4info=art.p4info,
                    p4blob=art.json,
                    force_pipeline=True,
                )
                client = await clients.enter_async_context(SwitchClient(target))
                await client.insert(entries(name))
            yield Lab(switches)


@dataclass
class Outcome:
    traces: TraceCollector
    monitor: AltmarkMonitor
    delivered: list[int]
    problems: list[str]
    readers_primary: list[bool]


async def _scenario(drop: int | None = None) -> Outcome:
    async with three_switches() as lab:
        readers_spec = {n: (sw.grpc_address, sw.device_id) for n, sw in lab.switches.items()}
        async with connect_readers(readers_spec) as readers:
            primary = [bool(getattr(r, "is_primary", True)) for r in readers.values()]
            monitor = AltmarkMonitor(readers, [FLOW], PERIOD_LOG2_US)
            traces = TraceCollector()
            transport, address = await listen(traces, "127.0.0.1", 0)
            outcome = Outcome(traces, monitor, [], [], primary)
            try:
                await monitor.poll_once()  # counters all zero: an exact baseline
                await asyncio.to_thread(
                    relay, lab, address, outcome.delivered, outcome.problems, drop
                )
                deadline = time.monotonic() + 6 * monitor.period_s + 2
                while time.monotonic() < deadline:  # until every packet is in a block
                    await monitor.poll_once()
                    if sum(b.packets.get("a", 0) for b in monitor.blocks) >= PACKETS:
                        break
                    await asyncio.sleep(monitor.suggested_interval_s)
                for _ in range(50):  # reports reach the socket within 1 s
                    if traces.stats.datagrams >= sum(outcome.delivered):
                        break
                    await asyncio.sleep(0.02)
            finally:
                transport.close()
            return outcome


@pytest.fixture(scope="module")
def outcome() -> Outcome:
    result = asyncio.run(_scenario())
    if result.problems or sum(result.delivered) != PACKETS:  # not an AssertionError (xfail)
        pytest.fail(f"relay: {result.problems}, delivered {result.delivered}")
    return result


@pytest.fixture(scope="module")
def lossy_outcome() -> Outcome:
    result = asyncio.run(_scenario(drop=BURST + 3))
    if result.problems or sum(result.delivered) != PACKETS - 1:
        pytest.fail(f"relay: {result.problems}, delivered {result.delivered}")
    return result


def test_reports_decode_to_the_path_a_b_c(outcome: Outcome) -> None:
    traces = outcome.traces
    assert traces.stats.reports == PACKETS and not traces.stats.malformed
    assert traces.sequences.lost == 0  # one report per packet, consecutive sequences
    (exporter,) = traces.sequences.exporters
    assert exporter == NODE_IDS["c"]
    (record,) = traces.latest.values()  # one flow
    assert record.path == (NODE_IDS["a"], NODE_IDS["b"], NODE_IDS["c"])
    a, b, c = record.nodes
    assert (a.ingress_if, a.egress_if, a.hop_lim) == (1, 2, 64)  # the outer header's
    assert (b.ingress_if, b.egress_if, b.hop_lim) == (1, 2, 63)
    # The exporter's egress is the packet's (port 2, towards the server), not the report's
    # towards the collector (issue 14 part 5).
    assert (c.ingress_if, c.egress_if) == (1, 2) and COLLECTOR_PORT != 2
    assert record.flow is not None
    assert (record.flow.src, record.flow.dst, record.flow.dst_port) == (HOST, SERVER, 9000)
    assert record.hop_delays_ns[0] is not None  # clocks of A and B differ: value not checked
    assert b.transit_delay is not None and 0 <= b.transit_delay < 10**9


def test_exporter_node_data_is_its_own(outcome: Outcome) -> None:
    (record,) = outcome.traces.latest.values()
    c = record.nodes[-1]
    assert c.ingress_if == 1
    assert c.ts_sec is not None and c.ts_frac is not None and (c.ts_sec, c.ts_frac) != (0, 0)
    assert c.transit_delay is not None and c.transit_delay < 100_000_000


def test_altmark_blocks_from_the_switches_show_no_loss(outcome: Outcome) -> None:
    monitor = outcome.monitor
    assert outcome.readers_primary == [False, False, False]  # backups: the controllers rule
    assert len(monitor.blocks) >= 2, monitor.blocks  # the bursts span a colour switch
    assert {b.colour for b in monitor.blocks} == {0, 1}
    for node in NODE_IDS:
        assert sum(b.packets[node] for b in monitor.blocks) == PACKETS, monitor.blocks
    for block in monitor.blocks:
        assert list(block.packets) == ["a", "b", "c"]
        assert [s.lost for s in block.segments()] == [0, 0, 0], block
    assert not any(monitor.poll_errors.values())


def relay(
    lab: Lab,
    collector: tuple[str, int],
    delivered: list[int],
    problems: list[str],
    drop: int | None = None,
) -> None:
    """Send PACKETS frames into A in bursts; store and forward A→B→C (losing the
    ``drop``-th frame on the B→C link, if given); hand the reports C sends towards the
    collector to the collector's UDP socket."""
    frame = bytes(
        Ether(src=HOST_MAC, dst=ROUTER_MAC)
        / IPv6(src=HOST, dst=SERVER)
        / UDP(sport=4242, dport=9000)
        / Raw(b"x" * 64)
    )
    with (
        lab.port("a", 1) as a_in,
        lab.port("a", 2) as a_out,
        lab.port("b", 1) as b_in,
        lab.port("b", 2) as b_out,
        lab.port("c", 1) as c_in,
        lab.port("c", 2) as c_out,
        lab.port("c", COLLECTOR_PORT) as c_report,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        for start in range(0, PACKETS, BURST):
            n = min(BURST, PACKETS - start)
            for _ in range(n):
                a_in.send(frame)
            hop = receive(a_out, n)
            for data in hop:
                b_in.send(data)
            hop = receive(b_out, len(hop))
            if drop is not None and start <= drop < start + len(hop):
                del hop[drop - start]
            for data in hop:
                c_in.send(data)
            inner = receive(c_out, len(hop))
            reports = receive(c_report, len(hop))
            if not (len(inner) == len(reports) == n - (len(hop) != n)):
                problems.append(f"burst at {start}: {len(inner)} out, {len(reports)} reports")
            delivered.append(len(inner))
            for data in reports:
                pkt = Ether(data)
                if UDP not in pkt or pkt[UDP].dport != REPORT_UDP_PORT:
                    problems.append(f"not a report: {pkt.summary()}")
                    continue
                payload = bytes(pkt[UDP])[8 : pkt[UDP].len]  # without any frame padding
                udp.sendto(payload, collector)
            time.sleep(BURST_GAP_S)


def test_a_frame_lost_between_b_and_c_is_found_in_its_block(lossy_outcome: Outcome) -> None:
    blocks = lossy_outcome.monitor.blocks
    totals = {n: sum(b.packets[n] for b in blocks) for n in NODE_IDS}
    assert totals == {"a": PACKETS, "b": PACKETS, "c": PACKETS - 1}, blocks
    lost = {(s.upstream, s.downstream): 0 for b in blocks for s in b.segments()}
    for block in blocks:
        for seg in block.segments():
            lost[(seg.upstream, seg.downstream)] += seg.lost
    assert lost == {("a", "b"): 0, ("b", "c"): 1, ("a", "c"): 1}
    assert sum(1 for b in blocks if any(s.lost for s in b.segments())) == 1
    # the reports only show what reached C: no sequence gap
    assert lossy_outcome.traces.stats.reports == PACKETS - 1
    assert lossy_outcome.traces.sequences.lost == 0
