"""The sketch's keyed hash: cell indices and dedup tags that an outsider cannot predict.

Why not CRC: CRC is affine over GF(2). Whoever knows the program knows the map from key bits
to hash bits, so it solves for keys that share a flow's cells (or its whole hash) with a few
dozen linear equations, no search (``bench/adversarial.py`` does exactly that). XORing a
secret into the CRC's input does not help: whether two keys collide depends only on their
difference, which the secret cancels out of.

What the v1model program computes instead (``p4src/v1model/include/control/sketch.p4``, and
:mod:`icpn.model.sketch` bit for bit) is *vector multiply-shift* (Dietzfelbinger, "Universal
hashing and k-wise independent random variables via integer arithmetic without primes",
STACS 1996; Thorup, "High speed hashing for integers and strings", 2015, section 3.3): the
flow key as ten 32-bit words x_0..x_9 and a secret of eleven 64-bit numbers a_0..a_10,

    h(x) = (a_10 + sum(a_i * x_i)) mod 2^64,  keeping bits 32..63.

For uniformly random a, the kept 32 bits of two different keys are independent and uniform
(strongly universal for up to 33 bits), *whatever keys the sender chose*: a sender that does
not know a collides with a given flow in l bits with probability 2^-l, the same as by
chance. The program runs three such hashes with independent secrets:

* hash 0: row 0's cell (top SKETCH_WIDTH_BITS bits) and row 1's (the next ones);
* hash 1: row 2's cell, then the dedup slot;
* hash 2: the dedup tag, independent of every index, so a flow that shares another's cells
  or slot still has a different tag and cannot silence its report.

Tofino has no 64-bit multiplier in its match-action units, so the TNA program keeps CRC rows;
what TNA allows is choosing the CRC polynomials (``CRCPolynomial``): :func:`tna_defines`
passes a deployment's secret polynomials to bf-p4c, and the model and the override entries
use the same (:func:`tna_polynomial`). For a fixed polynomial a CRC stays linear: only the
polynomial's secrecy protects it (Krawczyk, "LFSR-based hashing and authentication", CRYPTO
1994: over random irreducible polynomials of degree n, two different m-bit keys get equal
CRCs with probability at most (m + n) / 2^(n-1)) — docs/tofino.md.

A multiplication is not linear over GF(2), and the secret multiplies the key rather than
being XORed into it, so the linear attack has nothing to solve. The controller sets the
secret at start (:func:`hash_key_entry`, the default action of ``sketch_hash_key``): from the
intent, or generated once and kept (:func:`load_or_create`). Tofino has no 64-bit multiplier
in its match-action units; docs/tofino.md says what the TNA program does instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import finsy as fy
import numpy as np
import numpy.typing as npt

from icpn.constants import SKETCH_DEFAULT_HASH_KEY, SKETCH_HASHES, SKETCH_KEY_WORDS

SKETCH_HASH_KEY = "sketch_hash_key"
#: The TNA sketch's CRC polynomials (normal form, without the x^n term): the environment
#: gives a deployment's secret ones (to bf-p4c as -D, and to Python), else the standard ones.
TNA_POLY_ENV = {32: "ICPN_SKETCH_CRC32_POLY", 16: "ICPN_SKETCH_CRC16_POLY"}
TNA_POLY_DEFINE = {32: "SKETCH_CRC32_POLY", 16: "SKETCH_CRC16_POLY"}
STANDARD_POLY = {32: 0x04C11DB7, 16: 0x8005}  # CRC-32 (zlib), CRC-16/ARC
SET_HASH_KEY = "set_hash_key"
_HEX_DIGITS = SKETCH_HASHES * (SKETCH_KEY_WORDS + 1) * 16

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class SketchHashKey:
    """SKETCH_HASHES rows of SKETCH_KEY_WORDS multipliers then one offset, 64 bits each."""

    values: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.values) != SKETCH_HASHES or any(
            len(row) != SKETCH_KEY_WORDS + 1 for row in self.values
        ):
            raise ValueError(
                f"a sketch hash key is {SKETCH_HASHES} x {SKETCH_KEY_WORDS + 1} 64-bit numbers"
            )
        for row in self.values:
            for value in row:
                if not 0 <= value < (1 << 64):
                    raise ValueError(f"{value:#x} does not fit 64 bits")

    @classmethod
    def default(cls) -> SketchHashKey:
        """The public key the program starts with (constants.SKETCH_DEFAULT_HASH_KEY)."""
        return cls(SKETCH_DEFAULT_HASH_KEY)

    @classmethod
    def generate(cls) -> SketchHashKey:
        """A fresh secret from the operating system's CSPRNG."""
        return cls(
            tuple(
                tuple(secrets.randbits(64) for _ in range(SKETCH_KEY_WORDS + 1))
                for _ in range(SKETCH_HASHES)
            )
        )

    def to_hex(self) -> str:
        return "".join(f"{v:016x}" for row in self.values for v in row)

    @classmethod
    def from_hex(cls, text: str, *, where: str = "sketch hash key") -> SketchHashKey:
        """From :meth:`to_hex`'s form (whitespace ignored); ``where`` names the source in
        errors (a file, an intent field)."""
        digits = "".join(text.split())
        if len(digits) != _HEX_DIGITS:
            raise ValueError(f"{where}: {_HEX_DIGITS} hex digits expected, got {len(digits)}")
        try:
            flat = [int(digits[i : i + 16], 16) for i in range(0, len(digits), 16)]
        except ValueError:
            raise ValueError(f"{where}: not hexadecimal") from None
        step = SKETCH_KEY_WORDS + 1
        return cls(tuple(tuple(flat[h * step : (h + 1) * step]) for h in range(SKETCH_HASHES)))

    def array(self) -> U64:
        """(SKETCH_HASHES, SKETCH_KEY_WORDS + 1) uint64."""
        return np.array(self.values, dtype=np.uint64)


def load_or_create(path: Path) -> SketchHashKey:
    """The deployment's key kept in ``path`` (readable by its owner only); generated and
    written there the first time, so a restarted controller keeps the switches' key."""
    if path.exists():
        return SketchHashKey.from_hex(path.read_text(), where=str(path))
    key = SketchHashKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key.to_hex() + "\n")
    return key


def hash_key_entry(key: SketchHashKey) -> fy.P4TableEntry:
    """The default action of ``sketch_hash_key`` that installs ``key`` (a MODIFY)."""
    args = {f"k{h}_{i}": v for h, row in enumerate(key.values) for i, v in enumerate(row)}
    return fy.P4TableEntry(
        SKETCH_HASH_KEY, is_default_action=True, action=fy.P4TableAction(SET_HASH_KEY, **args)
    )


def key_words(
    src: npt.NDArray[np.uint8],
    dst: npt.NDArray[np.uint8],
    proto: npt.NDArray[np.generic],
    sport: npt.NDArray[np.generic],
    dport: npt.NDArray[np.generic],
    dest_qp: npt.NDArray[np.generic],
) -> U64:
    """(n, SKETCH_KEY_WORDS): the flow key as the P4 program splits it: SA in four words,
    DA in four, proto ++ DestQP (8 + 24 bits), sport ++ dport (16 + 16)."""
    n = src.shape[0]
    words = np.empty((n, SKETCH_KEY_WORDS), dtype=np.uint64)
    words[:, 0:4] = src.reshape(n, 16).view(">u4").astype(np.uint64)
    words[:, 4:8] = dst.reshape(n, 16).view(">u4").astype(np.uint64)
    words[:, 8] = (proto.astype(np.uint64) << np.uint64(24)) | (
        dest_qp.astype(np.uint64) & np.uint64(0xFFFFFF)
    )
    words[:, 9] = (sport.astype(np.uint64) << np.uint64(16)) | dport.astype(np.uint64)
    return words


def keyed_hashes(words: U64, key: SketchHashKey) -> U32:
    """(SKETCH_HASHES, n): bits 32..63 of each multiply-shift hash (uint64 arithmetic wraps
    modulo 2^64, as P4's bit<64> does)."""
    a = key.array()
    with np.errstate(over="ignore"):
        sums = words @ a[:, :SKETCH_KEY_WORDS].T + a[:, SKETCH_KEY_WORDS]
    return (sums.T >> np.uint64(32)).astype(np.uint32)


def keyed_hash_scalar(words: Sequence[int], key: SketchHashKey) -> list[int]:
    """:func:`keyed_hashes` for one key, in plain integers (the tests' reference)."""
    out = []
    for row in key.values:
        total = row[SKETCH_KEY_WORDS] + sum(a * x for a, x in zip(row, words, strict=False))
        out.append((total % (1 << 64)) >> 32)
    return out


def split(hashes: U32, width_bits: int, dedup_bits: int) -> tuple[U32, U32, U32, U32, U32]:
    """Row 0, 1 and 2 cells, the dedup slot and tag from :func:`keyed_hashes` (top bits
    first: multiply-shift's strong bits)."""
    h = hashes.astype(np.uint64)  # (shifts by 32 are defined on 64 bits: width 1)

    def top(row: int, skip: int, bits: int) -> U32:
        shifted = h[row] >> np.uint64(32 - skip - bits)
        out: U32 = (shifted & np.uint64((1 << bits) - 1)).astype(np.uint32)
        return out

    return (
        top(0, 0, width_bits),
        top(0, width_bits, width_bits),
        top(1, 0, width_bits),
        top(1, width_bits, dedup_bits),
        hashes[2].astype(np.uint32),
    )


# -- the TNA program's secret CRC polynomials ---------------------------------------------
def _mulmod(a: int, b: int, f: int, degree: int) -> int:
    """a * b mod f over GF(2) (f with its x^degree term)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a >> degree & 1:
            a ^= f
    return out


def _gcd(a: int, b: int) -> int:
    while b:
        while a and a.bit_length() >= b.bit_length():
            a ^= b << (a.bit_length() - b.bit_length())
        a, b = b, a
    return a


def is_irreducible(poly: int, degree: int) -> bool:
    """Whether x^degree + poly is irreducible over GF(2) (Ben-Or's test: no factor of degree
    i <= degree/2 divides it, i.e. gcd(x^(2^i) - x, f) = 1 for each such i)."""
    f = (1 << degree) | poly
    if not poly & 1:
        return False  # divisible by x
    power = 0b10  # x
    for _ in range(degree // 2):
        power = _mulmod(power, power, f, degree)  # x^(2^i) mod f
        if _gcd(f, power ^ 0b10) != 1:
            return False
    return True


def random_irreducible(degree: int) -> int:
    """A secret polynomial for the TNA sketch: uniform among the irreducible ones of that
    degree (about 1 in ``degree`` candidates is)."""
    while True:
        poly = secrets.randbits(degree) | 1
        if is_irreducible(poly, degree):
            return poly


def tna_polynomial(degree: int) -> int:
    """The TNA sketch's CRC polynomial of ``degree`` (32: rows 0-1, dedup; 16: row 2)."""
    name = TNA_POLY_ENV[degree]
    raw = os.environ.get(name)
    if raw is None:
        return STANDARD_POLY[degree]
    try:
        poly = int(raw, 0)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if not 0 < poly < (1 << degree) or not is_irreducible(poly, degree):
        raise ValueError(
            f"{name}={raw!r}: give an irreducible degree-{degree} polynomial without its "
            f"x^{degree} term (icpn.sketch_key.random_irreducible)"
        )
    return poly


def tna_defines() -> list[str]:
    """bf-p4c flags for the polynomials the environment sets (none: the standard CRCs)."""
    return [
        f"-D{TNA_POLY_DEFINE[d]}={tna_polynomial(d):#x}"
        for d in (32, 16)
        if TNA_POLY_ENV[d] in os.environ
    ]
