"""PTF tests for controller packet I/O (P4Runtime packet-out / packet-in) and the ACL punt."""

from __future__ import annotations

from ptf import testutils
from scapy.layers.inet6 import ICMPv6ND_NS, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.features.routing import punt_neighbor_solicitations
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_MAC


class TestPacketIo(P4RuntimeTest):
    def test_packet_out_leaves_on_the_named_port(self) -> None:
        frame = Ether(src="00:00:00:00:aa:01", dst=HOST_MAC) / Raw(b"from the controller" * 3)
        for port in (1, 3):
            self.sw.packet_out(bytes(frame), egress_port=port, _pad=0)
            testutils.verify_packet(self, frame, port)
        testutils.verify_no_other_packets(self)

    def test_neighbor_solicitation_is_punted_with_its_ingress_port(self) -> None:
        self.insert([punt_neighbor_solicitations()])
        ns = (
            Ether(src=HOST_MAC, dst="33:33:ff:00:00:01")
            / IPv6(src="2001:db8:1::10", dst="ff02::1:ff00:1", hlim=255)
            / ICMPv6ND_NS(tgt="2001:db8:1::1")
        )
        testutils.send_packet(self, 4, ns)
        packet_in = self.sw.get_packet_in(timeout=2.0)
        assert packet_in is not None, "no packet-in for the neighbour solicitation"
        assert packet_in["ingress_port"] == 4
        assert (packet_in["reason"], packet_in["mtu"]) == (0, 0)  # the ACL's punt
        assert packet_in.payload == bytes(ns)
        testutils.verify_no_other_packets(self)

    def test_no_punt_without_acl_entry(self) -> None:
        ns = (
            Ether(src=HOST_MAC, dst="33:33:ff:00:00:01")
            / IPv6(dst="ff02::1:ff00:1")
            / (ICMPv6ND_NS(tgt="2001:db8:1::1"))
        )
        testutils.send_packet(self, 2, ns)
        assert self.sw.get_packet_in(timeout=0.5) is None
        testutils.verify_no_other_packets(self)
