"""Flow keys that collide in the unkeyed CRC sketch, solved with linear algebra over GF(2).

This is the attack docs/elephants.md "Crafted traffic" describes, for the benchmark and
tests: CRC is affine over GF(2) (for inputs of one length, crc(x) ^ crc(y) = M(x ^ y)), so
the bits the sketch takes from CRC-32 and CRC-16 are a linear function of the key bits a
sender controls — here the interface id of its own source address (64 bits) and its DestQP
(24 bits). Matching a target's chosen hash bits is a system of at most 48 equations in 88
unknowns: Gaussian elimination gives a particular solution and a basis of the solutions,
so colliding keys come out by the thousand, without any search.

Against the keyed multiply-shift hash (:mod:`icpn.sketch_key`) the same keys collide only by
chance: there is no linear map to solve without the secret.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import numpy as np

from icpn.constants import FlowKeyType
from icpn.model.sketch import Packets, key_hashes

#: The sender controls its source interface id (the low 64 bits) and the DestQP.
IID_BITS = 64
QP_BITS = 24
VARIABLES = IID_BITS + QP_BITS


@dataclass(frozen=True)
class Key:
    """An (SA, DA, DestQP) flow key as integers."""

    src: int
    dst: int
    qp: int

    def address(self, which: str) -> str:
        return str(ipaddress.IPv6Address(self.src if which == "src" else self.dst))


def packets_of(keys: list[Key]) -> Packets:
    """One packet per key (length and window 0: only the hashes are wanted)."""
    n = len(keys)

    def addrs(values: list[int]) -> np.ndarray:
        raw = b"".join(v.to_bytes(16, "big") for v in values)
        return np.frombuffer(raw, dtype=np.uint8).reshape(n, 16)

    zeros8, zeros16 = np.zeros(n, np.uint8), np.zeros(n, np.uint16)
    return Packets(
        src=addrs([k.src for k in keys]),
        dst=addrs([k.dst for k in keys]),
        proto=zeros8,
        sport=zeros16,
        dport=zeros16,
        dest_qp=np.array([k.qp for k in keys], np.uint32),
        length=np.zeros(n, np.uint32),
        window=np.zeros(n, np.uint32),
    )


def crc_bits(keys: list[Key]) -> list[int]:
    """Each key's CRC-32 (bits 0-31) and CRC-16 (bits 32-47) as one 48-bit integer."""
    crc32, crc16 = key_hashes(packets_of(keys), FlowKeyType.SRC_DST_QP)
    return [int(a) | (int(b) << 32) for a, b in zip(crc32, crc16, strict=True)]


def sketch_mask(width_bits: int, *, twin: bool) -> int:
    """The CRC bits the unkeyed sketch uses: row 0 = CRC-32 bits 0.., row 1 = bits 16..,
    row 2 = CRC-16 bits 0.. (each ``width_bits`` wide); a twin also matches the whole
    CRC-32 (the dedup slot and tag)."""
    cells = (1 << width_bits) - 1
    mask = cells | (cells << 16) | (cells << 32)
    return mask | 0xFFFFFFFF if twin else mask


def _with_delta(base: Key, delta: int) -> Key:
    return Key(base.src ^ (delta >> QP_BITS), base.dst, base.qp ^ (delta & ((1 << QP_BITS) - 1)))


class Solver:
    """Keys of a sender with source prefix ``prefix`` (its high 64 bits) towards ``dst``
    whose selected CRC bits equal a target's."""

    def __init__(self, prefix: int, dst: int) -> None:
        self.base = Key(prefix & ~((1 << IID_BITS) - 1), dst, 0)
        flips = [_with_delta(self.base, 1 << b) for b in range(VARIABLES)]
        values = crc_bits([self.base, *flips])
        self.base_bits = values[0]
        self.columns = [v ^ values[0] for v in values[1:]]  # the linear map, column by column

    def solve(self, target_bits: int, mask: int, count: int, rng: random.Random) -> list[Key]:
        """``count`` distinct random keys k with crc_bits(k) & mask == target_bits & mask
        (fewer if the system has fewer solutions; none if it has none)."""
        outputs = [b for b in range(48) if mask >> b & 1]
        # rows: one equation per output bit, as (variables mask, right-hand side)
        rows = []
        for b in outputs:
            lhs = sum(1 << v for v, col in enumerate(self.columns) if col >> b & 1)
            rhs = ((target_bits ^ self.base_bits) >> b) & 1
            rows.append((lhs, rhs))
        pivots: list[tuple[int, int, int]] = []  # (pivot variable, lhs, rhs), reduced
        for lhs, rhs in rows:
            for var, plhs, prhs in pivots:
                if lhs >> var & 1:
                    lhs, rhs = lhs ^ plhs, rhs ^ prhs
            if lhs == 0:
                if rhs:
                    return []  # inconsistent
                continue
            var = lhs.bit_length() - 1
            pivots = [
                (v, pl ^ lhs, pr ^ rhs) if pl >> var & 1 else (v, pl, pr) for v, pl, pr in pivots
            ]
            pivots.append((var, lhs, rhs))
        pivot_vars = {v for v, _, _ in pivots}
        free = [v for v in range(VARIABLES) if v not in pivot_vars]
        keys: dict[Key, None] = {}
        for _ in range(count * 4):
            if len(keys) >= count:
                break
            delta = 0
            for v in free:
                if rng.getrandbits(1):
                    delta |= 1 << v
            for var, lhs, rhs in pivots:  # each pivot = rhs ^ (its row's free variables)
                bit = rhs ^ (bin(lhs & delta & ~(1 << var)).count("1") & 1)
                delta |= bit << var
            keys[_with_delta(self.base, delta)] = None
        return list(keys)
