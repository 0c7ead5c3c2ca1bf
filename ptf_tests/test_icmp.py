"""PTF tests for routers that answer (icmp.p4): what a router must answer goes to the
controller with a reason code, its ingress port and the MTU it exceeded; the punt rate is a
meter; what is not punted stays dropped and counted (issue 16 part 2, issue 14 part 3)."""

from __future__ import annotations

from collections.abc import Iterator

import finsy as fy
import pytest
from ptf import testutils
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.packet import Packet, Raw

from icpn.constants import DropReason, PortRole
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.icmp import PUNT_COUNTER, PUNT_METER, my_address, port_mtu, punt_policy
from icpn.features.icmp import punt_rate as punt_rate_entry
from icpn.features.routing import DROP_COUNTER, my_station, route
from icpn.features.srv6 import SegmentList, end, end_x, sr_policy
from icpn.packets import APN6, ApnIdTemplate, h_encaps
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, NEIGHBOR_MACS, ROUTER_MAC, next_hop, routed, to_router

DST = "2001:db8:2::10"
GATEWAY = "2001:db8:1::1"
SID = "fc00:1::1"
TEMPLATE = ApnIdTemplate()


def udp(dst: str = DST, *, hlim: int = 64, size: int = 20, sport: int = 5000) -> Packet:
    return to_router(
        IPv6(src=HOST_SRC, dst=dst, hlim=hlim) / UDP(sport=sport, dport=33434) / Raw(b"p" * size)
    )


class IcmpTest(P4RuntimeTest):
    @pytest.fixture(autouse=True)
    def _reset_meters(self) -> Iterator[None]:
        yield
        # meter cells always exist: a test's rate is reset, not deleted (P4Runtime 9.3)
        self.sw.modify([fy.P4MeterEntry(PUNT_METER, index=int(r)) for r in DropReason])

    def drops(self, reason: DropReason) -> int:
        return self.counter_packets(DROP_COUNTER, reason.value)

    def punts(self, reason: DropReason) -> int:
        return self.counter_packets(PUNT_COUNTER, reason.value)

    def expect_punt(self, frame: Packet, port: int, reason: DropReason, mtu: int = 0) -> bytes:
        packet_in = self.sw.get_packet_in(timeout=2.0)
        assert packet_in is not None, f"no packet-in for {reason.name}"
        assert packet_in["ingress_port"] == port
        assert packet_in["reason"] == int(reason)
        assert packet_in["mtu"] == mtu
        return bytes(packet_in.payload)


class TestPunts(IcmpTest):
    def test_hop_limit_expiry_goes_to_the_controller_not_out(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        self.insert([punt_policy(DropReason.HOP_LIMIT)])
        drops, punts = self.drops(DropReason.HOP_LIMIT), self.punts(DropReason.HOP_LIMIT)
        frame = udp(hlim=1)
        testutils.send_packet(self, 1, frame)
        assert self.expect_punt(frame, 1, DropReason.HOP_LIMIT) == bytes(frame)
        testutils.verify_no_other_packets(self)
        assert self.punts(DropReason.HOP_LIMIT) - punts == 1
        assert self.drops(DropReason.HOP_LIMIT) == drops  # punted is not dropped

    def test_route_miss_goes_to_the_controller(self) -> None:
        self.insert([my_station(ROUTER_MAC), punt_policy(DropReason.NO_ROUTE)])
        frame = udp("2001:db8:99::1")
        testutils.send_packet(self, 3, frame)
        assert self.expect_punt(frame, 3, DropReason.NO_ROUTE) == bytes(frame)
        testutils.verify_no_other_packets(self)

    def test_without_a_policy_the_drop_stands_and_is_counted(self) -> None:
        self.insert([my_station(ROUTER_MAC), punt_policy(DropReason.NO_ROUTE)])
        before = self.drops(DropReason.HOP_LIMIT)
        testutils.send_packet(self, 1, udp(hlim=1))
        testutils.verify_no_other_packets(self)
        assert self.sw.get_packet_in(timeout=0.5) is None
        assert self.drops(DropReason.HOP_LIMIT) - before == 1

    def test_the_punt_rate_is_a_meter_and_the_rest_is_counted_as_dropped(self) -> None:
        self.insert([my_station(ROUTER_MAC), punt_policy(DropReason.NO_ROUTE)])
        self.sw.modify([punt_rate_entry(DropReason.NO_ROUTE, 1, 2)])
        drops, punts = self.drops(DropReason.NO_ROUTE), self.punts(DropReason.NO_ROUTE)
        sent = 8
        for i in range(sent):
            testutils.send_packet(self, 1, udp("2001:db8:99::1", sport=6000 + i))
        received = 0
        while self.sw.get_packet_in(timeout=0.5) is not None:
            received += 1
        punted = self.punts(DropReason.NO_ROUTE) - punts
        dropped = self.drops(DropReason.NO_ROUTE) - drops
        assert received == punted
        assert 1 <= punted <= 4, punted  # the burst of 2, and a token or two refilled
        assert punted + dropped == sent


class TestRouterAddresses(IcmpTest):
    def test_a_ping_to_the_gateway_is_the_routers(self) -> None:
        # the gateway lies in the host's /64, which is routed to the host port
        self.insert([my_station(ROUTER_MAC), route("2001:db8:1::/64", [next_hop(2)])])
        self.insert([my_address(GATEWAY), punt_policy(DropReason.TO_ROUTER)])
        ping = to_router(IPv6(src=HOST_SRC, dst=GATEWAY) / ICMPv6EchoRequest(id=1, seq=1))
        testutils.send_packet(self, 1, ping)
        assert self.expect_punt(ping, 1, DropReason.TO_ROUTER) == bytes(ping)
        testutils.verify_no_other_packets(self)

    def test_the_loopback_sid_answers_but_still_ends_segments(self) -> None:
        self.insert([my_station(ROUTER_MAC), end(SID), route("fc00:3::/32", [next_hop(3)])])
        self.insert([my_address(SID), punt_policy(DropReason.TO_ROUTER)])
        ping = to_router(IPv6(src=HOST_SRC, dst=SID) / ICMPv6EchoRequest(id=1, seq=2))
        testutils.send_packet(self, 2, ping)
        self.expect_punt(ping, 2, DropReason.TO_ROUTER)
        # an SRv6 packet with segments left is End's, not the router's
        inner = IPv6(src=HOST_SRC, dst=DST) / UDP(sport=7, dport=9) / Raw(b"i" * 16)
        outer = h_encaps(inner, src="fc00:9::1", segments=[SID, "fc00:3::d6"])
        frame = to_router(IPv6(bytes(outer)))
        testutils.send_packet(self, 2, frame)
        result = self.dataplane.poll(device_number=0, port_number=3, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess), "End did not forward"
        assert IPv6(result.packet[14:]).dst == "fc00:3::d6"
        testutils.verify_no_other_packets(self)

    def test_end_x_checks_and_spends_the_hop_limit(self) -> None:
        sid = "fc00:1::e005"
        self.insert([my_station(ROUTER_MAC), end_x(sid, 5, ROUTER_MAC, NEIGHBOR_MACS[5])])
        self.insert([punt_policy(DropReason.HOP_LIMIT)])
        inner = IPv6(src=HOST_SRC, dst=DST) / UDP(sport=7, dport=9) / Raw(b"i" * 16)
        outer = IPv6(bytes(h_encaps(inner, src="fc00:9::1", segments=[sid, "fc00:3::d6"])))
        outer.hlim = 1
        frame = to_router(outer)
        testutils.send_packet(self, 2, frame)
        self.expect_punt(frame, 2, DropReason.HOP_LIMIT)
        testutils.verify_no_other_packets(self)


class TestMtu(IcmpTest):
    def test_a_packet_over_the_port_mtu_is_counted_or_punted_with_the_mtu(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        self.insert([port_mtu(2, 1280)])
        fits = udp(size=1280 - 48)  # IPv6 40 + UDP 8 + payload = 1280
        testutils.send_packet(self, 1, fits)
        testutils.verify_packet(self, routed(fits, 2), 2)
        before = self.drops(DropReason.PACKET_TOO_BIG)
        too_big = udp(size=1280 - 47)
        testutils.send_packet(self, 1, too_big)
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.PACKET_TOO_BIG) - before == 1
        self.insert([punt_policy(DropReason.PACKET_TOO_BIG)])
        testutils.send_packet(self, 1, too_big)
        payload = self.expect_punt(too_big, 1, DropReason.PACKET_TOO_BIG, mtu=1280)
        assert IPv6(payload[14:]).dst == DST
        testutils.verify_no_other_packets(self)

    def test_the_headend_counts_what_it_pushes(self) -> None:
        """A packet that fits the port before encapsulation does not after it: the check is
        on the packet as it leaves (outer header, HBH with APN6, SRH)."""
        value, mask = TEMPLATE.match(app_group=7)
        apn_id = TEMPLATE.compose(app_group=7, user_group=1)
        segments = ("fc00:2::1", "fc00:3::d6")
        self.insert(
            [
                my_station(ROUTER_MAC),
                port_role(1, PortRole.EDGE_UNTRUSTED),
                classifier_rule(apn_id, priority=10, ipv6_dst=f"{DST}/128"),
                apn_policy(value, mask, dscp=0, sr_policy_id=1, priority=10),
                sr_policy(1, SID, [SegmentList(segments)]),
                route("fc00:2::/32", [next_hop(2)]),
                port_mtu(2, 1300),
                punt_policy(DropReason.PACKET_TOO_BIG),
            ]
        )
        overhead = len(
            h_encaps(IPv6(), src=SID, segments=list(segments), hbh_options=[APN6(apn_id=apn_id)])
        )
        overhead -= len(IPv6())
        small = udp(size=1300 - 48 - overhead)  # exactly 1300 once encapsulated
        testutils.send_packet(self, 1, small)
        result = self.dataplane.poll(device_number=0, port_number=2, timeout=2)
        assert isinstance(result, self.dataplane.PollSuccess), "the fitting packet was held"
        assert len(result.packet) - 14 == 1300
        big = udp(size=1300 - 47 - overhead)
        testutils.send_packet(self, 1, big)
        payload = self.expect_punt(big, 1, DropReason.PACKET_TOO_BIG, mtu=1300)
        outer = IPv6(payload[14:])
        assert outer.src == SID and outer.plen + 40 == 1301  # punted as it would have left
        testutils.verify_no_other_packets(self)
