"""Interop with Linux SRv6 (seg6 / seg6local) and IOAM (ioam6) in network namespaces,
through BMv2.

    hA (2001:db8:1::10) -- port 1 [ BMv2 icpn.p4 ] port 2 -- hB (2001:db8:2::10)
                                   port 3 == port 4   (a cable: one switch, two hops)

1. Linux hA encapsulates (seg6 encap, segments fc00:a::1, fc00:b::d6); BMv2 runs End for
   fc00:a::1, sends the packet round the cable, runs End.DT6 for fc00:b::d6 and delivers the
   inner packet to hB.
2. BMv2 is the headend (H.Encaps with the APN6 Hop-by-Hop header); Linux router hB
   decapsulates with seg6local End.DT6 and delivers to hC (2001:db8:3::10) behind it.
3. BMv2 is the headend and inserts an IOAM pre-allocated trace with its own node data;
   BMv2 (End, second pass) and the Linux router hB (ioam6) fill it; hC captures the packet
   and checks the three nodes.
4. As 3, with timestamps: the controller sets BMv2's wall clock from clock probes (port 5,
   in the root namespace), the namespace's format is POSIX (what Linux writes), and the
   collector's per-hop delays across the BMv2 and Linux nodes come out non-negative.
1 and 2 are proven by ping: the echo request only arrives if the SRv6 handling on the way
is right, and the reply comes back plainly routed.
"""

from __future__ import annotations

import re
import select
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest
from scapy.utils import rdpcap

from icpn import wallclock
from icpn.collector.traces import TraceRecord
from icpn.constants import DropReason, PortRole, TimestampFormat
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.ifit import IoamTracing, ioam_node, telemetry_profile
from icpn.features.routing import DROP_COUNTER, NextHop, my_station, route
from icpn.features.srv6 import SegmentList, end, end_dt6, sr_policy
from icpn.p4rt import SwitchTarget, SyncSwitchClient
from icpn.packets import IOAMTrace
from icpn.targets import netns, veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

pytestmark = pytest.mark.bmv2

ROUTER_MAC = "00:00:00:00:aa:01"
A_ADDR, B_ADDR, C_ADDR = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:3::10"
HAIRPIN = (3, 4)


@dataclass
class Lab:
    switch: Bmv2Switch
    client: SyncSwitchClient
    a: netns.Host
    b: netns.Host
    a_mac: str
    b_mac: str

    def ping(self, count: int = 3, to: str = B_ADDR) -> tuple[int, int]:
        out = self.a.run("ping", "-6", "-c", str(count), "-i", "0.2", "-W", "2", to, check=False)
        found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert found, f"unexpected ping output: {out!r}"
        return int(found[1]), int(found[2])

    def drops(self) -> dict[str, int]:
        cells = self.client.read_counters(DROP_COUNTER)
        return {DropReason(i).name: d.packet_count for i, d in cells.items() if d.packet_count}


@pytest.fixture
def lab() -> Iterator[Lab]:
    art = build.compile_program("icpn")
    netns.reap_stale()
    a, b = netns.Host("srv6-a"), netns.Host("srv6-b")
    with Bmv2Switch("interop-srv6", Bmv2Options(num_ports=5, hairpins=(HAIRPIN,))) as sw:
        try:
            a.create()
            b.create()
            a_mac = a.attach(sw.host_interfaces[1], f"{A_ADDR}/64", "2001:db8:1::1", ROUTER_MAC)
            b_mac = b.attach(sw.host_interfaces[2], f"{B_ADDR}/64", "2001:db8:2::1", ROUTER_MAC)
            target = SwitchTarget(
                "interop", sw.grpc_address, p4info=art.p4info, p4blob=art.json, force_pipeline=True
            )
            with SyncSwitchClient(target) as client:
                client.insert(
                    [
                        my_station(ROUTER_MAC),
                        route("2001:db8:1::/64", [NextHop(1, ROUTER_MAC, a_mac)]),
                        route("2001:db8:2::/64", [NextHop(2, ROUTER_MAC, b_mac)]),
                    ]
                )
                yield Lab(sw, client, a, b, a_mac, b_mac)
        finally:
            a.delete()
            b.delete()


def test_linux_encap_through_bmv2_end_and_end_dt6(lab: Lab) -> None:
    lab.client.insert(
        [
            end("fc00:a::1"),
            # round the cable: out of port 3 addressed to ourselves, back in on port 4
            route("fc00:b::/32", [NextHop(HAIRPIN[0], ROUTER_MAC, ROUTER_MAC)]),
            end_dt6("fc00:b::d6"),
        ]
    )
    ifname = lab.switch.host_interfaces[1]
    lab.a.run(
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:2::/64",
        "encap",
        "seg6",
        "mode",
        "encap",
        "segs",
        "fc00:a::1,fc00:b::d6",
        "dev",
        ifname,
        "via",
        "2001:db8:1::1",
    )
    sent, received = lab.ping()
    assert (sent, received) == (3, 3), f"drops on the switch: {lab.drops()}"
    assert lab.drops().get("NO_ROUTE", 0) == 0


@pytest.fixture
def host_c(lab: Lab) -> Iterator[tuple[netns.Host, str, str]]:
    """hC behind hB: (host, hB's interface towards it, hC's interface)."""
    c = netns.Host("linux-c")
    c.create()
    try:
        b_if, c_if = netns.connect(lab.b, "2001:db8:3::1/64", c, f"{C_ADDR}/64", "bc")
        c.run("ip", "-6", "route", "add", "default", "via", "2001:db8:3::1", "dev", c_if)
        yield c, b_if, c_if
    finally:
        c.delete()


def test_bmv2_headend_decapsulated_by_linux_end_dt6(
    lab: Lab, host_c: tuple[netns.Host, str, str]
) -> None:
    _headend_to_linux_decap(lab, lab.switch.host_interfaces[2])


def _headend_to_linux_decap(lab: Lab, ifname: str) -> None:
    # seg6local routes act on input only in a namespace that forwards (else the kernel
    # counts the packet in Ip6InAddrErrors and drops it).
    lab.b.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    lab.b.run("sysctl", "-qw", "net.ipv6.conf.all.seg6_enabled=1")
    lab.b.run("sysctl", "-qw", f"net.ipv6.conf.{ifname}.seg6_enabled=1")
    lab.b.run(
        "ip",
        "-6",
        "route",
        "add",
        "fc00:b::d6/128",
        "encap",
        "seg6local",
        "action",
        "End.DT6",
        "table",
        "254",
        "dev",
        ifname,
    )
    lab.client.insert(
        [
            port_role(1, PortRole.EDGE_UNTRUSTED),
            classifier_rule(0x00070001, priority=10, ipv6_dst=f"{C_ADDR}/128"),
            apn_policy(0x00070000, 0xFFFF0000, dscp=0, sr_policy_id=1, priority=10),
            sr_policy(1, "fc00:1::1", [SegmentList(("fc00:b::d6",))]),
            route("fc00:b::/32", [NextHop(2, ROUTER_MAC, lab.b_mac)]),
        ]
    )  # no plain route to hC: only the encapsulated request can get there
    sent, received = lab.ping(to=C_ADDR)
    assert (sent, received) == (3, 3), f"drops on the switch: {lab.drops()}"


LINUX_NODE_ID = 0xB0B
LINUX_IF_IN, LINUX_IF_OUT = 21, 22
BMV2_NODE_ID = 42
NAMESPACE = 0x10


def _traces_at_c(
    lab: Lab,
    host_c: tuple[netns.Host, str, str],
    trace_type: int,
    timestamp_format: TimestampFormat = TimestampFormat.PTP,
    extra: Sequence[object] = (),
    before_ping: Callable[[], object] | None = None,
) -> list[IOAMTrace]:
    """Scenario 3: hB a Linux ioam6 node, BMv2 headend (its own data) and End; the traces hC
    captures of three pings."""
    c, b_to_c, c_if = host_c
    b_in = lab.switch.host_interfaces[2]
    # hB: a Linux IOAM transit node for namespace 0x10 (RFC 9197 node id, interface ids).
    lab.b.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    lab.b.run("ip", "ioam", "namespace", "add", str(NAMESPACE))
    lab.b.run("sysctl", "-qw", f"net.ipv6.ioam6_id={LINUX_NODE_ID}")
    lab.b.run("sysctl", "-qw", f"net.ipv6.conf.{b_in}.ioam6_enabled=1")
    lab.b.run("sysctl", "-qw", f"net.ipv6.conf.{b_in}.ioam6_id={LINUX_IF_IN}")
    lab.b.run("sysctl", "-qw", f"net.ipv6.conf.{b_to_c}.ioam6_id={LINUX_IF_OUT}")
    # BMv2: headend for traffic to hC (trace with room for 4 nodes), End on its second pass.
    lab.client.insert(
        [
            port_role(1, PortRole.EDGE_UNTRUSTED),
            classifier_rule(0x00070001, priority=10, ipv6_dst=f"{C_ADDR}/128"),
            telemetry_profile(1, ioam=IoamTracing(NAMESPACE, trace_type, max_nodes=4)),
            apn_policy(
                0x00070000, 0xFFFF0000, dscp=0, sr_policy_id=1, priority=10, telemetry_profile=1
            ),
            sr_policy(1, "fc00:1::1", [SegmentList(("fc00:a::1", C_ADDR))]),
            route("fc00:a::/32", [NextHop(HAIRPIN[0], ROUTER_MAC, ROUTER_MAC)]),
            end("fc00:a::1"),
            route("2001:db8:3::/64", [NextHop(2, ROUTER_MAC, lab.b_mac)]),
            ioam_node(NAMESPACE, BMV2_NODE_ID, timestamp_format=timestamp_format),
            *extra,
        ]
    )
    if before_ping is not None:
        before_ping()
    pcap = lab.switch.log_dir / "hC.pcap"
    capture = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            c.netns,
            "tshark",
            "-q",
            "-i",
            c_if,
            "-a",
            "duration:6",
            "-w",
            str(pcap),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2)  # tshark needs a moment before it captures
        lab.ping(count=3, to=C_ADDR)  # no reply expected: hC gets an SRv6 packet for itself
    finally:
        capture.wait(timeout=20)
    traces = [p[IOAMTrace] for p in rdpcap(str(pcap)) if IOAMTrace in p]
    assert len(traces) == 3, f"expected 3 traced packets at hC, got {len(traces)}"
    return traces


def test_ioam_trace_from_bmv2_headend_filled_by_bmv2_and_linux(
    lab: Lab, host_c: tuple[netns.Host, str, str]
) -> None:
    for trace in _traces_at_c(lab, host_c, 0xC00000):
        headend, bmv2, linux = trace.nodes()  # path order: headend, BMv2 End, then Linux
        assert (headend.node_id, headend.ingress_if, headend.egress_if) == (
            BMV2_NODE_ID,
            1,
            HAIRPIN[0],
        )
        assert (bmv2.node_id, bmv2.ingress_if, bmv2.egress_if) == (BMV2_NODE_ID, HAIRPIN[1], 2)
        assert (linux.node_id, linux.ingress_if, linux.egress_if) == (
            LINUX_NODE_ID,
            LINUX_IF_IN,
            LINUX_IF_OUT,
        )
        assert linux.hop_lim is not None and bmv2.hop_lim is not None
        assert linux.hop_lim < bmv2.hop_lim  # one more hop spent by the time Linux wrote
        assert trace.remlen == 1 * 2 and trace.O == 0


PROBE_PORT = 5
PROBE_NAMESPACE = 0x77
PROBE_DST = "2001:db8:c10c::1"
PROBE_MAC = "02:00:00:00:c1:0c"
PACKET_OUTGOING = 4  # sockaddr_ll pkttype of frames this host sent itself
#: Bound on one hop's delay here (a veth and BMv2's pipeline): far above what is seen.
MAX_HOP_DELAY_NS = 100_000_000


def _synchronise(lab: Lab) -> int:
    """Set the switch's wall clock from clock probes sent and received on port 5's host
    interface (root namespace: the same system clock hB's kernel stamps with)."""
    ifname = lab.switch.host_interfaces[PROBE_PORT]
    with veth.capture_socket(ifname) as sock:

        def receive(timeout: float) -> bytes | None:
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    return None
                data, address = sock.recvfrom(65535)
                if address[2] != PACKET_OUTGOING:
                    return data
            return None

        def frame_for(sequence: int) -> bytes:
            return wallclock.probe_frame(
                PROBE_NAMESPACE,
                src_mac=PROBE_MAC,
                dst_mac=ROUTER_MAC,
                src="2001:db8:c10c::2",
                dst=PROBE_DST,
                sequence=sequence,
            )

        def send(frame: bytes) -> None:
            sock.send(frame)

        samples = wallclock.measure(send, receive, frame_for, TimestampFormat.PTP)
    assert len(samples) >= 8, f"only {len(samples)} clock probes came back"
    start = wallclock.correction_ns(samples)
    lab.client.modify([wallclock.wall_clock(start)])
    return start


def test_per_hop_delays_across_bmv2_and_linux_nodes(
    lab: Lab, host_c: tuple[netns.Host, str, str]
) -> None:
    probes = [
        ioam_node(PROBE_NAMESPACE, BMV2_NODE_ID),
        route(f"{PROBE_DST}/128", [NextHop(PROBE_PORT, ROUTER_MAC, PROBE_MAC)]),
    ]
    traces = _traces_at_c(
        lab,
        host_c,
        0xF00000,  # node id, interfaces, timestamp seconds and fraction
        TimestampFormat.POSIX,  # the namespace's format: what Linux ioam6 writes
        extra=probes,
        before_ping=lambda: _synchronise(lab),
    )
    for trace in traces:
        record = TraceRecord(
            received_at=time.time(),
            exporter=0,
            sequence=0,
            export_time_ns=0,
            overflow=False,
            namespace_id=NAMESPACE,
            trace_type=0xF00000,
            nodes=tuple(trace.nodes()),
            flow=None,
            timestamp_format=TimestampFormat.POSIX,
        )
        assert record.path == (BMV2_NODE_ID, BMV2_NODE_ID, LINUX_NODE_ID)
        delays = record.hop_delays_ns
        assert all(d is not None for d in delays), delays
        # headend -> End (BMv2 round the cable), End -> Linux hB (BMv2 out, veth, kernel)
        assert all(0 <= d < MAX_HOP_DELAY_NS for d in delays if d is not None), delays
        stamps = record.timestamps_ns
        assert stamps[0] is not None and stamps[-1] is not None
        assert sum(d for d in delays if d is not None) == stamps[-1] - stamps[0]
        assert abs(time.time_ns() - stamps[-1]) < 60 * 10**9  # wall clock, not uptime
