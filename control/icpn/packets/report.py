"""The icpn trace report (docs/telemetry-report.md) as a scapy layer: what a decapsulating
node sends the collector over UDP for every traced packet it strips.

After the 20-octet report header come the IOAM option exactly as the packet carried it
(with the exporting node's data added) and the inner packet's IP header and first four L4
octets; :meth:`TraceReport.option` and :meth:`TraceReport.inner_flow` decode them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scapy.fields import BitField, IntField, StrField, XByteField, XShortField
from scapy.layers.inet import UDP
from scapy.packet import Packet, bind_layers

from icpn.constants import REPORT_UDP_PORT
from icpn.packets.options import IOAM

REPORT_TYPE_IOAM_TRACE = 1
FLAG_OVERFLOW = 0x80
#: The reported packet carried alternate marking (RFC 9343); FLAG_COLOUR is then its L bit.
FLAG_ALTMARK = 0x40
FLAG_COLOUR = 0x20


@dataclass(frozen=True)
class InnerFlow:
    """What identifies the reported packet: its inner IP addresses, protocol and ports."""

    src: str
    dst: str
    protocol: int
    src_port: int | None
    dst_port: int | None


class TraceReport(Packet):
    name = "icpn trace report"
    fields_desc = [
        BitField("version", 1, 4),
        BitField("type", REPORT_TYPE_IOAM_TRACE, 4),
        XByteField("flags", 0),
        XShortField("reserved", 0),
        IntField("node_id", 0),
        IntField("seconds", 0),
        IntField("nanoseconds", 0),
        IntField("sequence", 0),
        StrField("body", b""),
    ]

    def _split(self) -> tuple[bytes, bytes]:
        body = bytes(self.body)
        if len(body) < 2 or len(body) < body[1] + 2:
            raise ValueError(f"report body of {len(body)} octets holds no whole IOAM option")
        end = body[1] + 2
        return body[:end], body[end:]

    def option(self) -> IOAM:
        """The IOAM option (container and trace) as the exporting node forwarded it."""
        return IOAM(self._split()[0])

    def inner_flow(self) -> InnerFlow:
        """Decode the inner IP header and L4 ports the report ends with."""
        data = self._split()[1]
        if len(data) >= 40 and data[0] >> 4 == 6:
            src, dst = (str(ipaddress.IPv6Address(data[i : i + 16])) for i in (8, 24))
            protocol, rest = data[6], data[40:]
        elif len(data) >= 20 and data[0] >> 4 == 4:
            src, dst = (str(ipaddress.IPv4Address(data[i : i + 4])) for i in (12, 16))
            protocol, rest = data[9], data[20:]
        else:
            raise ValueError(f"report ends with {len(data)} octets that are no IP header")
        if len(rest) < 4:
            return InnerFlow(src, dst, protocol, None, None)
        return InnerFlow(
            src, dst, protocol, int.from_bytes(rest[0:2], "big"), int.from_bytes(rest[2:4], "big")
        )


bind_layers(UDP, TraceReport, dport=REPORT_UDP_PORT)
