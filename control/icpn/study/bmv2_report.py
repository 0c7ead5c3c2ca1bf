"""What a BMv2 study run measured, its figures and its report.

:mod:`icpn.study.bmv2_backend` runs the policies and fills a :class:`PolicyRun` per policy
from the switches' and links' counters; this module turns the runs into figures named as
the model backend names them (:mod:`icpn.study.report`), ``results.json``, ``samples.csv``,
the plots (:mod:`icpn.study.charts`) and ``report.md``.
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from icpn.intent import Intent
from icpn.net.emulation import link_rate_mbps, netem_available
from icpn.study import charts
from icpn.study.metrics import busiest_over_mean, jain_index, percentile
from icpn.study.policies import POLICIES
from icpn.study.report import SPLITTING, goals, goals_section, results_section
from icpn.study.scenarios import Scenario

F64 = npt.NDArray[np.float64]

#: Seconds between two readings of the links' counters while a policy's traffic runs.
SAMPLE_S = 0.5
#: Goodput goal on BMv2 (issue 12), above the model's: the emulated bundle carries the RoCE
#: transfer alone, no mice bursts.
GOAL_GOODPUT_SHARE = 0.95


@dataclass(frozen=True)
class Counters:
    tx_bytes: int
    tx_packets: int
    drops: int  # packets the interface's queue dropped
    tx_dropped: int = 0  # packets the veth itself dropped (its peer's backlog was full)

    def __sub__(self, earlier: Counters) -> Counters:
        return Counters(
            self.tx_bytes - earlier.tx_bytes,
            self.tx_packets - earlier.tx_packets,
            self.drops - earlier.drops,
            self.tx_dropped - earlier.tx_dropped,
        )

    @property
    def given_packets(self) -> int:
        """Packets the interface was given to send: sent, or dropped by its queue or itself."""
        return self.tx_packets + self.drops + self.tx_dropped

    @property
    def offered_bytes(self) -> int:
        """What the interface was given: what it sent, and its drops at its mean frame."""
        frame = self.tx_bytes / self.tx_packets if self.tx_packets else 0.0
        return round(self.tx_bytes + self.drops * frame)


@dataclass(frozen=True)
class Sample:
    """Counters at ``t`` (monotonic seconds): each path's first link (by its first hop),
    and the bytes the bundle's last links have delivered into the endpoint."""

    t: float
    first_hops: dict[str, Counters]
    delivered: int


@dataclass
class PolicyRun:
    policy: str
    sent: int = 0
    seconds: float = 0.0
    started: float = 0.0  # monotonic time the sending started
    host_bytes: int = 0  # to the destination host (decapsulated)
    sent_bytes: int = 0
    drops: int = 0
    detection_ms: list[float] = field(default_factory=list)
    altmark_blocks: int = 0
    altmark_lost: int = 0
    #: Packets lost between the headend's egress and the destination host, by the kernel's
    #: counters: what the headend gave its core links less what reached the host's link.
    #: Queue drops and what the BMv2s themselves lost (their input buffers overflow when
    #: the machine is loaded) alike: the loss alternate marking should measure.
    path_lost: int = 0
    #: Counter readings while the traffic ran, the first one before it started.
    samples: list[Sample] = field(default_factory=list)
    overrides_installed: int = 0
    moves: int = 0
    aged_out: int = 0


def _capacity_gbps(intent: Intent, neighbour: str) -> float:
    """Capacity of the headend's link to ``neighbour``."""
    headend = intent.sr_policies[0].headend
    for link in intent.links:
        ends = {link.a.partition(":")[0], link.b.partition(":")[0]}
        if ends == {headend, neighbour}:
            return link.capacity_gbps
    raise ValueError(f"no link {headend}-{neighbour}")


def _path_name(scenario: Scenario, neighbour: str) -> str:
    """The scenario's name of the path whose first hop is ``neighbour`` (the topology and
    the scenario name the same switches), so both backends report the same paths."""
    for spec in scenario.paths:
        if len(spec.via) > 1 and spec.via[1] == neighbour:
            return spec.name
    return neighbour


@dataclass(frozen=True)
class Setup:
    """How the runs were made, for the figures and the report."""

    seed: int
    packets: int
    rate_pps: float
    frame_bytes: int
    wire_frame_bytes: float
    qps: list[tuple[int, float]]


def _capacity(intent: Intent, run: PolicyRun) -> dict[str, float]:
    """Each path's emulated capacity in bytes/s, by first hop."""
    scale = intent.emulation.bandwidth_scale
    hops = run.samples[0].first_hops
    return {n: link_rate_mbps(_capacity_gbps(intent, n), scale) * 1e6 / 8 for n in hops}


def _intervals(run: PolicyRun, capacity: dict[str, float]) -> tuple[list[float], F64, F64]:
    """Per counter sample: its midpoint (s since the sending started), each path's offered
    load and utilisation in it (shares of capacity; paths in sorted order of first hop)."""
    names = sorted(capacity)
    times, offered, used = [], [], []
    for a, b in itertools.pairwise(run.samples):
        if b.t <= a.t:
            continue
        times.append((a.t + b.t) / 2 - run.started)
        diff = {n: b.first_hops[n] - a.first_hops[n] for n in names}
        span = b.t - a.t
        offered.append([diff[n].offered_bytes / (capacity[n] * span) for n in names])
        used.append([diff[n].tx_bytes / (capacity[n] * span) for n in names])
    shape = (-1, len(names))
    return times, np.asarray(offered).reshape(shape), np.asarray(used).reshape(shape)


def figures(
    scenario: Scenario, intent: Intent, runs: list[PolicyRun], setup: Setup
) -> dict[str, Any]:
    """Every figure, named as the model backend names it where it measures the same thing
    (:mod:`icpn.study.report`), with its unit. Whole-run figures count the bytes from the
    last counter reading before the sending to the first after it, over the time from the
    sending's start to that reading."""
    scale = intent.emulation.bandwidth_scale
    rebalance = intent.elephants.rebalance
    figures: dict[str, Any] = {
        "scenario": scenario.name,
        "backend": "bmv2",
        "seed": setup.seed,
        "paths": len(scenario.paths),
        "bandwidth_scale": scale,
        "link_delay_emulated": netem_available(),
        "packets_per_policy": setup.packets,
        "send_rate_pps": round(setup.rate_pps, 3),
        "host_frame_bytes": setup.frame_bytes,
        "wire_frame_bytes": round(setup.wire_frame_bytes, 1),
        "offered_load_share_of_bundle": scenario.offered_load,
        "qps": len(setup.qps),
        "sample_interval_s": SAMPLE_S,
        "manager_poll_interval_s": intent.elephants.poll_interval_s,
        "manager_rebalance_trigger_share": rebalance.trigger,
        "manager_rebalance_min_gain_share": rebalance.min_gain,
        "manager_rebalance_max_moves_per_poll": rebalance.max_moves,
        "manager_rebalance_hold_down_s": rebalance.hold_down_polls
        * intent.elephants.poll_interval_s,
        "manager_rebalance_max_latency_skew_ms": rebalance.max_latency_skew_ms,
    }
    for run in runs:
        p = run.policy
        capacity = _capacity(intent, run)
        names = sorted(capacity)
        first, last = run.samples[0], run.samples[-1]
        span = last.t - max(first.t, run.started)  # nothing was sent before it started
        diff = {n: last.first_hops[n] - first.first_hops[n] for n in names}
        offered = [diff[n].offered_bytes / (capacity[n] * span) for n in names]
        used = [diff[n].tx_bytes / (capacity[n] * span) for n in names]
        bundle = sum(capacity.values()) * span
        _, offered_t, _ = _intervals(run, capacity)
        busy = [busiest_over_mean(w) for w in offered_t if w.sum() > 0]
        figures |= {
            f"{p}_busiest_over_mean": round(busiest_over_mean(offered), 4),
            f"{p}_jain_index": round(jain_index(offered), 4),
            f"{p}_busiest_over_mean_window_p50": round(percentile(busy, 50), 4),
            f"{p}_busiest_over_mean_window_p95": round(percentile(busy, 95), 4),
            # what the bundle delivered into the endpoint while the traffic ran, as share
            # of its capacity (port utilisation, encapsulation included)
            f"{p}_goodput_share_of_bundle": round((last.delivered - first.delivered) / bundle, 4),
            f"{p}_offered_share_of_bundle": round(
                sum(d.offered_bytes for d in diff.values()) / bundle, 4
            ),
            f"{p}_host_delivered_share_of_sent": round(run.host_bytes / run.sent_bytes, 4),
            f"{p}_drops_share_of_offered": round(run.drops / run.sent, 4) if run.sent else 0.0,
            f"{p}_packets_sent": run.sent,
            f"{p}_sending_s": round(run.seconds, 3),
            f"{p}_queue_drops_packets": run.drops,
            f"{p}_busiest_path_utilisation_share_of_capacity": round(max(used), 4),
            f"{p}_mean_path_utilisation_share_of_capacity": round(statistics.fmean(used), 4),
        }
        for n, o, u in zip(names, offered, used, strict=True):
            name = _path_name(scenario, n)
            figures[f"{p}_path_{name}_offered_share_of_capacity"] = round(o, 4)
            figures[f"{p}_path_{name}_utilisation_share_of_capacity"] = round(u, 4)
        if run.detection_ms:
            figures[f"{p}_elephant_detection_latency_ms_p50"] = round(
                statistics.median(run.detection_ms), 1
            )
            figures[f"{p}_elephants_detected"] = len(run.detection_ms)
        if run.altmark_blocks:
            figures[f"{p}_ifit_altmark_blocks"] = run.altmark_blocks
            figures[f"{p}_ifit_altmark_loss_packets"] = run.altmark_lost
            figures[f"{p}_end_to_end_loss_packets"] = run.path_lost
            figures[f"{p}_loss_beyond_queues_packets"] = run.path_lost - run.drops
            figures[f"{p}_ifit_loss_error_vs_end_to_end_packets"] = run.altmark_lost - run.path_lost
    split = next(r for r in runs if r.policy == SPLITTING)
    figures |= {
        "manager_overrides_installed": split.overrides_installed,
        "manager_moves": split.moves,
        "manager_overrides_aged_out": split.aged_out,
    }
    if f"{SPLITTING}_elephant_detection_latency_ms_p50" in figures:
        latency = figures[f"{SPLITTING}_elephant_detection_latency_ms_p50"]
        figures["elephant_detection_latency_ms_p50"] = latency
    figures |= goals(figures, scenario.goal_busiest_over_mean, GOAL_GOODPUT_SHARE)
    return figures


def write(
    out_dir: Path,
    scenario: Scenario,
    intent: Intent,
    figures: dict[str, Any],
    runs: list[PolicyRun],
) -> None:
    (out_dir / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    capacity = _capacity(intent, runs[0])
    labels = [_path_name(scenario, n) for n in sorted(capacity)]
    series = {r.policy: _intervals(r, _capacity(intent, r)) for r in runs}
    rows = ["policy,time_s,path,offered_share_of_capacity,utilisation_share_of_capacity"]
    for policy, (times, offered, used) in series.items():
        for k, t in enumerate(times):
            rows += [
                f"{policy},{t:.3f},{label},{offered[k, i]:.5f},{used[k, i]:.5f}"
                for i, label in enumerate(labels)
            ]
    (out_dir / "samples.csv").write_text("\n".join(rows) + "\n")
    when = {p: np.asarray(t) for p, (t, _, _) in series.items()}

    def whole_run(kind: str) -> dict[str, list[float]]:
        return {
            r.policy: [
                figures[f"{r.policy}_path_{label}_{kind}_share_of_capacity"] for label in labels
            ]
            for r in runs
        }

    images = [
        charts.per_path(
            out_dir / "utilisation_per_path.png",
            f"{scenario.name} on BMv2: per-path utilisation over the run",
            labels,
            whole_run("utilisation"),
            whole_run("offered"),
        ),
        charts.over_time(
            out_dir / "utilisation_over_time.png",
            f"{scenario.name} on BMv2: utilisation over time (per {SAMPLE_S:g} s sample)",
            labels,
            when,
            {p: used for p, (_, _, used) in series.items()},
            "time since the sending started (s)",
        ),
        charts.busiest_over_time(
            out_dir / "busiest_over_mean_over_time.png",
            when,
            {
                p: [busiest_over_mean(w) if w.sum() > 0 else np.nan for w in offered]
                for p, (_, offered, _) in series.items()
            },
            scenario.goal_busiest_over_mean,
            "time since the sending started (s)",
            "busiest / mean offered load",
        ),
    ]
    (out_dir / "report.md").write_text(_markdown(scenario, intent, figures, labels, images))


def _markdown(
    scenario: Scenario,
    intent: Intent,
    fig: dict[str, Any],
    labels: list[str],
    images: list[Path],
) -> str:
    scale = intent.emulation.bandwidth_scale
    sketch = next((s for s in intent.sketches), None)
    split = SPLITTING
    lines = [
        f"# Study: {scenario.title} — BMv2 + Mininet",
        "",
        f"Scenario `{scenario.name}` (DESIGN.md section 6), backend `bmv2`: the topology "
        f"`topologies/{scenario.name}.yaml` on Mininet, one BMv2 per switch running icpn.p4, "
        "the controller (`icpn.controller`, its elephant manager included) and real packets "
        f"from the source host; seed {fig['seed']}. {scenario.description}",
        "",
        "## Paths",
        "",
        "| path | switches | km | one-way latency (ms) | capacity (Gbit/s) | emulated (Mbit/s) |",
        "|---|---|---|---|---|---|",
    ]
    for spec in scenario.paths:
        lines.append(
            f"| {spec.name} | {' - '.join(spec.via)} | {spec.km:g} | {spec.latency_ms:.2f} "
            f"| {spec.capacity_gbps:g} | {link_rate_mbps(spec.capacity_gbps, scale):g} |"
        )
    delays = (
        "emulated (netem)"
        if fig["link_delay_emulated"]
        else "not emulated (this kernel has no sch_netem)"
    )
    spread = scenario.traffic.elephant_rate_spread
    lines += [
        "",
        "## Parameters",
        "",
        f"* Traffic, the same for every policy: {fig['packets_per_policy']:,} RoCEv2 WRITEs "
        f"of {fig['host_frame_bytes']} B ({fig['wire_frame_bytes']:g} B on the bundle with "
        f"the SRv6 and telemetry headers, measured), {fig['qps']} QPs over one UDP 5-tuple, "
        f"all from the start, rates uniform in ±{spread:.0%} of their mean (the model's QPs "
        f"and rates for seed {fig['seed']}; the model's mice are not sent), paced at "
        f"{fig['send_rate_pps']:g} packets/s: {scenario.offered_load:.0%} of the bundle's "
        "emulated capacity in the bytes its links carry.",
        f"* Emulation: rates x {scale:g} ({intent.emulation.queue_packets}-packet queues); "
        f"link delays {delays}.",
    ]
    if sketch is not None:
        lines.append(
            f"* Sketch: threshold {sketch.threshold} packets per window of "
            f"2^{sketch.window_log2_us} µs, key {sketch.key}."
        )
    lines += [
        f"* Manager: polls every {fig['manager_poll_interval_s']:g} s and rebalances "
        f"(`icpn.placement`, as on the model) while the busiest list is above "
        f"{1 + fig['manager_rebalance_trigger_share']:g} x the balanced load — at most "
        f"{fig['manager_rebalance_max_moves_per_poll']} moves per poll, a flow staying "
        f"{fig['manager_rebalance_hold_down_s']:g} s where it was put, only between lists "
        f"whose latencies differ by less than {fig['manager_rebalance_max_latency_skew_ms']:g} ms.",
        "* Measured per policy, from the sending's start to the first counter reading after "
        "it: each path's offered load = what the headend's link to the path's first hop "
        "carried plus what its queue dropped, and its utilisation = what it carried, over the "
        "link's emulated capacity x the time; busiest/mean and Jain's index are of the offered "
        "loads (as on the model), per window = per counter sample; goodput = bytes the bundle "
        "delivered into the endpoint over its capacity x the time; drops = packets the links' "
        "queues dropped, as a share of the packets sent.",
        "",
    ]
    lines += results_section(fig, labels)
    lines += [
        "Offered to the bundle, share of its capacity: "
        + ", ".join(f"`{p}` {fig[p + '_offered_share_of_bundle']:.1%}" for p in POLICIES)
        + "; delivered to the destination host, share of what was sent: "
        + ", ".join(f"`{p}` {fig[p + '_host_delivered_share_of_sent']:.1%}" for p in POLICIES)
        + ".",
        "",
    ]
    lines += goals_section(fig)
    lines += [
        "## Elephant detection and placement",
        "",
        f"{fig.get(split + '_elephants_detected', 0)} of {fig['qps']} QPs reported; median "
        f"time from the first frame sent to a QP's report "
        f"{fig.get('elephant_detection_latency_ms_p50', 'n/a')} ms. The manager installed "
        f"{fig['manager_overrides_installed']} overrides, moved elephants "
        f"{fig['manager_moves']} times and aged out {fig['manager_overrides_aged_out']}.",
        "",
    ]
    ifit = [p for p in POLICIES if f"{p}_ifit_altmark_blocks" in fig]
    if ifit:
        lines += [
            "## IFIT",
            "",
            "Loss measured by alternate marking against the loss the kernel's counters show "
            "end to end (what the headend gave its core links less what reached the "
            "destination's link); of the latter, what was not a link queue's drop was lost "
            "inside the BMv2s.",
            "",
            "| policy | alternate-marking blocks | IFIT loss (packets) | end-to-end loss "
            "(packets) | IFIT - end to end | lost beyond the queues (packets) |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{p}` | {fig[p + '_ifit_altmark_blocks']} "
            f"| {fig[p + '_ifit_altmark_loss_packets']} "
            f"| {fig[p + '_end_to_end_loss_packets']} "
            f"| {fig[p + '_ifit_loss_error_vs_end_to_end_packets']} "
            f"| {fig[p + '_loss_beyond_queues_packets']} |"
            for p in ifit
        ]
        lines.append("")
    lines += ["## Plots", ""]
    lines += [f"![{image.stem}]({image.name})" for image in images]
    lines += [
        "",
        "Files: `results.json` (every figure, named with its unit), `samples.csv` (offered load "
        "and utilisation per policy, counter sample and path), `net/` (the switches' and "
        "Mininet's logs, the frames sent).",
    ]
    return "\n".join(lines) + "\n"
