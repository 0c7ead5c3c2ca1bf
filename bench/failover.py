"""Failover benchmark on BMv2 + Mininet (issue 14): a transit switch dies mid-traffic.

The data-ingestion lab (``icpn net up data-ingestion``: four planes sh1-gzN-nx1) carries 40
RoCEv2 flows at 400 packets/s from src to dst, spread over the four segment lists by the
headend's deep hash (:mod:`icpn.net.outage`). gz2 is killed (``icpn net kill``), stays down
``--down-s`` seconds, and is restarted (``icpn net restart``). Measured per trial:

* packets lost in the outage (sent from 1 s before the kill to the restart), and after
  the restart (should be none);
* time to steer around: on the wire (kill -> send time of the last packet lost) and as
  the controller logged it (kill -> the drain written to sh1);
* time to restore: the restarted BMv2 serving gRPC -> its list back in sh1's group (the
  controller reconciles gz2 first), and the restart itself (start -> serving).

Baseline, in the same run: the same outage with the controller's failover off (``icpn net
up --no-failover``): the flows hashed onto gz2's plane lose everything for the whole outage.
The ratio of the two losses is what failover saves.

Needs root, Mininet and BMv2 (skips with the reason otherwise). Writes
build/bench/failover.json (every figure named with its unit) and failover.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from icpn.net.emulation import mininet_available
from icpn.net.outage import OutageFigures, run_outage
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain

TOPOLOGY = "data-ingestion"
VICTIM = "gz2"


def net(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icpn.cli", "net", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def trial(*, failover: bool, flows: int, rate_pps: float, down_s: float) -> OutageFigures:
    up = net("up", TOPOLOGY, "--detach", "--failover" if failover else "--no-failover")
    try:
        if up.returncode != 0:
            raise SystemExit(f"icpn net up failed:\n{up.stdout}{up.stderr}")
        return run_outage(
            VICTIM,
            source="src",
            destination="dst",
            address="2001:db8:20::10",
            flows=flows,
            rate_pps=rate_pps,
            down_s=down_s,
        )
    finally:
        down = net("down", timeout=120)
        if down.returncode != 0:
            print(f"icpn net down: {down.stdout}{down.stderr}", file=sys.stderr)


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="outages with failover on")
    parser.add_argument("--flows", type=int, default=40)
    parser.add_argument("--rate-pps", type=float, default=400.0)
    parser.add_argument("--down-s", type=float, default=4.0, help="how long gz2 stays down")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    reason = mininet_available() or toolchain.bmv2_unavailable_reason()
    if reason is not None:
        print(f"failover bench skipped: {reason}")
        return
    settings = {"flows": args.flows, "rate_pps": args.rate_pps, "down_s": args.down_s}
    runs: list[OutageFigures] = []
    for i in range(args.trials):
        print(f"trial {i + 1}/{args.trials}: {VICTIM} killed with failover on")
        runs.append(trial(failover=True, **settings))
        print(f"  {runs[-1]}")
    print(f"baseline: {VICTIM} killed with failover off")
    baseline = trial(failover=False, **settings)
    print(f"  {baseline}")

    def ms(values: list[float | None]) -> float | None:
        found = median(values)
        return None if found is None else round(found * 1000, 1)

    lost = median([r.lost_in_outage_packets for r in runs])
    figures: dict[str, Any] = {
        "lost_in_outage_packets": lost,
        "lost_in_outage_without_failover_packets": baseline.lost_in_outage_packets,
        "lost_with_vs_without_failover_ratio": (
            round(lost / baseline.lost_in_outage_packets, 4)
            if lost is not None and baseline.lost_in_outage_packets
            else None
        ),
        "lost_after_restart_packets": max(r.lost_after_restart_packets for r in runs),
        "steer_wire_ms": ms([r.steer_wire_s for r in runs]),
        "steer_wire_max_ms": round(max((r.steer_wire_s or 0.0) for r in runs) * 1000, 1),
        "steer_controller_ms": ms([r.steer_controller_s for r in runs]),
        "restore_after_serving_ms": ms([r.restore_s for r in runs]),
        "restart_to_serving_ms": ms([r.serve_after_restart_s for r in runs]),
        "outage_s": round(statistics.median(r.outage_s for r in runs), 2),
        "flows_hit": median([r.flows_hit for r in runs]),
        "packet_interval_ms": round(1000 / args.rate_pps, 2),
    }
    report = {
        "benchmark": "failover",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "method": {
            "topology": TOPOLOGY,
            "victim": VICTIM,
            "traffic": f"{args.flows} RoCEv2 flows, {args.rate_pps:g} packets/s in all",
            "trials": args.trials,
            "statistic": "median over trials (steer_wire_max_ms: the worst)",
            "baseline": "the same outage with icpn net up --no-failover, same run",
        },
        "figures": figures,
        "trials": [r.__dict__ for r in runs],
        "baseline": baseline.__dict__,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "failover.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Failover benchmark (BMv2 + Mininet, data-ingestion, gz2 killed)",
        "",
        f"{args.flows} flows at {args.rate_pps:g} packets/s; gz2 down ~{figures['outage_s']} s; "
        f"median of {args.trials} trials; baseline without failover in the same run.",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {v} |" for k, v in figures.items()]
    (args.out / "failover.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {args.out / 'failover.json'} and failover.md")


if __name__ == "__main__":
    main()
