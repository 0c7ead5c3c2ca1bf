"""Builders for SRv6 encapsulation (RFC 8986 H.Encaps / H.Encaps.Red; RFC 8754 SRH) with
the icpn outer Hop-by-Hop header, and for the packet a decapsulating node delivers.

Segments are given in *path order* (first segment first); the SRH lists them reversed
(list[0] is the last segment), which is what ``IPv6ExtHdrSegmentRouting(addresses=...)``
expects, so callers never reverse lists themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from scapy.layers.inet import IP
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrSegmentRouting,
)
from scapy.packet import Packet

from icpn.constants import IP_PROTO_IPV4, IP_PROTO_IPV6


def h_encaps(
    inner: Packet,
    *,
    src: str,
    segments: Sequence[str],
    hbh_options: Sequence[Packet] = (),
    reduced: bool = False,
    flow_label: int = 0,
    tc: int = 0,
    hlim: int = 64,
    tag: int = 0,
) -> Packet:
    """Outer IPv6 (DA = first segment) / [HBH with ``hbh_options``] / SRH / ``inner``.

    With ``reduced`` (H.Encaps.Red) the first segment is left out of the SRH, and a
    single-segment policy carries no SRH at all.
    """
    if not segments:
        raise ValueError("an SR policy needs at least one segment")
    if isinstance(inner, IPv6):
        inner_nh = IP_PROTO_IPV6
    elif isinstance(inner, IP):
        inner_nh = IP_PROTO_IPV4
    else:
        raise ValueError(f"H.Encaps carries IPv6 or IPv4, not {inner.name}")
    outer: Packet = IPv6(src=src, dst=segments[0], fl=flow_label, tc=tc, hlim=hlim)
    if hbh_options:
        outer = outer / IPv6ExtHdrHopByHop(options=list(hbh_options))
    listed = list(segments[1:] if reduced else segments)
    if listed:
        outer = outer / IPv6ExtHdrSegmentRouting(
            nh=inner_nh,
            addresses=list(reversed(listed)),
            segleft=len(segments) - 1,
            lastentry=len(listed) - 1,
            tag=tag,
        )
    else:
        outer.lastlayer().nh = inner_nh
    result: Packet = outer / inner
    return result


def inner_packet(pkt: Packet) -> Packet:
    """The packet an End.DT6/End.DT4 node hands on: everything after the outer IPv6 header
    and its extension headers (HBH, DOH, SRH)."""
    layer = pkt[IPv6].payload
    while isinstance(layer, IPv6ExtHdrHopByHop | IPv6ExtHdrDestOpt | IPv6ExtHdrSegmentRouting):
        layer = layer.payload
    inner: Packet = layer.copy()
    return inner


def srh_of(pkt: Packet) -> IPv6ExtHdrSegmentRouting | None:
    srh = pkt.getlayer(IPv6ExtHdrSegmentRouting)
    return srh if isinstance(srh, IPv6ExtHdrSegmentRouting) else None
