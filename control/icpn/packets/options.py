"""IPv6 option layers that scapy lacks: APN6, alternate marking, the IOAM container.

Each layer is registered with scapy's option dispatch (Hop-by-Hop and Destination options
share it), so ``IPv6(raw_bytes)`` decodes our options instead of showing them as unknown.
Alignment rules (RFC 8200 4.2 "xn+y") are declared per option and scapy's automatic padding
applies them: APN6 and alternate marking at 4n+2 (their data then starts 4-aligned, right
after the 2-byte HBH header), IOAM at 4n (RFC 9486 section 3: a PadN of length 0 comes first).
"""

from __future__ import annotations

from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    MultipleTypeField,
    PacketLenField,
    StrLenField,
    XBitField,
    XByteField,
    XShortField,
)
from scapy.layers import inet6
from scapy.packet import Packet, Raw

from icpn.constants import (
    ALTMARK_OPT_TYPE,
    APN6_OPT_TYPE,
    IOAM_DEX_OPT_TYPE,
    IOAM_OPT_TYPE,
    ApnIdType,
    IoamOptionType,
)
from icpn.packets.ioam import IOAMDex, IOAMTrace

APN_ID_BYTES = {ApnIdType.ID32: 4, ApnIdType.ID64: 8, ApnIdType.ID128: 16}


def _align(curpos: int, x: int, y: int) -> int:
    """Padding needed before an option whose type must sit at offset ``x*n + y``."""
    return (y - curpos) % x


class _IPv6Option(Packet):
    """Common behaviour: an option carries nothing after itself, and fills its own length."""

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.getfieldval("optlen") is None:
            if len(pkt) - 2 > 255:
                raise ValueError(f"{self.name} option data is {len(pkt) - 2} octets; max 255")
            pkt = pkt[:1] + bytes([len(pkt) - 2]) + pkt[2:]
        return pkt + pay


class APN6(_IPv6Option):
    """APN6 option (draft-li-apn-header, draft-li-6man-apn-ipv6-encap): the APN header.

    The APN ID is opaque on the wire; :class:`icpn.packets.apn_id.ApnIdTemplate` splits it
    into APP-Group and USER-Group IDs.
    """

    name = "APN6"
    fields_desc = [
        XByteField("otype", APN6_OPT_TYPE),
        ByteField("optlen", None),
        ByteEnumField("id_type", ApnIdType.ID32, {t.value: t.name for t in ApnIdType}),
        XByteField("flags", 0),
        XShortField("para_type", 0),
        MultipleTypeField(
            [
                (XBitField("apn_id", 0, 64), lambda p: p.id_type == ApnIdType.ID64),
                (XBitField("apn_id", 0, 128), lambda p: p.id_type == ApnIdType.ID128),
            ],
            XBitField("apn_id", 0, 32),
        ),
        StrLenField(
            "params",
            b"",
            length_from=lambda p: (p.optlen or 0) - 4 - APN_ID_BYTES.get(p.id_type, 4),
        ),
    ]

    def alignment_delta(self, curpos: int) -> int:
        return _align(curpos, 4, 2)


class AltMark(_IPv6Option):
    """Alternate-marking option (RFC 9343 section 3): FlowMonID, loss (L) and delay (D) bits."""

    name = "Alternate Marking"
    fields_desc = [
        XByteField("otype", ALTMARK_OPT_TYPE),
        ByteField("optlen", 4),
        BitField("flow_mon_id", 0, 20),
        BitField("L", 0, 1),
        BitField("D", 0, 1),
        BitField("reserved", 0, 10),
    ]

    def alignment_delta(self, curpos: int) -> int:
        return _align(curpos, 4, 2)


class _IoamDataField(PacketLenField):
    """The option data after the container header, decoded by its IOAM-Opt-Type."""

    def m2i(self, pkt: Packet | None, m: bytes) -> Packet:
        ioam_type: int | None = pkt.ioam_type if pkt is not None else None
        decoders: dict[int | None, Any] = {
            IoamOptionType.PREALLOCATED_TRACE: IOAMTrace,
            IoamOptionType.INCREMENTAL_TRACE: IOAMTrace,
            IoamOptionType.DIRECT_EXPORT: IOAMDex,
        }
        data: Packet = decoders.get(ioam_type, Raw)(m)
        return data


class IOAM(_IPv6Option):
    """IOAM option container (RFC 9486 section 3): reserved byte, IOAM-Opt-Type, then the
    data: an :class:`IOAMTrace` or an :class:`IOAMDex`."""

    name = "IOAM"
    fields_desc = [
        XByteField("otype", IOAM_OPT_TYPE),
        ByteField("optlen", None),
        XByteField("reserved", 0),
        ByteEnumField("ioam_type", 0, {t.value: t.name for t in IoamOptionType}),
        # scapy's stubs want a Packet default; None (no data yet) is what scapy itself uses.
        _IoamDataField(
            "data",
            None,  # type: ignore[arg-type]
            IOAMTrace,
            length_from=lambda p: (p.optlen or 2) - 2,
        ),
    ]

    def alignment_delta(self, curpos: int) -> int:
        return _align(curpos, 4, 0)


def register(apn6_type: int = APN6_OPT_TYPE, dex_type: int = IOAM_DEX_OPT_TYPE) -> None:
    """Teach scapy's option dispatch our option types (done on import with the configured
    codepoints; call again to decode captures made with other ones)."""
    inet6._hbhoptcls[apn6_type] = APN6
    inet6._hbhoptcls[ALTMARK_OPT_TYPE] = AltMark
    inet6._hbhoptcls[IOAM_OPT_TYPE] = IOAM
    inet6._hbhoptcls[dex_type] = IOAM
    inet6._hbhopts.update(
        {apn6_type: "APN6", ALTMARK_OPT_TYPE: "Alternate Marking", IOAM_OPT_TYPE: "IOAM"}
    )
    inet6._hbhopts.setdefault(dex_type, "IOAM")


register()
