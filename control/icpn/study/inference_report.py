"""The cloud-edge inference study's outputs: results.json (every figure named with its unit),
requests.csv (one row per request and policy), plots and report.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from icpn.study.charts import _pyplot
from icpn.study.inference import (
    BEST_EFFORT,
    DIFFERENTIATED,
    POLICIES,
    InferenceRun,
    InferenceScenario,
)
from icpn.study.inference import (
    __doc__ as MODEL_DOC,
)

Figure = float | int | bool | str | None


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 4)


def figures(
    run: InferenceRun, backend: str = "model", bulk_capacity_bytes: float | None = None
) -> dict[str, Figure]:
    """Every figure; ``bulk_capacity_bytes``: what the bulk could have carried (default: the
    scenario's bundle over the run)."""
    sc = run.scenario
    fig: dict[str, Figure] = {
        "study": sc.name,
        "backend": backend,
        "seed": run.seed,
        "requests": len(run.request_start_s),
        "duration_s": sc.duration_s,
        "bulk_offered_load_share": sc.bulk_load,
        "buffer_ms": sc.buffer_ms,
        "wall_s": round(run.wall_s, 3),
    }
    capacity_bytes = bulk_capacity_bytes or (
        sum(p.capacity_gbps for p in sc.paths) * 1e9 / 8 * sc.duration_s
    )
    for name, p in run.policies.items():
        for q in (50, 99):
            idle = float(np.percentile(p.idle_s, q))
            loaded = float(np.percentile(p.loaded_s, q))
            fig[f"{name}_idle_latency_ms_p{q}"] = _ms(idle)
            fig[f"{name}_loaded_latency_ms_p{q}"] = _ms(loaded)
            fig[f"{name}_degradation_p{q}"] = round(loaded / idle - 1, 6)
        fig[f"{name}_requests_with_loss"] = int(p.lost.sum())
        clean = p.loaded_s[p.lost == 0]  # the queueing alone, without the timeouts
        fig[f"{name}_loaded_latency_ms_p50_without_loss"] = (
            _ms(float(np.percentile(clean, 50))) if clean.size else None
        )
        fig[f"{name}_bulk_goodput_share_of_bundle"] = round(
            sum(p.bulk_delivered_bytes) / capacity_bytes, 4
        )
        offered = sum(p.bulk_offered_bytes)
        fig[f"{name}_bulk_drop_share"] = round(sum(p.bulk_dropped_bytes) / max(offered, 1), 4)
    worst = max(float(fig[f"{DIFFERENTIATED}_degradation_p{q}"] or 0) for q in (50, 99))
    fig["policies"] = ", ".join(run.policies)
    fig["goal_degradation_max"] = sc.goal_degradation_max
    fig["goal_differentiated_pass"] = worst <= sc.goal_degradation_max
    fig["goal_best_effort_degradation_min"] = sc.goal_best_effort_min
    fig["goal_best_effort_large_pass"] = (
        float(fig[f"{BEST_EFFORT}_degradation_p50"] or 0) >= sc.goal_best_effort_min
    )
    return fig


def write_csv(run: InferenceRun, path: Path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["policy", "request", "start_s", "path", "idle_ms", "loaded_ms", "lost"])
        names = [p.name for p in run.scenario.paths]
        for name, p in run.policies.items():
            for r, start in enumerate(run.request_start_s.tolist()):
                out.writerow(
                    [
                        name,
                        r,
                        f"{start:.6f}",
                        names[int(p.path[r])],
                        f"{p.idle_s[r] * 1e3:.4f}",
                        f"{p.loaded_s[r] * 1e3:.4f}",
                        int(p.lost[r]),
                    ]
                )


def plots(run: InferenceRun, fig: dict[str, Figure], out_dir: Path) -> list[Path]:
    plt = _pyplot()
    files = []
    cdf, ax = plt.subplots(figsize=(8, 4.5))
    for name, p in run.policies.items():
        for series, style in ((p.loaded_s, "-"), (p.idle_s, ":")):
            xs = np.sort(series) * 1e3
            ys = np.arange(1, len(xs) + 1) / len(xs)
            label = f"{name} ({'loaded' if style == '-' else 'idle'})"
            ax.step(xs, ys, style, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("inference request latency, ms (log)")
    ax.set_ylabel("share of requests")
    ax.set_title("Request latency under full bulk load and on an idle network")
    ax.legend(fontsize=7, loc="lower right")
    cdf.tight_layout()
    files.append(out_dir / "latency_cdf.png")
    cdf.savefig(files[-1], dpi=110)
    plt.close(cdf)

    bars, ax = plt.subplots(figsize=(8, 4.5))
    names = list(run.policies)
    x = np.arange(len(names))
    for k, q in enumerate((50, 99)):
        values = [max(float(fig[f"{n}_degradation_p{q}"] or 0), 1e-5) * 100 for n in names]
        ax.bar(x + (k - 0.5) * 0.4, values, 0.4, label=f"p{q}")
    ax.axhline(run.scenario.goal_degradation_max * 100, color="red", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("latency degradation, % of idle (log)")
    ax.set_title("Degradation (dashed: the 5 % goal)")
    ax.legend()
    bars.tight_layout()
    files.append(out_dir / "degradation.png")
    bars.savefig(files[-1], dpi=110)
    plt.close(bars)

    goodput, ax = plt.subplots(figsize=(8, 4))
    ax.bar(names, [float(fig[f"{n}_bulk_goodput_share_of_bundle"] or 0) * 100 for n in names])
    ax.set_ylabel("bulk goodput, % of the bundle")
    ax.set_ylim(0, 110)
    ax.set_title("What the bulk traffic (model distribution) still gets")
    goodput.tight_layout()
    files.append(out_dir / "bulk_goodput.png")
    goodput.savefig(files[-1], dpi=110)
    plt.close(goodput)
    return files


def _scenario_lines(sc: InferenceScenario) -> list[str]:
    paths = ", ".join(
        f"{p.name} ({'-'.join(p.via)}, {p.km:g} km, {p.capacity_gbps:g} Gbit/s)" for p in sc.paths
    )
    return [
        f"Paths: {paths}. Inference: {sc.requests_per_s:g} requests/s (Poisson), "
        f"{sc.request_bytes} B requests, {sc.response_bytes} B responses. Bulk: "
        f"{sc.bulk_load:g} x each path's capacity in {sc.bulk_burst_packets}-frame bursts. "
        f"Queues: {sc.buffer_ms:g} ms each, tail drop. {sc.duration_s:g} s simulated.",
    ]


def markdown(
    run: InferenceRun,
    fig: dict[str, Figure],
    images: list[Path],
    backend_doc: str | None = None,
) -> str:
    sc = run.scenario
    backend = "model (queueing model below)" if backend_doc is None else "BMv2 (below)"
    lines = [f"# Study: {sc.title}", "", f"Backend: {backend}.", ""]
    lines += [*_scenario_lines(sc), "", "## Policies", ""]
    lines += [f"* **{name}**: {POLICIES[name]}" for name in run.policies]
    lines += [
        "",
        "## Results",
        "",
        "| policy | idle p50 / p99 (ms) | loaded p50 / p99 (ms) | degradation p50 / p99 "
        "| requests with a loss | bulk goodput (bundle) |",
        "|---|---|---|---|---|---|",
    ]
    for name in run.policies:
        lines.append(
            f"| {name} | {fig[f'{name}_idle_latency_ms_p50']} / "
            f"{fig[f'{name}_idle_latency_ms_p99']} | {fig[f'{name}_loaded_latency_ms_p50']} / "
            f"{fig[f'{name}_loaded_latency_ms_p99']} | "
            f"{float(fig[f'{name}_degradation_p50'] or 0):.2%} / "
            f"{float(fig[f'{name}_degradation_p99'] or 0):.2%} | "
            f"{fig[f'{name}_requests_with_loss']} | "
            f"{float(fig[f'{name}_bulk_goodput_share_of_bundle'] or 0):.1%} |"
        )
    ok = "PASS" if fig["goal_differentiated_pass"] else "FAIL"
    large = "PASS" if fig["goal_best_effort_large_pass"] else "FAIL"
    lines += [
        "",
        "## Goals",
        "",
        f"* {ok}: with differentiation ({DIFFERENTIATED}) p50 and p99 latency within "
        f"{sc.goal_degradation_max:.0%} of the idle network.",
        f"* {large}: without it ({BEST_EFFORT}) p50 degraded by at least "
        f"{sc.goal_best_effort_min:.0%}.",
        "",
        "## Figures",
        "",
    ]
    lines += [f"![{p.stem}]({p.name})" for p in images]
    if backend_doc is not None:
        lines += ["", "## How BMv2 measured it", "", *backend_doc.strip().splitlines()]
    lines += ["", "## The queueing model", "", *(MODEL_DOC or "").strip().splitlines()[2:]]
    return "\n".join(lines) + "\n"


def write(
    run: InferenceRun,
    out_dir: Path,
    *,
    backend: str = "model",
    bulk_capacity_bytes: float | None = None,
    backend_doc: str | None = None,
    extra: dict[str, Figure] | None = None,
) -> tuple[dict[str, Figure], list[Path]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = figures(run, backend, bulk_capacity_bytes) | (extra or {})
    results = out_dir / "results.json"
    results.write_text(json.dumps(fig, indent=2) + "\n")
    table = out_dir / "requests.csv"
    write_csv(run, table)
    images = plots(run, fig, out_dir)
    report = out_dir / "report.md"
    report.write_text(markdown(run, fig, images, backend_doc))
    return fig, [results, table, *images, report]


def summary(fig: dict[str, Any]) -> list[str]:
    """Console lines: each policy's degradation and bulk goodput, and the goals."""
    lines = []
    for name in str(fig["policies"]).split(", "):
        lines.append(
            f"{name:20} degradation p50 {float(fig[f'{name}_degradation_p50']):.2%} "
            f"p99 {float(fig[f'{name}_degradation_p99']):.2%}  bulk goodput "
            f"{float(fig[f'{name}_bulk_goodput_share_of_bundle']):.1%} of bundle"
        )
    lines.append(
        f"goals: differentiated <= {float(fig['goal_degradation_max']):.0%} "
        f"{'PASS' if fig['goal_differentiated_pass'] else 'FAIL'}, best effort large "
        f"{'PASS' if fig['goal_best_effort_large_pass'] else 'FAIL'}"
    )
    return lines
