"""ICMPv6 messages a router sends (RFC 4443): Echo Replies, Destination Unreachable, Packet
Too Big and Time Exceeded, built from the packet the switch punted.

Pure functions over bytes, so they are tested without a switch. What they guarantee:

* no error about a packet that must not get one (RFC 4443 2.4(e)): an ICMPv6 error or a
  Redirect, a packet to a multicast address or sent as link-layer multicast (Packet Too Big
  excepted), a packet whose source does not name a single node;
* an error carries as much of the invoking packet as fits in the IPv6 minimum MTU
  (RFC 4443 2.4(c)): the whole error is at most 1280 octets;
* a packet this router encapsulated (its outer source is one of the router's own
  addresses) is answered about the packet the source sent, the inner one, to its source;
  a Packet Too Big then reports the MTU less what the encapsulation adds, which is what
  the source must fit into.
"""

from __future__ import annotations

import enum
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.packet import Packet, Raw

from icpn.constants import (
    ETHERTYPE_IPV6,
    IP_PROTO_DSTOPTS,
    IP_PROTO_HOPOPTS,
    IP_PROTO_ICMPV6,
    IP_PROTO_IPV6,
    IP_PROTO_ROUTING,
    IP_PROTO_UDP,
    IPV6_MIN_MTU,
)

#: Hop limit of the messages a router originates (RFC 4443 2.4 leaves it to the node; Linux
#: uses its default, 64).
ICMP_HOP_LIMIT = 64
ICMPV6_ECHO_REQUEST = 128
ICMPV6_REDIRECT = 137
IPV6_HEADER = 40
ICMP_HEADER = 8
_EXTENSIONS = frozenset({IP_PROTO_HOPOPTS, IP_PROTO_ROUTING, IP_PROTO_DSTOPTS})


class ErrorKind(enum.Enum):
    """The errors a router sends: (type, code) per RFC 4443 3."""

    NO_ROUTE = (1, 0)
    PORT_UNREACHABLE = (1, 4)
    PACKET_TOO_BIG = (2, 0)
    HOP_LIMIT = (3, 0)


@dataclass(frozen=True)
class Invoking:
    """The IPv6 packet an answer is about, and the octets of encapsulation this router had
    put around it (0 when the punted packet is the one the source sent)."""

    packet: bytes
    encapsulation: int = 0

    @property
    def source(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(self.packet[8:24])

    @property
    def destination(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(self.packet[24:40])


def upper_layer(packet: bytes) -> tuple[int, int] | None:
    """(protocol, offset) of what follows the IPv6 header and its extension headers, or
    None when the chain runs past the packet."""
    if len(packet) < IPV6_HEADER:
        return None
    protocol, offset = packet[6], IPV6_HEADER
    while protocol in _EXTENSIONS:
        if offset + 2 > len(packet):
            return None
        protocol, offset = packet[offset], offset + (packet[offset + 1] + 1) * 8
    return (protocol, offset) if offset <= len(packet) else None


def invoking_packet(frame: bytes, own: frozenset[str]) -> Invoking | None:
    """The IPv6 packet in an Ethernet ``frame``; the inner one when the outer header's
    source is one of ``own`` (this router pushed it) and it carries IPv6. None for a frame
    without IPv6."""
    if len(frame) < 14 + IPV6_HEADER or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV6:
        return None
    outer = frame[14:]
    if outer[0] >> 4 != 6:
        return None
    length = min(len(outer), IPV6_HEADER + int.from_bytes(outer[4:6], "big"))
    outer = outer[:length]
    if str(ipaddress.IPv6Address(outer[8:24])) in own:
        found = upper_layer(outer)
        if found is not None and found[0] == IP_PROTO_IPV6 and found[1] + IPV6_HEADER <= length:
            return Invoking(outer[found[1] :], found[1])
    return Invoking(outer)


def may_answer_with_error(invoking: Invoking, kind: ErrorKind, *, eth_multicast: bool) -> bool:
    """RFC 4443 2.4(e): whether an error about ``invoking`` may be sent at all."""
    source = invoking.source
    if source.is_unspecified or source.is_multicast or source.is_loopback:
        return False
    if kind is not ErrorKind.PACKET_TOO_BIG and (
        invoking.destination.is_multicast or eth_multicast
    ):
        return False
    found = upper_layer(invoking.packet)
    if found is not None and found[0] == IP_PROTO_ICMPV6 and found[1] < len(invoking.packet):
        icmp_type = invoking.packet[found[1]]
        if icmp_type < ICMPV6_ECHO_REQUEST or icmp_type == ICMPV6_REDIRECT:
            return False
    return True


def error(invoking: Invoking, kind: ErrorKind, *, source: str, mtu: int = 0) -> bytes:
    """The ICMPv6 error (an IPv6 packet) about ``invoking`` from ``source`` to its source.
    ``mtu``: the egress MTU the packet exceeded (Packet Too Big only), less the
    encapsulation this router adds, and never below the IPv6 minimum."""
    room = IPV6_MIN_MTU - IPV6_HEADER - ICMP_HEADER
    quoted = Raw(invoking.packet[:room])
    header: Packet
    if kind is ErrorKind.PACKET_TOO_BIG:
        header = ICMPv6PacketTooBig(mtu=max(IPV6_MIN_MTU, mtu - invoking.encapsulation))
    elif kind is ErrorKind.HOP_LIMIT:
        header = ICMPv6TimeExceeded(code=kind.value[1])
    else:
        header = ICMPv6DestUnreach(code=kind.value[1])
    ip = IPv6(src=source, dst=str(invoking.source), hlim=ICMP_HOP_LIMIT)
    return bytes(ip / header / quoted)


def answer_to_router(invoking: Invoking) -> bytes | None:
    """What a router answers to a packet addressed to it: an Echo Reply to an Echo Request
    (RFC 4443 4.2: same identifier, sequence and data, from the address it was sent to),
    Port Unreachable to UDP (no UDP service listens, as on a Linux router: what
    ``traceroute`` to a router address waits for); nothing to anything else."""
    found = upper_layer(invoking.packet)
    if found is None or invoking.encapsulation:
        return None
    protocol, offset = found
    packet = invoking.packet
    if protocol == IP_PROTO_ICMPV6 and offset + ICMP_HEADER <= len(packet):
        if packet[offset] != ICMPV6_ECHO_REQUEST or packet[offset + 1] != 0:
            return None
        ident = int.from_bytes(packet[offset + 4 : offset + 6], "big")
        seq = int.from_bytes(packet[offset + 6 : offset + 8], "big")
        data = packet[offset + ICMP_HEADER :]
        reply = IPv6(src=str(invoking.destination), dst=str(invoking.source), hlim=ICMP_HOP_LIMIT)
        return bytes(reply / ICMPv6EchoReply(id=ident, seq=seq, data=data))
    if protocol == IP_PROTO_UDP and not invoking.destination.is_multicast:
        return error(invoking, ErrorKind.PORT_UNREACHABLE, source=str(invoking.destination))
    return None


class TokenBucket:
    """At most ``rate`` tokens a second, ``burst`` at once: the controller's rate limit on
    what it sends (RFC 4443 2.4(f)), behind the data plane's punt meter."""

    def __init__(
        self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = rate if burst is None else burst
        self.clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
