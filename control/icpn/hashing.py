"""The data plane's hash functions, computed the way BMv2 computes them, so that Python can
predict what a switch does (expected packets in tests, the reference model in studies).

BMv2's ``hash(out, HashAlgorithm.crc32, base, {fields}, max)`` concatenates the fields
big-endian, each padded on the left to whole octets, runs the standard reflected CRC-32
(zlib's), and returns ``base + crc % max``.
"""

from __future__ import annotations

import zlib

FLOW_LABEL_SPACE = 1 << 20


def _fields_bytes(*fields: tuple[int, int]) -> bytes:
    """(value, bit width) pairs as BMv2 lays them out for hashing."""
    out = b""
    for value, width in fields:
        if not 0 <= value < (1 << width):
            raise ValueError(f"{value:#x} does not fit {width} bits")
        out += value.to_bytes((width + 7) // 8, "big")
    return out


def bmv2_crc32(*fields: tuple[int, int]) -> int:
    return zlib.crc32(_fields_bytes(*fields)) & 0xFFFFFFFF


def outer_flow_label(apn_id: int, dest_qp: int) -> int:
    """The outer IPv6 flow label a headend sets: crc32(APN ID (128), DestQP (24)) mod 2^20."""
    return bmv2_crc32((apn_id, 128), (dest_qp, 24)) % FLOW_LABEL_SPACE
