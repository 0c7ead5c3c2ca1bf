"""PTF tests for malformed input (issue: defined behaviour, never a crash): each case is
dropped and counted under its reason, and the switch keeps forwarding afterwards."""

from __future__ import annotations

import pytest
from ptf import testutils
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting, PadN
from scapy.packet import Packet, Raw

from icpn.constants import APN6_OPT_TYPE, DropReason
from icpn.features.routing import DROP_COUNTER, my_station, route
from icpn.packets import APN6
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, ROUTER_MAC, UNKNOWN_OPT, next_hop, routed, to_router

DST = "2001:db8:2::10"


def with_hbh(hbh_bytes: bytes, payload: bytes = b"") -> Packet:
    return to_router(IPv6(src=HOST_SRC, dst=DST, nh=0) / Raw(hbh_bytes + payload))


def apn6_hbh(id_type: int) -> bytes:
    """A 16-octet HBH whose APN6 option claims ``id_type`` with 8 octets of data."""
    return (
        bytes.fromhex("1101")
        + bytes([APN6_OPT_TYPE, 8, id_type])
        + bytes.fromhex("000000 00000001 01020000")
    )


def with_srh(segleft: int, n_segments: int, lastentry: int | None = None) -> Packet:
    srh = IPv6ExtHdrSegmentRouting(
        nh=59,
        addresses=[f"fc00:{i + 1}::1" for i in range(n_segments)],
        segleft=segleft,
        lastentry=lastentry if lastentry is not None else n_segments - 1,
    )
    return to_router(IPv6(src=HOST_SRC, dst=DST) / srh)


MALFORMED: list[tuple[str, Packet, DropReason]] = [
    ("truncated_hbh", with_hbh(bytes.fromhex("1101 1e08 0000")), DropReason.TRUNCATED),
    (
        "option_past_header_end",
        with_hbh(bytes.fromhex("1100 1e09 00000000")),
        DropReason.BAD_OPTION,
    ),
    (
        "apn6_unknown_id_type",
        with_hbh(apn6_hbh(id_type=7), bytes(UDP())),
        DropReason.BAD_OPTION,
    ),
    (
        "apn6_too_short_for_64bit_id",
        with_hbh(apn6_hbh(id_type=2)),
        DropReason.BAD_OPTION,
    ),
    # An SRH this node cannot process is dropped only at one of its SIDs (RFC 8754 4.2):
    # test_conformance.py's TestTransitSrh.
    (
        "too_many_hbh_options",
        to_router(
            IPv6(src=HOST_SRC, dst=DST)
            / IPv6ExtHdrHopByHop(options=[PadN(otype=UNKNOWN_OPT, optdata=b"")] * 9)
            / UDP()
        ),
        DropReason.TOO_MANY_HEADERS,
    ),
]


class SanityTest(P4RuntimeTest):
    def setup_routes(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("::/0", [next_hop(2)])])

    def drops(self, reason: DropReason) -> int:
        return self.counter_packets(DROP_COUNTER, reason.value)

    def check_still_forwarding(self) -> None:
        ok = to_router(IPv6(src=HOST_SRC, dst=DST) / UDP(sport=1, dport=2) / Raw(b"ok"))
        testutils.send_packet(self, 1, ok)
        testutils.verify_packet(self, routed(ok, 2), 2)


class TestMalformed(SanityTest):
    @pytest.mark.parametrize(("case", "pkt", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
    def test_dropped_with_its_reason(self, case: str, pkt: Packet, reason: DropReason) -> None:
        self.setup_routes()
        before = self.drops(reason)
        testutils.send_packet(self, 1, pkt)
        testutils.verify_no_other_packets(self)
        assert self.drops(reason) - before == 1, f"{case}: not counted under {reason.name}"
        self.check_still_forwarding()

    @pytest.mark.parametrize("act_bits", [0b01, 0b10, 0b11])
    def test_unknown_option_whose_act_bits_say_discard(self, act_bits: int) -> None:
        self.setup_routes()
        option = PadN(otype=(act_bits << 6) | (UNKNOWN_OPT & 0x3F), optdata=b"\x00\x00")
        pkt = to_router(IPv6(src=HOST_SRC, dst=DST) / IPv6ExtHdrHopByHop(options=[option]) / UDP())
        before = self.drops(DropReason.OPTION_DISCARD)
        testutils.send_packet(self, 1, pkt)
        testutils.verify_no_other_packets(self)
        assert self.drops(DropReason.OPTION_DISCARD) - before == 1

    def test_valid_apn6_with_parameters_is_forwarded_untouched(self) -> None:
        self.setup_routes()
        apn = APN6(apn_id=0x00070001, para_type=0x8000, params=b"\x00\x00\x00\x2a")
        pkt = to_router(IPv6(src=HOST_SRC, dst=DST) / IPv6ExtHdrHopByHop(options=[apn]) / UDP())
        testutils.send_packet(self, 1, pkt)
        testutils.verify_packet(self, routed(pkt, 2), 2)
        testutils.verify_no_other_packets(self)
