"""icpn.hashing: the CRC variants against their published check values, BMv2's bit packing,
and the vectorised forms against the scalar ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from icpn import hashing

CHECK_INPUT = b"123456789"  # the catalogue's check string (reveng CRC catalogue)


def test_crc16_is_crc16_arc() -> None:
    assert hashing.crc16(CHECK_INPUT) == 0xBB3D  # CRC-16/ARC check value


def test_crc32_is_the_zlib_crc() -> None:
    assert hashing.crc32(CHECK_INPUT) == 0xCBF43926  # CRC-32/ISO-HDLC check value


def test_fields_are_bit_packed_and_padded_at_the_end() -> None:
    # 20 + 8 + 3 = 31 bits -> 4 octets, one zero bit appended
    packed = hashing.pack_fields([(0xABCDE, 20), (0x12, 8), (0b101, 3)])
    assert packed == bytes.fromhex("abcde1") + bytes([0b00101010])


def test_field_overflow_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        hashing.pack_fields([(1 << 20, 20)])


def test_vectorised_forms_match_scalar_ones() -> None:
    rng = random.Random(3)
    widths = [128, 128, 20, 8, 16, 16]  # the ECMP selector's fields
    rows = [[rng.getrandbits(w) for w in widths] for _ in range(300)]
    columns = [(hashing.octets([r[i] for r in rows], w), w) for i, w in enumerate(widths)]
    packed = hashing.pack_columns(columns)
    for row, data in zip(rows, packed, strict=True):
        assert bytes(data) == hashing.pack_fields(list(zip(row, widths, strict=True)))
    assert np.array_equal(hashing.crc16_many(packed), [hashing.crc16(bytes(d)) for d in packed])
    assert np.array_equal(hashing.crc32_many(packed), [hashing.crc32(bytes(d)) for d in packed])
