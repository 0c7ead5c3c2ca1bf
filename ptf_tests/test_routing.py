"""PTF tests for IPv6 routing: router MAC check, LPM, hop limit, ECMP, non-IPv6 frames.

Topology of every test: the switch has ports 1..5; traffic enters on port 1 and routes point
at neighbours on ports 2..5, each with its own MAC so a mis-rewritten frame is caught.
"""

from __future__ import annotations

import ipaddress
import random
from collections import Counter

import finsy as fy
import pytest
from ptf import testutils
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from icpn import hashing
from icpn.constants import DropReason
from icpn.features.routing import DROP_COUNTER, NextHop, my_station, route
from icpn.p4rt import canonical
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_MAC, HOST_SRC, NEIGHBOR_MACS, ROUTER_MAC, next_hop, routed

ECMP_PORTS = [2, 3, 4, 5]
SRC = HOST_SRC


def ipv6_udp(
    dst: str,
    *,
    src: str = SRC,
    sport: int = 1234,
    dport: int = 4791,
    hlim: int = 64,
    fl: int = 0,
    eth_dst: str = ROUTER_MAC,
) -> Packet:
    return (
        Ether(src=HOST_MAC, dst=eth_dst)
        / IPv6(src=src, dst=dst, hlim=hlim, fl=fl)
        / UDP(sport=sport, dport=dport)
        / Raw(b"icpn" * 8)
    )


def ecmp_key(src: str, dst: str, fl: int, nh: int, sport: int, dport: int) -> list[tuple[int, int]]:
    """routing_v6's selector key, field by field (routing.p4)."""
    return [
        (int(ipaddress.IPv6Address(src)), 128),
        (int(ipaddress.IPv6Address(dst)), 128),
        (fl, 20),
        (nh, 8),
        (sport, 16),
        (dport, 16),
    ]


class RoutingTest(P4RuntimeTest):
    def drops(self, reason: DropReason) -> int:
        return self.counter_packets(DROP_COUNTER, reason.value)


class TestRouteLookup(RoutingTest):
    def test_route_hit_rewrites_macs_and_hop_limit(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        pkt = ipv6_udp("2001:db8:2::1", hlim=64)
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(pkt, 2), 2)
        testutils.verify_no_other_packets(self)

    def test_longest_prefix_wins(self) -> None:
        self.insert(
            [
                my_station(ROUTER_MAC),
                route("2001:db8::/32", [next_hop(2)]),
                route("2001:db8:2:1::/64", [next_hop(3)]),
            ]
        )
        inside = ipv6_udp("2001:db8:2:1::7")
        outside = ipv6_udp("2001:db8:2:2::7")
        testutils.send_packet(self, 1, inside)
        testutils.verify_packet(self, routed(inside, 3), 3)
        testutils.send_packet(self, 1, outside)
        testutils.verify_packet(self, routed(outside, 2), 2)
        testutils.verify_no_other_packets(self)

    def test_miss_drops_and_counts_no_route(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        before = self.drops(DropReason.NO_ROUTE)
        testutils.send_packet(self, 1, ipv6_udp("2001:db8:99::1"), count=3)
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.NO_ROUTE) - before == 3

    def test_frame_not_for_router_mac_is_dropped(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        before = self.drops(DropReason.NOT_MY_STATION)
        testutils.send_packet(self, 1, ipv6_udp("2001:db8:2::1", eth_dst="00:00:00:00:bb:01"))
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.NOT_MY_STATION) - before == 1

    def test_non_udp_next_header_is_routed(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        pkt = (
            Ether(src=HOST_MAC, dst=ROUTER_MAC)
            / IPv6(src=SRC, dst="2001:db8:2::1")
            / (ICMPv6EchoRequest(id=7, seq=1))
        )
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(pkt, 2), 2)
        testutils.verify_no_other_packets(self)


class TestHopLimit(RoutingTest):
    @pytest.mark.parametrize("hlim", [0, 1])
    def test_expiring_hop_limit_is_dropped(self, hlim: int) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        before = self.drops(DropReason.HOP_LIMIT)
        testutils.send_packet(self, 1, ipv6_udp("2001:db8:2::1", hlim=hlim))
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.HOP_LIMIT) - before == 1

    def test_hop_limit_two_leaves_with_one(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("2001:db8:2::/48", [next_hop(2)])])
        pkt = ipv6_udp("2001:db8:2::1", hlim=2)
        testutils.send_packet(self, 1, pkt)
        expected = routed(pkt, 2)
        assert expected[IPv6].hlim == 1
        testutils.verify_packet(self, expected, 2)
        testutils.verify_no_other_packets(self)


class TestEcmp(RoutingTest):
    # Chi-square critical value for 3 degrees of freedom (4 members) at alpha = 0.001
    # (NIST/SEMATECH e-Handbook, table 1.3.6.7.4): a fair hash exceeds it once in 1000 runs.
    CHI2_CRITICAL_DF3_ALPHA_0_001 = 16.266

    def setup_ecmp(self) -> None:
        self.insert(
            [
                my_station(ROUTER_MAC),
                route("2001:db8:e::/48", [next_hop(p) for p in ECMP_PORTS]),
            ]
        )

    def send_and_locate(self, pkt: Packet) -> int:
        testutils.send_packet(self, 1, pkt)
        return self.receive_on_any({p: routed(pkt, p) for p in ECMP_PORTS})

    def test_256_flows_spread_over_all_members(self) -> None:
        self.setup_ecmp()
        flows = 256
        ports = Counter(
            self.send_and_locate(ipv6_udp("2001:db8:e::1", sport=10000 + i)) for i in range(flows)
        )
        testutils.verify_no_other_packets(self)
        assert set(ports) == set(ECMP_PORTS), f"some members got nothing: {dict(ports)}"
        expected = flows / len(ECMP_PORTS)
        chi2 = sum((ports[p] - expected) ** 2 / expected for p in ECMP_PORTS)
        assert chi2 < self.CHI2_CRITICAL_DF3_ALPHA_0_001, f"uneven spread {dict(ports)}"

    def test_flow_label_alone_spreads_flows(self) -> None:
        """Tunnelled traffic differs only in the flow label (RFC 6438): it must still spread."""
        self.setup_ecmp()
        ports = {
            self.send_and_locate(ipv6_udp("2001:db8:e::1", fl=label)) for label in range(1, 65)
        }
        testutils.verify_no_other_packets(self)
        assert len(ports) >= 3, f"64 flow labels used only ports {sorted(ports)}"

    def test_member_choice_is_crc16_of_the_key_modulo_the_group(self) -> None:
        """The model of BMv2's selector (icpn.hashing.ecmp_member): member i of a one-shot
        group, in the order the route lists its next hops, for i = crc16(key) % n."""
        self.setup_ecmp()
        rng = random.Random(5)
        for _ in range(64):
            sport, fl = rng.getrandbits(16), rng.getrandbits(20)
            pkt = ipv6_udp("2001:db8:e::1", sport=sport, fl=fl)
            port = self.send_and_locate(pkt)
            key = ecmp_key(SRC, "2001:db8:e::1", fl, 17, sport, 4791)
            assert port == ECMP_PORTS[hashing.ecmp_member(key, len(ECMP_PORTS))]
        testutils.verify_no_other_packets(self)

    def test_weights_replicate_members_as_the_model_says(self) -> None:
        weights = [3, 1, 2, 1]
        self.insert(
            [
                my_station(ROUTER_MAC),
                route(
                    "2001:db8:e::/48",
                    [
                        NextHop(p, ROUTER_MAC, NEIGHBOR_MACS[p], weight=w)
                        for p, w in zip(ECMP_PORTS, weights, strict=True)
                    ],
                ),
            ]
        )
        for sport in range(3000, 3064):
            port = self.send_and_locate(ipv6_udp("2001:db8:e::1", sport=sport))
            key = ecmp_key(SRC, "2001:db8:e::1", 0, 17, sport, 4791)
            assert port == ECMP_PORTS[hashing.weighted_member(key, weights)], f"sport {sport}"
        testutils.verify_no_other_packets(self)

    def test_same_flow_stays_on_one_member(self) -> None:
        self.setup_ecmp()
        for i in range(8):
            pkt = ipv6_udp("2001:db8:e::1", sport=20000 + i, fl=i)
            ports = {self.send_and_locate(pkt) for _ in range(5)}
            assert len(ports) == 1, f"flow {i} was split over ports {sorted(ports)}"
        testutils.verify_no_other_packets(self)


class TestNonIpv6(RoutingTest):
    """Documented behaviour: the core is IPv6-only. Any other frame (ARP, IPv4, unknown
    EtherTypes) is dropped and counted under NOT_IPV6; IPv4 travels only inside SRv6."""

    @pytest.mark.parametrize(
        "frame",
        [
            Ether(src=HOST_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="192.0.2.1"),
            Ether(src=HOST_MAC, dst=ROUTER_MAC) / IP(src="192.0.2.1", dst="198.51.100.1") / UDP(),
            Ether(src=HOST_MAC, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x00" * 46),
        ],
        ids=["arp", "ipv4", "lldp"],
    )
    def test_dropped_and_counted(self, frame: Packet) -> None:
        self.insert([my_station(ROUTER_MAC), route("::/0", [next_hop(2)])])
        before = self.drops(DropReason.NOT_IPV6)
        testutils.send_packet(self, 1, frame)
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.NOT_IPV6) - before == 1


class TestReadBack(RoutingTest):
    def test_written_entries_read_back_identically(self) -> None:
        """Golden state: what we wrote is exactly what the switch reports."""
        entries = [
            my_station(ROUTER_MAC),
            route("2001:db8:2::/48", [next_hop(2)]),
            route("2001:db8:e::/48", [next_hop(p) for p in ECMP_PORTS]),
        ]
        self.insert(entries)
        read = self.sw.read(fy.P4TableEntry())
        schema = self.sw.schema
        assert sorted(canonical(e, schema) for e in read) == sorted(
            canonical(e, schema) for e in entries
        )
