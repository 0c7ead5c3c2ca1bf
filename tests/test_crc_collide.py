"""The linear attack on the unkeyed CRC sketch (icpn.model.crc_collide) works against the CRC
rows and fails against the keyed hash: twins silence an elephant's report, riders in its
cells report as elephants, only with the CRC."""

from __future__ import annotations

import random

import numpy as np

from icpn.constants import FlowKeyType
from icpn.model.crc_collide import Key, Solver, crc_bits, packets_of, sketch_mask
from icpn.model.sketch import Packets, Sketch, row_indices
from icpn.sketch_key import SketchHashKey

ELEPHANT = Key(0x20010DB8000100000000000000000010, 0x20010DB8000200000000000000000010, 0xA1)
ATTACKER = 0x20010DB8000900000000000000000000
T = 200


def solve(count: int, *, twin: bool, seed: int = 1) -> list[Key]:
    target = crc_bits([ELEPHANT])[0]
    return Solver(ATTACKER, ELEPHANT.dst).solve(
        target, sketch_mask(12, twin=twin), count, random.Random(seed)
    )


def stream(keys: list[Key]) -> Packets:
    return packets_of(keys)


def test_solved_keys_share_the_elephants_cells_and_are_the_attackers() -> None:
    riders = solve(300, twin=False)
    assert len(set(riders)) == 300
    assert all(k.src >> 64 == ATTACKER >> 64 and k.dst == ELEPHANT.dst for k in riders)
    cells = row_indices(stream([ELEPHANT, *riders]), FlowKeyType.SRC_DST_QP, hash_key=None)
    assert (cells == cells[:, :1]).all()  # every row, every key
    (twin,) = solve(1, twin=True)
    target, got = crc_bits([ELEPHANT, twin])
    assert (target ^ got) & 0xFFFFFFFF == 0  # the whole CRC-32: dedup slot and tag


def test_the_attackers_bits_reach_every_crc_bit() -> None:
    """88 bits (interface id and DestQP) span all 48 CRC bits: any target is reachable, so
    the attack needs nothing from the victim's side."""
    solver = Solver(ATTACKER, ELEPHANT.dst)
    reach = 0
    for column in solver.columns:
        reach |= column
    assert reach == (1 << 48) - 1
    for seed in range(5):
        target = random.Random(seed).getrandbits(48)
        (key,) = solver.solve(target, (1 << 48) - 1, 1, random.Random(seed))
        assert crc_bits([key])[0] == target


def twin_then_elephant(hash_key: SketchHashKey | None) -> set[int]:
    """The twin sends T packets, then the elephant T: the DestQPs that get reported."""
    (twin,) = solve(1, twin=True)
    keys = [twin] * T + [ELEPHANT] * T
    reports = Sketch(hash_key=hash_key).process(stream(keys), FlowKeyType.SRC_DST_QP, threshold=T)
    return {keys[j].qp for j in reports.packet.tolist()}


def test_a_twin_silences_the_elephant_only_under_the_crc() -> None:
    (twin,) = solve(1, twin=True)
    assert twin_then_elephant(None) == {twin.qp}  # the elephant never reports
    assert twin_then_elephant(SketchHashKey.generate()) == {twin.qp, ELEPHANT.qp}


def test_riders_report_as_elephants_only_under_the_crc() -> None:
    riders = solve(100, twin=False)
    keys = [ELEPHANT] * T + riders  # one packet each, after the elephant crossed
    for hash_key, expected in ((None, 100), (SketchHashKey.generate(), 0)):
        reports = Sketch(hash_key=hash_key).process(
            stream(keys), FlowKeyType.SRC_DST_QP, threshold=T
        )
        reported = np.asarray(reports.packet) >= T
        assert int(reported.sum()) == expected, hash_key
