"""Fuzzing the parser with scapy's ``fuzz()``: 1200 variants of every header the pipeline
parses. Afterwards the switch still forwards normal traffic, and every fuzzed packet is
accounted for: forwarded, or dropped and counted under exactly one reason."""

from __future__ import annotations

import random
import time

from ptf import testutils
from scapy.compat import raw
from scapy.contrib.roce import BTH
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrSegmentRouting,
    Pad1,
    PadN,
)
from scapy.packet import Packet, Raw, fuzz

from icpn.constants import DropReason
from icpn.features.routing import DROP_COUNTER, my_station, route
from icpn.packets import APN6, IOAM, AltMark, preallocated_trace
from ptf_tests.base import P4RuntimeTest
from ptf_tests.net import HOST_SRC, ROUTER_MAC, UNKNOWN_OPT, next_hop, routed, to_router

VARIANTS = 1200
BURST = 10
SEED = 20261121


def templates() -> list[Packet]:
    """Headers to fuzz, each under a valid IPv6 header (fuzzing IPv6 itself mostly makes
    packets for other routers, which tells us little about the parser)."""
    return [
        IPv6ExtHdrHopByHop(options=[APN6(apn_id=1)]) / UDP(),
        IPv6ExtHdrHopByHop(options=[APN6(), AltMark(), IOAM(data=preallocated_trace(0xC00000, 3))]),
        IPv6ExtHdrHopByHop(options=[PadN(otype=UNKNOWN_OPT, optdata=b"abc"), AltMark()]) / UDP(),
        IPv6ExtHdrSegmentRouting(addresses=["fc00::1", "fc00::2", "fc00::3"]) / IPv6() / UDP(),
        IPv6ExtHdrHopByHop(options=[APN6()]) / IPv6ExtHdrSegmentRouting(addresses=["fc00::1"]),
        UDP(dport=4791) / BTH(),
        IPv6ExtHdrDestOpt(options=[APN6(apn_id=3)])
        / IPv6ExtHdrSegmentRouting(addresses=["fc00::1", "fc00::2"])
        / UDP(),
        IPv6ExtHdrHopByHop(
            options=[IOAM(data=preallocated_trace(0xF00000, 2)), Pad1(), Pad1(), AltMark()]
        ),
    ]


def fuzzed_packets() -> list[bytes]:
    random.seed(SEED)
    shapes = templates()
    out: list[bytes] = []
    for attempt in range(10 * VARIANTS):  # bounded: some draws cannot be built at all
        if len(out) == VARIANTS:
            break
        shape = shapes[attempt % len(shapes)]
        ip = IPv6(src=HOST_SRC, dst="2001:db8:2::10")
        try:
            out.append(raw(to_router(ip / fuzz(shape.copy()))))
        except (ValueError, OverflowError):  # e.g. an option longer than 255 octets
            continue
    assert len(out) == VARIANTS, f"only {len(out)} buildable variants"
    return out


class TestFuzz(P4RuntimeTest):
    def test_fuzzed_headers_are_all_accounted_for(self) -> None:
        self.insert([my_station(ROUTER_MAC), route("::/0", [next_hop(2)])])
        before = self.sw.read_counters(DROP_COUNTER)
        packets = fuzzed_packets()
        forwarded = 0
        # Small bursts, drained in between: BMv2 (with per-packet logging) reads its ports
        # slowly, and a packet lost before the pipeline would make the accounting fail.
        for chunk_start in range(0, len(packets), BURST):
            for pkt in packets[chunk_start : chunk_start + BURST]:
                self.dataplane.send(0, 1, pkt)
            forwarded += self.drain(timeout=0.2)
        after = self.sw.read_counters(DROP_COUNTER)
        dropped = {
            DropReason(i).name: after[i].packet_count - before[i].packet_count
            for i in after
            if after[i].packet_count != before[i].packet_count
        }
        assert forwarded + sum(dropped.values()) == len(packets), (
            f"sent {len(packets)}, forwarded {forwarded}, dropped {dropped}"
        )
        assert forwarded > 0 and sum(dropped.values()) > 0, "fuzzing exercised only one path"
        ok = to_router(IPv6(src=HOST_SRC, dst="2001:db8:2::10") / UDP() / Raw(b"alive"))
        testutils.send_packet(self, 1, ok)
        testutils.verify_packet(self, routed(ok, 2), 2)
        testutils.verify_no_other_packets(self)

    def drain(self, timeout: float) -> int:
        """Count packets arriving on any port until none has come for ``timeout`` s."""
        count = 0
        deadline = time.monotonic() + 60  # hard bound for the whole drain
        while time.monotonic() < deadline:
            result = self.dataplane.poll(device_number=0, timeout=timeout)
            if not isinstance(result, self.dataplane.PollSuccess):
                return count
            assert result.port == 2, f"fuzzed packet left on port {result.port}"
            count += 1
        return count
