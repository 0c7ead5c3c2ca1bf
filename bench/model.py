"""Model backend throughput: packets/s of a study on one core, against the baseline.

The baseline is the model backend as it was before issue 17 (commit ``BASELINE_COMMIT``:
every packet's flow key hashed, the flow table growing with every mouse), extracted from git
into a temporary directory and run in the same way in the same run: each measurement is a
child process pinned to one CPU (``os.sched_setaffinity``, numba and BLAS on one thread), a
100k-packet warm-up (numba compiles) and then one timed ``model_backend.run`` of
``--packets`` packets per scenario (sketch + placement + fluid model; the report files are
not written). The child also reports its peak resident memory, and a digest of what the run
measured (bytes offered per policy, path and window, the manager's decisions): the new
code must give the baseline's results exactly.

Memory bounded by the chunk size: the current code is run at ``--packets`` and at a tenth of
it; its peak memory must not grow with the packet count (the baseline's flow table does).

Writes build/bench/model.json (every figure named with its unit) and model.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from icpn.paths import BUILD_DIR

#: The model backend before issue 17 (main at the time the work started).
BASELINE_COMMIT = "e476d7bccb1c52a12cf183bec4c2a50c93fb5350"
REPO = Path(__file__).resolve().parent.parent
GOAL_PACKETS_PER_S = 5_000_000
SCENARIO_NAMES = ("data-ingestion", "storage-compute", "cross-dc-training")

#: Run in the child: warm up, time one run, print what it measured as JSON.
CHILD = r"""
import hashlib, json, os, resource, sys, time
os.sched_setaffinity(0, {int(sys.argv[3])})
import numpy as np
from icpn.study import model_backend
from icpn.study.scenarios import get_scenario
scenario = get_scenario(sys.argv[1])
model_backend.run(scenario, 100_000, seed=1)
started = time.perf_counter()
run = model_backend.run(scenario, int(sys.argv[2]), seed=1)
wall = time.perf_counter() - started
digest = hashlib.sha256()
for policy in sorted(run.offered):
    digest.update(policy.encode() + np.ascontiguousarray(run.offered[policy]).tobytes())
for value in (run.manager_installed, run.manager_aged_out, run.manager_moves, run.flows):
    digest.update(str(value).encode())
digest.update(np.nan_to_num(run.detection.report_time).tobytes())
print(json.dumps({
    "packets": run.packets,
    "wall_s": wall,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "digest": digest.hexdigest(),
}))
"""


def baseline_tree(into: Path) -> Path:
    """The baseline's ``control`` directory, extracted from git."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", BASELINE_COMMIT, "control"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "control"


def measure(control: Path, scenario: str, packets: int, cpu: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(control), NUMBA_NUM_THREADS="1")
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", CHILD, scenario, str(packets), str(cpu)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def summary(report: dict[str, Any]) -> str:
    lines = [
        "# Model backend throughput (one core)",
        "",
        f"{report['packets']:,} packets per scenario, sketch + placement + fluid model; the "
        f"baseline is commit {BASELINE_COMMIT[:10]} run in the same way in the same run.",
        "",
        "| scenario | packets/s | baseline packets/s | speedup | peak MB (baseline) "
        f"| peak MB at {report['small_packets']:,} packets | same results |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in SCENARIO_NAMES:
        f = report[name]
        lines.append(
            f"| {name} | {f['packets_per_s']:,.0f} | {f['baseline_packets_per_s']:,.0f} "
            f"| {f['speedup_x']:.1f}x | {f['peak_rss_mb']:.0f} ({f['baseline_peak_rss_mb']:.0f}) "
            f"| {f['small_run_peak_rss_mb']:.0f} | {f['results_identical']} |"
        )
    lines += [
        "",
        f"Goal ≥ {GOAL_PACKETS_PER_S:,} packets/s in every scenario: "
        f"{'pass' if report['goal_pass'] else 'FAIL'}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000_000)
    parser.add_argument("--cpu", type=int, default=0, help="the CPU to pin children to")
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 100_000 <= args.packets <= 1_000_000_000:
        parser.error("need 100k <= packets <= 1G")
    current = REPO / "control"
    report: dict[str, Any] = {
        "packets": args.packets,
        "small_packets": args.packets // 10,
        "baseline_commit": BASELINE_COMMIT,
    }
    with tempfile.TemporaryDirectory(prefix="icpn-baseline-") as tmp:
        baseline = baseline_tree(Path(tmp))
        for name in SCENARIO_NAMES:
            print(f"model {name}: baseline, current ...", flush=True)
            old = measure(baseline, name, args.packets, args.cpu)
            new = measure(current, name, args.packets, args.cpu)
            small = measure(current, name, args.packets // 10, args.cpu)
            report[name] = {
                "packets": new["packets"],
                "packets_per_s": new["packets"] / new["wall_s"],
                "baseline_packets_per_s": old["packets"] / old["wall_s"],
                "speedup_x": old["wall_s"] / new["wall_s"],
                "wall_s": new["wall_s"],
                "baseline_wall_s": old["wall_s"],
                "peak_rss_mb": new["peak_rss_mb"],
                "baseline_peak_rss_mb": old["peak_rss_mb"],
                "small_run_peak_rss_mb": small["peak_rss_mb"],
                "results_identical": new["digest"] == old["digest"],
            }
    report["goal_packets_per_s"] = GOAL_PACKETS_PER_S
    report["goal_pass"] = all(
        report[n]["packets_per_s"] >= GOAL_PACKETS_PER_S and report[n]["results_identical"]
        for n in SCENARIO_NAMES
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "model.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report)
    (args.out / "model.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'model.json'} and model.md")


if __name__ == "__main__":
    main()
