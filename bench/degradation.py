"""Telemetry-driven re-steering against its goals on BMv2 (issue 12, part 3).

Runs the path-degradation study (``icpn study path-degradation``, :mod:`icpn.study.degradation`)
``--runs`` times: one path's capacity is cut to 20 % mid-run and repaired 5 s later. Per run:
fault to re-steer (ms, and in alternate-marking periods), detection to re-steer (ms),
goodput after the re-steer as a share of the healthy paths' capacity, drains and restores,
and the goals' verdicts (re-steered within two periods, goodput >= 90 %, no flapping);
over the runs, the worst of each. Each run keeps its own report under
build/bench/degradation/run-N/.

Writes build/bench/degradation.json (every figure named with its unit) and degradation.md.
Skipped, with the reason written, where BMv2 and Mininet cannot run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from icpn.paths import BUILD_DIR
from icpn.study.bmv2_backend import BackendUnavailable
from icpn.study.runner import run_degradation

FIGURES = (
    "fault_at_s",
    "loss_detected_at_s",
    "resteered_at_s",
    "restored_at_s",
    "detection_to_resteer_ms",
    "fault_to_resteer_ms",
    "fault_to_resteer_periods",
    "altmark_period_ms",
    "goodput_before_fault_share_of_healthy",
    "goodput_during_fault_before_resteer_share_of_healthy",
    "goodput_after_resteer_share_of_healthy",
    "goodput_after_repair_share_of_healthy",
    "drains",
    "restores",
    "drains_after_repair",
    "goal_resteer_pass",
    "goal_goodput_pass",
    "goal_no_flapping_pass",
)


def summary(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"# Re-steering on BMv2\n\nSkipped: {report['skipped']}\n"
    lines = [
        "# Telemetry-driven re-steering on BMv2 (path-degradation study)",
        "",
        f"{report['runs']} runs; alternate-marking period {report['altmark_period_ms']} ms; "
        "goals (issue 12): re-steered within 2 periods of the fault, goodput back to "
        "≥ 90 % of the healthy paths' capacity, no flapping after the repair.",
        "",
        "| run | fault → re-steer, ms (periods) | detection → re-steer, ms "
        "| goodput after re-steer | drains / restores / after repair | goals |",
        "|---|---|---|---|---|---|",
    ]
    for k in range(report["runs"]):
        f = report[f"run{k + 1}"]
        goals = all(f[g] for g in ("goal_resteer_pass", "goal_goodput_pass",
                                   "goal_no_flapping_pass"))  # fmt: skip
        lines.append(
            f"| {k + 1} | {f['fault_to_resteer_ms']} ({f['fault_to_resteer_periods']}) "
            f"| {f['detection_to_resteer_ms']} | {f['goodput_after_resteer_share_of_healthy']} "
            f"| {f['drains']} / {f['restores']} / {f['drains_after_repair']} "
            f"| {'PASS' if goals else 'FAIL'} |"
        )
    lines += [
        "",
        f"Worst fault to re-steer: {report['fault_to_resteer_periods_max']} periods; lowest "
        f"goodput after the re-steer: {report['goodput_after_resteer_share_of_healthy_min']} "
        f"of the healthy capacity. All goals met: {report['all_goals_pass']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20:
        parser.error("need 1 <= runs <= 20")
    report: dict[str, Any] = {"benchmark": "degradation", "runs": args.runs}
    try:
        for k in range(args.runs):
            print(f"path-degradation, run {k + 1} ...", flush=True)
            result = run_degradation(args.out / "degradation" / f"run-{k + 1}")
            report[f"run{k + 1}"] = {name: result.figures[name] for name in FIGURES}
    except BackendUnavailable as exc:
        report = {"benchmark": "degradation", "skipped": str(exc)}
    if "skipped" not in report:
        runs = [report[f"run{k + 1}"] for k in range(args.runs)]
        report["altmark_period_ms"] = runs[0]["altmark_period_ms"]
        periods = [r["fault_to_resteer_periods"] for r in runs]
        shares = [r["goodput_after_resteer_share_of_healthy"] for r in runs]
        report["fault_to_resteer_periods_max"] = None if None in periods else max(periods)
        report["goodput_after_resteer_share_of_healthy_min"] = (
            None if None in shares else min(shares)
        )
        report["all_goals_pass"] = all(r[g] for r in runs for g in FIGURES if g.startswith("goal_"))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "degradation.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report)
    (args.out / "degradation.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'degradation.json'} and degradation.md")


if __name__ == "__main__":
    main()
