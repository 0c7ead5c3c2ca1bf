"""The elephant sketch of ``p4src/v1model/include/control/sketch.p4``, packet for packet.

Two hashings: the v1model program's keyed multiply-shift (:mod:`icpn.sketch_key`, the
default: pass the deployment's :class:`~icpn.sketch_key.SketchHashKey`), and the unkeyed
CRC rows the v1model program used before it (row 0 = CRC-32 bits 0.., row 1 = bits 16..,
row 2 = CRC-16; dedup slot and tag from the CRC-32), kept with ``hash_key=None`` because
the TNA program still hashes so and ``bench/adversarial.py`` attacks it.

``Sketch(tofino=True)`` models the TNA program's variant (``p4src/tna/include/control/
sketch.p4``, docs/tofino.md): row-0-bounded conservative update for packets (row 0 counts
every packet, rows 1 and 2 rise by one only while below row 0's new count), plain count-min
for bytes, CRC rows and a one-word dedup slot (CRC-32 XOR window). It has not been checked
against a Tofino.

Hashing is vectorised with numpy (:mod:`icpn.hashing`, checked against BMv2); the sketch
update itself is sequential by nature — conservative update depends on the order of packets
— so it runs as one numba-compiled loop. Given the same packets, windows, key and settings,
the model reports the same flows, windows and estimates as BMv2 (``ptf_tests/
test_sketch.py`` checks it on 100k packets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from icpn import hashing, sketch_key
from icpn.constants import (
    SKETCH_DEDUP_SLOTS,
    SKETCH_DEPTH,
    SKETCH_MAX_DEPTH,
    SKETCH_MAX_WIDTH,
    SKETCH_WIDTH,
    FlowKeyType,
)
from icpn.sketch_key import SketchHashKey

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


@dataclass
class Packets:
    """Packets as columns (one row per packet), in arrival order.

    ``src``/``dst`` are (n, 16) uint8 arrays of IPv6 addresses; ``length`` is what BMv2
    calls packet_length (the Ethernet frame's octets); ``window`` the window each packet
    falls in (the switch computes it from its clock: see :func:`windows_of`).
    """

    src: U8
    dst: U8
    proto: U8
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    dest_qp: U32
    length: U32
    window: U32

    def __len__(self) -> int:
        return int(self.src.shape[0])


def windows_of(timestamps_us: npt.NDArray[np.uint64], window_log2_us: int, epoch: int = 0) -> U32:
    """The switch's window id: (timestamp >> window_log2_us) + epoch, in 32 bits."""
    return ((timestamps_us >> np.uint64(window_log2_us)) + np.uint64(epoch)).astype(np.uint32)


_BIG_ENDIAN = {1: ">u1", 2: ">u2", 3: ">u4", 4: ">u4"}


def _column(values: npt.NDArray[np.generic], width: int) -> tuple[U8, int]:
    """Integers (up to 32 bits) as the big-endian octet column :func:`pack_columns` takes."""
    size = (width + 7) // 8
    octets = values.astype(_BIG_ENDIAN[size]).view(np.uint8).reshape(len(values), -1)
    return octets[:, octets.shape[1] - size :], width


def key_columns(packets: Packets, key: FlowKeyType) -> list[tuple[U8, int]]:
    """The flow key as BMv2 hashes it: src, dst, proto, sport, dport, DestQP, with the
    fields the key type does not use set to zero."""
    n = len(packets)
    five = key == FlowKeyType.FIVE_TUPLE
    zeros = np.zeros(n, dtype=np.uint32)
    return [
        (packets.src, 128),
        (packets.dst, 128),
        _column(packets.proto if five else zeros, 8),
        _column(packets.sport if five else zeros, 16),
        _column(packets.dport if five else zeros, 16),
        _column(zeros if five else packets.dest_qp, 24),
    ]


def key_hashes(
    packets: Packets, key: FlowKeyType, polys: tuple[int, int] | None = None
) -> tuple[U32, U32]:
    """CRC-32 and CRC-16 of each packet's flow key, as BMv2 computes them; ``polys``: the
    TNA program's polynomials instead (:func:`icpn.sketch_key.tna_polynomial`), with the
    standard CRCs' other parameters."""
    packed = hashing.pack_columns(key_columns(packets, key))
    if polys is None:
        return hashing.crc32_many(packed), hashing.crc16_many(packed)
    return (
        hashing.crc_many(packed, polys[0], 32, 0xFFFFFFFF, 0xFFFFFFFF),
        hashing.crc_many(packed, polys[1], 16, 0, 0),
    )


def row_indices(
    packets: Packets,
    key: FlowKeyType,
    depth: int = SKETCH_DEPTH,
    width: int = SKETCH_WIDTH,
    hash_key: SketchHashKey | None = None,
    polys: tuple[int, int] | None = None,
) -> U32:
    """(depth, n): each packet's cell in each row. Keyed (``hash_key``): the v1model
    program's multiply-shift slices. Unkeyed: CRC-32 bits 0.., CRC-32 bits 16.., CRC-16
    (different linear maps: CRC is affine, so seeds would not do), of the standard or the
    given polynomials (``polys``, as :func:`key_hashes`)."""
    if hash_key is not None:
        return np.stack(keyed_slots(packets, key, width, SKETCH_DEDUP_SLOTS, hash_key)[0][:depth])
    crc32, crc16 = key_hashes(packets, key, polys)
    mask = np.uint32(width - 1)
    rows = [crc32 & mask, (crc32 >> np.uint32(16)) & mask, crc16 & mask]
    return np.stack(rows[:depth])


def fingerprints(packets: Packets, key: FlowKeyType, polys: tuple[int, int] | None = None) -> U32:
    """The CRC-32 of each flow key (the TNA program's dedup and override key: pass its
    polynomials, :func:`tna_polys`)."""
    return key_hashes(packets, key, polys)[0]


def tna_polys() -> tuple[int, int]:
    """The TNA program's CRC-32 and CRC-16 polynomials (the deployment's, or standard)."""
    return sketch_key.tna_polynomial(32), sketch_key.tna_polynomial(16)


def keyed_slots(
    packets: Packets, key: FlowKeyType, width: int, dedup_slots: int, hash_key: SketchHashKey
) -> tuple[list[U32], U32, U32]:
    """The keyed hashing's three row cells, dedup slot and dedup tag of each packet."""
    five = key == FlowKeyType.FIVE_TUPLE
    zeros = np.zeros(len(packets), dtype=np.uint32)
    words = sketch_key.key_words(
        packets.src,
        packets.dst,
        packets.proto if five else zeros,
        packets.sport if five else zeros,
        packets.dport if five else zeros,
        zeros if five else packets.dest_qp,
    )
    hashes = sketch_key.keyed_hashes(words, hash_key)
    width_bits, slot_bits = width.bit_length() - 1, dedup_slots.bit_length() - 1
    row0, row1, row2, slot, tag = sketch_key.split(hashes, width_bits, slot_bits)
    return [row0, row1, row2], slot, tag


#: How rows are updated: plain count-min, conservative update (v1model), row-0-bounded
#: conservative update (TNA, packet counts).
MODE_CM = 0
MODE_CU = 1
MODE_ROW0_BOUNDED = 2


@numba.njit(cache=True)
def _run(
    cell_window: U32,
    cell_count: U32,
    dedup: npt.NDArray[np.uint64],
    index: U32,
    slot_of: U32,
    fingerprint: U32,
    increment: U32,
    window: U32,
    threshold: int,
    mode: int,
    one_word_dedup: bool,
    out_packet: npt.NDArray[np.int64],
    out_estimate: U32,
) -> int:
    depth, n = index.shape
    counts = np.zeros(depth, dtype=np.uint64)
    reports = 0
    for j in range(n):
        w = window[j]
        estimate = np.uint64(0xFFFFFFFF)
        for i in range(depth):
            c = np.uint64(0)
            if cell_window[i, index[i, j]] == w:
                c = np.uint64(cell_count[i, index[i, j]])
            counts[i] = c
            if c < estimate:
                estimate = c
        inc = np.uint64(increment[j])
        updated = (estimate + inc) & np.uint64(0xFFFFFFFF)
        running_min = np.uint64(0xFFFFFFFF)
        row0 = np.uint64(0)
        for i in range(depth):
            if mode == MODE_CU:
                value = counts[i] if counts[i] > updated else updated
            elif mode == MODE_ROW0_BOUNDED and i > 0:
                # (A cell of another window reads 0 here, so it restarts at 1.)
                value = counts[i] + np.uint64(1) if counts[i] < row0 else counts[i]
            else:  # plain count-min, and row 0 of the sequential update
                value = (counts[i] + inc) & np.uint64(0xFFFFFFFF)
            if i == 0:
                row0 = value
            if value < running_min:
                running_min = value
            cell_window[i, index[i, j]] = w
            cell_count[i, index[i, j]] = np.uint32(value)
        if mode != MODE_CU:
            updated = running_min
        if updated >= threshold:
            slot = slot_of[j]
            if one_word_dedup:
                tag = np.uint64(fingerprint[j] ^ w)
            else:
                tag = (np.uint64(w) << np.uint64(32)) | np.uint64(fingerprint[j])
            if dedup[slot] != tag:
                dedup[slot] = tag
                out_packet[reports] = j
                out_estimate[reports] = np.uint32(updated)
                reports += 1
    return reports


def gather(hashes: tuple[U32, ...], rows: npt.NDArray[np.int64]) -> tuple[U32, ...]:
    """Per-flow hashes (from :meth:`Sketch.hashes` on one row per flow) as per-packet
    hashes, for packets of flows ``rows``."""
    return tuple(np.ascontiguousarray(np.take(h, rows, axis=-1)) for h in hashes)


@dataclass(frozen=True)
class Reports:
    """Threshold crossings: which packet reported, with what estimate and window."""

    packet: npt.NDArray[np.int64]
    estimate: U32
    window: U32


_DEFAULT_KEY = SketchHashKey.default()


class Sketch:
    """Count-min sketch state that persists across batches of packets (like the switch's
    registers); ``conservative=False`` gives plain count-min, for comparison, and
    ``tofino=True`` the TNA program's variant. ``hash_key``: the v1model program's keyed
    hashing with that key (by default the key the program starts with); ``None``: the
    unkeyed CRC rows (the TNA program's, and the only choice with ``tofino=True``)."""

    def __init__(
        self,
        *,
        depth: int = SKETCH_DEPTH,
        width: int = SKETCH_WIDTH,
        dedup_slots: int = SKETCH_DEDUP_SLOTS,
        conservative: bool = True,
        tofino: bool = False,
        hash_key: SketchHashKey | None = _DEFAULT_KEY,
    ) -> None:
        if width & (width - 1) or dedup_slots & (dedup_slots - 1):
            raise ValueError("width and dedup slots must be powers of two")
        if not 1 <= depth <= SKETCH_MAX_DEPTH or width > SKETCH_MAX_WIDTH:
            raise ValueError(f"depth must be 1..{SKETCH_MAX_DEPTH}, width <= {SKETCH_MAX_WIDTH}")
        if tofino:
            hash_key = None
        elif hash_key is not None and (width * dedup_slots).bit_length() - 1 > 32:
            raise ValueError("keyed hashing: log2(width) + log2(dedup slots) must be <= 32")
        self.depth, self.width, self.conservative = depth, width, conservative
        self.tofino = tofino
        self.hash_key = hash_key
        self.cell_window = np.zeros((depth, width), dtype=np.uint32)
        self.cell_count = np.zeros((depth, width), dtype=np.uint32)
        self.dedup = np.zeros(dedup_slots, dtype=np.uint64)

    def hashes(self, packets: Packets, key: FlowKeyType) -> tuple[U32, U32, U32]:
        """(depth, n) row cells, the dedup slots and the dedup tags of ``packets``. Each
        array's last axis is the packet: hash each flow once and gather with :func:`gather`,
        when packets are few flows (hashing is most of the cost of a packet)."""
        slots = self.dedup.shape[0]
        if self.hash_key is None:
            polys = tna_polys() if self.tofino else None
            crc32 = fingerprints(packets, key, polys)
            index = row_indices(packets, key, self.depth, self.width, polys=polys)
            return index, crc32 & np.uint32(slots - 1), crc32
        rows, slot, tag = keyed_slots(packets, key, self.width, slots, self.hash_key)
        return np.stack(rows[: self.depth]), slot, tag

    def _mode(self, count_bytes: bool) -> int:
        if not self.conservative:
            return MODE_CM
        if self.tofino:
            # Tofino's byte rows are plain count-min: a stateful ALU takes two operands.
            return MODE_CM if count_bytes else MODE_ROW0_BOUNDED
        return MODE_CU

    @property
    def memory_bytes(self) -> int:
        """Counter memory (the 32-bit counts; window tags and dedup are bookkeeping)."""
        return self.depth * self.width * 4

    def process(
        self, packets: Packets, key: FlowKeyType, *, threshold: int, count_bytes: bool = False
    ) -> Reports:
        return self.process_hashed(
            self.hashes(packets, key),
            packets.length,
            packets.window,
            threshold=threshold,
            count_bytes=count_bytes,
        )

    def process_hashed(
        self,
        hashes: tuple[U32, ...],
        length: U32,
        window: U32,
        *,
        threshold: int,
        count_bytes: bool = False,
    ) -> Reports:
        """:meth:`process` on packets already hashed (``hashes`` as :meth:`hashes` gives
        them, one column per packet), with their frame lengths and windows."""
        index, slot, fingerprint = hashes
        n = len(window)
        increment = length if count_bytes else np.ones(n, dtype=np.uint32)
        out_packet = np.empty(n, dtype=np.int64)
        out_estimate = np.empty(n, dtype=np.uint32)
        count = _run(
            self.cell_window,
            self.cell_count,
            self.dedup,
            index,
            slot,
            fingerprint,
            increment.astype(np.uint32),
            window.astype(np.uint32),
            threshold,
            self._mode(count_bytes),
            self.tofino,
            out_packet,
            out_estimate,
        )
        reported = out_packet[:count]
        return Reports(reported, out_estimate[:count], window[reported])

    def query(self, packets: Packets, key: FlowKeyType) -> U32:
        """The sketch's current estimate for each row's flow, in that row's window (0 where
        every cell belongs to another window): what the switch would report now."""
        index = self.hashes(packets, key)[0]
        rows = np.arange(self.depth)[:, None]
        same_window = self.cell_window[rows, index] == packets.window[None, :]
        counts = np.where(same_window, self.cell_count[rows, index], 0)
        estimates: U32 = counts.min(axis=0).astype(np.uint32)
        return estimates
