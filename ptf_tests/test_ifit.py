"""PTF tests for IFIT: alternate marking (insertion, colours, counters), the IOAM
pre-allocated trace (fill, overflow, namespaces, malformed traces), ECN, and telemetry
stripped at the decapsulating node."""

from __future__ import annotations

import itertools
import time

import pytest
from ptf import testutils
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from icpn.constants import REPORT_UDP_PORT, DropReason, PortRole
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.ifit import (
    ALTMARK_COUNTER,
    AltMarking,
    IoamTracing,
    altmark_index,
    collector_session,
    ecn_threshold,
    ioam_node,
    list_flow_mon_id,
    telemetry_profile,
    trace_export,
    trace_report,
)
from icpn.features.routing import DROP_COUNTER, my_station, route
from icpn.features.srv6 import SegmentList, end_dt6, sr_policy
from icpn.hashing import sr_list_member
from icpn.packets import (
    APN6,
    FLAG_ALTMARK,
    FLAG_COLOUR,
    IOAM,
    AltMark,
    IOAMNode,
    IOAMTrace,
    TraceReport,
    h_encaps,
    preallocated_trace,
    rocev2_write,
)
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, ROUTER_MAC, next_hop, routed, to_router
from ptf_tests.test_srv6 import APN_TRAINING, DST, HEADEND, PATH, TEMPLATE, encapsulated, udp_to

NAMESPACE = 0x10
NODE_ID = 42
FLOW = 77


def with_telemetry(
    *options: Packet, dst: str = DST, hlim: int = 64, payload: bytes = b"t"
) -> Packet:
    return to_router(
        IPv6(src=HOST_SRC, dst=dst, hlim=hlim)
        / IPv6ExtHdrHopByHop(options=list(options))
        / UDP(sport=3, dport=4)
        / Raw(payload)
    )


class IfitTest(P4RuntimeTest):
    def colour_count(self, flow_mon_id: int, colour: int) -> int:
        return self.counter_packets(ALTMARK_COUNTER, altmark_index(flow_mon_id, colour))

    def setup_transit(self) -> None:
        self.insert(
            [
                my_station(ROUTER_MAC),
                route("2001:db8:2::/48", [next_hop(3)]),
                ioam_node(NAMESPACE, NODE_ID),
            ]
        )

    def setup_decap(self, *extra: object) -> None:
        """This switch as the decapsulating node (End.DT6 fc00:4::d6) in NAMESPACE."""
        self.insert(
            [
                my_station(ROUTER_MAC),
                end_dt6("fc00:4::d6"),
                route("2001:db8:2::/48", [next_hop(4)]),
                ioam_node(NAMESPACE, NODE_ID),
                *extra,
            ]
        )

    @staticmethod
    def to_decap(inner: Packet, *options: Packet) -> Packet:
        """``inner`` as it arrives at the decapsulating node, under ``options``."""
        outer = h_encaps(inner, src=HEADEND, segments=["fc00:4::d6"], hbh_options=list(options))
        return to_router(IPv6(bytes(outer)))

    def forwarded_on(self, port: int) -> Packet:
        result = self.dataplane.poll(device_number=0, port_number=port, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess), f"nothing on port {port}"
        return Ether(result.packet)


class TestAltMarkHeadend(IfitTest):
    def setup_headend(
        self, *, period_log2_us: int = 40, ioam: IoamTracing | None = None, altmark: bool = True
    ) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        marking = AltMarking(FLOW, period_log2_us) if altmark else None
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{DST}/128"),
                telemetry_profile(1, altmark=marking, ioam=ioam),
                apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10, telemetry_profile=1),
                sr_policy(1, HEADEND, [SegmentList(tuple(PATH))]),
                route("fc00:2::/32", [next_hop(2)]),
            ]
        )

    def test_altmark_follows_apn6_in_the_outer_hbh(self) -> None:
        self.setup_headend(period_log2_us=40)  # 2^40 us: colour 0 for the switch's first days
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        expected = encapsulated(
            pkt, APN_TRAINING, PATH, extra_options=[AltMark(flow_mon_id=FLOW, L=0, D=1)]
        )
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)

    def test_headend_counts_what_it_marks(self) -> None:
        self.setup_headend(period_log2_us=40)
        before = self.colour_count(FLOW, 0)
        testutils.send_packet(self, 1, to_router(udp_to()), count=5)
        for _ in range(5):
            self.forwarded_on(2)
        assert self.colour_count(FLOW, 0) - before == 5

    def test_colour_alternates_every_period(self) -> None:
        self.setup_headend(period_log2_us=16)  # 65.5 ms blocks
        colours = []
        for _ in range(12):  # bounded: 12 packets over ~0.5 s
            testutils.send_packet(self, 1, to_router(udp_to()))
            colours.append(self.forwarded_on(2)[AltMark].L)
            time.sleep(0.04)
        assert set(colours) == {0, 1}, colours
        changes = sum(a != b for a, b in itertools.pairwise(colours))
        assert 2 <= changes <= 11, colours


class TestAltMarkPerList(IfitTest):
    """A profile with an entry for one segment list (``altmark.per_list``): packets the
    headend pushes onto that list carry its own FlowMonID, the others the profile's, and
    every node counts them apart: each list's loss is measured on its own."""

    def test_each_list_carries_and_counts_its_own_flow_mon_id(self) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        lists = [
            SegmentList(("fc00:2::1", "fc00:4::d6"), list_id=1),
            SegmentList(("fc00:3::1", "fc00:4::d6"), list_id=2),
        ]
        per_list = list_flow_mon_id(FLOW, 2)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{DST}/128"),
                telemetry_profile(1, altmark=AltMarking(FLOW, 40)),
                telemetry_profile(1, altmark=AltMarking(per_list, 40), list_id=2),
                apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10, telemetry_profile=1),
                sr_policy(1, HEADEND, lists),
                route("fc00:2::/32", [next_hop(2)]),
                route("fc00:3::/32", [next_hop(3)]),
            ]
        )
        before = {f: self.colour_count(f, 0) for f in (FLOW, per_list)}
        seen: dict[int, set[int]] = {2: set(), 3: set()}
        for qp in range(1, 17):  # one 5-tuple; the deep hash spreads the QPs over both lists
            testutils.send_packet(self, 1, to_router(rocev2_write(HOST_SRC, DST, dest_qp=qp)))
            result = self.dataplane.poll(device_number=0, timeout=2)
            assert isinstance(result, self.dataplane.PollSuccess), f"QP {qp} was not forwarded"
            seen[result.port].add(Ether(result.packet)[AltMark].flow_mon_id)
        testutils.verify_no_other_packets(self)
        assert seen == {2: {FLOW}, 3: {per_list}}, seen
        on_list_2 = sum(
            sr_list_member([(APN_TRAINING, 128), (qp, 24)], [1, 1]) == 1 for qp in range(1, 17)
        )
        assert self.colour_count(per_list, 0) - before[per_list] == on_list_2
        assert self.colour_count(FLOW, 0) - before[FLOW] == 16 - on_list_2


class TestIoamHeadend(TestAltMarkHeadend):
    def test_trace_follows_altmark_with_even_room(self) -> None:
        tracing = IoamTracing(NAMESPACE, 0xC00000, max_nodes=3)  # 6 words: no end padding
        self.setup_headend(ioam=tracing)
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        trace = IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE))
        expected = encapsulated(
            pkt, APN_TRAINING, PATH, extra_options=[AltMark(flow_mon_id=FLOW, L=0, D=1), trace]
        )
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)

    def test_trace_alone_with_odd_room_is_padded(self) -> None:
        self.setup_headend(ioam=IoamTracing(NAMESPACE, 0x800000, max_nodes=3), altmark=False)
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        trace = IOAM(data=preallocated_trace(0x800000, 3, NAMESPACE))
        expected = encapsulated(pkt, APN_TRAINING, PATH, extra_options=[trace])
        assert len(expected[IPv6ExtHdrHopByHop]) - len(expected[IPv6ExtHdrHopByHop].payload) == 40
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)

    def test_headend_trace_starts_with_the_headend_then_the_next_hop(self) -> None:
        self.setup_headend(ioam=IoamTracing(NAMESPACE, 0xC00000, max_nodes=4))
        self.insert([ioam_node(NAMESPACE, NODE_ID)])
        testutils.send_packet(self, 1, to_router(udp_to()))
        headend_out = self.forwarded_on(2)
        (headend,) = headend_out[IOAMTrace].nodes()  # the headend's own data (issue 13, 8)
        assert (headend.node_id, headend.ingress_if, headend.egress_if) == (NODE_ID, 1, 2)
        assert headend.hop_lim == 64  # the outer header's, as it leaves
        assert headend_out[IOAMTrace].remlen == 3 * 2
        headend_out[Ether].dst = ROUTER_MAC  # the next hop is this switch again
        testutils.send_packet(self, 3, headend_out)
        transit = self.forwarded_on(2)[IOAMTrace]
        assert [(n.node_id, n.ingress_if, n.egress_if) for n in transit.nodes()] == [
            (NODE_ID, 1, 2),
            (NODE_ID, 3, 2),
        ]
        assert transit.remlen == 2 * 2
        testutils.verify_no_other_packets(self)

    def test_headend_outside_the_namespace_leaves_its_slot_free(self) -> None:
        self.setup_headend(ioam=IoamTracing(NAMESPACE, 0xC00000, max_nodes=4))
        self.insert([ioam_node(NAMESPACE + 1, NODE_ID)])  # another namespace only
        testutils.send_packet(self, 1, to_router(udp_to()))
        trace = self.forwarded_on(2)[IOAMTrace]
        assert trace.nodes() == [] and trace.remlen == 4 * 2
        testutils.verify_no_other_packets(self)


class TestAltMarkTransit(IfitTest):
    def test_counts_packets_per_flow_and_colour_and_forwards_untouched(self) -> None:
        self.setup_transit()
        before = {c: self.colour_count(1234, c) for c in (0, 1)}
        for colour, n in ((1, 4), (0, 3)):
            pkt = with_telemetry(AltMark(flow_mon_id=1234, L=colour))
            for _ in range(n):
                testutils.send_packet(self, 2, pkt)
                testutils.verify_packet(self, routed(pkt, 3), 3)
        assert self.colour_count(1234, 1) - before[1] == 4
        assert self.colour_count(1234, 0) - before[0] == 3
        testutils.verify_no_other_packets(self)


class TestIoamTrace(IfitTest):
    def test_transit_fills_its_slot_and_decrements_remaining_len(self) -> None:
        self.setup_transit()
        earlier = IOAMNode(hop_lim=64, node_id=101, ingress_if=7, egress_if=8)
        trace = preallocated_trace(0xC00000, 3, NAMESPACE, nodes=[earlier])
        pkt = with_telemetry(IOAM(data=trace), hlim=64)
        testutils.send_packet(self, 2, pkt)
        mine = IOAMNode(hop_lim=63, node_id=NODE_ID, ingress_if=2, egress_if=3)
        filled = with_telemetry(
            IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE, nodes=[earlier, mine])), hlim=64
        )
        testutils.verify_packet(self, routed(filled, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_time_delay_queue_and_wide_fields(self) -> None:
        self.setup_transit()
        trace_type = 0xFBF000  # every fillable field but namespace data (bit 5: 0x040000)
        pkt = with_telemetry(IOAM(data=preallocated_trace(trace_type, 2, NAMESPACE)))
        testutils.send_packet(self, 2, pkt)
        nodes = self.forwarded_on(3)[IOAMTrace].nodes()
        assert len(nodes) == 1
        node = nodes[0]
        assert (node.hop_lim, node.node_id, node.node_id_wide) == (63, NODE_ID, NODE_ID)
        assert (node.ingress_if, node.egress_if) == (2, 3)
        assert (node.ingress_if_wide, node.egress_if_wide) == (2, 3)
        # BMv2 counts time from its start: seconds since then, nanoseconds in microsecond steps
        assert node.ts_sec is not None and node.ts_sec < 3600
        assert node.ts_frac is not None and node.ts_frac < 10**9 and node.ts_frac % 1000 == 0
        assert node.transit_delay is not None and node.transit_delay < 10**9
        assert node.queue_depth is not None and node.queue_depth < 64
        assert node.buffer_occupancy is not None and node.buffer_occupancy < 64
        assert node.checksum_complement is None  # all ones: not supplied
        assert node.namespace_data is None and node.namespace_data_wide == 0
        testutils.verify_no_other_packets(self)

    def test_full_trace_gets_the_overflow_flag_and_nothing_else(self) -> None:
        self.setup_transit()
        full = preallocated_trace(0x800000, 1, NAMESPACE, nodes=[IOAMNode(hop_lim=9, node_id=1)])
        pkt = with_telemetry(IOAM(data=full))
        testutils.send_packet(self, 2, pkt)
        overflowed = pkt.copy()
        overflowed[IOAMTrace].O = 1
        testutils.verify_packet(self, routed(overflowed, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_other_namespace_is_left_alone(self) -> None:
        self.setup_transit()
        pkt = with_telemetry(IOAM(data=preallocated_trace(0xC00000, 2, NAMESPACE + 1)))
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(pkt, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_trace_type_we_cannot_lay_out_passes_untouched(self) -> None:
        self.setup_transit()
        opaque = IOAMTrace(
            namespace_id=NAMESPACE,
            nodelen=1,
            remlen=2,
            trace_type=0x800002,
            node_data=bytes(range(8)),
        )
        pkt = with_telemetry(IOAM(data=opaque))
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(pkt, 3), 3)
        testutils.verify_no_other_packets(self)

    @pytest.mark.parametrize(
        ("nodelen", "remlen"),
        [(2, 2), (1, 5)],  # NodeLen not what 0x800000 implies; RemainingLen beyond the data
        ids=["nodelen_mismatch", "remaining_beyond_data"],
    )
    def test_inconsistent_trace_is_dropped(self, nodelen: int, remlen: int) -> None:
        self.setup_transit()
        bad = IOAMTrace(
            namespace_id=NAMESPACE,
            nodelen=nodelen,
            remlen=remlen,
            trace_type=0x800000,
            node_data=bytes(16),
        )
        before = self.counter_packets(DROP_COUNTER, DropReason.BAD_IOAM)
        testutils.send_packet(self, 2, with_telemetry(IOAM(data=bad)))
        testutils.verify_no_other_packets(self)
        assert self.counter_packets(DROP_COUNTER, DropReason.BAD_IOAM) - before == 1


class TestEcn(IfitTest):
    @pytest.mark.parametrize(
        ("ecn_in", "ecn_out"),
        [(0b10, 0b11), (0b01, 0b11), (0b00, 0b00)],
        ids=["ect0", "ect1", "not_ect"],
    )
    def test_marked_when_queue_reaches_threshold(self, ecn_in: int, ecn_out: int) -> None:
        self.setup_transit()
        self.insert([ecn_threshold(3, 0)])  # threshold 0: every packet "congests"
        pkt = to_router(IPv6(src=HOST_SRC, dst=DST, tc=(10 << 2) | ecn_in) / UDP() / Raw(b"e"))
        testutils.send_packet(self, 2, pkt)
        expected = pkt.copy()
        expected[IPv6].tc = (10 << 2) | ecn_out
        testutils.verify_packet(self, routed(expected, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_unconfigured_port_never_marks(self) -> None:
        self.setup_transit()
        self.insert([ecn_threshold(4, 0)])
        pkt = to_router(IPv6(src=HOST_SRC, dst=DST, tc=0b10) / UDP() / Raw(b"e"))
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(pkt, 3), 3)
        testutils.verify_no_other_packets(self)


class TestDecapStripsTelemetry(IfitTest):
    def test_end_dt6_removes_apn6_altmark_and_ioam(self) -> None:
        inner = IPv6(src=HOST_SRC, dst=DST, hlim=50) / UDP(sport=7, dport=9) / Raw(b"i" * 8)
        self.setup_decap()
        pkt = self.to_decap(
            inner,
            APN6(apn_id=APN_TRAINING),
            AltMark(flow_mon_id=FLOW, L=1),
            IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE)),
        )
        before = self.colour_count(FLOW, 1)
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(to_router(inner), 4), 4)
        testutils.verify_no_other_packets(self)
        assert self.colour_count(FLOW, 1) - before == 1  # counted before it was stripped


COLLECTOR_PORT = 5
COLLECTOR = "2001:db8:c0::1"
REPORTER = "2001:db8:c0::42"


class TestTraceExport(IfitTest):
    def setup_exporting_decap(self) -> None:
        """The decapsulating node, exporting NAMESPACE's traces to COLLECTOR."""
        self.setup_decap(
            collector_session(7, COLLECTOR_PORT),
            trace_export(NAMESPACE, 7),
            trace_report(
                NAMESPACE,
                router_mac=ROUTER_MAC,
                collector_mac="00:00:00:00:c0:01",
                source=REPORTER,
                collector=COLLECTOR,
            ),
        )

    def test_decap_node_reports_the_trace_to_the_collector(self) -> None:
        self.setup_exporting_decap()
        inner = IPv6(src=HOST_SRC, dst=DST, hlim=50) / UDP(sport=4242, dport=4791) / Raw(b"x" * 300)
        earlier = IOAMNode(hop_lim=60, node_id=101, ingress_if=1, egress_if=2)
        arriving = self.to_decap(
            inner,
            APN6(apn_id=APN_TRAINING),
            IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE, [earlier])),
        )
        sequences = []
        for _ in range(2):
            testutils.send_packet(self, 2, arriving)
            testutils.verify_packet(self, routed(to_router(inner), 4), 4)
            report = self.forwarded_on(COLLECTOR_PORT)
            assert report[IPv6].src == REPORTER and report[IPv6].dst == COLLECTOR
            assert report[UDP].dport == REPORT_UDP_PORT
            checked = report.copy()
            del checked[UDP].chksum
            assert Ether(bytes(checked))[UDP].chksum == report[UDP].chksum, "bad UDP checksum"
            body = report[TraceReport]
            assert (body.version, body.type, body.node_id, body.flags) == (1, 1, NODE_ID, 0)
            nodes = body.option()[IOAMTrace].nodes()
            # The exporter's own data is the packet's: in on 2, out on 4 (where it was
            # forwarded), not the clone's port towards the collector (issue 14, part 5).
            assert [(n.node_id, n.ingress_if, n.egress_if) for n in nodes] == [
                (101, 1, 2),
                (NODE_ID, 2, 4),
            ]
            flow = body.inner_flow()
            assert (flow.src, flow.dst, flow.protocol, flow.src_port, flow.dst_port) == (
                HOST_SRC,
                DST,
                17,
                4242,
                4791,
            )
            assert len(report) < len(arriving), "payload not truncated"
            sequences.append(body.sequence)
        assert sequences[1] == sequences[0] + 1
        testutils.verify_no_other_packets(self)

    @pytest.mark.parametrize("colour", [0, 1])
    def test_report_flags_carry_the_alternate_marking_colour(self, colour: int) -> None:
        """Flags 0x40 (the packet was marked) and 0x20 (its L bit): the collector counts a
        segment list's arrivals per colour block from the reports."""
        self.setup_exporting_decap()
        inner = IPv6(src=HOST_SRC, dst=DST, hlim=50) / UDP(sport=1, dport=2) / Raw(b"c" * 40)
        arriving = self.to_decap(
            inner,
            APN6(apn_id=APN_TRAINING),
            AltMark(flow_mon_id=FLOW, L=colour),
            IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE)),
        )
        testutils.send_packet(self, 2, arriving)
        testutils.verify_packet(self, routed(to_router(inner), 4), 4)
        body = self.forwarded_on(COLLECTOR_PORT)[TraceReport]
        assert body.flags == FLAG_ALTMARK | (FLAG_COLOUR if colour else 0)
        nodes = body.option()[IOAMTrace].nodes()
        assert [(n.node_id, n.ingress_if, n.egress_if) for n in nodes] == [(NODE_ID, 2, 4)]
        testutils.verify_no_other_packets(self)

    def test_no_report_for_a_namespace_not_exported(self) -> None:
        self.setup_decap(collector_session(7, COLLECTOR_PORT), trace_export(NAMESPACE, 7))
        inner = IPv6(src=HOST_SRC, dst=DST) / UDP() / Raw(b"y")
        pkt = self.to_decap(inner, IOAM(data=preallocated_trace(0xC00000, 2, NAMESPACE + 1)))
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(to_router(inner), 4), 4)
        testutils.verify_no_other_packets(self)
