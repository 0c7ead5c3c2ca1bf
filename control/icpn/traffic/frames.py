"""Frames from templates: scapy builds one packet per *shape*, bytes are patched per packet.

Building every packet of a big trace with scapy costs about a millisecond each; here scapy
(with icpn's own layers) builds one template per shape (transport, payload length, marking,
encapsulation) and each packet is a copy of the template with a few fields written in
(addresses, ports, TCP sequence number, RoCE DestQP and PSN), after which the checksums are
recomputed:

* the TCP/UDP checksum (RFC 768, RFC 9293 3.1; over the IPv6 pseudo-header of RFC 8200 8.1,
  taken from the IPv6 header that encloses the transport header);
* the RoCEv2 invariant CRC (InfiniBand Architecture Specification vol. 1, Annex A17
  "RoCEv2", A17.4.3 (ICRC)): CRC-32 over 8 octets of ones (the masked LRH), the IPv6 header
  with traffic class, flow label and hop limit set to ones, the UDP header with its
  checksum set to ones, the BTH with FECN, BECN and its 6 reserved bits set to ones, and
  the rest up to the ICRC, stored least significant octet first — the computation of
  ``scapy.contrib.roce.BTH``, against which the tests check every patched frame.

An app-side APN6 mark puts a Hop-by-Hop header between the IPv6 header and UDP; the RoCE
ICRC is then computed as if that header were absent (what the NIC computed before the host
stack inserted the option): the same value as the unmarked packet's. Annex A17 does not cover
IPv6 extension headers; DESIGN.md 2.6 says never to insert headers inside a RoCE packet, which
is why network-side marking (H.Encaps) is the normal path.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.packet import Packet

from icpn.constants import UDP_PORT_ROCEV2
from icpn.packets import APN6

IPV6_HEADER_BYTES = 40
UDP_HEADER_BYTES = 8
BTH_BYTES = 12
ICRC_BYTES = 4
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17


def ones_sum(data: bytes | bytearray | memoryview) -> int:
    """RFC 1071 one's-complement sum of ``data`` as 16-bit big-endian words, folded to 16
    bits (not inverted). Summed in native order by C code and swapped at the end, which
    RFC 1071 section 2(B) (byte-order independence) allows."""
    mv = memoryview(data)
    if len(mv) % 2:
        mv = memoryview(bytes(mv) + b"\x00")
    total = sum(mv.cast("H"))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    if struct.pack("=H", 1) == b"\x01\x00":  # little-endian host: swap the folded sum
        total = ((total & 0xFF) << 8) | (total >> 8)
    return total


def l4_checksum(frame: bytes | bytearray, ip_off: int, l4_off: int, proto: int) -> int:
    """TCP/UDP checksum of the transport segment at ``l4_off`` (its checksum field taken as
    zero) under the IPv6 header at ``ip_off``. UDP's 0 is sent as 0xFFFF (RFC 768)."""
    seg = bytearray(frame[l4_off:])
    field = 6 if proto == IP_PROTO_UDP else 16
    seg[field : field + 2] = b"\x00\x00"
    pseudo = bytes(frame[ip_off + 8 : ip_off + 40]) + struct.pack(
        "!IxxxB", len(seg), proto
    )  # RFC 8200 8.1: source, destination, upper-layer length, zeros, next header
    total = ones_sum(pseudo) + ones_sum(seg)
    total = (total & 0xFFFF) + (total >> 16)
    csum = (~total) & 0xFFFF
    if proto == IP_PROTO_UDP and csum == 0:
        csum = 0xFFFF
    return csum


def roce_icrc(frame: bytes | bytearray, ip_off: int, udp_off: int) -> bytes:
    """The ICRC (4 octets, as sent) of the RoCEv2 packet whose IPv6 header is at ``ip_off``
    and UDP header at ``udp_off``; the frame's last 4 octets are its ICRC field. Extension
    headers between IPv6 and UDP are left out (see the module docstring)."""
    ip = bytearray(frame[ip_off : ip_off + IPV6_HEADER_BYTES])
    rest = bytearray(frame[udp_off : len(frame) - ICRC_BYTES])
    ip[0] |= 0x0F  # traffic class (high nibble) ...
    ip[1:4] = b"\xff\xff\xff"  # ... rest of traffic class, flow label
    ip[4:6] = struct.pack("!H", len(rest) + ICRC_BYTES)  # payload length without ext headers
    ip[6] = IP_PROTO_UDP
    ip[7] = 0xFF  # hop limit
    rest[6:8] = b"\xff\xff"  # UDP checksum
    rest[UDP_HEADER_BYTES + 4] = 0xFF  # BTH: FECN, BECN, 6 reserved bits
    crc = zlib.crc32(b"\xff" * 8 + bytes(ip) + bytes(rest)) & 0xFFFFFFFF
    return struct.pack("<I", crc)


def _last_ipv6_before(pkt: Packet, l4: Packet) -> Packet:
    """The IPv6 header nearest above ``l4`` (the inner one under H.Encaps)."""
    found: Packet | None = None
    layer: Packet | None = pkt
    while layer is not None and layer is not l4:
        if isinstance(layer, IPv6):
            found = layer
        layer = layer.payload if layer.payload else None
    if found is None:
        raise ValueError("template has no IPv6 header above its transport header")
    return found


def _apn_id_at(pkt: Packet, data: bytes) -> tuple[int, int] | None:
    hbh = pkt.getlayer(IPv6ExtHdrHopByHop)
    if hbh is None or not hbh.options or not isinstance(hbh.options[0], APN6):
        return None
    opt = hbh.options[0]
    width = len(bytes(opt)) - 6 - len(opt.params)  # type, len, id type, flags, para type
    off = len(data) - len(bytes(hbh)) + 2 + 6  # after the HBH's next header and length
    if data[off - 6] != opt.otype or int.from_bytes(data[off : off + width], "big") != opt.apn_id:
        raise ValueError("APN6 option not where expected in the Hop-by-Hop header")
    return off, width


@dataclass(frozen=True)
class Template:
    """A built frame and where its patchable parts are."""

    data: bytes
    ip_off: int  #: the IPv6 header that encloses the transport header
    l4_off: int
    proto: int  #: IP_PROTO_TCP or IP_PROTO_UDP
    roce: bool  #: UDP destination port 4791: BTH at l4_off + 8 and a trailing ICRC
    #: (offset, width in bytes) of the APN ID of an APN6 option that opens the first
    #: Hop-by-Hop header (where icpn's builders put it), or None
    apn_id_at: tuple[int, int] | None = None

    @classmethod
    def of(cls, pkt: Packet) -> Template:
        data = bytes(pkt)
        l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
        if l4 is None:
            raise ValueError("template has no TCP or UDP header")
        ip = _last_ipv6_before(pkt, l4)
        l4_off = len(data) - len(bytes(l4))
        ip_off = len(data) - len(bytes(ip))
        proto = IP_PROTO_TCP if isinstance(l4, TCP) else IP_PROTO_UDP
        roce = proto == IP_PROTO_UDP and l4.dport == UDP_PORT_ROCEV2
        return cls(data, ip_off, l4_off, proto, roce, _apn_id_at(pkt, data))

    def render(self, patches: tuple[tuple[int, bytes], ...] = ()) -> bytes:
        """The template with ``(offset, bytes)`` written in, checksums recomputed. Offsets
        are from the start of the frame; see the ``*_OFF`` helpers below."""
        buf = bytearray(self.data)
        for off, value in patches:
            buf[off : off + len(value)] = value
        if self.roce:
            buf[-ICRC_BYTES:] = roce_icrc(buf, self.ip_off, self.l4_off)
        field = self.l4_off + (6 if self.proto == IP_PROTO_UDP else 16)
        buf[field : field + 2] = struct.pack(
            "!H", l4_checksum(buf, self.ip_off, self.l4_off, self.proto)
        )
        return bytes(buf)

    # Offsets of the fields generators patch.
    @property
    def src_ip_off(self) -> int:
        return self.ip_off + 8

    @property
    def dst_ip_off(self) -> int:
        return self.ip_off + 24

    @property
    def sport_off(self) -> int:
        return self.l4_off

    @property
    def dport_off(self) -> int:
        return self.l4_off + 2

    @property
    def tcp_seq_off(self) -> int:
        return self.l4_off + 4

    @property
    def dest_qp_off(self) -> int:
        return self.l4_off + UDP_HEADER_BYTES + 5

    @property
    def psn_off(self) -> int:
        return self.l4_off + UDP_HEADER_BYTES + 9


K = TypeVar("K", bound=Hashable)


class TemplateCache(Generic[K]):
    """Templates by shape key, built on first use; bounded (cleared when full)."""

    def __init__(self, builder: Callable[[K], Packet], max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._builder = builder
        self._max = max_entries
        self._cache: dict[K, Template] = {}
        self.builds = 0

    def get(self, key: K) -> Template:
        tpl = self._cache.get(key)
        if tpl is None:
            if len(self._cache) >= self._max:
                self._cache.clear()
            tpl = Template.of(self._builder(key))
            self._cache[key] = tpl
            self.builds += 1
        return tpl


def u24(value: int) -> bytes:
    if not 0 <= value < (1 << 24):
        raise ValueError(f"{value} does not fit 24 bits")
    return value.to_bytes(3, "big")
