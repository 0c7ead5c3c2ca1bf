"""Constants shared by the P4 programs and the Python side: the one place they are defined.

The P4 side never spells these numbers itself: ``p4src/shared/constants.p4`` is generated
from this module by :mod:`icpn.codegen` (``make constants``) and a unit test fails when the
committed file and this module disagree. Python code imports the names from here, so a
codepoint, a port number or a drop reason cannot drift between the two.

Values that are not IANA-assigned are *configurable*: the generated P4 wraps them in
``#ifndef`` so ``p4c -DNAME=value`` overrides them at compile time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class P4Const:
    """One constant as both sides see it.

    ``width`` is the P4 bit width (``const bit<width>``); ``configurable`` constants become
    ``#define``s guarded by ``#ifndef`` so a compile-time ``-D`` can replace them. ``radix``
    only chooses how the generated file spells the value (codepoints in hex, sizes in decimal).
    """

    name: str
    value: int
    width: int
    doc: str
    configurable: bool = False
    radix: int = 16


# --- Ethernet / IP numbers (IEEE and IANA registries) -------------------------------------
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD

IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_ICMPV6 = 58

ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136

# --- BMv2 port numbering --------------------------------------------------------------------
#: Port number of the controller (P4Runtime packet-in/out) on BMv2; passed to
#: ``simple_switch_grpc --cpu-port``. 9-bit port space, 255 is outside the data ports we use.
CPU_PORT = 255
PORT_WIDTH = 9


class DropReason(enum.IntEnum):
    """Why the ingress pipeline dropped a packet: the index of the ``drop_reasons`` counter.

    Every drop the program makes is counted under one of these, so a test (or an operator)
    can check that drops add up instead of guessing from silence on a port.
    """

    NONE = 0
    NOT_IPV6 = 1
    NOT_MY_STATION = 2
    NO_ROUTE = 3
    HOP_LIMIT = 4
    ACL_DENY = 5


# --- Table and selector sizes ----------------------------------------------------------------
MY_STATION_TABLE_SIZE = 64
ROUTING_V6_TABLE_SIZE = 4096
ECMP_SELECTOR_SIZE = 1024
ECMP_MAX_GROUP_SIZE = 16
ACL_TABLE_SIZE = 256


def p4_constants() -> list[P4Const]:
    """Everything the generated ``constants.p4`` defines, in file order."""
    consts = [
        P4Const("ETHERTYPE_IPV4", ETHERTYPE_IPV4, 16, "IPv4 (inner payloads only)"),
        P4Const("ETHERTYPE_ARP", ETHERTYPE_ARP, 16, "ARP (not routed: IPv6-only core)"),
        P4Const("ETHERTYPE_IPV6", ETHERTYPE_IPV6, 16, "IPv6"),
        P4Const("IP_PROTO_TCP", IP_PROTO_TCP, 8, "TCP"),
        P4Const("IP_PROTO_UDP", IP_PROTO_UDP, 8, "UDP"),
        P4Const("IP_PROTO_ICMPV6", IP_PROTO_ICMPV6, 8, "ICMPv6"),
        P4Const("CPU_PORT", CPU_PORT, PORT_WIDTH, "BMv2 --cpu-port: packet-in/out"),
        P4Const("MY_STATION_TABLE_SIZE", MY_STATION_TABLE_SIZE, 32, "router MACs", radix=10),
        P4Const("ROUTING_V6_TABLE_SIZE", ROUTING_V6_TABLE_SIZE, 32, "IPv6 LPM routes", radix=10),
        P4Const("ECMP_SELECTOR_SIZE", ECMP_SELECTOR_SIZE, 32, "action selector members", radix=10),
        P4Const("ECMP_MAX_GROUP_SIZE", ECMP_MAX_GROUP_SIZE, 32, "members per ECMP group", radix=10),
        P4Const("ACL_TABLE_SIZE", ACL_TABLE_SIZE, 32, "punt/deny rules", radix=10),
    ]
    consts += [
        P4Const(f"DROP_{reason.name}", reason.value, 8, "drop_reasons counter index", radix=10)
        for reason in DropReason
    ]
    consts.append(P4Const("DROP_REASON_COUNT", len(DropReason), 32, "drop_reasons size", radix=10))
    return consts
