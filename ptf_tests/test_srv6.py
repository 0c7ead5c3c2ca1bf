"""PTF tests for SRv6 and APN6 at the edge: H.Encaps(.Red) with the APN6 HBH, the deep hash
over segment lists, the trust boundary, End, End.X, End.DT6, End.DT4, transit."""

from __future__ import annotations

from ptf import testutils
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting, PadN
from scapy.packet import Packet, Raw

from icpn.constants import APN6_OPT_TYPE, DropReason, PortRole
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.routing import DROP_COUNTER, my_station, route, route_v4
from icpn.features.srv6 import SegmentList, end, end_dt4, end_dt6, end_x, max_segments, sr_policy
from icpn.hashing import outer_flow_label, sr_list_member
from icpn.packets import APN6, ApnIdTemplate, h_encaps, rocev2_write
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import (
    HOST_SRC,
    NEIGHBOR_MACS,
    ROUTER_MAC,
    UNKNOWN_OPT,
    next_hop,
    routed,
    to_router,
)

HEADEND = "fc00:1::1"
PATH = ["fc00:2::1", "fc00:3::1", "fc00:4::d6"]
DST = "2001:db8:2::10"
TEMPLATE = ApnIdTemplate()
APN_TRAINING = TEMPLATE.compose(app_group=7, user_group=1)


def udp_to(dst: str = DST, *, sport: int = 5000, tc: int = 0, hlim: int = 64) -> Packet:
    return (
        IPv6(src=HOST_SRC, dst=dst, tc=tc, hlim=hlim) / UDP(sport=sport, dport=9) / Raw(b"d" * 20)
    )


def encapsulated(
    inner: Packet,
    apn_id: int,
    segments: list[str],
    *,
    dest_qp: int = 0,
    reduced: bool = False,
    port: int = 2,
    extra_options: list[Packet] | None = None,
) -> Packet:
    """What the headend emits: inner with one hop spent, pushed under the outer header
    whose HBH holds APN6, then ``extra_options`` (telemetry)."""
    spent = inner.copy()
    spent[IPv6].hlim -= 1
    outer = h_encaps(
        IPv6(bytes(spent)),
        src=HEADEND,
        segments=segments,
        reduced=reduced,
        hbh_options=[APN6(apn_id=apn_id), *(extra_options or [])],
        tc=spent[IPv6].tc,
        flow_label=outer_flow_label(apn_id, dest_qp),
    )
    return routed(to_router(outer), port, spend_hop=False)


class Srv6Test(P4RuntimeTest):
    def drops(self, reason: DropReason) -> int:
        return self.counter_packets(DROP_COUNTER, reason.value)

    def setup_headend(
        self, lists: list[SegmentList], *, role: PortRole = PortRole.EDGE_UNTRUSTED, dscp: int = 0
    ) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, role),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{DST}/128"),
                apn_policy(value, mask, dscp=dscp, sr_policy_id=1, priority=10),
                sr_policy(1, HEADEND, lists),
                route("fc00:2::/32", [next_hop(2)]),
                route("fc00:3::/32", [next_hop(3)]),
            ]
        )


class TestHeadend(Srv6Test):
    def test_h_encaps_pushes_outer_ipv6_apn6_hbh_and_srh(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))])
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        testutils.verify_packet(self, encapsulated(pkt, APN_TRAINING, PATH), 2)
        testutils.verify_no_other_packets(self)

    def test_outer_hbh_is_the_design_layout(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))])
        testutils.send_packet(self, 1, to_router(udp_to()))
        result = self.dataplane.poll(device_number=0, port_number=2, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess)
        hbh = bytes(IPv6(result.packet[14:])[IPv6ExtHdrHopByHop])[:16]
        # DESIGN.md 2.2: 2b 01 | 13 08 | 01 00 00 00 | <ID32> | 01 02 00 00
        assert hbh == bytes.fromhex("2b01") + bytes([APN6_OPT_TYPE]) + bytes.fromhex(
            "0801000000"
        ) + APN_TRAINING.to_bytes(4, "big") + bytes.fromhex("01020000")

    def test_h_encaps_red_leaves_the_first_segment_out(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH), reduced=True)])
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        testutils.verify_packet(self, encapsulated(pkt, APN_TRAINING, PATH, reduced=True), 2)
        testutils.verify_no_other_packets(self)

    def test_every_list_length_up_to_the_deepest_is_pushed(self) -> None:
        """H.Encaps with 1..MAX_ENCAP_SEGMENTS segments and H.Encaps.Red with 1..MAX+1
        (issue 16): each action's outer header, SRH and segment order, byte for byte."""
        for reduced in (False, True):
            for count in range(1, max_segments(reduced=reduced) + 1):
                segments = [f"fc00:2::{i:x}" for i in range(1, count)] + ["fc00:3::d6"]
                port = 2 if count > 1 else 3
                self._cleanup()
                self.setup_headend([SegmentList(tuple(segments), reduced=reduced)])
                pkt = udp_to(sport=5000 + count)
                testutils.send_packet(self, 1, to_router(pkt))
                expected = encapsulated(pkt, APN_TRAINING, segments, reduced=reduced, port=port)
                testutils.verify_packet(self, expected, port)
                testutils.verify_no_other_packets(self)

    def test_h_encaps_red_with_one_segment_has_no_srh(self) -> None:
        self.setup_headend([SegmentList(("fc00:3::d6",), reduced=True)])
        pkt = udp_to()
        testutils.send_packet(self, 1, to_router(pkt))
        expected = encapsulated(pkt, APN_TRAINING, ["fc00:3::d6"], reduced=True, port=3)
        assert IPv6ExtHdrSegmentRouting not in expected
        testutils.verify_packet(self, expected, 3)
        testutils.verify_no_other_packets(self)

    def test_outer_flow_label_is_the_hash_of_apn_and_dest_qp(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))])
        for qp in (0x11, 0x12, 0xABCDE):
            pkt = rocev2_write(HOST_SRC, DST, dest_qp=qp)
            testutils.send_packet(self, 1, to_router(pkt))
            testutils.verify_packet(self, encapsulated(pkt, APN_TRAINING, PATH, dest_qp=qp), 2)
        testutils.verify_no_other_packets(self)

    def test_policy_dscp_is_written_to_inner_and_outer(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))], dscp=46)
        pkt = udp_to(tc=0x01)  # ECN bits survive the rewrite
        testutils.send_packet(self, 1, to_router(pkt))
        rewritten = pkt.copy()
        rewritten[IPv6].tc = (46 << 2) | 0x01
        testutils.verify_packet(self, encapsulated(rewritten, APN_TRAINING, PATH), 2)
        testutils.verify_no_other_packets(self)

    def test_deep_hash_spreads_queue_pairs_of_one_5_tuple_over_lists(self) -> None:
        lists = [SegmentList(("fc00:2::1", "fc00:4::d6")), SegmentList(("fc00:3::1", "fc00:4::d6"))]
        self.setup_headend(lists)
        ports = set()
        for qp in range(1, 33):  # same addresses and UDP ports: only the QP differs
            testutils.send_packet(self, 1, to_router(rocev2_write(HOST_SRC, DST, dest_qp=qp)))
            result = self.dataplane.poll(device_number=0, timeout=2)
            assert isinstance(result, self.dataplane.PollSuccess), f"QP {qp} was not forwarded"
            ports.add(result.port)
            # the model's choice: list crc32(APN ID, DestQP) % 2, lists in policy order
            chosen = sr_list_member([(APN_TRAINING, 128), (qp, 24)], [1] * len(lists))
            assert result.port == (2, 3)[chosen], f"QP {qp}"
        assert ports == {2, 3}
        testutils.verify_no_other_packets(self)

    def test_deep_hash_fills_three_weighted_lists_as_the_model_says(self) -> None:
        """Consecutive QPs (as NICs number them) over three lists of weights 1, 2, 2: five
        copies, not a power of two, so the whole 32-bit hash counts, not its low bits."""
        lists = [
            SegmentList(("fc00:2::1", "fc00:4::d6")),
            SegmentList(("fc00:3::1", "fc00:4::d6"), weight=2),
            SegmentList(("fc00:5::1", "fc00:4::d6"), weight=2),
        ]
        ports_of = (2, 3, 4)
        self.setup_headend(lists)
        self.insert([route("fc00:5::/32", [next_hop(4)])])
        seen = {port: 0 for port in ports_of}
        for qp in range(0x100, 0x100 + 40):
            testutils.send_packet(self, 1, to_router(rocev2_write(HOST_SRC, DST, dest_qp=qp)))
            result = self.dataplane.poll(device_number=0, timeout=2)
            assert isinstance(result, self.dataplane.PollSuccess), f"QP {qp} was not forwarded"
            chosen = sr_list_member([(APN_TRAINING, 128), (qp, 24)], [1, 2, 2])
            assert result.port == ports_of[chosen], f"QP {qp}"
            seen[result.port] += 1
        assert min(seen.values()) >= 5, seen  # every list is used
        testutils.verify_no_other_packets(self)

    def test_core_port_is_not_classified(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))])
        self.insert([route("2001:db8:2::/48", [next_hop(4)])])
        pkt = udp_to()
        testutils.send_packet(self, 5, to_router(pkt))  # port 5 has no role: core
        testutils.verify_packet(self, routed(to_router(pkt), 4), 4)
        testutils.verify_no_other_packets(self)


class TestTrustBoundary(Srv6Test):
    APP_MARK = TEMPLATE.compose(app_group=7, user_group=99)

    def marked(self) -> Packet:
        return (
            IPv6(src=HOST_SRC, dst=DST)
            / IPv6ExtHdrHopByHop(options=[APN6(apn_id=self.APP_MARK)])
            / UDP(sport=1, dport=9)
            / Raw(b"m" * 8)
        )

    def test_trusted_port_uses_the_application_mark(self) -> None:
        self.setup_headend([SegmentList(tuple(PATH))], role=PortRole.EDGE_TRUSTED)
        pkt = self.marked()
        testutils.send_packet(self, 1, to_router(pkt))
        testutils.verify_packet(self, encapsulated(pkt, self.APP_MARK, PATH), 2)
        testutils.verify_no_other_packets(self)

    def test_untrusted_port_overwrites_the_application_mark(self) -> None:
        value, mask = TEMPLATE.match(app_group=7)
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(APN_TRAINING, priority=10, ipv6_dst=f"{DST}/128"),
                apn_policy(value, mask, dscp=0, sr_policy_id=0, priority=10),  # routed, no SRv6
                route("2001:db8:2::/48", [next_hop(4)]),
            ]
        )
        pkt = self.marked()
        testutils.send_packet(self, 1, to_router(pkt))
        expected = pkt.copy()
        expected[APN6].apn_id = APN_TRAINING  # the network's decision, not the app's claim
        testutils.verify_packet(self, routed(to_router(expected), 4), 4)
        testutils.verify_no_other_packets(self)

    def test_untrusted_mark_without_classification_is_zeroed(self) -> None:
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                route("2001:db8:2::/48", [next_hop(4)]),
            ]
        )
        pkt = self.marked()
        testutils.send_packet(self, 1, to_router(pkt))
        expected = pkt.copy()
        expected[APN6].apn_id = 0
        testutils.verify_packet(self, routed(to_router(expected), 4), 4)
        testutils.verify_no_other_packets(self)


def srv6_packet(
    segments: list[str], segleft: int, inner: Packet, *, hbh: bool = True, dst: str | None = None
) -> Packet:
    """An SRv6 packet in flight: SRH with ``segments`` (path order), DA = the active one."""
    outer = h_encaps(
        inner,
        src=HEADEND,
        segments=segments,
        hbh_options=[APN6(apn_id=APN_TRAINING)] if hbh else [],
        flow_label=0x12345,
    )
    outer[IPv6ExtHdrSegmentRouting].segleft = segleft
    outer[IPv6].dst = dst or segments[len(segments) - 1 - segleft]
    return to_router(IPv6(bytes(outer)))


class TestEndpoints(Srv6Test):
    INNER = IPv6(src=HOST_SRC, dst=DST, hlim=50) / UDP(sport=7, dport=9) / Raw(b"i" * 16)

    def test_end_moves_to_the_next_segment(self) -> None:
        segs = ["fc00:9::1", "fc00:3::1", "fc00:4::d6"]
        self.insert([my_station(ROUTER_MAC), end("fc00:9::1"), route("fc00:3::/32", [next_hop(3)])])
        pkt = srv6_packet(segs, 2, self.INNER)
        testutils.send_packet(self, 2, pkt)
        expected = pkt.copy()
        expected[IPv6ExtHdrSegmentRouting].segleft = 1
        expected[IPv6].dst = "fc00:3::1"
        testutils.verify_packet(self, routed(expected, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_end_x_uses_its_adjacency(self) -> None:
        segs = ["fc00:9::1", "fc00:3::1", "fc00:4::d6"]
        self.insert(
            [
                my_station(ROUTER_MAC),
                end_x("fc00:9::1", 5, ROUTER_MAC, NEIGHBOR_MACS[5]),
                route("fc00:3::/32", [next_hop(3)]),
            ]
        )  # End.X ignores the route
        pkt = srv6_packet(segs, 2, self.INNER)
        testutils.send_packet(self, 2, pkt)
        expected = pkt.copy()
        expected[IPv6ExtHdrSegmentRouting].segleft = 1
        expected[IPv6].dst = "fc00:3::1"
        expected = routed(expected, 5)  # one hop spent, as End's (RFC 8986 4.1 S14)
        testutils.verify_packet(self, expected, 5)
        testutils.verify_no_other_packets(self)

    def test_end_with_segments_left_zero_is_dropped(self) -> None:
        self.insert([my_station(ROUTER_MAC), end("fc00:4::d6")])
        before = self.drops(DropReason.END_SL_ZERO)
        testutils.send_packet(self, 2, srv6_packet(["fc00:3::1", "fc00:4::d6"], 0, self.INNER))
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.END_SL_ZERO) - before == 1

    def test_end_dt6_strips_everything_outer(self) -> None:
        self.insert(
            [my_station(ROUTER_MAC), end_dt6("fc00:4::d6"), route("2001:db8:2::/48", [next_hop(4)])]
        )
        testutils.send_packet(self, 2, srv6_packet(["fc00:3::1", "fc00:4::d6"], 0, self.INNER))
        testutils.verify_packet(self, routed(to_router(self.INNER), 4), 4)
        testutils.verify_no_other_packets(self)

    def test_end_dt6_with_segments_left_is_dropped(self) -> None:
        self.insert(
            [my_station(ROUTER_MAC), end_dt6("fc00:3::d6"), route("2001:db8:2::/48", [next_hop(4)])]
        )
        before = self.drops(DropReason.BAD_SRH)
        testutils.send_packet(self, 2, srv6_packet(["fc00:3::d6", "fc00:4::1"], 1, self.INNER))
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.BAD_SRH) - before == 1

    def test_end_dt4_delivers_the_inner_ipv4_packet(self) -> None:
        inner4 = IP(src="192.0.2.1", dst="198.51.100.7", ttl=30) / UDP(sport=1, dport=2) / Raw(b"4")
        self.insert(
            [
                my_station(ROUTER_MAC),
                end_dt4("fc00:4::d4"),
                route_v4("198.51.100.0/24", next_hop(3)),
            ]
        )
        testutils.send_packet(self, 2, srv6_packet(["fc00:3::1", "fc00:4::d4"], 0, inner4))
        testutils.verify_packet(self, routed(to_router(inner4), 3), 3)
        testutils.verify_no_other_packets(self)

    def test_transit_keeps_hbh_and_srh_byte_for_byte(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("fc00:3::/32", [next_hop(3)])])
        pkt = srv6_packet(["fc00:3::1", "fc00:4::d6"], 1, self.INNER)
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(pkt, 3), 3)
        testutils.verify_no_other_packets(self)

    def test_unknown_skippable_options_pass_in_order(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(4)])])
        options = [
            PadN(otype=UNKNOWN_OPT, optdata=b"\x01\x02\x03"),  # unknown, act 00
            PadN(optdata=b"\x00"),
            APN6(apn_id=5),
        ]  # APN6 not first: opaque
        pkt = to_router(
            IPv6(src=HOST_SRC, dst=DST)
            / IPv6ExtHdrHopByHop(options=options)
            / UDP(sport=1, dport=2)
            / Raw(b"u")
        )
        testutils.send_packet(self, 2, pkt)
        testutils.verify_packet(self, routed(pkt, 4), 4)
        testutils.verify_no_other_packets(self)
