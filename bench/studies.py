"""Elephant splitting against its goals on the reference model, seed by seed.

Runs every study scenario (``icpn study NAME --seed N``, 10M packets by default) for
seeds 1 to 5 and collects, per scenario and seed, what the study measured for elephant
splitting: busiest/mean of the paths' loads over the whole run, goodput as a share of the
bundle, the manager's moves, and the verdicts against the scenario's goals (issue 12: data
ingestion busiest/mean <= 1.05 and goodput >= 92 % for every seed; storage-compute and
cross-DC training busiest/mean <= 1.03). Each run also writes its own report under
build/bench/studies/<scenario>-<seed>/.

Writes build/bench/studies.json (every figure named with its unit) and studies.md.

``--bmv2 N`` instead runs the data-ingestion study on BMv2 + Mininet (``--backend bmv2``)
with N frames per policy and reports what issue 17 asks of it: frames per policy, the wall
time of the whole study, the sending rate, and whether BMv2 carried them without losses of
its own (IFIT's loss against the queues' drops, what reached the host). Writes
build/bench/studies_bmv2.json and studies_bmv2.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from icpn.paths import BUILD_DIR
from icpn.study import SCENARIOS, bmv2_backend, run_study
from icpn.study.policies import POLICIES
from icpn.study.report import verdict

SPLIT = "deep_hash_elephants"
FIGURES = (
    f"{SPLIT}_busiest_over_mean",
    f"{SPLIT}_goodput_share_of_bundle",
    "ecmp_5tuple_busiest_over_mean",
    "ecmp_5tuple_goodput_share_of_bundle",
    "manager_moves",
    "manager_overrides_installed",
    "goal_busiest_over_mean_max",
    "goal_goodput_share_of_bundle_min",
    "goal_balance_pass",
    "goal_goodput_pass",
)


def summary(report: dict[str, Any], seeds: list[int]) -> str:
    lines = [
        "# Elephant splitting vs its goals (reference model)",
        "",
        f"{report['packets']:,} packets per run; goals per scenario (issue 12).",
        "",
        "| scenario | seed | busiest/mean (goal) | goodput, share of bundle (goal) | moves "
        "| balance | goodput |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIOS:
        for seed in seeds:
            f = report[f"{name}_seed{seed}"]
            goodput_goal = f["goal_goodput_share_of_bundle_min"]
            goal = f"≥ {goodput_goal:.0%}" if goodput_goal is not None else "none"
            lines.append(
                f"| {name} | {seed} | {f[SPLIT + '_busiest_over_mean']} "
                f"(≤ {f['goal_busiest_over_mean_max']}) "
                f"| {f[SPLIT + '_goodput_share_of_bundle']:.1%} ({goal}) | {f['manager_moves']} "
                f"| {verdict(f['goal_balance_pass'])} | {verdict(f['goal_goodput_pass'])} |"
            )
    lines += ["", f"All goals met: {report['all_goals_pass']}."]
    return "\n".join(lines) + "\n"


BMV2_SCENARIO = "data-ingestion"
#: Per policy: what the study's report says about BMv2 carrying the frames.
BMV2_FIGURES = (
    "packets_sent",
    "sending_s",
    "busiest_over_mean",
    "goodput_share_of_bundle",
    "host_delivered_share_of_sent",
    "queue_drops_packets",
    "ifit_altmark_blocks",
    "end_to_end_loss_packets",
    "loss_beyond_queues_packets",
    "ifit_loss_error_vs_end_to_end_packets",
)


def bmv2(packets: int, out: Path) -> None:
    """The BMv2 study with ``packets`` frames per policy, timed from start to report."""
    reason = bmv2_backend.unavailable_reason()
    if reason is not None:
        print(f"BMv2 study skipped: {reason}")
        return
    started = time.perf_counter()
    result = run_study(
        BMV2_SCENARIO,
        backend="bmv2",
        packets=packets,
        out_dir=out / "studies" / f"{BMV2_SCENARIO}-bmv2",
        progress=False,
    )
    wall = time.perf_counter() - started
    f = result.figures
    report: dict[str, Any] = {
        "scenario": BMV2_SCENARIO,
        "packets_per_policy": f["packets_per_policy"],
        "study_wall_time_s": round(wall, 1),
        "send_rate_pps": f["send_rate_pps"],
        "bandwidth_scale": f["bandwidth_scale"],
        "wire_frame_bytes": f["wire_frame_bytes"],
    }
    for policy in POLICIES:
        for name in BMV2_FIGURES:
            key = f"{policy}_{name}"
            if key in f:
                report[key] = f[key]

    # BMv2 lost nothing of its own: every packet lost end to end was a link queue's drop
    # (within a frame per block: the odd neighbour solicitation shares the counters)
    def number(key: str) -> float:
        value = f[key]
        if not isinstance(value, int | float):
            raise TypeError(f"study figure {key} is {value!r}, not a number")
        return float(value)

    report["bmv2_lossless_all_policies"] = all(
        abs(number(f"{p}_loss_beyond_queues_packets")) <= number(f"{p}_ifit_altmark_blocks")
        for p in POLICIES
        if f"{p}_ifit_altmark_blocks" in f
    )
    # alternate marking measured the loss end to end within a frame per block
    report["ifit_loss_exact_all_policies"] = all(
        abs(number(f"{p}_ifit_loss_error_vs_end_to_end_packets"))
        <= number(f"{p}_ifit_altmark_blocks")
        for p in POLICIES
        if f"{p}_ifit_altmark_blocks" in f
    )
    report["goal_100k_packets_per_policy_in_5_min_pass"] = (
        number("packets_per_policy") >= 100_000 and wall <= 300
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "studies_bmv2.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"# BMv2 study: {BMV2_SCENARIO}, {report['packets_per_policy']:,} frames per policy",
        "",
        f"Whole study (three policies, setup and report included): "
        f"**{report['study_wall_time_s']} s**; frames sent at {report['send_rate_pps']:,.0f}/s "
        f"(bandwidth_scale {report['bandwidth_scale']}, {report['wire_frame_bytes']} octets "
        "on the wire).",
        "",
        "| policy | sent | sending s | busiest/mean | goodput | reached host "
        "| queue drops | lost beyond queues | IFIT loss - end-to-end loss (blocks) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in POLICIES:
        blocks = report.get(f"{p}_ifit_altmark_blocks", "-")
        lines.append(
            f"| {p} | {report[f'{p}_packets_sent']:,} | {report[f'{p}_sending_s']} "
            f"| {report[f'{p}_busiest_over_mean']} | {report[f'{p}_goodput_share_of_bundle']:.1%} "
            f"| {report[f'{p}_host_delivered_share_of_sent']:.1%} "
            f"| {report[f'{p}_queue_drops_packets']} "
            f"| {report.get(f'{p}_loss_beyond_queues_packets', '-')} "
            f"| {report.get(f'{p}_ifit_loss_error_vs_end_to_end_packets', '-')} ({blocks}) |"
        )
    lines += [
        "",
        f"BMv2 lossless (every packet lost end to end was a queue's drop): "
        f"{report['bmv2_lossless_all_policies']}. IFIT exact (its loss within a frame per "
        f"block of the end-to-end loss): {report['ifit_loss_exact_all_policies']}. "
        f"Goal (>= 100k frames per policy in <= 5 min): "
        f"{report['goal_100k_packets_per_policy_in_5_min_pass']}.",
    ]
    text = "\n".join(lines) + "\n"
    (out / "studies_bmv2.md").write_text(text)
    print("\n" + text + f"\nwritten: {out / 'studies_bmv2.json'} and studies_bmv2.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    parser.add_argument(
        "--bmv2",
        type=int,
        metavar="N",
        help="run the BMv2 data-ingestion study with N frames per policy instead",
    )
    args = parser.parse_args()
    if args.bmv2 is not None:
        if not 1_000 <= args.bmv2 <= 1_000_000:
            parser.error("--bmv2 needs 1,000 <= N <= 1,000,000")
        bmv2(args.bmv2, args.out)
        return
    if not 10_000 <= args.packets <= 100_000_000 or not 1 <= args.seeds <= 20:
        parser.error("need 10k <= packets <= 100M and 1 <= seeds <= 20")
    seeds = list(range(1, args.seeds + 1))
    report: dict[str, Any] = {"packets": args.packets, "seeds": len(seeds)}
    verdicts = []
    for name in SCENARIOS:
        for seed in seeds:
            print(f"study {name}, seed {seed} ...", flush=True)
            result = run_study(
                name,
                packets=args.packets,
                seed=seed,
                out_dir=args.out / "studies" / f"{name}-{seed}",
                progress=False,
            )
            figures = {k: result.figures[k] for k in FIGURES}
            report[f"{name}_seed{seed}"] = figures
            verdicts += [figures["goal_balance_pass"], figures["goal_goodput_pass"]]
    report["all_goals_pass"] = all(v is not False for v in verdicts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "studies.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report, seeds)
    (args.out / "studies.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'studies.json'} and studies.md")


if __name__ == "__main__":
    main()
