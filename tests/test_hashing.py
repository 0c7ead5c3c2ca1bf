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


APN_IDS = (0x20010DB8000000010000000000000001, 0x00000007_00000063, 1)


@pytest.mark.parametrize("apn_id", APN_IDS)
@pytest.mark.parametrize("lists", [2, 4, 8])
def test_deep_hash_spreads_consecutive_queue_pairs_evenly(apn_id: int, lists: int) -> None:
    """NICs number queue pairs consecutively: 64 of them must use every list, evenly (the
    reason the SR selector is CRC-32: CRC-16/ARC's (x + 1) factor puts them on two lists)."""
    counts = [0] * lists
    for qp in range(0x100, 0x100 + 64):
        counts[hashing.sr_list_member([(apn_id, 128), (qp, 24)], [1] * lists)] += 1
    assert counts == [64 // lists] * lists


def test_crc16_would_use_two_of_four_lists() -> None:
    """The defect the CRC-32 deep hash removes, kept as a fact about CRC-16/ARC."""
    used = {hashing.ecmp_member([(APN_IDS[0], 128), (qp, 24)], 4) for qp in range(64)}
    assert len(used) == 2


def test_weighted_copies_follow_the_action_set_order() -> None:
    key = [(APN_IDS[0], 128), (0x123, 24)]
    copy = hashing.bmv2_crc32(*key) % 4
    assert hashing.sr_list_member(key, [1, 2, 1]) == [0, 1, 1, 2][copy]
    assert hashing.weighted_member(key, [3, 1]) == [0, 0, 0, 1][hashing.bmv2_crc16(*key) % 4]
    with pytest.raises(ValueError, match="weights"):
        hashing.sr_list_member(key, [1, 0])
