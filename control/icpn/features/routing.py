"""P4Runtime entities for the routing feature (``p4src/v1model/include/control/routing.p4``)
and the ACL that sits after it. The controller and the PTF tests build entries only through
these functions, so table, field and action names are spelled in one place.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import finsy as fy

from icpn.constants import (
    ETHERTYPE_IPV6,
    ICMPV6_NEIGHBOR_SOLICITATION,
    ICMPV6_ROUTER_SOLICITATION,
    IP_PROTO_ICMPV6,
)

MY_STATION = "my_station"
ROUTING_V6 = "routing_v6"
ROUTING_V4 = "routing_v4"
ACL = "acl"
DROP_COUNTER = "drop_reasons"


@dataclass(frozen=True)
class NextHop:
    """Where a route sends packets: a port and the MACs to write (ours, the neighbour's)."""

    port: int
    router_mac: str
    neighbor_mac: str
    weight: int = 1


def my_station(router_mac: str) -> fy.P4TableEntry:
    """Frames to this MAC are routed; others are dropped as not ours."""
    return fy.P4TableEntry(
        MY_STATION,
        match=fy.P4TableMatch(eth_dst=router_mac),
        action=fy.P4TableAction("set_my_station"),
    )


def route(prefix: str, next_hops: Sequence[NextHop]) -> fy.P4TableEntry:
    """An IPv6 route; several next hops make an ECMP group (one-shot action selector),
    weighted by ``NextHop.weight`` (WCMP)."""
    network = ipaddress.IPv6Network(prefix)  # raises ValueError with the bad prefix
    if not next_hops:
        raise ValueError(f"route {prefix}: no next hop")
    actions = [
        (
            nh.weight,
            fy.P4TableAction(
                "set_next_hop", port=nh.port, smac=nh.router_mac, dmac=nh.neighbor_mac
            ),
        )
        for nh in next_hops
    ]
    return fy.P4TableEntry(
        ROUTING_V6,
        match=fy.P4TableMatch(ipv6_dst=str(network)),
        action=fy.P4IndirectAction(actions),
    )


def route_v4(prefix: str, next_hop: NextHop) -> fy.P4TableEntry:
    """An IPv4 route, used for packets that End.DT4 decapsulated (the core is IPv6-only)."""
    network = ipaddress.IPv4Network(prefix)
    action = fy.P4TableAction(
        "set_next_hop_v4", port=next_hop.port, smac=next_hop.router_mac, dmac=next_hop.neighbor_mac
    )
    return fy.P4TableEntry(ROUTING_V4, match=fy.P4TableMatch(ipv4_dst=str(network)), action=action)


def punt_icmp(icmp_type: int, priority: int = 10) -> fy.P4TableEntry:
    """Send IPv6 ICMPv6 messages of ``icmp_type`` to the controller."""
    return fy.P4TableEntry(
        ACL,
        match=fy.P4TableMatch(
            eth_type=ETHERTYPE_IPV6, ip_next_hdr=IP_PROTO_ICMPV6, icmp_type=icmp_type
        ),
        action=fy.P4TableAction("punt_to_cpu"),
        priority=priority,
    )


def punt_neighbor_solicitations(priority: int = 10) -> fy.P4TableEntry:
    """Send IPv6 neighbour solicitations to the controller (it answers for the router)."""
    return punt_icmp(ICMPV6_NEIGHBOR_SOLICITATION, priority)


def punt_router_solicitations(priority: int = 10) -> fy.P4TableEntry:
    """Send IPv6 router solicitations to the controller (it advertises the router)."""
    return punt_icmp(ICMPV6_ROUTER_SOLICITATION, priority)


def deny(priority: int, **match: Any) -> fy.P4TableEntry:
    """Drop what matches (counted as ACL_DENY), after everything else in ingress: routing,
    counters and the sketch have seen the packet. Fields: ingress_port, eth_dst, eth_type,
    ip_next_hdr, icmp_type, l4_dst_port (ternary)."""
    return fy.P4TableEntry(
        ACL, match=fy.P4TableMatch(match), action=fy.P4TableAction("deny"), priority=priority
    )
