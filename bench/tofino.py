"""Tofino resources, from bf-p4c's own output (issue 10): every TNA profile on every target
(Tofino 1: 12 stages, Tofino 2: 20), whether the compiler places it, and if so what it uses:
stages per gress, SRAM/TCAM/map-RAM blocks, hash bits, stateful ALUs, PHV containers, and
per table its stage(s) and memories. Profiles that do not fit a target are compiled too, and
the compiler's reason is reported.

Nothing here runs on a Tofino: the figures are the compiler's placement (context.json,
logs/resources.json, logs/metrics.json). Writes build/bench/tofino.json (every figure named
with its unit) and tofino.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from icpn import constants as c
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain
from icpn.targets.tofino import build as tb
from icpn.targets.tofino.profiles import PROFILES, STAGES
from icpn.targets.tofino.resources import Usage, usage


def _figures(key: str, used: Usage, outcome: tb.Outcome) -> dict[str, float]:
    figures: dict[str, float] = {
        f"{key}.ingress_stages": used.stages["ingress"],
        f"{key}.egress_stages": used.stages["egress"],
        f"{key}.stage_limit_stages": used.stage_limit,
        f"{key}.sram_blocks": used.srams,
        f"{key}.sram_capacity_blocks": used.srams_capacity,
        f"{key}.tcam_blocks": used.tcams,
        f"{key}.tcam_capacity_blocks": used.tcams_capacity,
        f"{key}.map_ram_blocks": used.map_rams,
        f"{key}.map_ram_capacity_blocks": used.map_rams_capacity,
        f"{key}.hash_bits": used.hash_bits,
        f"{key}.stateful_alus": used.stateful_alus,
        f"{key}.stateful_alu_capacity_alus": used.stateful_alus_capacity,
        f"{key}.compile_seconds": outcome.seconds,
    }
    for kind, count in used.phv_containers.items():
        figures[f"{key}.phv_{kind}_containers"] = count
    return figures


def _table_rows(used: Usage) -> list[dict[str, Any]]:
    return [
        {
            "table": t.name,
            "gress": t.gress,
            "kind": t.kind,
            "entries": t.size,
            "stages": t.stages,
            "memory_blocks": t.memories,
        }
        for t in used.tables
        if t.kind != "condition"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    parser.add_argument("--force", action="store_true", help="recompile even if up to date")
    args = parser.parse_args()
    reason = toolchain.tofino_unavailable_reason()
    if reason is not None:
        print(f"tofino bench skipped: {reason}")
        return
    outcomes = tb.compile_many(tb.all_pairs(), force=args.force, progress=print)
    figures: dict[str, float] = {}
    runs: list[dict[str, Any]] = []
    lines = [
        "# Tofino resources (bf-p4c placement; no Tofino ran)",
        "",
        f"bf-p4c: {toolchain.bf_p4c().version}",
        "",
        "| profile | target | outcome | ingress stages | egress stages | SRAM | TCAM | "
        "map RAM | SALUs | PHV containers (8/16/32-bit, all kinds) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        key = f"{outcome.target}.{outcome.profile}"
        run: dict[str, Any] = {
            "target": outcome.target,
            "profile": outcome.profile,
            "features": PROFILES[outcome.profile].features,
            "built_by_icpn_build": outcome.target in PROFILES[outcome.profile].fits,
            "outcome": outcome.status,
            "errors": [e.splitlines()[0] for e in outcome.errors],
            "parser_defect_states": len(outcome.parser_defects),
        }
        if outcome.placed:
            used = usage(
                tb.out_dir(outcome.target, outcome.profile) / "pipe", STAGES[outcome.target]
            )
            figures |= _figures(key, used, outcome)
            run["tables"] = _table_rows(used)
            phv = used.phv_containers
            width = {w: sum(v for k, v in phv.items() if k.endswith(f"_{w}b")) for w in (8, 16, 32)}
            lines.append(
                f"| {outcome.profile} | {outcome.target} | {outcome.status} | "
                f"{used.stages['ingress']}/{used.stage_limit} | {used.stages['egress']} | "
                f"{used.srams}/{used.srams_capacity} | {used.tcams}/{used.tcams_capacity} | "
                f"{used.map_rams}/{used.map_rams_capacity} | "
                f"{used.stateful_alus}/{used.stateful_alus_capacity} | "
                f"{width[8]}/{width[16]}/{width[32]} |"
            )
        else:
            first = run["errors"][0] if run["errors"] else f"exit {outcome.returncode}"
            lines.append(
                f"| {outcome.profile} | {outcome.target} | {outcome.status}: {first} "
                "| - | - | - | - | - | - | - |"
            )
        runs.append(run)
    figures["sketch_counter_bits"] = c.SKETCH_DEPTH * c.SKETCH_WIDTH * 32
    report = {
        "benchmark": "tofino",
        "machine": {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version()},
        "method": {
            "compiler": toolchain.bf_p4c().version,
            "source": "bf-p4c -g --verbose 2: context.json, logs/resources.json, metrics.json",
            "memory_unit": "blocks: SRAM 1024x128 bit, TCAM 512x44 bit, map RAM 1024x11 bit",
            "note": "placement only: no Tofino model or switch ran the program",
        },
        "figures": figures,
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tofino.json").write_text(json.dumps(report, indent=2) + "\n")
    lines += [
        "",
        "Memories in blocks (SRAM 1024 x 128 bit, TCAM 512 x 44 bit). Sketch: "
        f"{c.SKETCH_DEPTH} x {c.SKETCH_WIDTH} x 32-bit counters.",
        "Per-table stages and memories: tofino.json, runs[].tables.",
    ]
    (args.out / "tofino.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"written: {args.out / 'tofino.json'} and tofino.md")


if __name__ == "__main__":
    main()
