"""The data plane's hash functions, computed exactly as BMv2 computes them, so that Python
can predict what a switch does: expected packets in tests, the reference model in studies.

How BMv2 hashes ``hash(out, algo, base, {f1, f2, ...}, max)`` and selector keys
(behavioral-model ``src/bm_sim/calculations.cpp``):

* the fields are packed as one bit stream, most significant bit first, with no padding
  between them, and zero bits appended to fill the last octet; fields of invalid headers are
  left out;
* ``crc16`` is CRC-16/ARC (polynomial 0x8005, reflected in and out, init 0, xorout 0) and
  ``crc32`` is the CRC-32 of zlib (0x04C11DB7 reflected, init and xorout 0xFFFFFFFF);
* the result is ``base + crc % max``.

``tests/test_hashing.py`` checks these against known CRC values, and ``ptf_tests/
test_hash_probe.py`` against BMv2 itself for field lists of odd widths.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FLOW_LABEL_SPACE = 1 << 20

Field = tuple[int, int]  # (value, bit width)


def _reflected_table(poly: int, width: int) -> npt.NDArray[np.uint32]:
    """Byte table for the reflected (LSB-first) form of a CRC polynomial."""
    rpoly = int(f"{poly:0{width}b}"[::-1], 2)
    table = np.zeros(256, dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ rpoly if crc & 1 else crc >> 1
        table[byte] = crc
    return table


_CRC16_TABLE = _reflected_table(0x8005, 16)
_CRC32_TABLE = _reflected_table(0x04C11DB7, 32)


def pack_fields(fields: Sequence[Field]) -> bytes:
    """Fields as BMv2 lays them out for hashing: bit-concatenated, zero-padded at the end."""
    value, nbits = 0, 0
    for field_value, width in fields:
        if not 0 <= field_value < (1 << width):
            raise ValueError(f"{field_value:#x} does not fit {width} bits")
        value = (value << width) | field_value
        nbits += width
    pad = -nbits % 8
    return (value << pad).to_bytes((nbits + pad) // 8, "big")


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = int(_CRC16_TABLE[(crc ^ byte) & 0xFF]) ^ (crc >> 8)
    return crc


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def bmv2_crc16(*fields: Field) -> int:
    return crc16(pack_fields(fields))


def bmv2_crc32(*fields: Field) -> int:
    return crc32(pack_fields(fields))


def ecmp_member(key: Sequence[Field], members: int) -> int:
    """Which member of an action-selector group BMv2 picks for a selector key: crc16 of the
    key modulo the group size, members in the order the group lists them (one-shot groups:
    the order of the action set). Checked on BMv2 by ptf_tests/test_routing.py."""
    if members < 1:
        raise ValueError("a group has at least one member")
    return bmv2_crc16(*key) % members


def _weighted_copy(hash_value: int, weights: Sequence[int]) -> int:
    """A weighted one-shot group: BMv2 holds each action ``weight`` times, in action-set
    order, and picks copy ``hash_value % copies``; returns the action's index."""
    if not weights or min(weights) < 1:
        raise ValueError("weights must be >= 1, at least one")
    copies = [i for i, weight in enumerate(weights) for _ in range(weight)]
    return copies[hash_value % len(copies)]


def weighted_member(key: Sequence[Field], weights: Sequence[int]) -> int:
    """:func:`ecmp_member` for a weighted routing group (crc16, weights as copies)."""
    return _weighted_copy(bmv2_crc16(*key), weights)


def sr_list_member(key: Sequence[Field], weights: Sequence[int]) -> int:
    """Which segment list the SR policy selector (the deep hash) picks for a key, in a
    weighted one-shot group: BMv2 holds each action ``weight`` times, in action-set order,
    and picks copy crc32(key) % copies; returns the action's index.

    CRC-32 rather than the routing selector's crc16: over consecutive DestQPs (how NICs
    number queue pairs) CRC-16/ARC's low bits take only two values, CRC-32's do not (see
    ``tests/test_hashing.py``). Checked on BMv2 by ptf_tests/test_srv6.py."""
    return _weighted_copy(bmv2_crc32(*key), weights)


def outer_flow_label(apn_id: int, dest_qp: int) -> int:
    """The outer IPv6 flow label a headend sets: crc32(APN ID (128), DestQP (24)) mod 2^20."""
    return bmv2_crc32((apn_id, 128), (dest_qp, 24)) % FLOW_LABEL_SPACE


# -- vectorised, for the reference model: many packets at once ---------------------------
def pack_columns(columns: Sequence[tuple[npt.NDArray[np.uint8], int]]) -> npt.NDArray[np.uint8]:
    """Rows of fields packed like :func:`pack_fields`.

    Each column is ``(octets, width)``: an (n, k) uint8 array holding each row's value
    big-endian in k octets (k = ceil(width / 8)), of which the low ``width`` bits count.
    Returns an (n, ceil(total / 8)) uint8 array.
    """
    bits = []
    for octets, width in columns:
        unpacked = np.unpackbits(octets, axis=1)
        bits.append(unpacked[:, unpacked.shape[1] - width :])
    stream = np.concatenate(bits, axis=1)
    pad = -stream.shape[1] % 8
    if pad:
        stream = np.pad(stream, ((0, 0), (0, pad)))
    return np.packbits(stream, axis=1)


def _crc_many(
    data: npt.NDArray[np.uint8], table: npt.NDArray[np.uint32], init: int, xorout: int
) -> npt.NDArray[np.uint32]:
    crc = np.full(data.shape[0], init, dtype=np.uint32)
    for column in range(data.shape[1]):
        crc = table[(crc ^ data[:, column]) & 0xFF] ^ (crc >> np.uint32(8))
    return crc ^ np.uint32(xorout)


def crc16_many(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """CRC-16/ARC of every row of an (n, k) uint8 array."""
    return _crc_many(data, _CRC16_TABLE, 0, 0)


def crc32_many(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """CRC-32 of every row of an (n, k) uint8 array."""
    return _crc_many(data, _CRC32_TABLE, 0xFFFFFFFF, 0xFFFFFFFF)


@functools.cache
def _table(poly: int, width: int) -> npt.NDArray[np.uint32]:
    return _reflected_table(poly, width)


def crc_many(
    data: npt.NDArray[np.uint8], poly: int, width: int, init: int, xorout: int
) -> npt.NDArray[np.uint32]:
    """A reflected CRC of any polynomial (Tofino's CRCPolynomial with reversed = true) of
    every row; crc_many(d, 0x04C11DB7, 32, ~0, ~0) is crc32_many(d)."""
    return _crc_many(data, _table(poly, width), init, xorout)


def crc(data: bytes, poly: int, width: int, init: int, xorout: int) -> int:
    """:func:`crc_many` of one byte string."""
    row = np.frombuffer(data, dtype=np.uint8).reshape(1, -1)
    return int(crc_many(row, poly, width, init, xorout)[0])


def octets(values: Sequence[int], width: int) -> npt.NDArray[np.uint8]:
    """Python integers as an (n, ceil(width / 8)) big-endian uint8 column."""
    size = (width + 7) // 8
    return np.frombuffer(b"".join(v.to_bytes(size, "big") for v in values), dtype=np.uint8).reshape(
        len(values), size
    )
