"""Sweeps: the same sweep on one local worker, on the local process pool and on a Dask
LocalCluster, with the wall time of each (``icpn study sweep``).

The sweep: storage-compute, ``--seeds`` seeds x sketch widths 1024 and 4096, ``--packets``
packets per run. All three must give the same merged figures (runs are independent and
merged in grid order); the machine's cores bound the speed-up.

Writes build/bench/sweep.json (every figure named with its unit) and sweep.md.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from icpn.paths import BUILD_DIR
from icpn.study import sweep

SCENARIO = "storage-compute"
PARAMETERS = {"sketch_width": [1024, 4096]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=5_000_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 10_000 <= args.packets <= 100_000_000 or not 2 <= args.seeds <= 50:
        parser.error("need 10k <= packets <= 100M and 2 <= seeds <= 50")
    from distributed import LocalCluster

    cores = len(os.sched_getaffinity(0))
    seeds = list(range(1, args.seeds + 1))
    report: dict[str, Any] = {"packets_per_run": args.packets, "seeds": args.seeds}
    report["cores"] = cores
    results = {}
    with tempfile.TemporaryDirectory(prefix="icpn-sweep-") as tmp:

        def run(label: str, **how: Any) -> None:
            print(f"sweep: {label} ...", flush=True)
            result = sweep.run_sweep(
                SCENARIO,
                seeds=seeds,
                parameters=PARAMETERS,
                packets=args.packets,
                out_dir=Path(tmp) / label,
                **how,
            )
            results[label] = result
            report[f"{label}_wall_s"] = result["wall_s"]
            report[f"{label}_runs_per_s"] = result["runs_per_s"]
            report["runs"] = result["runs"]

        run("local_1_worker", workers=1)
        run(f"local_{cores}_workers", workers=cores)
        with LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            run(f"dask_localcluster_{cores}_workers", scheduler=cluster.scheduler_address)
    first = next(iter(results.values()))
    report["same_results"] = all(r["points"] == first["points"] for r in results.values())
    report["speedup_local_pool_x"] = round(
        report["local_1_worker_wall_s"] / report[f"local_{cores}_workers_wall_s"], 2
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Sweeps (`icpn study sweep`)",
        "",
        f"{SCENARIO}: {report['runs']} runs ({args.seeds} seeds x sketch widths 1024, 4096), "
        f"{args.packets:,} packets each, {cores} cores.",
        "",
        "| engine | wall (s) | runs/s |",
        "|---|---|---|",
    ]
    for label in results:
        lines.append(
            f"| {label.replace('_', ' ')} | {report[f'{label}_wall_s']} "
            f"| {report[f'{label}_runs_per_s']} |"
        )
    lines += ["", f"Same merged figures on every engine: {report['same_results']}."]
    text = "\n".join(lines) + "\n"
    (args.out / "sweep.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'sweep.json'} and sweep.md")


if __name__ == "__main__":
    main()
