"""Elephant detection under crafted traffic: the unkeyed CRC sketch and the old manager
against the keyed sketch and the guarded manager, attacked in the same run.

Both sides run the real code: the reference model of the v1model sketch (bit-exact with
BMv2: ``Sketch(hash_key=None)`` is the unkeyed CRC hashing the program had before, and
``Sketch(hash_key=<secret>)`` the keyed one) feeds its reports, at the time of the packet
that crossed the threshold, to :class:`icpn.elephant.ElephantManager` over an in-process
switch whose override counters count the packets each pinned flow sent after its pin.

Traffic, per 1 s window (threshold T packets per window, one poll per window):

* legitimate, ports 1-4: ``ELEPHANTS`` RDMA elephants of 2-4 T packets, starting in windows
  0-3 (so they cross the threshold at different times), and 30k packets of mice;
* the attacker, port 9, knowing the program and every elephant's flow key, varying its
  source interface id and DestQP, its keys solved over GF(2) against the CRC
  (:mod:`icpn.model.crc_collide`):
  - **twins**: for half the elephants, a key with the elephant's row cells, dedup slot and
    tag, sending T packets at the start of each window: it reports first and the
    elephant's own report is deduplicated away;
  - **riders**: 512 fresh keys per window in the other elephants' cells, one packet each:
    each reports as an elephant (its cells are past T);
  - **mice group**: one key sending T packets and 512 fresh keys sharing its cells, one
    packet each: the "threshold + 512 packets" flood.

Against the keyed sketch the attacker sends the same keys (without the secret it has no
better ones). Four configurations: old (CRC + old manager), CRC + guarded manager, keyed +
old manager, new (keyed + guarded manager). Figures, per configuration:

* recall: share of true elephants pinned by the end of the window after the one in which
  they first crossed the threshold (the goal: all), and pinned at the end of the run;
* precision: share of pinned entries that are true elephants (flows that sent >= T packets
  in the window), at each poll (min and mean) and over time (sampled every 5 ms);
* the attacker's share of the override table (max over time) and of the report queue,
  against its quota (the guarded manager's ``port_quota``).

Writes build/bench/adversarial.json (every figure named with its unit) and adversarial.md.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
import numpy as np

from icpn.constants import SKETCH_WIDTH, FlowKeyType
from icpn.elephant import ElephantManager, ManagerSettings, PolicyPaths
from icpn.features.sketch import ElephantReport, FlowKey
from icpn.features.srv6 import SegmentList
from icpn.model.crc_collide import Key, Solver, crc_bits, sketch_mask
from icpn.model.sketch import Packets, Sketch
from icpn.paths import BUILD_DIR
from icpn.sketch_key import SketchHashKey

THRESHOLD = 1000  # packets per window
WINDOW_S = 1.0
ELEPHANTS = 16
MICE_PACKETS = 30_000
RIDERS = 512
GROUP = 512
TICK_S = 0.005  # how often the manager places pending reports
PORT_QUOTA = 0.25
APN_ID = 0x70001
LEGIT_PORTS = (1, 2, 3, 4)
ATTACKER_PORT = 9
SERVER = int(ipaddress.IPv6Address("2001:db8:2::10"))
LEGIT_PREFIX = int(ipaddress.IPv6Address("2001:db8:1::"))
ATTACKER_PREFIX = int(ipaddress.IPv6Address("2001:db8:9::"))
WIDTH_BITS = SKETCH_WIDTH.bit_length() - 1
LISTS = tuple(SegmentList((f"fc00:{i + 2}::1", "fc00:9::d6"), list_id=i + 1) for i in range(4))


@dataclass(frozen=True)
class Flow:
    key: Key
    port: int
    attacker: bool


@dataclass
class Window:
    """One window's packets in time order: flow index and time (s, from the window start)."""

    flow: np.ndarray
    time: np.ndarray


class Scenario:
    """The flows and every window's packets, the same for every configuration."""

    def __init__(self, windows: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        pyrng = random.Random(seed)
        self.flows: list[Flow] = []
        self.index: dict[Key, int] = {}
        self.elephants = [
            self.add(Key(LEGIT_PREFIX | (0x100 + e), SERVER, 0x1000 + e), LEGIT_PORTS[e % 4])
            for e in range(ELEPHANTS)
        ]
        self.start = {e: (i * 4) // ELEPHANTS for i, e in enumerate(self.elephants)}
        self.rate = {e: int(rng.integers(2 * THRESHOLD, 4 * THRESHOLD)) for e in self.elephants}
        solver = Solver(ATTACKER_PREFIX, SERVER)
        targets = crc_bits([self.flows[e].key for e in self.elephants])
        # Twins for half the elephants, riders for the others: a rider shares its
        # elephant's row-0 cell, which under the CRC is also its dedup slot, so its own
        # report would overwrite the twin's tag and let the elephant report again.
        self.twins = {
            e: self.add(
                solver.solve(t, sketch_mask(WIDTH_BITS, twin=True), 1, pyrng)[0],
                ATTACKER_PORT,
                True,
            )
            for e, t in zip(self.elephants[::2], targets[::2], strict=True)
        }
        self.ridden = self.elephants[1::2]
        heavy = self.add(Key(ATTACKER_PREFIX | 0xBEEF, SERVER, 0xBEEF), ATTACKER_PORT, True)
        heavy_bits = crc_bits([self.flows[heavy].key])[0]
        self.windows: list[Window] = []
        self.solve_s = 0.0
        for w in range(windows):
            flows: list[np.ndarray] = []
            times: list[np.ndarray] = []

            def send(
                flow: int,
                count: int,
                lo: float,
                hi: float,
                flows: list[np.ndarray] = flows,
                times: list[np.ndarray] = times,
            ) -> None:
                flows.append(np.full(count, flow, np.int64))
                times.append(rng.uniform(lo, hi, count))

            active = [e for e in self.elephants if self.start[e] <= w]
            for e in active:
                send(e, self.rate[e], 0.0, WINDOW_S)
                if e in self.twins:
                    send(self.twins[e], THRESHOLD, 0.0, 0.05 * WINDOW_S)
            mice = [
                self.add(
                    Key(LEGIT_PREFIX | int(rng.integers(1, 1 << 16)), SERVER, int(q)),
                    LEGIT_PORTS[int(q) % 4],
                )
                for q in rng.integers(1 << 16, 1 << 24, MICE_PACKETS // 2)
            ]
            for m in mice:
                send(m, 2, 0.0, WINDOW_S)
            started = time.perf_counter()
            riders: list[Key] = []
            ridden = [e for e in self.ridden if e in active]
            for i, e in enumerate(ridden):
                share = RIDERS // len(ridden) + (i < RIDERS % len(ridden))
                target = targets[self.elephants.index(e)]
                riders += solver.solve(target, sketch_mask(WIDTH_BITS, twin=False), share, pyrng)
            group = solver.solve(heavy_bits, sketch_mask(WIDTH_BITS, twin=False), GROUP, pyrng)
            self.solve_s += time.perf_counter() - started
            send(heavy, THRESHOLD, 0.0, 0.05 * WINDOW_S)
            for k in riders + group:
                send(self.add(k, ATTACKER_PORT, True), 1, 0.1 * WINDOW_S, WINDOW_S)
            flow, when = np.concatenate(flows), np.concatenate(times)
            order = np.argsort(when, kind="stable")
            self.windows.append(Window(flow[order], when[order]))
        self.keys = [f.key for f in self.flows]

    def add(self, key: Key, port: int, attacker: bool = False) -> int:
        if key in self.index:
            return self.index[key]
        self.index[key] = len(self.flows)
        self.flows.append(Flow(key, port, attacker))
        return self.index[key]

    def packets(self, w: int) -> Packets:
        flow = self.windows[w].flow
        n = len(flow)
        srcs = np.frombuffer(
            b"".join(self.keys[f].src.to_bytes(16, "big") for f in flow), np.uint8
        ).reshape(n, 16)
        dsts = np.frombuffer(SERVER.to_bytes(16, "big") * n, np.uint8).reshape(n, 16)
        return Packets(
            src=srcs,
            dst=dsts,
            proto=np.zeros(n, np.uint8),
            sport=np.zeros(n, np.uint16),
            dport=np.zeros(n, np.uint16),
            dest_qp=np.array([self.keys[f].qp for f in flow], np.uint32),
            length=np.full(n, 1100, np.uint32),
            window=np.full(n, w, np.uint32),
        )


def flow_key(key: Key) -> FlowKey:
    return FlowKey(key.address("src"), key.address("dst"), dest_qp=key.qp)


class Switch:
    """Override entries the manager writes; their direct counters from the scenario."""

    def __init__(self) -> None:
        self.overrides: dict[FlowKey, fy.P4TableEntry] = {}
        self.hits: dict[FlowKey, tuple[int, int]] = {}

    async def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]:
        raise NotImplementedError  # reports are offered directly
        yield

    async def insert(self, entities: Sequence[Any], **_: Any) -> None:
        for entry in entities:
            key = _key_of(entry)
            self.overrides[key] = entry
            self.hits[key] = (0, 0)  # a new entry's counter starts at zero

    async def modify(self, entities: Sequence[Any], **_: Any) -> None:
        for entry in entities:
            self.overrides[_key_of(entry)] = entry

    async def delete(self, entities: Sequence[Any], **_: Any) -> None:
        for entry in entities:
            self.overrides.pop(_key_of(entry), None)

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData:
        return fy.P4CounterData(byte_count=0, packet_count=0)

    async def read(self, entity: Any) -> list[Any]:
        cells = []
        for key, entry in self.overrides.items():
            packets, octets = self.hits.get(key, (0, 0))
            cells.append(
                fy.P4DirectCounterEntry(
                    table_entry=entry,
                    data=fy.P4CounterData(byte_count=octets, packet_count=packets),
                )
            )
        return cells


def _key_of(entry: fy.P4TableEntry) -> FlowKey:
    m = dict(entry.match or {})
    return FlowKey(str(m["src"]), str(m["dst"]), dest_qp=int(m["dest_qp"]))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def run(
    scenario: Scenario, hash_key: SketchHashKey | None, guarded: bool
) -> dict[str, float]:
    clock, switch = Clock(), Switch()
    policy = PolicyPaths(
        1,
        "fc00:1::1",
        LISTS,
        elephant_rate=THRESHOLD / WINDOW_S if guarded else 0.0,
    )
    settings = ManagerSettings(
        poll_interval_s=WINDOW_S,
        verify_after_s=WINDOW_S,
        port_quota=PORT_QUOTA if guarded else 1.0,
    )
    mgr = ElephantManager(switch, [policy], settings, clock=clock)
    sketch = Sketch(hash_key=hash_key)
    by_key = {flow_key(f.key): i for i, f in enumerate(scenario.flows)}
    elephants = set(scenario.elephants)
    pinned_at: dict[int, int] = {}  # elephant -> first window end at which it was pinned
    poll_precision: list[float] = []
    tick_true = tick_total = 0
    attacker_table = attacker_queue = 0
    reports = attacker_reports = 0
    truly = np.zeros(len(scenario.flows), dtype=bool)  # sent >= T packets this window
    await mgr.poll()

    def attacker_entries() -> int:
        return sum(1 for k in switch.overrides if scenario.flows[by_key[k]].attacker)

    async def tick_until(t: float) -> None:
        nonlocal tick_true, tick_total, attacker_table, attacker_queue
        while clock.now + TICK_S <= t:
            clock.now += TICK_S
            if mgr.pending:
                await mgr.place_pending()
            tick_total += len(switch.overrides)
            tick_true += sum(1 for k in switch.overrides if truly[by_key[k]])
            attacker_table = max(attacker_table, attacker_entries())
            queued = sum(1 for _, k in mgr.pending if scenario.flows[by_key[k]].attacker)
            attacker_queue = max(attacker_queue, queued)
        clock.now = max(clock.now, t)

    for w, window in enumerate(scenario.windows):
        start = w * WINDOW_S
        counts = np.bincount(window.flow, minlength=len(scenario.flows))
        truly = counts >= THRESHOLD
        out = sketch.process(scenario.packets(w), FlowKeyType.SRC_DST_QP, threshold=THRESHOLD)
        for j, estimate in zip(out.packet.tolist(), out.estimate.tolist(), strict=True):
            flow = int(window.flow[j])
            await tick_until(start + float(window.time[j]))
            reports += 1
            attacker_reports += scenario.flows[flow].attacker
            mgr.offer(
                ElephantReport(
                    flow_key(scenario.flows[flow].key),
                    FlowKeyType.SRC_DST_QP,
                    APN_ID,
                    1,
                    estimate,
                    w,
                    scenario.flows[flow].port,
                )
            )
        await tick_until(start + WINDOW_S)
        # the counters: each pin counts its flow's packets sent after it took effect
        for key in list(switch.overrides):
            flow = by_key[key]
            installed = mgr.pinned[(1, key)].installed_at if (1, key) in mgr.pinned else start
            after = installed - start
            sent = int(np.count_nonzero((window.flow == flow) & (window.time > after)))
            packets, octets = switch.hits[key]
            switch.hits[key] = (packets + sent, octets + sent * 1100)
        await mgr.poll()
        for e in elephants:
            if e not in pinned_at and (1, flow_key(scenario.flows[e].key)) in mgr.pinned:
                pinned_at[e] = w
        if switch.overrides:
            true_now = sum(1 for k in switch.overrides if truly[by_key[k]])
            poll_precision.append(true_now / len(switch.overrides))

    crossed = scenario.start
    in_time = sum(1 for e in elephants if e in pinned_at and pinned_at[e] <= crossed[e] + 1)
    at_end = sum(1 for e in elephants if (1, flow_key(scenario.flows[e].key)) in mgr.pinned)
    return {
        "recall_within_one_window": round(in_time / len(elephants), 4),
        "recall_at_end": round(at_end / len(elephants), 4),
        "precision_at_polls_min": round(min(poll_precision, default=1.0), 4),
        "precision_at_polls_mean": round(float(np.mean(poll_precision or [1.0])), 4),
        "precision_over_time": round(tick_true / tick_total, 4) if tick_total else 1.0,
        "attacker_table_share_max": round(attacker_table / settings.max_overrides, 4),
        "attacker_queue_share_max": round(attacker_queue / settings.max_pending, 4),
        "attacker_quota_share": settings.port_quota,
        "reports": reports,
        "attacker_reports": attacker_reports,
        "pins_refuted": mgr.stats.refuted,
        "reports_over_quota": mgr.stats.over_quota,
        "entries_at_end": len(switch.overrides),
    }


CONFIGS = {
    "old": (False, False),  # unkeyed CRC sketch, manager without verification or quotas
    "crc_guarded": (False, True),
    "keyed_unguarded": (True, False),
    "new": (True, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 5 <= args.windows <= 100:
        parser.error("need 5 <= windows <= 100 (elephants start in windows 0-3)")
    began = time.perf_counter()
    scenario = Scenario(args.windows, args.seed)
    secret = SketchHashKey.generate()
    report: dict[str, Any] = {
        "windows": args.windows,
        "window_s": WINDOW_S,
        "threshold_packets_per_window": THRESHOLD,
        "true_elephants": ELEPHANTS,
        "legit_packets_per_window_max": int(sum(scenario.rate.values()) + MICE_PACKETS),
        "attacker_packets_per_window_max": (ELEPHANTS // 2 + 1) * THRESHOLD + RIDERS + GROUP,
        "attacker_key_solving_ms_per_window": round(1000 * scenario.solve_s / args.windows, 2),
    }
    for name, (keyed, guarded) in CONFIGS.items():
        print(f"{name} ...", flush=True)
        figures = asyncio.run(run(scenario, secret if keyed else None, guarded))
        report |= {f"{name}_{k}": v for k, v in figures.items()}
    report["bench_run_time_s"] = round(time.perf_counter() - began, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "adversarial.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report)
    (args.out / "adversarial.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'adversarial.json'} and adversarial.md")


def summary(report: dict[str, Any]) -> str:
    lines = [
        "# Elephant detection under crafted traffic",
        "",
        f"{report['true_elephants']} true elephants, threshold "
        f"{report['threshold_packets_per_window']} packets per {report['window_s']} s window, "
        f"{report['windows']} windows; the attacker (one port) sends up to "
        f"{report['attacker_packets_per_window_max']} packets per window on keys solved "
        f"over GF(2) against the CRC ({report['attacker_key_solving_ms_per_window']} ms of "
        "solving per window). Goals under attack: recall within one window 100%, "
        "precision >= 90%, attacker share <= its quota.",
        "",
        "| configuration | recall within 1 window | recall at end | precision at polls "
        "(min / mean) | precision over time | attacker table share (max) | quota "
        "| attacker queue share (max) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        r = {k[len(name) + 1 :]: v for k, v in report.items() if k.startswith(name + "_")}
        lines.append(
            f"| {name} | {r['recall_within_one_window']:.0%} | {r['recall_at_end']:.0%} "
            f"| {r['precision_at_polls_min']:.0%} / {r['precision_at_polls_mean']:.0%} "
            f"| {r['precision_over_time']:.0%} | {r['attacker_table_share_max']:.1%} "
            f"| {r['attacker_quota_share']:.0%} | {r['attacker_queue_share_max']:.1%} |"
        )
    lines += ["", f"Run time: {report['bench_run_time_s']} s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
