"""Routers that answer neighbour solicitations (RFC 4861), through the controller.

Hosts on an edge port reach the rest of the network through a gateway address, the first
address of their network (``2001:db8:1::1`` for ``2001:db8:1::10/64``). The switch owns it
but has no IPv6 stack: the ACL punts every Neighbor Solicitation to the controller
(:func:`icpn.features.routing.punt_neighbor_solicitations`), and the controller answers
those for the switch's gateway addresses on the port they came from with a Neighbor
Advertisement carrying the router MAC, sent back out of that port (packet-out, by
:class:`icpn.routers.RouterResponder`, which answers everything else a switch punts too).
So hosts resolve their gateway by themselves, as on any router, instead of having its MAC
pinned.

Solicitations for other targets, duplicate address detection (unspecified source) and
malformed ones are ignored; answers are rate-limited (a token bucket in the responder).
"""

from __future__ import annotations

import ipaddress

from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from icpn.intent import Intent

#: RFC 4861 7.1.2: Neighbor Discovery messages are sent, and accepted, with hop limit 255.
ND_HOP_LIMIT = 255


def gateway_of(network_address: str) -> str:
    """The gateway address of an interface address with its prefix: the network's first."""
    network = ipaddress.ip_interface(network_address).network
    return str(network.network_address + 1)


def router_addresses(intent: Intent, switch: str) -> dict[int, frozenset[str]]:
    """Per edge port of ``switch``: the gateway addresses it answers for there (its hosts'
    networks, and the collector's /64)."""
    found: dict[int, set[str]] = {}
    for host in intent.hosts.values():
        if host.switch == switch:
            found.setdefault(host.port, set()).add(gateway_of(host.address))
    collector = intent.collector
    if collector is not None:
        attach, _, port = collector.attach.partition(":")
        if attach == switch:
            found.setdefault(int(port), set()).add(gateway_of(f"{collector.address}/64"))
    return {port: frozenset(addresses) for port, addresses in found.items()}


def advertisement(frame: bytes, addresses: frozenset[str], router_mac: str) -> bytes | None:
    """The Neighbor Advertisement answering ``frame`` (an Ethernet frame), or None when it
    is not a solicitation for one of ``addresses`` from a unicast source."""
    try:
        packet = Ether(frame)
    except Exception:  # scapy raises many kinds on garbage
        return None
    if ICMPv6ND_NS not in packet or IPv6 not in packet:
        return None
    solicitation = packet[ICMPv6ND_NS]
    target = str(ipaddress.IPv6Address(solicitation.tgt))
    source = ipaddress.IPv6Address(packet[IPv6].src)
    if target not in addresses or source.is_unspecified or packet[IPv6].hlim != ND_HOP_LIMIT:
        return None
    # RFC 4861 7.2.4: solicited, to the solicitation's source; Router and Override set.
    answer = (
        Ether(src=router_mac, dst=packet.src)
        / IPv6(src=target, dst=str(source), hlim=ND_HOP_LIMIT)
        / ICMPv6ND_NA(tgt=target, R=1, S=1, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=router_mac)
    )
    return bytes(answer)
