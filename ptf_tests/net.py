"""The PTF suite's test network: addresses, MACs and packet helpers shared by the tests.

Switch under test: router MAC ROUTER_MAC, ports 1..5; port 1 faces hosts (edge), ports 2..5
face neighbours with MACs NEIGHBOR_MACS. A correct router rewrites MACs and spends a hop.
"""

from __future__ import annotations

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from icpn.constants import ALTMARK_OPT_TYPE, APN6_OPT_TYPE, IOAM_DEX_OPT_TYPE, IOAM_OPT_TYPE
from icpn.features.routing import NextHop

ROUTER_MAC = "00:00:00:00:aa:01"
HOST_MAC = "00:00:00:00:00:01"
NEIGHBOR_MACS = {port: f"00:00:00:00:00:{port:02x}" for port in range(2, 6)}
HOST_SRC = "2001:db8:1::10"
#: An option type no icpn node knows, act bits 00 (skip), chg 1: RFC 3692's experimental
#: 0x3E. Never one of the configurable codepoints, whatever they are set to.
UNKNOWN_OPT = 0x3E
assert UNKNOWN_OPT not in (APN6_OPT_TYPE, IOAM_DEX_OPT_TYPE, ALTMARK_OPT_TYPE, IOAM_OPT_TYPE)


def next_hop(port: int) -> NextHop:
    return NextHop(port, ROUTER_MAC, NEIGHBOR_MACS[port])


def to_router(l3: Packet) -> Packet:
    return Ether(src=HOST_MAC, dst=ROUTER_MAC) / l3


def routed(pkt: Packet, port: int, *, spend_hop: bool = True) -> Packet:
    """``pkt`` as a correct router emits it on ``port``: new MACs, one hop spent on the
    outermost IP header (unless it was just pushed by this node)."""
    out = pkt.copy()
    out[Ether].src = ROUTER_MAC
    out[Ether].dst = NEIGHBOR_MACS[port]
    if spend_hop:
        if IPv6 in out:
            out[IPv6].hlim -= 1
        else:
            out[IP].ttl -= 1
            del out[IP].chksum
    return Ether(bytes(out))
