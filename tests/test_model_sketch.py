"""icpn.model.sketch against a plain, packet-by-packet Python implementation of the P4
(scalar hashes from icpn.hashing), and the sketch's guarantees."""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections import Counter

import numpy as np

from icpn import hashing
from icpn.constants import FlowKeyType
from icpn.model.sketch import Packets, Sketch, gather, windows_of
from icpn.sketch_key import SketchHashKey, keyed_hash_scalar


def make_packets(
    flows: list[tuple[int, int, int]], windows: list[int], lengths: list[int]
) -> Packets:
    """flows: (src low bits, dst low bits, dest_qp) per packet."""

    def addrs(lows: list[int]) -> np.ndarray:
        return np.frombuffer(
            b"".join((0x20010DB8 << 96 | v).to_bytes(16, "big") for v in lows), dtype=np.uint8
        ).reshape(len(lows), 16)

    n = len(flows)
    return Packets(
        src=addrs([f[0] for f in flows]),
        dst=addrs([f[1] for f in flows]),
        proto=np.full(n, 17, dtype=np.uint8),
        sport=np.full(n, 49152, dtype=np.uint16),
        dport=np.full(n, 4791, dtype=np.uint16),
        dest_qp=np.array([f[2] for f in flows], dtype=np.uint32),
        length=np.array(lengths, dtype=np.uint32),
        window=np.array(windows, dtype=np.uint32),
    )


def reference(
    flows: list[tuple[int, int, int]],
    windows: list[int],
    lengths: list[int],
    threshold: int,
    count_bytes: bool,
    depth: int = 3,
    width: int = 4096,
    slots: int = 4096,
    hash_key: SketchHashKey | None = None,
) -> list[tuple[int, int, int]]:
    """The P4 program, one packet at a time: (packet index, estimate, window) reports;
    ``hash_key`` None: the unkeyed CRC rows (TNA's hashing)."""
    cells: dict[tuple[int, int], tuple[int, int]] = {}
    dedup: dict[int, int] = {}
    out = []
    for j, ((s, d, qp), w, length) in enumerate(zip(flows, windows, lengths, strict=True)):
        key = [
            ((0x20010DB8 << 96) | s, 128),
            ((0x20010DB8 << 96) | d, 128),
            (0, 8),
            (0, 16),
            (0, 16),
            (qp, 24),
        ]
        if hash_key is None:
            crc32, crc16 = hashing.bmv2_crc32(*key), hashing.bmv2_crc16(*key)
            idx = [crc32 % width, (crc32 >> 16) % width, crc16 % width][:depth]
            slot, fp = crc32 % slots, crc32
        else:
            words = [key[0][0] >> s for s in (96, 64, 32, 0)] + [
                key[1][0] >> s for s in (96, 64, 32, 0)
            ]
            words = [w & 0xFFFFFFFF for w in words] + [qp, 0]  # proto 0 ++ QP; ports 0
            h0, h1, fp = keyed_hash_scalar(words, hash_key)
            wb, sb = width.bit_length() - 1, slots.bit_length() - 1
            idx = [h0 >> (32 - wb), (h0 >> (32 - 2 * wb)) % width, h1 >> (32 - wb)][:depth]
            slot = (h1 >> (32 - wb - sb)) % slots
        tagged = [cells.get((i, idx[i]), (0, 0)) for i in range(depth)]
        counts = [c if cw == w else 0 for cw, c in tagged]
        updated = (min(counts) + (length if count_bytes else 1)) & 0xFFFFFFFF
        for i in range(depth):
            cells[(i, idx[i])] = (w, max(counts[i], updated))
        if updated >= threshold:
            tag = (w << 32) | fp
            if dedup.get(slot, 0) != tag:
                dedup[slot] = tag
                out.append((j, updated, w))
    return out


def random_stream(seed: int, n: int) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
    rng = random.Random(seed)
    elephants = [(1, 2, qp) for qp in range(10)]
    flows = [
        rng.choice(elephants)
        if rng.random() < 0.6
        else (rng.randrange(50), rng.randrange(50), rng.randrange(1 << 24))
        for _ in range(n)
    ]
    windows = sorted(rng.randrange(3) for _ in range(n))
    lengths = [rng.randrange(64, 1500) for _ in range(n)]
    return flows, windows, lengths


def test_model_reports_exactly_what_the_p4_logic_reports() -> None:
    secret = SketchHashKey.generate()
    cases = [
        (False, 50, SketchHashKey.default()),
        (True, 40_000, SketchHashKey.default()),
        (False, 50, secret),
        (False, 50, None),  # the unkeyed CRC rows
    ]
    for count_bytes, threshold, hash_key in cases:
        flows, windows, lengths = random_stream(1, 3000)
        got = Sketch(hash_key=hash_key).process(
            make_packets(flows, windows, lengths),
            FlowKeyType.SRC_DST_QP,
            threshold=threshold,
            count_bytes=count_bytes,
        )
        want = reference(flows, windows, lengths, threshold, count_bytes, hash_key=hash_key)
        assert want, "the stream has elephants"
        assert (
            list(zip(got.packet.tolist(), got.estimate.tolist(), got.window.tolist(), strict=True))
            == want
        )


def test_one_report_per_flow_per_window_and_none_for_mice() -> None:
    flows, windows, lengths = random_stream(2, 3000)
    packets = make_packets(flows, windows, lengths)
    reports = Sketch().process(packets, FlowKeyType.SRC_DST_QP, threshold=50)
    seen = Counter((flows[j], w) for j, w in zip(reports.packet, reports.window, strict=True))
    assert max(seen.values()) == 1
    true_counts = Counter(zip(flows, windows, strict=True))
    for flow, window in seen:
        assert true_counts[(flow, window)] >= 50 or flow[0] != 1, "a mouse reported"


def test_conservative_update_never_under_and_never_above_plain_count_min() -> None:
    flows, _, lengths = random_stream(3, 4000)
    packets = make_packets(flows, [0] * len(flows), lengths)
    cu, plain = Sketch(width=64), Sketch(width=64, conservative=False)  # small: collisions
    cu_reports = cu.process(packets, FlowKeyType.SRC_DST_QP, threshold=1)
    plain_reports = plain.process(packets, FlowKeyType.SRC_DST_QP, threshold=1)
    assert (cu.cell_count <= plain.cell_count).all()
    first = {flows[j]: (j, e) for j, e in zip(cu_reports.packet, cu_reports.estimate, strict=True)}
    for flow, (j, estimate) in first.items():
        assert estimate >= sum(1 for f in flows[: j + 1] if f == flow)  # never underestimates
    assert len(plain_reports.packet) >= 1


def test_tofino_variant_sits_between_conservative_update_and_count_min() -> None:
    """TNA's row-0-bounded conservative update: every cell at most plain count-min's (a row
    rises by at most one per packet), every estimate at least the true count (rows 1 and 2
    rise to row 0's count, itself at least the flow's count), and at least exact
    conservative update's estimate for the same packets."""
    flows, _, lengths = random_stream(5, 4000)
    packets = make_packets(flows, [0] * len(flows), lengths)
    tna = Sketch(width=64, tofino=True)  # TNA hashes by CRC: compare on the same cells
    plain = Sketch(width=64, conservative=False, hash_key=None)
    cu = Sketch(width=64, hash_key=None)
    reports = tna.process(packets, FlowKeyType.SRC_DST_QP, threshold=1)
    plain.process(packets, FlowKeyType.SRC_DST_QP, threshold=1)
    cu.process(packets, FlowKeyType.SRC_DST_QP, threshold=1)
    assert (tna.cell_count <= plain.cell_count).all()
    assert not (tna.cell_count == plain.cell_count).all()  # the variant does save counts
    true = Counter(flows)
    probe = make_packets(list(true), [0] * len(true), [100] * len(true))
    estimates = tna.query(probe, FlowKeyType.SRC_DST_QP)
    assert (estimates >= np.array(list(true.values()))).all()
    assert (estimates >= cu.query(probe, FlowKeyType.SRC_DST_QP)).all()
    assert {flows[j] for j in reports.packet} == set(true)  # threshold 1: every flow reports


def test_tofino_variant_counts_bytes_as_plain_count_min() -> None:
    flows, _, lengths = random_stream(6, 2000)
    packets = make_packets(flows, [0] * len(flows), lengths)
    tna = Sketch(width=64, tofino=True)
    plain = Sketch(width=64, conservative=False, hash_key=None)
    tna.process(packets, FlowKeyType.SRC_DST_QP, threshold=1 << 30, count_bytes=True)
    plain.process(packets, FlowKeyType.SRC_DST_QP, threshold=1 << 30, count_bytes=True)
    assert (tna.cell_count == plain.cell_count).all()


def test_windows_follow_the_switch_clock() -> None:
    ts = np.array([0, (1 << 20) - 1, 1 << 20, 5 << 20], dtype=np.uint64)
    assert windows_of(ts, 20, epoch=7).tolist() == [7, 7, 8, 12]


def test_key_types_hash_different_fields() -> None:
    flows, windows, lengths = random_stream(4, 10)
    packets = make_packets(flows, windows, lengths)
    from icpn.model.sketch import row_indices

    by_qp = row_indices(packets, FlowKeyType.SRC_DST_QP)
    by_tuple = row_indices(packets, FlowKeyType.FIVE_TUPLE)
    assert not np.array_equal(by_qp, by_tuple)
    addr = ipaddress.IPv6Address(bytes(packets.src[0]))
    assert str(addr).startswith("2001:db8")


def test_rows_are_not_all_hit_by_the_same_collision() -> None:
    """The reason rows use different linear maps: with one CRC seeded per row, two flows
    colliding in one row collide in every row (CRC is affine). Count how often a pair that
    collides in row 0 also collides in rows 1 and 2: it must be about chance, not always."""
    from icpn.model.sketch import row_indices

    flows = [(1, 2, qp) for qp in range(20_000)]
    packets = make_packets(flows, [0] * len(flows), [100] * len(flows))
    for hash_key in (None, SketchHashKey.default()):
        index = row_indices(packets, FlowKeyType.SRC_DST_QP, width=256, hash_key=hash_key)
        by_cell: dict[int, list[int]] = {}
        for j, cell in enumerate(index[0].tolist()):
            by_cell.setdefault(cell, []).append(j)
        pairs = same = 0
        for members in by_cell.values():
            for a, b in itertools.pairwise(members):
                pairs += 1
                same += int(index[1][a] == index[1][b] and index[2][a] == index[2][b])
        assert pairs > 10_000
        assert same / pairs < 0.01, hash_key  # chance is (1/256)^2


def test_hashing_each_flow_once_gives_what_hashing_each_packet_gives() -> None:
    """The model backend hashes each sketch key once and gathers (Sketch.process_hashed):
    it must report what process, which hashes every packet, reports, in every mode."""
    flows, windows, lengths = random_stream(7, 4000)
    distinct = sorted(set(flows))
    row_of = {flow: i for i, flow in enumerate(distinct)}
    rows = np.array([row_of[f] for f in flows], dtype=np.int64)
    one_per_flow = make_packets(distinct, [0] * len(distinct), [64] * len(distinct))
    length = np.array(lengths, dtype=np.uint32)
    window = np.array(windows, dtype=np.uint32)
    for settings, count_bytes, threshold in (
        ({}, False, 30),
        ({}, True, 20_000),
        ({"width": 64, "tofino": True}, False, 30),
        ({"width": 64, "conservative": False}, True, 20_000),
    ):
        per_packet, per_flow = Sketch(**settings), Sketch(**settings)  # type: ignore[arg-type]
        want = per_packet.process(
            make_packets(flows, windows, lengths),
            FlowKeyType.SRC_DST_QP,
            threshold=threshold,
            count_bytes=count_bytes,
        )
        hashes = gather(per_flow.hashes(one_per_flow, FlowKeyType.SRC_DST_QP), rows)
        got = per_flow.process_hashed(
            hashes, length, window, threshold=threshold, count_bytes=count_bytes
        )
        assert len(want.packet) > 0
        for a, b in ((want.packet, got.packet), (want.estimate, got.estimate)):
            assert a.tolist() == b.tolist()
        assert want.window.tolist() == got.window.tolist()
        assert np.array_equal(per_packet.cell_count, per_flow.cell_count)
        assert np.array_equal(per_packet.dedup, per_flow.dedup)
