"""IOAM data (RFC 9197) as scapy layers: the pre-allocated/incremental trace header with its
node data list, and the Direct Export header (RFC 9326); plus node data laid out per
Trace-Type, which is what a receiver needs to turn a trace back into a path.

Node data order on the wire: the first node writes at the *end* of the pre-allocated list
(offset (RemainingLen - NodeLen) * 4) and decrements RemainingLen, so the filled part reads
last hop first. :meth:`IOAMTrace.nodes` returns them in path order.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from scapy.fields import (
    BitField,
    ConditionalField,
    IntField,
    StrField,
    XBitField,
    XByteField,
    XShortField,
)
from scapy.packet import Packet

#: Trace-Type bits (RFC 9197 section 4.4.1): mask → (field names, bit widths). A bit's
#: data is the concatenation of its fields, always a multiple of 4 octets.
TRACE_TYPE_FIELDS: dict[int, tuple[tuple[str, int], ...]] = {
    0x800000: (("hop_lim", 8), ("node_id", 24)),
    0x400000: (("ingress_if", 16), ("egress_if", 16)),
    0x200000: (("ts_sec", 32),),
    0x100000: (("ts_frac", 32),),
    0x080000: (("transit_delay", 32),),
    0x040000: (("namespace_data", 32),),
    0x020000: (("queue_depth", 32),),
    0x010000: (("checksum_complement", 32),),
    0x008000: (("hop_lim", 8), ("node_id_wide", 56)),
    0x004000: (("ingress_if_wide", 32), ("egress_if_wide", 32)),
    0x002000: (("namespace_data_wide", 64),),
    0x001000: (("buffer_occupancy", 32),),
}
SUPPORTED_TRACE_BITS = sum(TRACE_TYPE_FIELDS)


class TraceTypeError(ValueError):
    """A Trace-Type with bits we cannot lay out (undefined, or variable-length data)."""


def _check_trace_type(trace_type: int) -> None:
    unsupported = trace_type & ~SUPPORTED_TRACE_BITS & 0xFFFFFF
    if unsupported:
        raise TraceTypeError(
            f"trace type {trace_type:#08x}: bits {unsupported:#08x} are undefined or "
            "variable-length (opaque state snapshot) and not supported"
        )


def node_len_words(trace_type: int) -> int:
    """NodeLen for a Trace-Type, in 4-octet units (RFC 9197 4.4.1; Linux checks it)."""
    _check_trace_type(trace_type)
    return (
        sum(w for mask, parts in TRACE_TYPE_FIELDS.items() if trace_type & mask for _, w in parts)
        // 32
    )


@dataclass
class IOAMNode:
    """One node's data. ``None`` = the node cannot supply the field: encoded as all ones
    (RFC 9197 4.4.2), and all ones decodes back to ``None``."""

    hop_lim: int | None = None
    node_id: int | None = None
    ingress_if: int | None = None
    egress_if: int | None = None
    ts_sec: int | None = None
    ts_frac: int | None = None
    transit_delay: int | None = None
    namespace_data: int | None = None
    queue_depth: int | None = None
    checksum_complement: int | None = None
    node_id_wide: int | None = None
    ingress_if_wide: int | None = None
    egress_if_wide: int | None = None
    namespace_data_wide: int | None = None
    buffer_occupancy: int | None = None

    def encode(self, trace_type: int) -> bytes:
        _check_trace_type(trace_type)
        out = b""
        for mask, parts in TRACE_TYPE_FIELDS.items():
            if not trace_type & mask:
                continue
            word = 0
            width_total = 0
            for name, width in parts:
                value = getattr(self, name)
                all_ones = (1 << width) - 1
                if value is None:
                    value = all_ones
                if not 0 <= value <= all_ones:
                    raise ValueError(f"IOAM {name}={value} does not fit {width} bits")
                word = (word << width) | value
                width_total += width
            out += word.to_bytes(width_total // 8, "big")
        return out

    @classmethod
    def decode(cls, trace_type: int, data: bytes) -> IOAMNode:
        _check_trace_type(trace_type)
        if len(data) != node_len_words(trace_type) * 4:
            raise ValueError(
                f"node data is {len(data)} octets, trace type needs "
                f"{node_len_words(trace_type) * 4}"
            )
        node = cls()
        pos = 0
        for mask, parts in TRACE_TYPE_FIELDS.items():
            if not trace_type & mask:
                continue
            width_total = sum(w for _, w in parts)
            word = int.from_bytes(data[pos : pos + width_total // 8], "big")
            pos += width_total // 8
            shift = width_total
            for name, width in parts:
                shift -= width
                value = (word >> shift) & ((1 << width) - 1)
                setattr(node, name, None if value == (1 << width) - 1 else value)
        return node

    def supplied(self) -> dict[str, int]:
        """The fields that carry a value."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


class IOAMTrace(Packet):
    """IOAM trace option header and node data list (RFC 9197 4.4). ``nodelen`` and
    ``remlen`` default to what ``trace_type`` and an empty ``node_data`` imply."""

    name = "IOAM Trace"
    fields_desc = [
        XShortField("namespace_id", 0),
        BitField("nodelen", None, 5),
        BitField("O", 0, 1),
        BitField("L", 0, 1),
        BitField("A", 0, 1),
        BitField("flag_rsv", 0, 1),
        BitField("remlen", None, 7),
        XBitField("trace_type", 0, 24),
        XByteField("reserved", 0),
        StrField("node_data", b""),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        nodelen = self.nodelen if self.nodelen is not None else node_len_words(self.trace_type)
        remlen = self.remlen if self.remlen is not None else len(self.node_data) // 4
        word = (nodelen << 11) | (self.O << 10) | (self.L << 9) | (self.A << 8)
        word |= (self.flag_rsv << 7) | remlen
        built: bytes = pkt[:2] + word.to_bytes(2, "big") + pkt[4:] + pay
        return built

    def nodes(self) -> list[IOAMNode]:
        """Data of the nodes that filled the trace, in path order (first hop first)."""
        size = self.nodelen * 4
        if size == 0:
            return []
        filled = self.node_data[self.remlen * 4 :]
        chunks = [filled[i : i + size] for i in range(0, len(filled) - size + 1, size)]
        return [IOAMNode.decode(self.trace_type, c) for c in reversed(chunks)]


def preallocated_trace(
    trace_type: int, max_nodes: int, namespace_id: int = 0, nodes: list[IOAMNode] | None = None
) -> IOAMTrace:
    """A pre-allocated trace with room for ``max_nodes``, optionally already filled by
    ``nodes`` (path order) the way transit nodes fill it."""
    words = node_len_words(trace_type)
    filled = nodes or []
    if len(filled) > max_nodes:
        raise ValueError(f"{len(filled)} nodes do not fit a trace sized for {max_nodes}")
    free = (max_nodes - len(filled)) * words
    data = bytes(free * 4) + b"".join(n.encode(trace_type) for n in reversed(filled))
    return IOAMTrace(
        namespace_id=namespace_id,
        trace_type=trace_type,
        nodelen=words,
        remlen=free,
        node_data=data,
    )


class IOAMDex(Packet):
    """IOAM Direct Export option data (RFC 9326 section 3.2)."""

    name = "IOAM DEX"
    fields_desc = [
        XShortField("namespace_id", 0),
        XByteField("flags", 0),
        XByteField("ext_flags", 0),
        XBitField("trace_type", 0, 24),
        XByteField("reserved", 0),
        ConditionalField(IntField("flow_id", 0), lambda p: p.ext_flags & 0x80),
        ConditionalField(IntField("sequence", 0), lambda p: p.ext_flags & 0x40),
    ]
