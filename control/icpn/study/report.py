"""Figures, CSV, plots and the Markdown report of a study run.

Every figure in ``results.json`` is named with what it is and its unit: ``_share_of_*`` are
fractions (0..1), ``_ms`` milliseconds of simulated time, ``_packets`` packets, ``_bytes``
bytes, ``_s`` seconds; ``busiest_over_mean`` and ``jain_index`` are dimensionless.
Utilisation and balance are of each path's *capacity* (paths may differ in capacity).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from icpn.study import charts, metrics
from icpn.study.charts import POLICY_TITLES
from icpn.study.model_backend import ModelRun
from icpn.study.policies import POLICIES
from icpn.traffic.workloads import get_workload

F64 = npt.NDArray[np.float64]
Figure = float | int | str | bool | None

SPLITTING = "deep_hash_elephants"
BASELINE = "ecmp_5tuple"


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def fluid_of(run: ModelRun) -> dict[str, metrics.FluidResult]:
    capacity = run.rates.path_bytes_per_s * run.window_s
    buffer = run.rates.path_bytes_per_s * run.scenario.buffer_ms / 1000
    return {p: metrics.fluid(run.offered[p], capacity, buffer) for p in POLICIES}


def figures(run: ModelRun, fluid: dict[str, metrics.FluidResult]) -> dict[str, Figure]:
    s = run.scenario
    capacity_run = run.rates.path_bytes_per_s * run.duration_s  # bytes each path can carry
    capacity_window = run.rates.path_bytes_per_s * run.window_s
    out: dict[str, Figure] = {
        "scenario": s.name,
        "backend": "model",
        "seed": run.seed,
        "packets_simulated": run.packets,
        "simulated_duration_s": _r(run.duration_s, 6),
        "measurement_window_ms": _r(run.window_s * 1000, 3),
        "measurement_windows": int(run.offered[POLICIES[0]].shape[0]),
        "paths": len(s.paths),
        "bundle_capacity_gbps_real": s.bundle_gbps,
        "rate_scale_model_over_real": float(f"{run.rates.scale:.6g}"),
        "offered_load_share_of_bundle": s.offered_load,
        "offered_measured_share_of_bundle": _r(run.offered[POLICIES[0]].sum() / capacity_run.sum()),
        "elephant_byte_share_of_offered": s.traffic.elephant_byte_share,
        "mice_workload": s.traffic.mice_workload,
        "flows": run.flows,
        "mice_flows": run.mice,
        "elephant_qps": run.elephants,
        "path_buffer_ms": s.buffer_ms,
        "wall_time_s": _r(run.wall_s, 2),
        "model_packets_per_s": round(run.packets / run.wall_s) if run.wall_s > 0 else 0,
    }
    if run.trace is not None:  # the capture's own mix, not the scenario's synthetic one
        out.update(run.trace)  # type: ignore[arg-type]
        offered_octets = float(run.offered[POLICIES[0]].sum())
        roce = float(run.elephant_bytes_per_s.sum() * run.duration_s)
        out["elephant_byte_share_of_offered"] = _r(roce / offered_octets) if offered_octets else 0.0
        out["mice_workload"] = "capture"
    for policy in POLICIES:
        offered = run.offered[policy]
        f = fluid[policy]
        load = offered.sum(axis=0) / capacity_run  # offered, share of each path's capacity
        util = f.delivered.sum(axis=0) / capacity_run
        per_window_load = offered / capacity_window
        busy = [metrics.busiest_over_mean(w) for w in per_window_load if w.sum() > 0]
        jain = [metrics.jain_index(w) for w in per_window_load if w.sum() > 0]
        total_offered = float(offered.sum())
        delivered = float(f.delivered.sum())
        dropped = float(f.dropped.sum())
        p = policy
        out |= {
            f"{p}_busiest_over_mean": _r(metrics.busiest_over_mean(load)),
            # A fixed volume (a model, a dataset) over these paths, each at its capacity,
            # is done when the busiest is: max(B_p / C_p), against sum(B) / sum(C).
            f"{p}_completion_over_ideal": _r(
                float(load.max()) / (total_offered / float(capacity_run.sum()))
            ),
            f"{p}_jain_index": _r(metrics.jain_index(load)),
            f"{p}_busiest_over_mean_window_p50": _r(metrics.percentile(busy, 50)),
            f"{p}_busiest_over_mean_window_p95": _r(metrics.percentile(busy, 95)),
            f"{p}_jain_index_window_p50": _r(metrics.percentile(jain, 50)),
            f"{p}_goodput_share_of_bundle": _r(delivered / float(capacity_run.sum())),
            f"{p}_goodput_share_of_offered": _r(delivered / total_offered),
            f"{p}_drops_share_of_offered": _r(dropped / total_offered),
            f"{p}_dropped_bytes": round(dropped),
            f"{p}_busiest_path_utilisation_share_of_capacity": _r(util.max()),
            f"{p}_mean_path_utilisation_share_of_capacity": _r(util.mean()),
        }
        for path, offered_share, used in zip(s.paths, load, util, strict=True):
            out[f"{p}_path_{path.name}_offered_share_of_capacity"] = _r(offered_share)
            out[f"{p}_path_{path.name}_utilisation_share_of_capacity"] = _r(used)
    out["elephant_ideal_placement_busiest_over_mean"] = _r(ideal_busiest_over_mean(run))
    d = run.detection
    qps = slice(0, run.elephants)
    detected = d.report_packets[qps] >= 0
    latency_ms = ((d.report_time - d.first_time)[qps][detected]) * 1000
    latency_packets = d.report_packets[qps][detected]
    others = int(np.count_nonzero(d.report_packets[run.elephants :] >= 0))
    out |= {
        "sketch_window_ms": _r(run.sketch_window_us / 1000, 3),
        "sketch_threshold_packets": run.sketch_threshold_packets,
        "elephant_qps_detected": int(detected.sum()),
        "elephant_qps_detected_share": _r(detected.mean()),
        "other_flow_keys_detected": others,
        "manager_overrides_installed": run.manager_installed,
        "manager_overrides_aged_out": run.manager_aged_out,
        "manager_moves": run.manager_moves,
        "manager_poll_interval_s": _r(run.poll_s, 6),
        "manager_control_loop_ms": s.elephants.control_loop_ms,
        "manager_rebalance_trigger_share": run.placement.trigger,
        "manager_rebalance_min_gain_share": run.placement.min_gain,
        "manager_rebalance_max_moves_per_poll": run.placement.max_moves,
        "manager_rebalance_hold_down_s": _r(run.placement.hold_down_s, 6),
        "manager_rebalance_max_latency_skew_ms": run.placement.max_latency_skew_ms,
    }
    for q in (50, 90, 99):
        out[f"elephant_detection_latency_ms_p{q}"] = _r(metrics.percentile(latency_ms, q), 3)
        out[f"elephant_detection_latency_packets_p{q}"] = _r(
            metrics.percentile(latency_packets, q), 1
        )
    out["elephant_detection_latency_ms_max"] = _r(
        float(latency_ms.max()) if latency_ms.size else float("nan"), 3
    )
    out |= goals(out, s.goal_busiest_over_mean, s.goal_goodput_share)
    return out


def ideal_busiest_over_mean(run: ModelRun) -> float:
    """A reference, not a policy: busiest/mean if every QP's bytes were known in advance and
    the QPs placed largest first on the least-loaded path (relative to capacity), with the
    mice where the deep hash puts them."""
    frame = run.scenario.traffic.roce_frame_bytes
    qp_bytes = run.detection.packets_seen[: run.elephants].astype(np.float64) * frame
    if run.trace is not None:  # a capture's frames vary: its QPs' own octets
        qp_bytes = run.elephant_bytes_per_s * run.duration_s
    paths = len(run.scenario.paths)
    capacity = run.rates.path_bytes_per_s
    deep_elephants = np.bincount(run.elephant_deep_path, weights=qp_bytes, minlength=paths)
    load = np.maximum(run.offered["apn_deep_hash"].sum(axis=0) - deep_elephants, 0.0)
    for b in np.sort(qp_bytes)[::-1]:
        i = int(np.argmin((load + b) / capacity))
        load[i] += b
    return metrics.busiest_over_mean(load / capacity)


def goals(
    fig: dict[str, Figure], busiest_over_mean: float, goodput_share: float | None
) -> dict[str, Figure]:
    """Pass/fail of elephant splitting against the goals (and against 5-tuple ECMP); a
    goal that is not set is None, and so is its verdict."""

    def num(name: str) -> float:
        value = fig[name]
        assert isinstance(value, int | float)
        return float(value)

    balance = num(f"{SPLITTING}_busiest_over_mean")
    goodput = num(f"{SPLITTING}_goodput_share_of_bundle")
    better = balance < num(f"{BASELINE}_busiest_over_mean") and goodput > num(
        f"{BASELINE}_goodput_share_of_bundle"
    )
    return {
        "goal_busiest_over_mean_max": busiest_over_mean,
        "goal_goodput_share_of_bundle_min": goodput_share,
        "goal_balance_pass": balance <= busiest_over_mean,
        "goal_goodput_pass": None if goodput_share is None else goodput >= goodput_share,
        "goal_splitting_beats_ecmp_pass": better,
    }


def write_csv(run: ModelRun, fluid: dict[str, metrics.FluidResult], path: Path) -> None:
    capacity = run.rates.path_bytes_per_s * run.window_s
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "policy",
                "window",
                "start_s",
                "path",
                "offered_share_of_capacity",
                "utilisation_share_of_capacity",
                "dropped_bytes",
                "queued_bytes",
            ]
        )
        for policy in POLICIES:
            f = fluid[policy]
            offered = run.offered[policy]
            for w in range(offered.shape[0]):
                for i, p in enumerate(run.scenario.paths):
                    out.writerow(
                        [
                            policy,
                            w,
                            f"{w * run.window_s:.6f}",
                            p.name,
                            f"{offered[w, i] / capacity[i]:.5f}",
                            f"{f.delivered[w, i] / capacity[i]:.5f}",
                            f"{f.dropped[w, i]:.0f}",
                            f"{f.queued[w, i]:.0f}",
                        ]
                    )


def plots(run: ModelRun, fluid: dict[str, metrics.FluidResult], out_dir: Path) -> list[Path]:
    names = [p.name for p in run.scenario.paths]
    capacity_run = run.rates.path_bytes_per_s * run.duration_s
    capacity_window = run.rates.path_bytes_per_s * run.window_s
    windows = run.offered[POLICIES[0]].shape[0]
    times = {p: np.arange(windows) * run.window_s for p in POLICIES}
    name = run.scenario.name
    return [
        charts.per_path(
            out_dir / "utilisation_per_path.png",
            f"{name}: per-path utilisation over the run",
            names,
            {p: fluid[p].delivered.sum(axis=0) / capacity_run for p in POLICIES},
            {p: run.offered[p].sum(axis=0) / capacity_run for p in POLICIES},
        ),
        charts.over_time(
            out_dir / "utilisation_over_time.png",
            f"{name}: utilisation over time (per window)",
            names,
            times,
            {p: fluid[p].delivered / capacity_window for p in POLICIES},
            "simulated time (s)",
        ),
        charts.busiest_over_time(
            out_dir / "busiest_over_mean_over_time.png",
            times,
            {
                p: np.array(
                    [metrics.busiest_over_mean(w) for w in run.offered[p] / capacity_window]
                )
                for p in POLICIES
            },
            run.scenario.goal_busiest_over_mean,
            "simulated time (s)",
            "busiest / mean offered load",
        ),
    ]


def _pf(ok: Figure) -> str:
    return "**PASS**" if ok else "**FAIL**"


def _traffic_lines(run: ModelRun) -> list[str]:
    mix = run.scenario.traffic
    work = get_workload(mix.mice_workload)
    return [
        f"* Elephants: {mix.roce_qps} RoCE QPs over {mix.roce_host_pairs} host pair(s) (one "
        f"UDP 5-tuple each), {mix.elephant_byte_share:.0%} of the bytes, rates uniform in "
        f"±{mix.elephant_rate_spread:.0%} of their mean, starting in the first "
        f"{mix.elephant_start_fraction:.0%} of the run, {mix.roce_frame_bytes} B frames.",
        f"* Mice: {run.mice:,} TCP flows between {mix.mice_hosts}x{mix.mice_hosts} hosts, sizes "
        f"from the `{work.name}` workload ({work.citation}), Poisson arrivals (steady state from "
        f"the start), each paced at {mix.mouse_rate_share:.0%} of a path's rate, "
        f"{mix.mouse_frame_bytes} B frames.",
    ]


def _trace_lines(run: ModelRun) -> list[str]:
    t = run.trace or {}
    return [
        f"* Traffic: the capture `{t['trace_file']}`: {t['trace_ip_packets']:,} IP packets "
        f"({t['trace_skipped_records']:,} other records skipped), {t['trace_octets']:,} octets "
        f"over {t['trace_duration_s']} s; {t['trace_sketch_keys']:,} sketch keys (SA, DA, "
        f"DestQP), of which {t['trace_roce_qp_keys']:,} RoCEv2 QPs (the elephants below). "
        'Flow keys as docs/studies.md, "Real traces", says.',
    ]


def markdown(run: ModelRun, fig: dict[str, Figure], images: list[Path]) -> str:
    s = run.scenario
    el = s.elephants
    lines = [
        f"# Study: {s.title}",
        "",
        f"Scenario `{s.name}` (DESIGN.md section 6), backend `model` (the reference model: "
        "hashes and the count-min sketch bit-exact with BMv2), seed "
        f"{run.seed}. {s.description}",
        "",
        "## Paths",
        "",
        "| path | switches | km | one-way latency (ms) | capacity (Gbit/s) |",
        "|---|---|---|---|---|",
    ]
    for spec in s.paths:
        lines.append(
            f"| {spec.name} | {' - '.join(spec.via)} | {spec.km:g} | {spec.latency_ms:.2f} "
            f"| {spec.capacity_gbps:g} |"
        )
    lines += [
        "",
        "## Parameters",
        "",
        f"* Packets: {run.packets:,} over {run.duration_s:g} s of simulated time, "
        f"{fig['measurement_windows']} measurement windows of {fig['measurement_window_ms']} ms.",
        f"* Offered load: {s.offered_load:.0%} of the bundle's capacity. Rates are scaled "
        f"(model/real = {fig['rate_scale_model_over_real']}) so that the packets span the "
        "duration; all results are ratios.",
        *(_traffic_lines(run) if run.trace is None else _trace_lines(run)),
        f"* Sketch: {el.sketch_depth} x {el.sketch_width} counters, conservative update, "
        "key (SA, DA, DestQP), window "
        f"{fig['sketch_window_ms']} ms, threshold {fig['sketch_threshold_packets']} packets "
        f"({el.threshold_share:.1%} of the bundle's packets per window).",
        f"* Manager (`icpn.placement`, the controller's own code): pins a reported flow to the "
        "list of least utilisation; polls the counters every "
        f"{fig['manager_poll_interval_s']:g} s and rebalances while the busiest list is above "
        f"{1 + run.placement.trigger:g} x the balanced load — at most "
        f"{run.placement.max_moves} moves per poll, each lowering the peak by more than "
        f"{run.placement.min_gain:.1%} of it per flow moved, a flow staying "
        f"{run.placement.hold_down_s:g} s where it was put, only between lists whose latencies "
        f"differ by less than {run.placement.max_latency_skew_ms:g} ms; decisions in force "
        f"{el.control_loop_ms:g} ms after they are taken; unpins after {el.idle_polls} idle "
        "polls.",
        f"* Fluid model: per path and window, delivered = min(queue + offered, capacity), "
        f"queue up to {s.buffer_ms:g} ms of the path's capacity, the rest dropped.",
        "",
    ]
    lines += results_section(fig, [spec.name for spec in s.paths])
    lines += goals_section(fig)
    lines += [
        "The whole run counts, including the time before the elephants are detected and pinned "
        "and the polls it takes to rebalance them. For reference, placing the QPs once, largest "
        "first on the least-loaded path, with their byte counts known in advance, would give "
        f"busiest/mean {fig['elephant_ideal_placement_busiest_over_mean']}; the manager knows "
        "nothing in advance, places each flow when it is reported and moves it as the "
        f"measurements come in ({fig['manager_moves']} moves in this run), and can also move the "
        "mice host pairs the sketch reported.",
        "",
        "## Elephant detection",
        "",
        f"{fig['elephant_qps_detected']} of {run.elephants} RoCE QPs reported; latency from a "
        "QP's first packet to its report: "
        f"p50 {fig['elephant_detection_latency_ms_p50']} ms / "
        f"{fig['elephant_detection_latency_packets_p50']} packets, "
        f"p90 {fig['elephant_detection_latency_ms_p90']} ms, "
        f"max {fig['elephant_detection_latency_ms_max']} ms (simulated time). "
        f"{fig['other_flow_keys_detected']} other flow keys (TCP host pairs carrying a large "
        f"flow) were reported too; the manager installed {fig['manager_overrides_installed']} "
        f"overrides and aged out {fig['manager_overrides_aged_out']}.",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{image.stem}]({image.name})" for image in images]
    lines += [
        "",
        f"Files: `results.json` (every figure, named with its unit), `windows.csv` (per "
        f"policy, window and path). Model throughput: {fig['model_packets_per_s']:,} packets/s "
        f"({fig['wall_time_s']} s wall).",
    ]
    return "\n".join(lines) + "\n"


def results_section(fig: dict[str, Figure], path_names: Sequence[str]) -> list[str]:
    """The results table (a row per policy) and per-path utilisation; any backend whose
    figures carry these names."""
    lines = [
        "## Results",
        "",
        "| policy | busiest/mean | Jain | busiest/mean per window (p50, p95) "
        "| goodput, share of bundle | drops, share of offered | busiest path utilisation |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in POLICIES:
        lines.append(
            f"| {POLICY_TITLES[p]} (`{p}`) | {fig[p + '_busiest_over_mean']} "
            f"| {fig[p + '_jain_index']} | {fig[p + '_busiest_over_mean_window_p50']}, "
            f"{fig[p + '_busiest_over_mean_window_p95']} "
            f"| {_share(fig[p + '_goodput_share_of_bundle'])} "
            f"| {_share(fig[p + '_drops_share_of_offered'])} "
            f"| {_share(fig[p + '_busiest_path_utilisation_share_of_capacity'])} |"
        )
    lines += [
        "",
        "Per-path utilisation (share of capacity, whole run):",
        "",
        "| policy | " + " | ".join(path_names) + " |",
        "|---|" + "---|" * len(path_names),
    ]
    for p in POLICIES:
        cells = [
            _share(fig[f"{p}_path_{name}_utilisation_share_of_capacity"]) for name in path_names
        ]
        lines.append(f"| `{p}` | " + " | ".join(cells) + " |")
    return [*lines, ""]


def goals_section(fig: dict[str, Figure]) -> list[str]:
    """The goals of elephant splitting, measured, with their verdicts."""
    return [
        "## Goals (elephant splitting vs 5-tuple ECMP)",
        "",
        f"* busiest ≤ {fig['goal_busiest_over_mean_max']} x mean with elephant splitting: measured "
        f"{fig[SPLITTING + '_busiest_over_mean']} (ECMP {fig[BASELINE + '_busiest_over_mean']})"
        f" — {_pf(fig['goal_balance_pass'])}",
        _goodput_goal_line(fig),
        "* elephant splitting better than 5-tuple ECMP on both — "
        f"{_pf(fig['goal_splitting_beats_ecmp_pass'])}",
        "",
    ]


def _goodput_goal_line(fig: dict[str, Figure]) -> str:
    measured = (
        f"{_share(fig[SPLITTING + '_goodput_share_of_bundle'])} (ECMP "
        f"{_share(fig[BASELINE + '_goodput_share_of_bundle'])})"
    )
    goal = fig["goal_goodput_share_of_bundle_min"]
    if goal is None:
        return (
            f"* aggregate with elephant splitting: {measured} of the bundle, "
            f"{_share(fig[SPLITTING + '_goodput_share_of_offered'])} of what was offered "
            f"(offered: {_share(fig['offered_measured_share_of_bundle'])} of the bundle) — no "
            "goal for this scenario"
        )
    return (
        f"* aggregate ≥ {_share(goal)} of the bundle with elephant splitting: measured "
        f"{measured} — {_pf(fig['goal_goodput_pass'])}"
    )


def verdict(value: Figure) -> str:
    """A goal's verdict for a terminal: PASS, FAIL, or n/a (no goal set)."""
    return "n/a" if value is None else ("PASS" if value else "FAIL")


def _share(value: Figure) -> str:
    assert isinstance(value, int | float), value
    return f"{float(value):.1%}"


def write(run: ModelRun, out_dir: Path) -> tuple[dict[str, Figure], list[Path]]:
    """Write results.json, windows.csv, the plots and report.md; return figures and files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fluid = fluid_of(run)
    fig = figures(run, fluid)
    results = out_dir / "results.json"
    results.write_text(json.dumps(_jsonable(fig), indent=2) + "\n")
    table = out_dir / "windows.csv"
    write_csv(run, fluid, table)
    images = plots(run, fluid, out_dir)
    report = out_dir / "report.md"
    report.write_text(markdown(run, fig, images))
    return fig, [results, table, *images, report]


def _jsonable(fig: dict[str, Figure]) -> dict[str, Any]:
    """NaN (nothing measured) as null."""
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in fig.items()}
