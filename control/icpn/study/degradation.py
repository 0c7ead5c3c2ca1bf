"""The path-degradation study (issue 12, part 3): one path of an SR policy degrades mid-run;
does the controller see it in the telemetry and steer the traffic off, and back?

On BMv2 + Mininet, ``topologies/path-degradation.yaml``: two equal paths from dg1 to dg3,
each segment list marked with its own FlowMonID; the controller measures every list's
loss by alternate marking and drains a list whose block loses more than the intent's
``steering.max_loss`` (:mod:`icpn.steering`). The source sends RoCE WRITEs on 16 QPs of
one 5-tuple (the deep hash spreads them over both lists), offered at the capacity of the
*healthy* path alone — all of it fits there once the degraded list is drained.

The run, from the first frame seen on the paths: ``healthy_s`` of normal operation; then
the direct path's capacity is cut to ``cut_share`` of it (:class:`icpn.net.faults.
CapacityCut`, tbf: this kernel has no netem, police or nftables) for ``fault_s``; then it is
repaired and the run goes on for ``after_s`` (the list comes back after the hold and must
stay). Counters of every path's first and last link are read every :data:`SAMPLE_S`.

Figures (units in the names): when the fault was injected, when the controller took the
first lossy sample of the list and when the drain was written (detection-to-re-steer),
their distance from the fault in alternate-marking periods; goodput (bytes delivered into
dg3) before the fault, during it before and after the re-steer, and after the repair, as a
share of the healthy paths' capacity; drains and restores, and drains after the repair.
Goals: re-steered within two alternate-marking periods of the fault; goodput back to at
least 90 % of the healthy paths' capacity; no flapping once the path recovered (the list
restored once, never drained again).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import finsy as fy

from icpn.features.srv6 import SR_POLICY
from icpn.intent import Intent, load_intent
from icpn.net.emulation import emulate, link_rate_mbps, netem_available
from icpn.net.faults import CapacityCut
from icpn.paths import PROJECT_ROOT
from icpn.steering import Event, ListPath, list_paths
from icpn.study import bmv2_backend, charts
from icpn.study.bmv2_backend import BackendUnavailable
from icpn.study.traffic import qp_numbers
from icpn.targets.bmv2 import build
from icpn.traffic.generators import Frame
from icpn.traffic.pcap import write_pcap

NAME = "path-degradation"
TITLE = "Path degradation: telemetry-driven re-steering (BMv2)"
SAMPLE_S = 0.2
QPS = 16
#: Goals (issue 12): re-steered within this many alternate-marking periods of the fault,
#: goodput back to this share of the healthy paths' capacity.
GOAL_PERIODS = 2.0
GOAL_GOODPUT_SHARE = 0.90
#: After the drain, goodput is judged from this long on (the queues drain first).
SETTLE_S = 1.0


@dataclass(frozen=True)
class Timeline:
    healthy_s: float = 3.0
    fault_s: float = 5.0
    after_s: float = 5.0
    cut_share: float = 0.2  # the degraded link's rate during the fault, share of capacity
    offered_share: float = 1.0  # offered load, share of the healthy paths' capacity

    def __post_init__(self) -> None:
        if min(self.healthy_s, self.fault_s, self.after_s) <= 0:
            raise ValueError("every phase of the run must last > 0 s")
        if not 0 < self.cut_share < 1 or not 0 < self.offered_share <= 1.5:
            raise ValueError("cut_share in (0, 1), offered_share in (0, 1.5]")

    @property
    def total_s(self) -> float:
        return self.healthy_s + self.fault_s + self.after_s


@dataclass(frozen=True)
class PathSample:
    t: float  # seconds from the first frame seen on the paths
    first_hop: dict[str, tuple[int, int]]  # list name -> (tx bytes, drops) of its first link
    last_hop: dict[str, int]  # list name -> tx bytes of its last link (into the endpoint)


def topology() -> Intent:
    return load_intent(PROJECT_ROOT / "topologies" / f"{NAME}.yaml")


def _ifname(intent: Intent, a: str, b: str) -> str:
    """The interface of switch ``a`` on its link to ``b``."""
    for link in intent.links:
        for near, far in ((link.a, link.b), (link.b, link.a)):
            if near.partition(":")[0] == a and far.partition(":")[0] == b:
                return f"{a}-eth{near.partition(':')[2]}"
    raise ValueError(f"no link {a} - {b}")


def _list_name(path: ListPath) -> str:
    return "direct" if len(path.switches) == 2 else "via-" + "-".join(path.switches[1:-1])


def _tc_counters(ifname: str) -> tuple[int, int]:
    """(tx bytes, packets its queue dropped) of a switch-side interface."""
    counted = bmv2_backend._counters(ifname)
    return counted.tx_bytes, counted.drops


def run(out_dir: Path, *, timeline: Timeline | None = None) -> dict[str, Any]:
    """Run the study on BMv2; write results.json, samples.csv, timeline.png and report.md
    to ``out_dir``; return the figures."""
    timeline = timeline or Timeline()
    reason = bmv2_backend.unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"BMv2 backend not available: {reason}")
    if netem_available():  # the cut swaps the queue under HTB; netem would sit there too
        raise BackendUnavailable(f"{NAME}: the capacity cut is written for kernels without netem")
    intent = topology()
    assert intent.steering is not None, "the topology's intent steers"
    lists = list_paths(intent)
    degraded, *healthy = lists
    names = [_list_name(p) for p in lists]
    first_hops = {
        n: _ifname(intent, p.switches[0], p.switches[1]) for n, p in zip(names, lists, strict=True)
    }
    last_hops = {
        n: _ifname(intent, p.switches[-2], p.switches[-1])
        for n, p in zip(names, lists, strict=True)
    }
    scale = intent.emulation.bandwidth_scale
    capacity_mbps = {
        n: link_rate_mbps(_capacity(intent, p), scale) for n, p in zip(names, lists, strict=True)
    }
    healthy_mbps = sum(capacity_mbps[_list_name(p)] for p in healthy)
    art = build.compile_program("icpn")
    out_dir.mkdir(parents=True, exist_ok=True)
    qps = [(int(q), 1.0) for q in qp_numbers(QPS)]
    with emulate(NAME, intent, out_dir / "net") as emu:
        probe = bmv2_backend._frames(intent, qps, 1)[0]
        wire = bmv2_backend._wire_frame_bytes(emu, art, probe)
        rate = timeline.offered_share * healthy_mbps * 1e6 / 8 / wire
        count = int(rate * (timeline.total_s + 1.0))
        frames = bmv2_backend._frames(intent, qps, count)
        traffic = emu.log_dir / "traffic.pcap"
        write_pcap((Frame(i / rate, f, 0) for i, f in enumerate(frames)), traffic)
        cut = CapacityCut(
            first_hops[names[0]],
            max(8, round(capacity_mbps[names[0]] * 1000 * timeline.cut_share)),
            buffer_bytes=4500,
            queue_packets=intent.emulation.queue_packets,
        )
        with bmv2_backend._controller(intent, art, election_id=10) as (ctl, loop):
            deadline = time.monotonic() + 30
            while ctl.steering is None:  # the steering task starts with the controller
                if time.monotonic() > deadline:
                    raise RuntimeError("the controller did not start steering in 30 s")
                time.sleep(0.05)
            period_s = (1 << (degraded.period_log2_us or 0)) * 1e-6
            time.sleep(2 * period_s)  # the monitors' baselines
            check = _ReconcileCheck(ctl, loop, degraded)
            samples, marks = _send(
                bmv2_backend._sender(emu, traffic, rate),
                first_hops,
                last_hops,
                cut,
                timeline,
                timeout_s=count / rate + 60,
                each_sample=check,
            )
            time.sleep(2 * period_s)  # the last blocks close
            steering = ctl.steering
            events = list(steering.events)
            groups = _group_after(ctl, degraded)
    figures = _figures(
        timeline,
        marks,
        samples,
        events,
        degraded,
        names,
        capacity_mbps,
        healthy_mbps,
        period_s,
        intent.steering.max_loss,
    )
    figures |= check.figures() | {
        "frame_rate_pps": round(rate, 1),
        "wire_frame_bytes": round(wire, 1),
        "frames_sent": count,
        "sr_policy_lists_in_group_at_end": groups,
    }
    _write(out_dir, figures, samples, events, marks, names, capacity_mbps, degraded)
    return figures


def _capacity(intent: Intent, path: ListPath) -> float:
    """The path's bottleneck capacity (Gbit/s)."""
    caps = []
    for a, b in itertools.pairwise(path.switches):
        for link in intent.links:
            ends = {link.a.partition(":")[0], link.b.partition(":")[0]}
            if ends == {a, b}:
                caps.append(link.capacity_gbps)
    return min(caps)


def _group_after(ctl: Any, degraded: ListPath) -> int:
    """How many lists the SR policy's selector group holds at the end (both: restored)."""
    desired = ctl.desired(degraded.headend)
    for entity in desired:
        if getattr(entity, "table_id", None) == SR_POLICY:
            return len(entity.action.action_set)
    return 0


class _ReconcileCheck:
    """Once the list is drained, reconcile the headend as a reconnecting controller would
    (over the live connection) and read its SR policy back: the drain must survive."""

    def __init__(self, ctl: Any, loop: Any, degraded: ListPath) -> None:
        self.ctl, self.loop, self.degraded = ctl, loop, degraded
        self.writes: int | None = None
        self.members_on_switch: int | None = None

    def __call__(self) -> None:
        key = (self.degraded.headend, self.degraded.sr_policy_id)
        if self.writes is not None or key not in self.ctl.drains:
            return
        plan = self.loop.call(self.ctl.reconcile_now(self.degraded.headend))
        self.writes = len(plan)
        client = self.ctl.client_of(self.degraded.headend)
        (entry,) = self.loop.call(client.read(fy.P4TableEntry(SR_POLICY)))
        action = entry.action
        self.members_on_switch = len(action.action_set) if action.action_set else 0

    def figures(self) -> dict[str, Any]:
        return {
            "reconcile_while_drained_writes": self.writes,
            "reconcile_while_drained_lists_on_switch": self.members_on_switch,
        }


def _send(
    command: list[str],
    first_hops: dict[str, str],
    last_hops: dict[str, str],
    cut: CapacityCut,
    timeline: Timeline,
    *,
    timeout_s: float,
    each_sample: Callable[[], None] = lambda: None,
) -> tuple[list[PathSample], dict[str, float]]:
    """Run the sender; sample the paths' counters every SAMPLE_S; inject the fault
    ``healthy_s`` after the first frame reached a path, repair it ``fault_s`` later.
    Returns the samples and the marks (seconds from the first frame): fault, repair."""

    def read(t: float) -> PathSample:
        return PathSample(
            t,
            {n: _tc_counters(i) for n, i in first_hops.items()},
            {n: _tc_counters(i)[0] for n, i in last_hops.items()},
        )

    start = time.monotonic()
    baseline = read(0.0)
    t0: float | None = None
    samples: list[PathSample] = []
    marks: dict[str, float] = {}
    injected = repaired = False
    deadline = start + timeout_s
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as sender:
        try:
            while sender.poll() is None:
                time.sleep(SAMPLE_S)
                now = time.monotonic()
                if now > deadline:
                    raise RuntimeError(f"the sender took more than {timeout_s:.0f} s")
                if t0 is None:
                    moved = sum(b - a[0] for b, a in zip(
                        (v[0] for v in read(0).first_hop.values()),
                        baseline.first_hop.values(), strict=True,
                    ))  # fmt: skip
                    if moved <= 0:
                        continue
                    t0 = now - SAMPLE_S / 2
                    samples.append(PathSample(0.0, baseline.first_hop, baseline.last_hop))
                samples.append(read(now - t0))
                each_sample()
                if not injected and now - t0 >= timeline.healthy_s:
                    cut.inject()
                    injected, marks["fault_at_s"] = True, time.monotonic() - t0
                    marks["fault_at_monotonic"] = time.monotonic()
                if injected and not repaired and now - t0 >= timeline.healthy_s + timeline.fault_s:
                    cut.repair()
                    repaired, marks["repair_at_s"] = True, time.monotonic() - t0
        finally:
            if injected and not repaired:
                with contextlib.suppress(Exception):
                    cut.repair()
            if sender.poll() is None:
                sender.kill()
        _, errors = sender.communicate()
    if sender.returncode != 0:
        raise RuntimeError(f"the sender failed ({sender.returncode}): {errors.strip()}")
    if t0 is None or not repaired:
        raise RuntimeError("the traffic never reached the paths, or ended before the repair")
    marks["t0_monotonic"] = t0
    return samples, marks


def _rates(
    samples: list[PathSample], names: list[str], frame_bytes: float = 1100.0
) -> dict[str, list[float]]:
    """Per interval (ending at each sample after the first): each list's delivered rate
    and the bundle's goodput, Mbit/s; and the rate offered to each list's first hop (sent,
    and dropped at ``frame_bytes`` a frame)."""
    out: dict[str, list[float]] = {"t": [], "goodput": []}
    for n in names:
        out[f"delivered_{n}"], out[f"offered_{n}"] = [], []
    for a, b in itertools.pairwise(samples):
        dt = b.t - a.t
        if dt <= 0:
            continue
        out["t"].append(b.t)
        total = 0.0
        for n in names:
            delivered = (b.last_hop[n] - a.last_hop[n]) * 8 / dt / 1e6
            offered = (b.first_hop[n][0] - a.first_hop[n][0]) + (
                b.first_hop[n][1] - a.first_hop[n][1]
            ) * frame_bytes
            out[f"delivered_{n}"].append(delivered)
            out[f"offered_{n}"].append(offered * 8 / dt / 1e6)
            total += delivered
        out["goodput"].append(total)
    return out


def _mean_between(t: list[float], values: list[float], lo: float, hi: float) -> float | None:
    chosen = [v for x, v in zip(t, values, strict=True) if lo < x <= hi]
    return sum(chosen) / len(chosen) if chosen else None


def _figures(
    timeline: Timeline,
    marks: dict[str, float],
    samples: list[PathSample],
    events: list[Event],
    degraded: ListPath,
    names: list[str],
    capacity_mbps: dict[str, float],
    healthy_mbps: float,
    period_s: float,
    max_loss: float,
) -> dict[str, Any]:
    t0 = marks["t0_monotonic"]
    fault, repair = marks["fault_at_s"], marks["repair_at_s"]
    mine = [e for e in events if e.list_id == degraded.list_id]

    def rel(e: Event) -> float:
        return e.at - t0

    detected = next(
        (e for e in mine if e.kind == "loss" and rel(e) > fault and (e.value or 0) > max_loss),
        None,
    )
    drains = [e for e in events if e.kind == "drain"]
    restores = [e for e in events if e.kind == "restore"]
    drain = next((e for e in drains if e.list_id == degraded.list_id and rel(e) > fault), None)
    restore = next((e for e in restores if drain and e.at > drain.at), None)
    rates = _rates(samples, names)
    end = samples[-1].t
    goodput_before = _mean_between(rates["t"], rates["goodput"], 0.5, fault)
    goodput_fault = _mean_between(
        rates["t"], rates["goodput"], fault, rel(drain) if drain else repair
    )
    goodput_back = (
        _mean_between(rates["t"], rates["goodput"], rel(drain) + SETTLE_S, repair)
        if drain
        else None
    )
    goodput_after = _mean_between(rates["t"], rates["goodput"], repair + SETTLE_S, end)
    resteer_s = rel(drain) - fault if drain else None
    flaps_after_repair = [e for e in drains if rel(e) > repair]

    def share(value: float | None) -> float | None:
        return round(value / healthy_mbps, 4) if value is not None else None

    f: dict[str, Any] = {
        "study": NAME,
        "backend": "bmv2",
        "fault_kind": "capacity cut (tbf) of the direct path's first link",
        "fault_capacity_share": timeline.cut_share,
        "fault_at_s": round(fault, 3),
        "repair_at_s": round(repair, 3),
        "run_s": round(end, 3),
        "offered_share_of_healthy_capacity": timeline.offered_share,
        "altmark_period_ms": round(period_s * 1000, 3),
        "steering_max_loss_ratio": max_loss,
        "healthy_paths_capacity_mbps": round(healthy_mbps, 3),
        "degraded_list_id": degraded.list_id,
        "loss_detected_at_s": round(rel(detected), 3) if detected else None,
        "loss_detected_ratio": round(detected.value or 0, 4) if detected else None,
        "resteered_at_s": round(rel(drain), 3) if drain else None,
        "detection_to_resteer_ms": (
            round((drain.at - detected.at) * 1000, 1) if drain and detected else None
        ),
        "fault_to_resteer_ms": round(resteer_s * 1000, 1) if resteer_s is not None else None,
        "fault_to_resteer_periods": round(resteer_s / period_s, 3) if resteer_s else None,
        "restored_at_s": round(rel(restore), 3) if restore else None,
        "drains": len(drains),
        "restores": len(restores),
        "drains_after_repair": len(flaps_after_repair),
        "goodput_before_fault_mbps": _r(goodput_before),
        "goodput_during_fault_before_resteer_mbps": _r(goodput_fault),
        "goodput_after_resteer_mbps": _r(goodput_back),
        "goodput_after_repair_mbps": _r(goodput_after),
        "goodput_before_fault_share_of_healthy": share(goodput_before),
        "goodput_during_fault_before_resteer_share_of_healthy": share(goodput_fault),
        "goodput_after_resteer_share_of_healthy": share(goodput_back),
        "goodput_after_repair_share_of_healthy": share(goodput_after),
        "goal_resteer_max_periods": GOAL_PERIODS,
        "goal_goodput_share_of_healthy_min": GOAL_GOODPUT_SHARE,
    }
    f["goal_resteer_pass"] = resteer_s is not None and resteer_s <= GOAL_PERIODS * period_s
    f["goal_goodput_pass"] = goodput_back is not None and (
        goodput_back >= GOAL_GOODPUT_SHARE * healthy_mbps
    )
    f["goal_no_flapping_pass"] = bool(
        drain is not None and restore is not None and not flaps_after_repair
    )
    f["goals_pass"] = (
        f["goal_resteer_pass"] and f["goal_goodput_pass"] and (f["goal_no_flapping_pass"])
    )
    for n in names:
        f[f"path_{n}_capacity_mbps"] = round(capacity_mbps[n], 3)
    return f


def _r(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _write(
    out_dir: Path,
    figures: dict[str, Any],
    samples: list[PathSample],
    events: list[Event],
    marks: dict[str, float],
    names: list[str],
    capacity_mbps: dict[str, float],
    degraded: ListPath,
) -> None:
    t0 = marks["t0_monotonic"]
    (out_dir / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out_dir / "events.json").write_text(
        json.dumps([asdict(e) | {"t_s": round(e.at - t0, 3)} for e in events], indent=2) + "\n"
    )
    rates = _rates(samples, names, figures["wire_frame_bytes"])
    columns = ["t", "goodput", *(f"delivered_{n}" for n in names), *(f"offered_{n}" for n in names)]
    lines = ["t_s,goodput_mbps," + ",".join(c + "_mbps" for c in columns[2:])]
    for k in range(len(rates["t"])):
        lines.append(",".join(f"{rates[c][k]:.4f}" for c in columns))
    (out_dir / "samples.csv").write_text("\n".join(lines) + "\n")
    plot = _plot(out_dir / "timeline.png", figures, rates, events, t0, names, degraded)
    (out_dir / "report.md").write_text(_markdown(figures, names, plot.name))


def _plot(
    path: Path,
    f: dict[str, Any],
    rates: dict[str, list[float]],
    events: list[Event],
    t0: float,
    names: list[str],
    degraded: ListPath,
) -> Path:
    """Top: each path's delivered rate and the goodput; bottom: each list's loss per block;
    lines at the fault, the detection, the re-steer, the repair and the restoration."""
    plt = charts._pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    top.plot(rates["t"], rates["goodput"], color="black", lw=1.6, label="goodput (bundle)")
    for n in names:
        top.plot(rates["t"], rates[f"delivered_{n}"], lw=1, label=f"delivered on {n}")
    top.axhline(
        f["healthy_paths_capacity_mbps"], color="grey", ls="--", lw=0.8,
        label="healthy paths' capacity",
    )  # fmt: skip
    top.set_ylabel("Mbit/s")
    for e_list in sorted({e.list_id for e in events}):
        pts = [(e.at - t0, (e.value or 0) * 100) for e in events
               if e.kind == "loss" and e.list_id == e_list]  # fmt: skip
        if pts:
            gap = 1.5 * f["altmark_period_ms"] / 1000  # no block (drained): break the line
            pts = [
                q
                for a, b in itertools.pairwise([pts[0], *pts])
                for q in ([(b[0], float("nan"))] if b[0] - a[0] > gap else []) + [b]
            ]
            xs, ys = zip(*pts, strict=True)
            label = names[e_list - 1] if 0 < e_list <= len(names) else str(e_list)
            bottom.plot(xs, ys, marker="o", ms=3, lw=1, label=f"loss per block, {label}")
    bottom.axhline((f["steering_max_loss_ratio"] or 0) * 100, color="grey", ls=":", lw=0.8,
                   label="drain threshold")  # fmt: skip
    bottom.set_ylabel("loss, % (alternate marking)")
    bottom.set_xlabel("seconds from the first frame")
    marks = [
        ("fault_at_s", "fault", "red"),
        ("loss_detected_at_s", "loss detected", "orange"),
        ("resteered_at_s", "re-steered", "green"),
        ("repair_at_s", "repaired", "purple"),
        ("restored_at_s", "restored", "blue"),
    ]
    for key, label, colour in marks:
        if f.get(key) is not None:
            for ax in (top, bottom):
                ax.axvline(
                    f[key], color=colour, lw=0.9, ls="--", label=label if ax is top else None
                )
    top.legend(fontsize=7, ncol=3, loc="lower left")
    bottom.legend(fontsize=7, loc="upper right")
    top.set_title(f"{TITLE}: list {degraded.list_id} cut to {f['fault_capacity_share']:.0%}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _markdown(f: dict[str, Any], names: list[str], image: str) -> str:
    def v(key: str) -> str:
        value = f.get(key)
        return "—" if value is None else str(value)

    ok = {True: "PASS", False: "FAIL"}
    lines = [
        f"# {TITLE}",
        "",
        (__doc__ or "").split("\n\n")[1].replace("\n", " "),
        "",
        "## Timeline",
        "",
        "| event | seconds from the first frame |",
        "|---|---|",
        f"| fault injected ({f['fault_kind']}, {f['fault_capacity_share']:.0%} of capacity) "
        f"| {v('fault_at_s')} |",
        f"| loss detected (first block of the list above the threshold: "
        f"{v('loss_detected_ratio')}) | {v('loss_detected_at_s')} |",
        f"| re-steered (the drain written) | {v('resteered_at_s')} |",
        f"| repaired | {v('repair_at_s')} |",
        f"| restored (after the hold) | {v('restored_at_s')} |",
        "",
        f"Detection to re-steer: {v('detection_to_resteer_ms')} ms; fault to re-steer: "
        f"{v('fault_to_resteer_ms')} ms = {v('fault_to_resteer_periods')} alternate-marking "
        f"periods of {v('altmark_period_ms')} ms.",
        "",
        "## Goodput (share of the healthy paths' capacity, "
        f"{v('healthy_paths_capacity_mbps')} Mbit/s)",
        "",
        "| phase | Mbit/s | share |",
        "|---|---|---|",
        f"| before the fault | {v('goodput_before_fault_mbps')} "
        f"| {v('goodput_before_fault_share_of_healthy')} |",
        f"| fault, before the re-steer | {v('goodput_during_fault_before_resteer_mbps')} "
        f"| {v('goodput_during_fault_before_resteer_share_of_healthy')} |",
        f"| fault, after the re-steer (from {SETTLE_S:g} s after it) "
        f"| {v('goodput_after_resteer_mbps')} | {v('goodput_after_resteer_share_of_healthy')} |",
        f"| after the repair | {v('goodput_after_repair_mbps')} "
        f"| {v('goodput_after_repair_share_of_healthy')} |",
        "",
        "## Goals",
        "",
        f"- re-steered within {GOAL_PERIODS:g} alternate-marking periods of the fault: "
        f"{ok[f['goal_resteer_pass']]}",
        f"- goodput back to ≥ {GOAL_GOODPUT_SHARE:.0%} of the healthy paths' capacity: "
        f"{ok[f['goal_goodput_pass']]}",
        f"- no flapping once the path recovered (drains {v('drains')}, restores "
        f"{v('restores')}, drains after the repair {v('drains_after_repair')}): "
        f"{ok[f['goal_no_flapping_pass']]}",
        "",
        f"![timeline]({image})",
        "",
    ]
    return "\n".join(lines)


def summary(f: dict[str, Any]) -> list[str]:
    """The run in a few lines for a terminal."""
    ok = {True: "PASS", False: "FAIL"}
    return [
        f"fault at {f['fault_at_s']} s ({f['fault_kind']}), repaired at {f['repair_at_s']} s",
        f"loss detected at {f['loss_detected_at_s']} s, re-steered at {f['resteered_at_s']} s "
        f"(detection to re-steer {f['detection_to_resteer_ms']} ms; fault to re-steer "
        f"{f['fault_to_resteer_periods']} alternate-marking periods), restored at "
        f"{f['restored_at_s']} s",
        f"goodput after the re-steer: {f['goodput_after_resteer_share_of_healthy']} of the "
        f"healthy paths' capacity ({f['goodput_after_resteer_mbps']} Mbit/s)",
        f"goals: re-steer {ok[f['goal_resteer_pass']]}, goodput {ok[f['goal_goodput_pass']]}, "
        f"no flapping {ok[f['goal_no_flapping_pass']]}",
    ]
