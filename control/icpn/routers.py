"""Routers that answer, through the controller (RFC 4861, RFC 4443): one responder per switch
reads what the switch punts (packet-in: the frame, its ingress port, the reason code and the
MTU it exceeded, ``icmp.p4``) and sends the answer back out of the port the packet came in
on (packet-out), towards the neighbour it came from:

* a Neighbor Solicitation for a router address: a Neighbor Advertisement
  (:func:`icpn.neighbor.advertisement`);
* a Router Solicitation on an advertising port: a Router Advertisement; and, where the intent
  asks (``routers.advertise``), unsolicited ones every interval (RFC 4861 6.2);
* a packet addressed to the router (reason TO_ROUTER): an Echo Reply, or Port Unreachable
  for UDP (:func:`icpn.icmp.answer_to_router`);
* hop-limit expiry, a route miss, a packet over the egress MTU: Time Exceeded, Destination
  Unreachable (no route), Packet Too Big (:func:`icpn.icmp.error`), from the router's
  address on the ingress port (its gateway there) or else its loopback (the node SID).

Rates: the data plane meters punts per reason; here, neighbour answers and ICMPv6 messages
each have a token bucket (RFC 4443 2.4(f)), so a storm costs a bounded number of
packet-outs.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from icpn.constants import DropReason
from icpn.icmp import (
    ErrorKind,
    TokenBucket,
    answer_to_router,
    error,
    invoking_packet,
    may_answer_with_error,
)
from icpn.neighbor import ND_HOP_LIMIT, advertisement

LOG = logging.getLogger(__name__)

#: Neighbour answers per second (burst: the same number) a switch's responder sends at most.
ANSWERS_PER_SECOND = 100.0
#: RFC 4861 10: a router answers solicitations with at most one RA per this many seconds.
MIN_DELAY_BETWEEN_RAS_S = 3.0
ALL_NODES = "ff02::1"
ALL_NODES_MAC = "33:33:00:00:00:01"
_ERRORS = {
    DropReason.HOP_LIMIT: ErrorKind.HOP_LIMIT,
    DropReason.NO_ROUTE: ErrorKind.NO_ROUTE,
    DropReason.PACKET_TOO_BIG: ErrorKind.PACKET_TOO_BIG,
}


def link_local(mac: str) -> str:
    """The router's link-local address: fe80::/64 with the modified EUI-64 of its MAC
    (RFC 4291 2.5.1, appendix A), as Linux forms it."""
    octets = bytes.fromhex(mac.replace(":", ""))
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return str(ipaddress.IPv6Address(b"\xfe\x80" + b"\x00" * 6 + eui))


@dataclass(frozen=True)
class Advertising:
    """Router Advertisements (RFC 4861 6.2.1): sent every ``interval_s`` (jittered down to
    a third of it, as MinRtrAdvInterval's default) and in answer to solicitations."""

    interval_s: float = 200.0
    lifetime_s: int = 1800


@dataclass(frozen=True)
class RouterSettings:
    """What a switch's responder needs to know of it, rendered from the intent."""

    router_mac: str
    #: the node's loopback address (its SID): the source of errors on core ports
    loopback: str
    #: per edge port: the addresses the router answers for there (gateways, link-local)
    addresses: Mapping[int, frozenset[str]] = field(default_factory=dict)
    #: per port: what sits there (a host's MAC, the neighbour switch's router MAC)
    neighbor_macs: Mapping[int, str] = field(default_factory=dict)
    #: per port: its MTU (RA's MTU option)
    port_mtu: Mapping[int, int] = field(default_factory=dict)
    #: per edge port: the on-link prefixes it advertises
    prefixes: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    icmp_per_second: float = 100.0
    icmp_burst: float = 20.0
    advertise: Advertising | None = None

    @property
    def own(self) -> frozenset[str]:
        """Every address of the router: a packet with one as its source, it originated."""
        found = {self.loopback}
        for addresses in self.addresses.values():
            found |= addresses
        return frozenset(found)

    def source_on(self, port: int) -> str:
        """The address errors about a packet that came in on ``port`` come from: the
        router's (global) gateway address there, else its loopback."""
        gateways = sorted(a for a in self.addresses.get(port, ()) if not a.startswith("fe80:"))
        return gateways[0] if gateways else self.loopback


def router_advertisement(settings: RouterSettings, port: int) -> bytes:
    """The Router Advertisement for ``port``: to all nodes, from the router's link-local
    address, with its MAC, the port's MTU and its on-link prefixes (L=1; A=0: hosts have
    their addresses from the intent)."""
    advertising = settings.advertise or Advertising()
    ra = (
        Ether(src=settings.router_mac, dst=ALL_NODES_MAC)
        / IPv6(src=link_local(settings.router_mac), dst=ALL_NODES, hlim=ND_HOP_LIMIT)
        / ICMPv6ND_RA(chlim=64, routerlifetime=advertising.lifetime_s)
        / ICMPv6NDOptSrcLLAddr(lladdr=settings.router_mac)
    )
    mtu = settings.port_mtu.get(port)
    if mtu is not None:
        ra = ra / ICMPv6NDOptMTU(mtu=mtu)
    for prefix in settings.prefixes.get(port, ()):
        network = ipaddress.IPv6Network(prefix)
        ra = ra / ICMPv6NDOptPrefixInfo(
            prefix=str(network.network_address),
            prefixlen=network.prefixlen,
            L=1,
            A=0,
            validlifetime=0xFFFFFFFF,
            preferredlifetime=0xFFFFFFFF,
        )
    return bytes(ra)


def is_router_solicitation(frame: bytes) -> bool:
    """A valid Router Solicitation (RFC 4861 6.1.1: hop limit 255, code 0)."""
    try:
        packet = Ether(frame)
    except Exception:  # scapy raises many kinds on garbage
        return False
    return (
        ICMPv6ND_RS in packet
        and packet[IPv6].hlim == ND_HOP_LIMIT
        and packet[ICMPv6ND_RS].code == 0
    )


class PacketSwitch(Protocol):
    """What the responder needs of a switch: :class:`icpn.p4rt.SwitchClient` provides it."""

    def packets_in(self) -> AsyncIterator[Any]: ...

    async def packet_out(self, payload: bytes, **metadata: Any) -> None: ...


@dataclass
class ResponderStats:
    answered: int = 0
    ignored: int = 0
    rate_limited: int = 0
    #: ICMPv6 messages sent, by kind ("echo_reply", "port_unreachable", "hop_limit", ...)
    icmp: dict[str, int] = field(default_factory=dict)
    advertisements: int = 0


class RouterResponder:
    """Answers what one switch punts, and advertises where asked, until cancelled."""

    def __init__(
        self,
        switch: PacketSwitch,
        settings: RouterSettings,
        *,
        nd_rate: float = ANSWERS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.switch = switch
        self.settings = settings
        self.clock = clock
        self.stats = ResponderStats()
        self._nd = TokenBucket(nd_rate, clock=clock)
        self._icmp = TokenBucket(settings.icmp_per_second, settings.icmp_burst, clock=clock)
        self._last_ra: dict[int, float] = {}

    async def run(self) -> None:
        """Until cancelled or the switch's packet-in stream ends (then advertising stops
        too: the next connection starts a new responder)."""
        advertising = None
        if self.settings.advertise is not None:
            advertising = asyncio.create_task(self.advertise_periodically())
        try:
            async for packet in self.switch.packets_in():
                metadata = getattr(packet, "metadata", {}) or {}
                await self.handle(
                    packet.payload,
                    int(packet["ingress_port"]),
                    reason=int(metadata.get("reason", 0) or 0),
                    mtu=int(metadata.get("mtu", 0) or 0),
                )
        finally:
            if advertising is not None:
                advertising.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await advertising

    async def handle(self, frame: bytes, port: int, *, reason: int = 0, mtu: int = 0) -> bool:
        """Answer one punted frame that arrived on ``port``; True if an answer went out."""
        answer = advertisement(
            frame, self.settings.addresses.get(port, frozenset()), self.settings.router_mac
        )
        if answer is not None:
            return await self._send(answer, port, self._nd, "neighbor_advertisement")
        advertises = self.settings.advertise is not None and port in self.settings.prefixes
        if advertises and is_router_solicitation(frame):
            return await self._solicited_advertisement(port)
        if reason == DropReason.TO_ROUTER:
            invoking = invoking_packet(frame, frozenset())
            reply = answer_to_router(invoking) if invoking is not None else None
            if reply is not None:
                label = "echo_reply" if reply[40] == 129 else "port_unreachable"
                return await self._send(self._frame(frame, port, reply), port, self._icmp, label)
        elif reason in _ERRORS:
            kind = _ERRORS[DropReason(reason)]
            invoking = invoking_packet(frame, self.settings.own)
            if invoking is not None and may_answer_with_error(
                invoking, kind, eth_multicast=bool(frame[0] & 1)
            ):
                message = error(invoking, kind, source=self.settings.source_on(port), mtu=mtu)
                return await self._send(
                    self._frame(frame, port, message), port, self._icmp, kind.name.lower()
                )
        self.stats.ignored += 1
        return False

    async def advertise_periodically(self) -> None:
        """Unsolicited RAs on every advertising port, every interval (jittered, RFC 4861
        6.2.4), the first at once."""
        advertising = self.settings.advertise
        assert advertising is not None
        while True:
            for port in sorted(self.settings.prefixes):
                await self.switch.packet_out(
                    router_advertisement(self.settings, port), egress_port=port, _pad=0
                )
                self._last_ra[port] = self.clock()
                self.stats.advertisements += 1
            await asyncio.sleep(random.uniform(advertising.interval_s / 3, advertising.interval_s))

    async def _solicited_advertisement(self, port: int) -> bool:
        last = self._last_ra.get(port)
        if last is not None and self.clock() - last < MIN_DELAY_BETWEEN_RAS_S:
            self.stats.rate_limited += 1  # a recent RA already told the soliciting host
            return False
        self._last_ra[port] = self.clock()
        answer = router_advertisement(self.settings, port)
        sent = await self._send(answer, port, self._nd, "router_advertisement")
        if sent:
            self.stats.advertisements += 1
        return sent

    def _frame(self, punted: bytes, port: int, packet: bytes) -> bytes:
        """``packet`` in a frame back to the neighbour the punted frame came from. A frame
        the switch had already routed carries the router's own MAC as its source: the
        port's neighbour from the intent is the one then."""
        source = ":".join(f"{b:02x}" for b in punted[6:12])
        if source == self.settings.router_mac:
            source = self.settings.neighbor_macs.get(port, source)
        return bytes(Ether(src=self.settings.router_mac, dst=source) / IPv6(packet))

    async def _send(self, frame: bytes, port: int, bucket: TokenBucket, kind: str) -> bool:
        if not bucket.take():
            self.stats.rate_limited += 1
            return False
        await self.switch.packet_out(frame, egress_port=port, _pad=0)
        self.stats.answered += 1
        self.stats.icmp[kind] = self.stats.icmp.get(kind, 0) + 1
        return True
