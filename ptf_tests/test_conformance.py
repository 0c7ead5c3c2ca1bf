"""PTF tests for data-plane conformance (issue 13): the switch accepts what RFC 8200, RFC 8754
and RFC 9197 allow, and drops, under a reason of its own, what they forbid. Each class is one
item of the issue; the boundary lengths are tested on both sides."""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from ptf import testutils
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrSegmentRouting,
    PadN,
)
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from icpn import wallclock
from icpn.constants import (
    APN6_OPT_TYPE,
    NTP_UNIX_EPOCH_OFFSET_S,
    DropReason,
    PortRole,
    TimestampFormat,
)
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.ifit import IoamTracing, collector_session, ioam_node, trace_export, trace_report
from icpn.features.routing import my_station, route
from icpn.features.srv6 import SegmentList, end, sr_policy
from icpn.packets import APN6, IOAM, AltMark, IOAMTrace, TraceReport, preallocated_trace
from ptf_tests import test_ifit
from ptf_tests.net import HOST_SRC, ROUTER_MAC, UNKNOWN_OPT, next_hop, routed, to_router
from ptf_tests.test_ifit import FLOW, NAMESPACE, NODE_ID
from ptf_tests.test_sanity import DST, SanityTest
from ptf_tests.test_srv6 import APN_TRAINING, HEADEND, TEMPLATE, Srv6Test, encapsulated
from ptf_tests.test_srv6 import DST as SRV6_DST
from ptf_tests.test_srv6 import PATH as SRV6_PATH


def udp_packet(payload: bytes = b"conformance", **ipv6: Any) -> Packet:
    return to_router(IPv6(src=HOST_SRC, dst=DST, **ipv6) / UDP(sport=7, dport=9) / Raw(payload))


class ConformanceTest(SanityTest):
    def assert_dropped(self, pkt: Packet | bytes, reason: DropReason) -> None:
        before = self.drops(reason)
        testutils.send_packet(self, 1, pkt)
        testutils.verify_no_other_packets(self)
        assert self.drops(reason) - before == 1, f"not counted under {reason.name}"

    def assert_forwarded(self, pkt: Packet, expected: Packet, port: int = 2) -> None:
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, expected, port)
        testutils.verify_no_other_packets(self)


class TestIpv6HeaderChecks(ConformanceTest):
    """Item 2: what Linux counts in Ip6InHdrErrors and Ip6InTruncatedPkts is dropped."""

    def test_version_other_than_6_is_dropped(self) -> None:
        self.setup_routes()
        for version in (4, 0, 7, 15):
            frame = bytearray(bytes(udp_packet()))
            frame[14] = (version << 4) | (frame[14] & 0x0F)
            self.assert_dropped(bytes(frame), DropReason.BAD_IP_VERSION)
        self.check_still_forwarding()

    def test_payload_length_past_the_frame_is_dropped(self) -> None:
        self.setup_routes()
        pkt = udp_packet()
        own = len(pkt[IPv6].payload)
        self.assert_dropped(udp_packet(plen=own + 1), DropReason.PAYLOAD_BEYOND_FRAME)
        self.assert_dropped(udp_packet(plen=0xFFFF), DropReason.PAYLOAD_BEYOND_FRAME)

    def test_payload_length_exactly_the_frame_is_forwarded(self) -> None:
        self.setup_routes()
        pkt = udp_packet()
        self.assert_forwarded(pkt, routed(pkt, 2))

    def test_ethernet_padding_after_the_packet_is_forwarded(self) -> None:
        self.setup_routes()
        # A packet shorter than its frame: the rest is padding (the payload length is right).
        pkt = udp_packet(payload=b"")
        padded = Ether(bytes(pkt) + b"\x00" * 6)
        assert len(padded[IPv6].payload) > padded[IPv6].plen
        self.assert_forwarded(padded, routed(padded, 2))


class TestEncapsulationLength(Srv6Test):
    """Item 3: H.Encaps takes the outer Payload Length from the inner packet's own length and
    leaves Ethernet padding out of the tunnel."""

    def test_padded_short_packet_is_encapsulated_without_its_padding(self) -> None:
        self.setup_headend([SegmentList(tuple(SRV6_PATH))])
        inner = IPv6(src=HOST_SRC, dst=SRV6_DST, nh=59)  # 54 octets: Ethernet pads to 60
        frame = Ether(bytes(to_router(inner)) + b"\x00" * 6)
        assert len(bytes(frame)) == 60
        testutils.send_packet(self, 1, frame)
        expected = encapsulated(inner, APN_TRAINING, SRV6_PATH)
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)
        outer = expected[IPv6]
        assert outer.plen == len(bytes(outer.payload)), "expected packet is self-consistent"


class TestEncapsulationLengthWithTelemetry(test_ifit.IfitTest):
    """Item 3 with the IFIT options the headend adds after H.Encaps: the cut is made once
    every pushed header is in place."""

    def test_padding_is_left_out_under_altmark_and_a_trace(self) -> None:
        test_ifit.TestAltMarkHeadend.setup_headend(
            self,  # type: ignore[arg-type]
            ioam=IoamTracing(NAMESPACE, 0x800000, max_nodes=3),
        )
        inner = IPv6(src=HOST_SRC, dst=SRV6_DST) / UDP(sport=1, dport=2)  # 62 octets
        frame = Ether(bytes(to_router(inner)) + b"\xaa" * 20)
        testutils.send_packet(self, 1, frame)
        trace = IOAM(data=preallocated_trace(0x800000, 3, NAMESPACE))
        altmark = AltMark(flow_mon_id=FLOW, L=0, D=1)
        expected = encapsulated(inner, APN_TRAINING, SRV6_PATH, extra_options=[altmark, trace])
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)


def srh_bytes(
    segments: list[str],
    segleft: int,
    *,
    lastentry: int | None = None,
    tlvs: bytes = b"",
    hdr_ext_len: int | None = None,
    nh: int = 17,
) -> bytes:
    """An SRH (RFC 8754 2) built octet by octet, so that its fields may disagree."""
    last = len(segments) - 1 if lastentry is None else lastentry
    body = b"".join(socket.inet_pton(socket.AF_INET6, s) for s in reversed(segments)) + tlvs
    assert len(body) % 8 == 0
    length = len(body) // 8 if hdr_ext_len is None else hdr_ext_len
    return bytes([nh, length, 4, segleft, last, 0, 0, 0]) + body


def padn_tlv(total: int) -> bytes:
    """SRH PadN TLVs (RFC 8754 2.1.1.2, type 4) filling ``total`` octets: one when it fits
    (2 + at most 255), else several of 200 octets and one for the rest."""
    out = b""
    while total > 257:
        out += bytes([4, 198]) + b"\x00" * 198
        total -= 200
    return out + bytes([4, total - 2]) + b"\x00" * (total - 2)


def with_raw_srh(srh: bytes, dst: str = DST) -> Packet:
    """A UDP packet whose IPv6 header is followed by ``srh`` (Routing header, 43)."""
    return to_router(
        IPv6(src=HOST_SRC, dst=dst, nh=43) / Raw(srh + bytes(UDP(sport=7, dport=9) / Raw(b"s")))
    )


SID = "fc00:9::e"


class TestTransitSrh(ConformanceTest):
    """Item 5: a node that does not own the destination does not process the SRH (RFC 8754
    4.2): inconsistent or oversized SRHs are forwarded; at one of its SIDs they are dropped."""

    CASES: ClassVar[list[tuple[str, bytes, DropReason]]] = [
        ("segments_left_past_last_entry", srh_bytes(["fc00::1", "fc00::2"], 3), DropReason.BAD_SRH),
        (
            "hdr_ext_len_short_of_the_list",
            srh_bytes(["fc00::1", "fc00::2"], 1, lastentry=3),
            DropReason.BAD_SRH,
        ),
        (
            "more_segments_than_the_parser_processes",
            srh_bytes([f"fc00::{i + 1}" for i in range(9)], 1),
            DropReason.TOO_MANY_HEADERS,
        ),
        (
            "last_entry_255",
            srh_bytes([f"fc00::{i + 1}" for i in range(127)], 1, lastentry=255, hdr_ext_len=254),
            DropReason.BAD_SRH,
        ),
    ]

    def setup_sid(self) -> None:
        self.insert([end(SID)])

    @pytest.mark.parametrize(("case", "srh", "reason"), CASES, ids=[c[0] for c in CASES])
    def test_transit_forwards_what_it_does_not_process(
        self, case: str, srh: bytes, reason: DropReason
    ) -> None:
        self.setup_routes()
        pkt = with_raw_srh(srh)
        self.assert_forwarded(pkt, routed(pkt, 2))

    @pytest.mark.parametrize(("case", "srh", "reason"), CASES, ids=[c[0] for c in CASES])
    def test_a_sid_of_this_node_drops_it(self, case: str, srh: bytes, reason: DropReason) -> None:
        self.setup_routes()
        self.setup_sid()
        self.assert_dropped(with_raw_srh(srh, dst=SID), reason)
        self.check_still_forwarding()

    def test_a_consistent_srh_at_a_sid_is_processed(self) -> None:
        self.setup_routes()
        self.setup_sid()
        pkt = with_raw_srh(srh_bytes([SID, "fc00::1"], 1), dst=SID)
        expected = with_raw_srh(srh_bytes([SID, "fc00::1"], 0), dst="fc00::1")
        self.assert_forwarded(pkt, routed(expected, 2))


def hbh_packet(options: list[Packet]) -> Packet:
    return to_router(
        IPv6(src=HOST_SRC, dst=DST)
        / IPv6ExtHdrHopByHop(options=options)
        / UDP(sport=7, dport=9)
        / Raw(b"h")
    )


class TestParserSizes(ConformanceTest):
    """Item 1: every length the formats can express is parsed or carried (boundaries on both
    sides of the old limits: 254/255 option octets, 248/256 SRH TLV octets, 244/245 APN6
    parameter octets, a 2048-octet Hop-by-Hop header)."""

    @pytest.mark.parametrize("data_len", [0, 253, 254, 255])
    def test_hbh_option_data_up_to_255_octets(self, data_len: int) -> None:
        self.setup_routes()
        pkt = hbh_packet([PadN(otype=UNKNOWN_OPT, optdata=b"o" * data_len)])
        self.assert_forwarded(pkt, routed(pkt, 2))

    def test_largest_hbh_made_of_255_octet_options(self) -> None:
        self.setup_routes()
        big = [PadN(otype=UNKNOWN_OPT, optdata=bytes([i]) * 255) for i in range(7)]
        last = PadN(otype=UNKNOWN_OPT, optdata=b"z" * 245)  # 7 * 257 + 247 = 2046 octets
        pkt = hbh_packet([*big, last])
        hbh = pkt[IPv6ExtHdrHopByHop]
        assert len(bytes(hbh)) - len(bytes(hbh.payload)) == 2048
        self.assert_forwarded(pkt, routed(pkt, 2))

    @pytest.mark.parametrize("params_len", [243, 244, 245, 247])
    def test_apn6_parameters_up_to_the_option_maximum(self, params_len: int) -> None:
        self.setup_routes()
        apn = APN6(apn_id=0x00070001, para_type=0x8000, params=b"p" * params_len)
        pkt = hbh_packet([apn])
        assert bytes(pkt[IPv6ExtHdrHopByHop])[3] == 8 + params_len
        self.assert_forwarded(pkt, routed(pkt, 2))

    @pytest.mark.parametrize("tlv_len", [8, 248, 256, 2024])
    def test_srh_tlvs_of_any_length_in_transit(self, tlv_len: int) -> None:
        self.setup_routes()
        pkt = with_raw_srh(srh_bytes(["fc00::1"], 1, tlvs=padn_tlv(tlv_len)))
        self.assert_forwarded(pkt, routed(pkt, 2))

    @pytest.mark.parametrize("tlv_len", [248, 256, 2008])
    def test_srh_tlvs_of_any_length_at_a_sid(self, tlv_len: int) -> None:
        self.setup_routes()
        self.insert([end(SID)])
        path = [SID, "fc00::1"]
        pkt = with_raw_srh(srh_bytes(path, 1, tlvs=padn_tlv(tlv_len)), dst=SID)
        expected = with_raw_srh(srh_bytes(path, 0, tlvs=padn_tlv(tlv_len)), dst="fc00::1")
        self.assert_forwarded(pkt, routed(expected, 2))

    def test_option_running_past_its_header_is_still_bad_option(self) -> None:
        self.setup_routes()
        # Hdr Ext Len 0 (6 octets of options) but the option claims 255.
        pkt = to_router(
            IPv6(src=HOST_SRC, dst=DST, nh=0)
            / Raw(bytes([17, 0, UNKNOWN_OPT, 255]) + b"\x00" * 300)
        )
        self.assert_dropped(pkt, DropReason.BAD_OPTION)


def hbh_raw(options: bytes) -> bytes:
    """A Hop-by-Hop header (next header UDP) around ``options``, which must end it at 8n."""
    assert (len(options) + 2) % 8 == 0, len(options)
    return bytes([17, (len(options) + 2) // 8 - 1]) + options


def pad_gap(n: int, *, padn: bool = False) -> bytes:
    """``n`` octets of padding: as Pad1 options, or as one PadN (n >= 2)."""
    if padn and n >= 2:
        return bytes([1, n - 2]) + bytes(n - 2)
    return bytes(n)


class TestPaddingArrangements(ConformanceTest, test_ifit.IfitTest):
    """Item 4: AltMark and an IOAM trace with any padding RFC 8200 allows around them (Pad1
    runs or PadN, before, between, after, in either order) are parsed: the trace is filled,
    AltMark counted, the packet forwarded."""

    GAPS = (0, 1, 2, 3, 7)

    def arrangements(self) -> list[tuple[str, bytes]]:
        altmark = bytes(AltMark(flow_mon_id=FLOW, L=1))
        trace = bytes(IOAM(data=preallocated_trace(0xC00000, 3, NAMESPACE)))
        out = []
        for trace_first, padn, g1, g2, g3 in itertools.product(
            (False, True), (False, True), self.GAPS, self.GAPS, self.GAPS
        ):
            first, second = (trace, altmark) if trace_first else (altmark, trace)
            body = pad_gap(g1, padn=padn) + first + pad_gap(g2, padn=padn) + second
            body += pad_gap(g3, padn=padn)
            end = (-(len(body) + 2)) % 8
            body += pad_gap(end)  # Pad1s: the run may merge with g3's
            name = f"{'trace' if trace_first else 'altmark'} first, {'PadN' if padn else 'Pad1'}"
            out.append((f"{name} gaps {g1}/{g2}/{g3}+{end}", body))
        return out

    def test_any_padding_of_altmark_and_a_trace(self) -> None:
        self.setup_transit()
        cases = self.arrangements()
        before = self.colour_count(FLOW, 1)
        for name, options in cases:
            pkt = to_router(
                IPv6(src=HOST_SRC, dst=DST, nh=0)
                / Raw(hbh_raw(options) + bytes(UDP(sport=7, dport=9) / Raw(b"p")))
            )
            testutils.send_packet(self, 2, pkt)
            out = self.forwarded_on(3)
            assert len(out) == len(pkt), name
            nodes = out[IOAMTrace].nodes()
            assert [(n.node_id, n.ingress_if, n.egress_if) for n in nodes] == [(NODE_ID, 2, 3)], (
                name
            )
            assert out[AltMark].flow_mon_id == FLOW, name
        testutils.verify_no_other_packets(self)
        assert self.colour_count(FLOW, 1) - before == len(cases)

    def test_pad1_run_ending_a_packet_without_payload(self) -> None:
        """The run is read ahead within the header only: a run at the very end of a short
        packet (no next header) must not look past the frame."""
        self.setup_routes()
        for run in range(1, 8):
            options = bytes(AltMark(flow_mon_id=FLOW)) + pad_gap(run)
            options += pad_gap((-(len(options) + 2)) % 8)
            hbh = bytes([59]) + hbh_raw(options)[1:]  # No Next Header (RFC 8200 4.7)
            pkt = to_router(IPv6(src=HOST_SRC, dst=DST, nh=0) / Raw(hbh))
            self.assert_forwarded(pkt, routed(pkt, 2))

    def test_more_option_entries_than_the_bound(self) -> None:
        self.setup_routes()
        # Pad1 runs split by unknown options: 9 entries before any trace, one over the bound.
        unit = pad_gap(1) + bytes([UNKNOWN_OPT, 0])
        options = unit * 5  # 10 entries
        options += pad_gap((-(len(options) + 2)) % 8)
        pkt = to_router(IPv6(src=HOST_SRC, dst=DST, nh=0) / Raw(hbh_raw(options) + bytes(UDP())))
        self.assert_dropped(pkt, DropReason.TOO_MANY_HEADERS)


class TestHeadendNodeData(test_ifit.IfitTest):
    """Item 8: the headend adds its own node data to the trace it inserts, for every
    Trace-Type it can fill (test_ifit.py's TestIoamHeadend covers the path onwards)."""

    def setup_headend(self, tracing: IoamTracing) -> None:
        test_ifit.TestAltMarkHeadend.setup_headend(
            self,  # type: ignore[arg-type]
            ioam=tracing,
            altmark=False,
        )
        self.insert([ioam_node(NAMESPACE, NODE_ID, node_id_wide=0xABCDEF01234567)])

    @pytest.mark.parametrize("trace_type", [0x800000, 0xC00000, 0xF80000, 0xFFF000, 0x001000])
    def test_headend_fills_its_slot(self, trace_type: int) -> None:
        tracing = IoamTracing(NAMESPACE, trace_type, max_nodes=2)
        self.setup_headend(tracing)
        testutils.send_packet(self, 1, to_router(IPv6(src=HOST_SRC, dst=SRV6_DST) / UDP()))
        out = self.forwarded_on(2)
        trace = out[IOAMTrace]
        assert trace.remlen == tracing.node_len  # one slot left of two
        (node,) = trace.nodes()
        if trace_type & 0x800000:
            assert (node.node_id, node.hop_lim) == (NODE_ID, 64)
        if trace_type & 0x400000:
            assert (node.ingress_if, node.egress_if) == (1, 2)
        if trace_type & 0x008000:
            assert node.node_id_wide == 0xABCDEF01234567
        if trace_type & 0x001000:
            assert node.buffer_occupancy is not None
        hbh = out[IPv6ExtHdrHopByHop]
        assert (len(bytes(hbh)) - len(bytes(hbh.payload))) % 8 == 0
        testutils.verify_no_other_packets(self)


class TestTimestampFormats(test_ifit.IfitTest):
    """Item 6: after the controller sets the switch's wall clock from clock probes, the
    switch's IOAM timestamps, in each namespace's format (RFC 9197 5), decode to the wall
    clock: between when the packet was sent and when it came back."""

    PROBE_NAMESPACE = 0x77
    TOLERANCE_NS = 2_000_000  # BMv2 stamps at ingress; probes and checks share the host clock

    def probe_io(self) -> tuple[Callable[[bytes], None], Callable[[float], bytes | None]]:
        def send(frame: bytes) -> None:
            self.dataplane.send(0, 2, frame)

        def receive(timeout: float) -> bytes | None:
            result = self.dataplane.poll(device_number=0, port_number=3, timeout=timeout)
            return bytes(result.packet) if isinstance(result, self.dataplane.PollSuccess) else None

        return send, receive

    def synchronise(self) -> int:
        send, receive = self.probe_io()

        def frame_for(sequence: int) -> bytes:
            return wallclock.probe_frame(
                self.PROBE_NAMESPACE,
                src_mac="00:00:00:00:00:02",
                dst_mac=ROUTER_MAC,
                src=HOST_SRC,
                dst=DST,
                sequence=sequence,
            )

        samples = wallclock.measure(send, receive, frame_for, TimestampFormat.PTP, probes=12)
        assert len(samples) >= 8, f"only {len(samples)} of 12 probes came back"
        start = wallclock.correction_ns(samples)  # the switch held 0: this is its start
        self.sw.modify([wallclock.wall_clock(start)])
        return start

    def test_timestamps_follow_the_wall_clock_in_every_format(self) -> None:
        self.setup_transit()  # NAMESPACE, route to port 3
        self.insert([ioam_node(self.PROBE_NAMESPACE, NODE_ID)])
        try:
            start = self.synchronise()
            assert 0 < time.time_ns() - start < 86_400 * 10**9  # started in the last day
            for fmt in TimestampFormat:
                self.sw.modify([ioam_node(NAMESPACE, NODE_ID, timestamp_format=fmt)])
                pkt = test_ifit.with_telemetry(
                    IOAM(data=preallocated_trace(0x300000, 2, NAMESPACE))
                )
                sent = time.time_ns()
                testutils.send_packet(self, 2, pkt)
                out = self.forwarded_on(3)
                received = time.time_ns()
                (node,) = out[IOAMTrace].nodes()
                stamp = wallclock.timestamp_ns(node.ts_sec, node.ts_frac, fmt)
                assert sent - self.TOLERANCE_NS <= stamp <= received + self.TOLERANCE_NS, (
                    fmt.name,
                    stamp - sent,
                    received - sent,
                )
                if fmt is TimestampFormat.POSIX:
                    assert node.ts_frac < 1_000_000
                elif fmt is TimestampFormat.PTP:
                    assert node.ts_frac < 1_000_000_000
                else:
                    assert node.ts_sec > NTP_UNIX_EPOCH_OFFSET_S
        finally:
            self.sw.modify([wallclock.wall_clock(0)])
        testutils.verify_no_other_packets(self)


class TestApnInDestinationOptions(Srv6Test):
    """Item 7: APN6 in a Destination Options header before the SRH
    (draft-li-6man-apn-ipv6-encap): parsed, classified on, overwritten when untrusted, carried
    untouched in transit, and written by a headend whose APN policy asks for it."""

    APN = APN_TRAINING

    def doh_packet(
        self, apn: Packet | None = None, *, srh: bool = False, raw: bytes = b""
    ) -> Packet:
        ip = IPv6(src=HOST_SRC, dst=SRV6_DST, nh=60)
        doh = IPv6ExtHdrDestOpt(options=[apn if apn is not None else APN6(apn_id=self.APN)])
        if raw:
            body: Packet = Raw(raw)
        elif srh:
            doh.nh = 43
            body = IPv6ExtHdrSegmentRouting(addresses=["fc00:3::1", SID], segleft=1, nh=17)
        else:
            body = UDP(sport=5, dport=9) / Raw(b"doh")
        if srh:
            body = body / UDP(sport=5, dport=9) / Raw(b"doh")
        return to_router(ip / doh / body)

    def trusted_policy(self, *, dscp: int) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_TRUSTED),
                apn_policy(value, mask, dscp=dscp, sr_policy_id=0, priority=10),
                route("2001:db8:2::/48", [next_hop(2)]),
            ]
        )

    def test_trusted_doh_mark_is_classified(self) -> None:
        self.trusted_policy(dscp=46)
        pkt = self.doh_packet()
        expected = pkt.copy()
        expected[IPv6].tc = 46 << 2
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(expected, 2), 2)
        testutils.verify_no_other_packets(self)

    def test_hbh_mark_wins_over_the_doh_mark(self) -> None:
        self.trusted_policy(dscp=46)
        other = APN6(apn_id=TEMPLATE.compose(app_group=9, user_group=1))
        ip = IPv6(src=HOST_SRC, dst=SRV6_DST)
        pkt = to_router(
            ip
            / IPv6ExtHdrHopByHop(options=[other])
            / IPv6ExtHdrDestOpt(options=[APN6(apn_id=self.APN)])
            / UDP()
        )
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(pkt, 2), 2)  # app group 9: no policy, no DSCP
        testutils.verify_no_other_packets(self)

    def test_untrusted_doh_mark_is_overwritten(self) -> None:
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(0x00050005, priority=10, ipv6_dst=f"{SRV6_DST}/128"),
                route("2001:db8:2::/48", [next_hop(2)]),
            ]
        )
        pkt = self.doh_packet(APN6(apn_id=self.APN, para_type=0x8000, params=b"\x00\x00\x00\x01"))
        testutils.send_packet(self, 1, pkt)
        out = Ether(self.poll(2))
        assert out[IPv6ExtHdrDestOpt].options[0].apn_id == 0x00050005
        assert out[IPv6ExtHdrDestOpt].options[0].para_type == 0
        assert len(out) == len(pkt)
        testutils.verify_no_other_packets(self)

    def test_transit_and_end_carry_a_doh_before_the_srh(self) -> None:
        self.insert([my_station(ROUTER_MAC), end(SID), route("fc00:3::/32", [next_hop(3)])])
        pkt = self.doh_packet(srh=True)
        pkt[IPv6].dst = SID
        expected = pkt.copy()
        expected[IPv6].dst = "fc00:3::1"
        expected[IPv6ExtHdrSegmentRouting].segleft = 0
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(expected, 3), 3)
        testutils.verify_no_other_packets(self)

    @pytest.mark.parametrize(
        "options",
        [
            bytes([APN6_OPT_TYPE, 4, 1, 0, 0, 0]),  # too short for its ID
            bytes([APN6_OPT_TYPE, 8, 7, 0, 0, 0]) + bytes(4) + bytes([1, 2, 0, 0]),  # ID type 7
            bytes([UNKNOWN_OPT, 4]) + bytes(4),  # no APN6 at all
        ],
        ids=["short", "id_type", "none"],
    )
    def test_doh_without_a_usable_mark_is_carried_untouched(self, options: bytes) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        assert (len(options) + 2) % 8 == 0
        doh = bytes([17, (len(options) + 2) // 8 - 1]) + options
        pkt = to_router(IPv6(src=HOST_SRC, dst=SRV6_DST, nh=60) / Raw(doh + bytes(UDP())))
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(pkt, 2), 2)
        testutils.verify_no_other_packets(self)

    def test_headend_writes_apn6_in_a_doh_when_its_policy_says(self) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{SRV6_DST}/128"),
                apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10, apn_in_doh=True),
                sr_policy(1, HEADEND, [SegmentList(tuple(SRV6_PATH))]),
                route("fc00:2::/32", [next_hop(2)]),
            ]
        )
        inner = IPv6(src=HOST_SRC, dst=SRV6_DST) / UDP(sport=5, dport=9) / Raw(b"x" * 8)
        testutils.send_packet(self, 1, to_router(inner))
        hbh_form = bytearray(bytes(encapsulated(inner, APN_TRAINING, SRV6_PATH)))
        assert hbh_form[20] == 0  # outer Next Header: Hop-by-Hop ...
        hbh_form[20] = 60  # ... becomes Destination Options, same 16 octets
        out = Ether(self.poll(2))
        assert bytes(out) == bytes(hbh_form)
        assert out[IPv6ExtHdrDestOpt].options[0].apn_id == APN_TRAINING
        testutils.verify_no_other_packets(self)

    def poll(self, port: int) -> bytes:
        result = self.dataplane.poll(device_number=0, port_number=port, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess), f"nothing on port {port}"
        return bytes(result.packet)


class TestReportOnTheWallClock(test_ifit.IfitTest):
    """Item 6: a trace report's export time is on the wall clock the controller set, like
    the stamps it carries, so the collector's end-to-end figure subtracts like from like."""

    def test_export_time_follows_the_wall_clock(self) -> None:
        start = time.time_ns() - 3_600 * 10**9  # pretend the switch started an hour ago
        self.setup_decap(
            collector_session(7, test_ifit.COLLECTOR_PORT),
            trace_export(NAMESPACE, 7),
            trace_report(
                NAMESPACE,
                router_mac=ROUTER_MAC,
                collector_mac="00:00:00:00:c0:01",
                source=test_ifit.REPORTER,
                collector=test_ifit.COLLECTOR,
            ),
        )
        self.sw.modify([wallclock.wall_clock(start)])
        try:
            inner = IPv6(src=HOST_SRC, dst=DST) / UDP(sport=1, dport=2)
            arriving = self.to_decap(inner, IOAM(data=preallocated_trace(0x300000, 2, NAMESPACE)))
            testutils.send_packet(self, 2, arriving)
            self.forwarded_on(4)
            body = self.forwarded_on(test_ifit.COLLECTOR_PORT)[TraceReport]
            exported = body.seconds * 10**9 + body.nanoseconds
            (node,) = body.option()[IOAMTrace].nodes()
            stamp = wallclock.timestamp_ns(node.ts_sec, node.ts_frac, TimestampFormat.PTP)
            uptime = time.monotonic_ns()  # a bound: the switch started after this host did
            assert start < stamp <= exported < start + uptime
        finally:
            self.sw.modify([wallclock.wall_clock(0)])
        testutils.verify_no_other_packets(self)
