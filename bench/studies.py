"""Elephant splitting against its goals on the reference model, seed by seed.

Runs every study scenario (``icpn study NAME --seed N``, 10M packets by default) for
seeds 1 to 5 and collects, per scenario and seed, what the study measured for elephant
splitting: busiest/mean of the paths' loads over the whole run, goodput as a share of the
bundle, the manager's moves, and the verdicts against the scenario's goals (issue 12: data
ingestion busiest/mean <= 1.05 and goodput >= 92 % for every seed; storage-compute and
cross-DC training busiest/mean <= 1.03). Each run also writes its own report under
build/bench/studies/<scenario>-<seed>/.

Writes build/bench/studies.json (every figure named with its unit) and studies.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from icpn.paths import BUILD_DIR
from icpn.study import SCENARIOS, run_study
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
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
