"""PTF tests for data-plane conformance (issue 13): the switch accepts what RFC 8200, RFC 8754
and RFC 9197 allow, and drops, under a reason of its own, what they forbid. Each class is one
item of the issue; the boundary lengths are tested on both sides."""

from __future__ import annotations

from ptf import testutils
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from icpn.constants import DropReason
from ptf_tests.net import HOST_SRC, routed, to_router
from ptf_tests.test_sanity import DST, SanityTest


def udp_packet(payload: bytes = b"conformance", **ipv6: object) -> Packet:
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
