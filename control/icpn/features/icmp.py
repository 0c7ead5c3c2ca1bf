"""P4Runtime entities for routers that answer (``p4src/v1model/include/control/icmp.p4``):
the router's own addresses, the egress MTU per port, which drops are punted to the controller
and at what rate. The controller (:mod:`icpn.routers`) answers what is punted.
"""

from __future__ import annotations

import ipaddress

import finsy as fy

from icpn.constants import IPV6_MIN_MTU, PUNTABLE_DROPS, DropReason

MY_ADDRESS = "my_address"
PORT_MTU = "port_mtu"
PUNT_POLICY = "punt_policy"
PUNT_METER = "punt_rate"
PUNT_COUNTER = "punts"
#: The tables of this feature (a program without them cannot take its entities).
TABLES = frozenset({MY_ADDRESS, PORT_MTU, PUNT_POLICY})
#: The largest MTU the port_mtu check takes (16-bit field; BMv2 frames stay far below).
MAX_MTU = 0xFFFF


def my_address(address: str) -> fy.P4TableEntry:
    """A packet to ``address`` (with nothing left to route) is the router's own."""
    return fy.P4TableEntry(
        MY_ADDRESS,
        match=fy.P4TableMatch(ipv6_dst=str(ipaddress.IPv6Address(address))),
        action=fy.P4TableAction("to_router"),
    )


def port_mtu(port: int, mtu: int) -> fy.P4TableEntry:
    """Packets larger than ``mtu`` octets (IPv6 header included) do not leave ``port``."""
    if not IPV6_MIN_MTU <= mtu <= MAX_MTU:
        raise ValueError(f"MTU {mtu} of port {port}: IPv6 needs {IPV6_MIN_MTU} to {MAX_MTU}")
    return fy.P4TableEntry(
        PORT_MTU, match=fy.P4TableMatch(port=port), action=fy.P4TableAction("set_mtu", mtu=mtu)
    )


def punt_policy(reason: DropReason) -> fy.P4TableEntry:
    """Send what would be dropped for ``reason`` to the controller instead."""
    if reason not in PUNTABLE_DROPS:
        raise ValueError(f"{reason.name} is not a drop the controller answers")
    return fy.P4TableEntry(
        PUNT_POLICY,
        match=fy.P4TableMatch(reason=int(reason)),
        action=fy.P4TableAction("punt"),
    )


def punt_rate(reason: DropReason, packets_per_s: int, burst: int) -> fy.P4MeterEntry:
    """At most ``packets_per_s`` punts for ``reason`` (bursts of ``burst``); the rest stay
    dropped (RFC 4443 2.4(f)). Both rates of the packet meter are the same, so over it the
    colour is red."""
    if packets_per_s < 1 or burst < 1:
        raise ValueError(f"punt rate {packets_per_s}/s, burst {burst}: both must be >= 1")
    return fy.P4MeterEntry(
        PUNT_METER,
        index=int(reason),
        config=fy.P4MeterConfig(cir=packets_per_s, cburst=burst, pir=packets_per_s, pburst=burst),
    )
