"""Elephant detection and splitting: accuracy vs memory, load balance, control-loop latency.

1. Detection (reference model, bit-exact with BMv2): precision, recall, F1 and the average
   relative error of heavy hitters' estimates, for plain count-min (CM), conservative update
   (CU, v1model) and the Tofino program's sequential conservative update (TNA,
   docs/tofino.md; modelled, not run on a Tofino), at 12, 48, 64 and 192 KB of counters, on
   the same two 1M-packet traces:
   * zipf: 200k flows, packet counts ~ Zipf(s = 1.1) (the usual skewed-popularity model);
   * backbone: 1M packets from flows whose sizes are Pareto (shape 1.2, minimum 1 packet),
     i.e. many one- and few-packet mice and a heavy tail: the shape reported for backbone
     links (e.g. the OC-48 traces in Estan & Varghese, SIGCOMM 2002, section 7). The
     parameters are ours, chosen to give a few hundred flows above 0.1 %.
   Heavy hitters: flows with >= phi = 0.1 % of the window's packets; one window per trace.
2. Load balance (model): 4 segment lists, 12 RoCE elephants and 3000 mice between two host
   pairs (one 5-tuple each, as RDMA NICs mostly give); busiest/mean list load and Jain's
   index for 5-tuple ECMP, the APN deep hash (APN ID, DestQP), and the deep hash with the
   elephants placed by the manager's code (icpn.placement): as reported, before any is
   measured, and after its rebalancing rounds on their measured rates.
3. Control loop on BMv2 (when present): median and p99 of threshold crossing → override in
   force (icpn.elephant_lab).

Writes build/bench/elephants.json (every figure named with its unit) and elephants.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from icpn import hashing, placement
from icpn.constants import FlowKeyType
from icpn.model.sketch import Packets, Sketch
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain

PHI = 0.001
MEMORY_KB = {12: (3, 1024), 48: (3, 4096), 64: (2, 8192), 192: (3, 16384)}
#: Sketch update rules compared at equal memory: count-min, v1model's conservative update,
#: the TNA program's sequential conservative update.
SKETCH_VARIANTS: dict[str, dict[str, Any]] = {
    "cm": {"conservative": False},
    "cu": {},
    "tna": {"tofino": True},
}


def trace(kind: str, packets: int, rng: np.random.Generator) -> np.ndarray:
    """Flow id per packet, in a random order."""
    if kind == "zipf":
        ids = rng.zipf(1.1, size=packets * 2)
        ids = ids[ids <= 200_000][:packets]
    else:
        sizes = np.ceil(rng.pareto(1.2, size=packets) + 1).astype(np.int64)
        sizes = sizes[np.cumsum(sizes) <= packets]
        ids = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(ids)
    return ids.astype(np.uint32)


def as_packets(flow_ids: np.ndarray) -> Packets:
    """Flows as (SA, DA, DestQP) keys: the flow id is the QP (and spreads into the SA)."""
    n = len(flow_ids)
    src = np.zeros((n, 16), dtype=np.uint8)
    src[:, 0:4] = [0x20, 0x01, 0x0D, 0xB8]
    src[:, 12:16] = (flow_ids >> 24).astype(">u4").view(np.uint8).reshape(n, 4)
    dst = np.zeros((n, 16), dtype=np.uint8)
    dst[:, 0:4] = [0x20, 0x01, 0x0D, 0xB9]
    return Packets(
        src=src,
        dst=dst,
        proto=np.full(n, 17, np.uint8),
        sport=np.full(n, 49152, np.uint16),
        dport=np.full(n, 4791, np.uint16),
        dest_qp=(flow_ids & 0xFFFFFF).astype(np.uint32),
        length=np.full(n, 1100, np.uint32),
        window=np.zeros(n, np.uint32),
    )


def detection(kind: str, packets: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    flows = trace(kind, packets, rng)
    threshold = int(PHI * len(flows))
    counts = np.bincount(flows)
    heavy = set(np.flatnonzero(counts >= threshold).tolist())
    stream = as_packets(flows)
    out: dict[str, float] = {
        f"{kind}_packets": len(flows),
        f"{kind}_flows": int((counts > 0).sum()),
        f"{kind}_heavy_hitters": len(heavy),
        f"{kind}_threshold_packets": threshold,
    }
    heavy_ids = np.array(sorted(heavy), dtype=np.uint32)
    for kb, (depth, width) in MEMORY_KB.items():
        for name, variant in SKETCH_VARIANTS.items():
            started = time.perf_counter()
            sketch = Sketch(depth=depth, width=width, **variant)
            reports = sketch.process(stream, FlowKeyType.SRC_DST_QP, threshold=threshold)
            seconds = time.perf_counter() - started
            reported = set(flows[reports.packet].tolist())
            tp = len(reported & heavy)
            precision = tp / len(reported) if reported else 1.0
            recall = tp / len(heavy) if heavy else 1.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            probe = as_packets(heavy_ids)
            estimates = sketch.query(probe, FlowKeyType.SRC_DST_QP).astype(np.float64)
            true = counts[heavy_ids].astype(np.float64)
            are = float(np.mean(np.abs(estimates - true) / true)) if len(true) else 0.0
            tag = f"{kind}_{name}_{kb}KB_phi{PHI}"
            out |= {
                f"{tag}_precision": round(precision, 4),
                f"{tag}_recall": round(recall, 4),
                f"{tag}_f1": round(f1, 4),
                f"{tag}_heavy_hitter_are": round(are, 5),
                f"{tag}_model_packets_per_s": round(len(flows) / seconds),
            }
    return out


def balance(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    lists = 4
    apn = 0x00070001
    elephants = [(qp, float(rng.uniform(50, 150))) for qp in range(0x100, 0x100 + 12)]
    mice = [(int(q), float(rng.exponential(0.05))) for q in rng.integers(0x1000, 1 << 24, 3000)]
    flows = elephants + mice  # (DestQP, rate)

    # Two host pairs, one UDP source port each: the few 5-tuples RDMA NICs give. 5-tuple
    # ECMP hashes routing_v6's selector key (SA, DA, flow label 0, UDP, ports).
    def ecmp_key(pair: int) -> list[tuple[int, int]]:
        src, dst = (0x20010DB8_0001 << 80) | (pair + 1), (0x20010DB8_0002 << 80) | (pair + 1)
        return [(src, 128), (dst, 128), (0, 20), (17, 8), (49152 + pair, 16), (4791, 16)]

    five_tuple = [hashing.ecmp_member(ecmp_key(qp % 2), lists) for qp, _ in flows]
    deep = [hashing.sr_list_member([(apn, 128), (qp, 24)], [1] * lists) for qp, _ in flows]
    placed, rebalanced, rounds, moves = manager_placement(elephants, mice, deep, lists, rng)

    def figures(name: str, choice: list[int]) -> dict[str, float]:
        per_list = np.zeros(lists)
        for (_, rate), c in zip(flows, choice, strict=True):
            per_list[c] += rate
        jain = per_list.sum() ** 2 / (lists * (per_list**2).sum())
        return {
            f"{name}_busiest_over_mean": round(float(per_list.max() / per_list.mean()), 4),
            f"{name}_jain_index": round(float(jain), 4),
        }

    return (
        figures("ecmp_5tuple", five_tuple)
        | figures("apn_deep_hash", deep)
        | figures("deep_hash_placed", placed)
        | figures("deep_hash_rebalanced", rebalanced)
        | {
            "balance_lists": lists,
            "balance_elephants": len(elephants),
            "balance_mice": len(mice),
            "rebalance_rounds": rounds,
            "rebalance_moves": moves,
        }
    )


def manager_placement(
    elephants: list[tuple[int, float]],
    mice: list[tuple[int, float]],
    deep: list[int],
    lists: int,
    rng: np.random.Generator,
) -> tuple[list[int], list[int], int, int]:
    """Where the elephant manager's placement (icpn.placement, the code the controller
    runs) puts the flows: the elephants reported in a random order before any of them is
    measured (placed on the measured list loads plus the expected rate of each one placed
    since), then rebalancing rounds on their measured rates until nothing moves. Returns
    each flow's list after placement and after rebalancing, the rounds and the moves."""
    settings = placement.PlacementSettings(hold_down_s=0.0)
    before = np.zeros(lists)  # what the lists carried before any pin: every flow hashed
    for (_, rate), d in zip(elephants + mice, deep, strict=True):
        before[d] += rate
    measured = [placement.ListState(1.0, 0.0, float(b)) for b in before]
    chosen: list[int] = []
    pins: dict[int, int] = {}
    for i in rng.permutation(len(elephants)).tolist():
        pins[i] = placement.place(measured, [], chosen, settings, origin=deep[i], default_rate=100)
        chosen.append(pins[i])
    background = np.zeros(lists)
    for k, (_, rate) in enumerate(mice):
        background[deep[len(elephants) + k]] += rate
    lists_now = [placement.ListState(1.0, 0.0, float(b)) for b in background]
    placed = [pins.get(i, d) for i, d in enumerate(deep)]
    rounds = moves = 0
    for rounds in range(1, 100):
        flows = [placement.Flow(i, pins[i], elephants[i][1], 0.0) for i in sorted(pins)]
        decided = placement.rebalance(lists_now, flows, float(rounds), settings)
        if not decided:
            break
        for move in decided:
            pins[move.key] = move.target
        moves += len(decided)
    return placed, [pins.get(i, d) for i, d in enumerate(deep)], rounds, moves


async def loop_latency(samples: int) -> dict[str, float]:
    from icpn.elephant_lab import control_loop_latency_s, elephant_lab, hashed_list, load_list

    latencies = []
    async with elephant_lab() as lab:
        background = asyncio.ensure_future(load_list(lab, 0, packets=100_000, rate_pps=300))
        await asyncio.sleep(0.6)
        candidates = (q for q in range(1, 100_000) if hashed_list(q) == 0)
        for _ in range(samples):
            latency = await control_loop_latency_s(lab, next(candidates))
            if latency is not None:
                latencies.append(latency * 1000)
            print(
                f"  control loop {len(latencies)}/{samples}: "
                f"{latencies[-1] if latencies else float('nan'):.1f} ms",
                flush=True,
            )
        background.cancel()
    if not latencies:
        return {"loop_latency_samples": 0}
    ordered = sorted(latencies)
    return {
        "loop_latency_ms_median": round(statistics.median(ordered), 2),
        "loop_latency_ms_p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "loop_latency_samples": len(ordered),
    }


def summary(report: dict[str, Any]) -> str:
    lines = [
        "# Elephant detection and splitting",
        "",
        f"Heavy hitters: >= {PHI:.1%} of the packets. Model bit-exact with BMv2 (CM, CU); "
        "TNA is the Tofino program's update rule, modelled (no Tofino ran).",
        "",
        "| trace | sketch | memory | precision | recall | F1 | heavy-hitter ARE |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in ("zipf", "backbone"):
        for kb in MEMORY_KB:
            for name in SKETCH_VARIANTS:
                t = f"{kind}_{name}_{kb}KB_phi{PHI}"
                lines.append(
                    f"| {kind} | {name.upper()} | {kb} KB | {report[t + '_precision']} "
                    f"| {report[t + '_recall']} | {report[t + '_f1']} "
                    f"| {report[t + '_heavy_hitter_are']} |"
                )
    lines += ["", "| placement | busiest/mean | Jain |", "|---|---|---|"]
    for name in ("ecmp_5tuple", "apn_deep_hash", "deep_hash_placed", "deep_hash_rebalanced"):
        lines.append(
            f"| {name} | {report[name + '_busiest_over_mean']} | {report[name + '_jain_index']} |"
        )
    if "loop_latency_ms_median" in report:
        lines += [
            "",
            f"Control loop on BMv2: median {report['loop_latency_ms_median']} ms, "
            f"p99 {report['loop_latency_ms_p99']} ms "
            f"({report['loop_latency_samples']} samples).",
        ]
    elif "loop_latency_skipped" in report:
        lines += ["", f"Control loop: not measured ({report['loop_latency_skipped']})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--loop-samples", type=int, default=30)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 10_000 <= args.packets <= 50_000_000 or not 1 <= args.loop_samples <= 1000:
        parser.error("need 10k <= packets <= 50M and 1 <= loop samples <= 1000")
    report: dict[str, Any] = {}
    for kind, seed in (("zipf", 1), ("backbone", 2)):
        print(f"detection on the {kind} trace ...", flush=True)
        report |= detection(kind, args.packets, seed)
    print("load balance ...", flush=True)
    report |= balance(3)
    reason = toolchain.bmv2_unavailable_reason()
    if reason is None:
        print("control loop on BMv2 ...", flush=True)
        report |= asyncio.run(loop_latency(args.loop_samples))
    else:
        report["loop_latency_skipped"] = reason
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "elephants.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report)
    (args.out / "elephants.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'elephants.json'} and elephants.md")


if __name__ == "__main__":
    main()
