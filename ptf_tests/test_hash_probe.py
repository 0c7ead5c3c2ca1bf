"""icpn.hashing against BMv2 itself: random field values of awkward widths, hashed by the
switch (p4src/v1model/hash_probe.p4) and by Python, must agree bit for bit."""

from __future__ import annotations

import random

from ptf import testutils
from scapy.fields import BitField
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from icpn import hashing
from ptf_tests.base import P4RuntimeTest

PROBES = 200
ECMP_WIDTHS = (128, 128, 20, 8, 16, 16)


class Probe(Packet):
    name = "hash probe"
    fields_desc = [  # noqa: RUF012 (scapy declares fields as a class-level list)
        BitField("a", 0, 20),
        BitField("b", 0, 8),
        BitField("c", 0, 3),
        BitField("pad1", 0, 1),
        BitField("src", 0, 128),
        BitField("dst", 0, 128),
        BitField("flow_label", 0, 20),
        BitField("next_hdr", 0, 8),
        BitField("sport", 0, 16),
        BitField("dport", 0, 16),
        BitField("pad2", 0, 4),
        BitField("crc16_abc", 0, 16),
        BitField("crc32_abc", 0, 32),
        BitField("crc16_ecmp", 0, 16),
        BitField("crc32_ecmp", 0, 32),
    ]


class TestHashProbe(P4RuntimeTest):
    PROGRAM = "hash_probe"
    NUM_PORTS = 1

    def test_bmv2_hashes_match_the_python_model(self) -> None:
        rng = random.Random(11)
        for i in range(PROBES):
            abc = [(rng.getrandbits(20), 20), (rng.getrandbits(8), 8), (rng.getrandbits(3), 3)]
            ecmp = [(rng.getrandbits(w), w) for w in ECMP_WIDTHS]
            probe = Probe(
                a=abc[0][0],
                b=abc[1][0],
                c=abc[2][0],
                src=ecmp[0][0],
                dst=ecmp[1][0],
                flow_label=ecmp[2][0],
                next_hdr=ecmp[3][0],
                sport=ecmp[4][0],
                dport=ecmp[5][0],
            )
            testutils.send_packet(self, 1, Ether(type=0x88B5) / probe)
            result = self.dataplane.poll(device_number=0, port_number=1, timeout=2)
            assert isinstance(result, self.dataplane.PollSuccess), f"probe {i} lost"
            got = Probe(bytes(result.packet)[14:])
            assert got.crc16_abc == hashing.bmv2_crc16(*abc), f"probe {i}"
            assert got.crc32_abc == hashing.bmv2_crc32(*abc), f"probe {i}"
            assert got.crc16_ecmp == hashing.bmv2_crc16(*ecmp), f"probe {i}"
            assert got.crc32_ecmp == hashing.bmv2_crc32(*ecmp), f"probe {i}"
