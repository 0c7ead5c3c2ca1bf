"""The BMv2 backend of studies: the scenario's topology on Mininet + BMv2 with the real
controller, real traffic from the source host, and measurements from the switches, the
links and the IFIT counters.

For each policy the controller reconciles the switches to a variant of the topology's
intent (only the difference is written):

* ``ecmp_5tuple``: the APN policy steers nothing; routing spreads flows over the equal-cost
  planes by the 5-tuple;
* ``apn_deep_hash``: the SR policy's segment lists, chosen by the deep hash (APN ID, DestQP);
* ``deep_hash_elephants``: the same plus the sketch, whose reports the elephant manager turns
  into overrides on the least-loaded list.

The source host sends RoCEv2 WRITEs of several QPs over one 5-tuple, with skewed rates, at
the bundle's emulated capacity (``offered_load`` of it), paced. Measured per policy:

* per-path utilisation: bytes the headend's link to each path's first hop carried, over
  the link's emulated capacity and the sending time (Linux counters of the switch side);
* busiest/mean and Jain's index over those;
* goodput as a share of the bundle: bytes delivered to the destination host's port;
* drops: packets the links' queues dropped (``tc -s``);
* elephant detection latency: first report of a QP minus the first frame sent;
* IFIT: alternate-marking loss between headend and decapsulating node per finished block
  (:class:`icpn.collector.AltmarkMonitor`), summed, against the queue drops on the paths.

Link delays are emulated only where the kernel has sch_netem; IFIT delay is then compared
with it, otherwise reported as not emulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icpn import build, toolchain
from icpn.collector.altmark import AltmarkMonitor
from icpn.controller.core import Controller
from icpn.controller.render import render
from icpn.intent import Intent, load_intent
from icpn.net.emulation import Emulation, emulate, link_rate_mbps, mininet_available
from icpn.p4rt.client import SwitchClient, SwitchTarget
from icpn.packets import rocev2_write
from icpn.paths import PROJECT_ROOT
from icpn.study.metrics import busiest_over_mean, jain_index
from icpn.study.scenarios import Scenario
from icpn.traffic.generators import Frame
from icpn.traffic.pcap import write_pcap

POLICIES = ("ecmp_5tuple", "apn_deep_hash", "deep_hash_elephants")
FRAME_PAYLOAD = 900  # octets of RDMA payload: ~1000-octet frames on the wire
#: Per-QP weights: skewed, as the message sizes of a training or ingest job are.
QP_WEIGHTS = (6, 4, 3, 3, 2, 2, 1, 1)
MAX_PACKETS_PER_POLICY = 20_000


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; the message says why."""


@dataclass
class PolicyRun:
    policy: str
    sent: int = 0
    seconds: float = 0.0
    path_bytes: dict[str, int] = field(default_factory=dict)
    delivered_bytes: int = 0  # into the endpoint over the bundle's last links (wire bytes)
    host_bytes: int = 0  # to the destination host (decapsulated)
    sent_bytes: int = 0
    drops: int = 0
    detection_ms: list[float] = field(default_factory=list)
    altmark_blocks: int = 0
    altmark_lost: int = 0


def unavailable_reason() -> str | None:
    return toolchain.bmv2_unavailable_reason() or mininet_available()


def run(
    scenario: Scenario,
    packets: int,
    *,
    seed: int,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every policy on BMv2; write results.json, paths.csv, a plot and report.md to
    ``out_dir``; return the figures."""
    reason = unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"BMv2 backend not available: {reason}")
    logging.getLogger("finsy").setLevel(logging.ERROR)  # per-connection chatter
    intent_path = PROJECT_ROOT / "topologies" / f"{scenario.name}.yaml"
    if not intent_path.is_file():
        raise BackendUnavailable(f"BMv2 backend: no topology {intent_path}")
    intent = load_intent(intent_path)
    (sr,) = intent.sr_policies[:1] or (None,)
    if sr is None or not intent.hosts:
        raise BackendUnavailable(f"{intent_path}: the BMv2 study needs an SR policy and hosts")
    art = build.compile_program("icpn")
    per_policy = min(packets, MAX_PACKETS_PER_POLICY)
    runs: list[PolicyRun] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with emulate(scenario.name, intent, out_dir / "net") as emu:
        for number, policy in enumerate(POLICIES):
            # each policy's controller a higher election id: the last one's streams may
            # still be closing, and two streams may not share an id
            runs.append(_run_policy(emu, art, policy, scenario, per_policy, 10 + number))
            if progress is not None:
                progress((number + 1) * per_policy, len(POLICIES) * per_policy)
    figures = _figures(scenario, intent, runs)
    _write(out_dir, scenario, figures, runs)
    return figures


# -- one policy ------------------------------------------------------------------------------
def variant(intent: Intent, policy: str) -> Intent:
    """The intent as the policy wants it (see the module docstring)."""
    if policy == "deep_hash_elephants":
        return intent
    updates: dict[str, Any] = {"sketch": None}
    if policy == "ecmp_5tuple":
        updates["sr_policy"] = None
    policies = [p.model_copy(update=updates) for p in intent.apn_policies]
    return intent.model_copy(update={"apn_policies": policies})


class _LoopThread:
    """An asyncio loop in a thread: the controller and the IFIT poller run there while the
    main thread drives Mininet and the sender."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            self.loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.2)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


@contextlib.contextmanager
def _controller(
    intent: Intent, art: build.Artifacts, election_id: int
) -> Iterator[tuple[Controller, _LoopThread]]:
    ctl = Controller(intent, render(intent), art, election_id=election_id, progress=lambda _m: None)
    loop = _LoopThread()
    try:
        loop.call(ctl.apply())
        loop.spawn(ctl.run())
        deadline = time.monotonic() + 60
        while not all(s.last_plan is not None for s in ctl.status.values()):
            if time.monotonic() > deadline:
                raise RuntimeError("the controller did not take the switches in 60 s")
            time.sleep(0.05)
        yield ctl, loop
    finally:
        loop.close()


def _frames(intent: Intent, packets: int) -> list[bytes]:
    from scapy.layers.l2 import Ether

    src, dst = list(intent.hosts.values())[:2]
    router_mac = intent.switches[src.switch].router_mac
    qps = [0x100 + i for i in range(len(QP_WEIGHTS))]
    total = sum(QP_WEIGHTS)
    order: list[int] = []
    credit = [0.0] * len(qps)
    for _ in range(packets):  # smooth weighted interleaving: each QP at its own rate
        for i, w in enumerate(QP_WEIGHTS):
            credit[i] += w / total
        i = max(range(len(qps)), key=lambda k: credit[k])
        credit[i] -= 1
        order.append(i)
    templates = [
        bytes(
            Ether(src=src.mac, dst=router_mac)
            / rocev2_write(src.ip, dst.ip, qp, payload=b"\0" * FRAME_PAYLOAD)
        )
        for qp in qps
    ]
    return [templates[i] for i in order]


def _rate_pps(intent: Intent, scenario: Scenario, frame_len: int) -> float:
    scale = intent.emulation.bandwidth_scale
    bundle_mbps = sum(link_rate_mbps(p.capacity_gbps, scale) for p in scenario.paths)
    return scenario.offered_load * bundle_mbps * 1e6 / 8 / frame_len


def _run_policy(
    emu: Emulation,
    art: build.Artifacts,
    policy: str,
    scenario: Scenario,
    packets: int,
    election_id: int,
) -> PolicyRun:
    intent = variant(emu.intent, policy)
    sr = intent.sr_policies[0]
    headend, endpoint = sr.headend, sr.endpoint
    result = PolicyRun(policy)
    frames = _frames(intent, packets)
    rate = _rate_pps(intent, scenario, len(frames[0]))
    frames_file = emu.log_dir / f"{policy}.pcap"
    write_pcap((Frame(i / rate, f, 0) for i, f in enumerate(frames)), frames_file)
    core_ports = _core_ports(intent, headend)
    dst = next(iter(list(intent.hosts.values())[1:]))
    with _controller(intent, art, election_id) as (ctl, loop):
        monitor = _altmark_monitor(intent, loop, headend, endpoint)
        polling = loop.spawn(_poll(monitor)) if monitor is not None else None
        if monitor is not None:  # the first poll is the baseline: let it see the old counts
            time.sleep(monitor.period_s * 1.5)
        before = _link_counters(emu)
        src_name = next(iter(intent.hosts))
        sent = subprocess.run(
            [
                "mnexec",
                "-a",
                str(emu.host_pids[src_name]),
                sys.executable,
                "-m",
                "icpn.study.host_sender",
                str(frames_file),
                f"{src_name}-eth0",
                f"{rate:.3f}",
            ],
            capture_output=True,
            text=True,
            timeout=packets / rate + 60,
            check=True,
        )
        info = json.loads(sent.stdout.strip().splitlines()[-1])
        time.sleep(
            2 * monitor.period_s + 0.5 if monitor is not None else 1.0
        )  # drain, close blocks
        after = _link_counters(emu)
        if polling is not None:
            polling.cancel()
        result.sent, result.seconds = int(info["sent"]), float(info["seconds"])
        for port, neighbour in core_ports.items():
            name = f"{headend}-eth{port}"
            result.path_bytes[neighbour] = after[name][0] - before[name][0]
        host_if = f"{dst.switch}-eth{dst.port}"
        result.host_bytes = after[host_if][0] - before[host_if][0]
        result.sent_bytes = sum(len(f) for f in frames)
        for ifname in _links_into(intent, endpoint):
            result.delivered_bytes += after[ifname][0] - before[ifname][0]
        result.drops = sum(after[n][1] - before[n][1] for n in after)
        status = ctl.status[headend]
        if status.elephants is not None:
            result.detection_ms = [
                (t - info["started"]) * 1000 for t in status.elephants.first_report.values()
            ]
        if monitor is not None:
            blocks = [b for b in monitor.blocks if set(b.packets) == {headend, endpoint}]
            result.altmark_blocks = len(blocks)
            result.altmark_lost = sum(b.segments()[0].lost for b in blocks)
    return result


def _links_into(intent: Intent, endpoint: str) -> list[str]:
    """The interfaces that send into ``endpoint`` over its links (the bundle's last hops)."""
    found = []
    for link in intent.links:
        for near, far in ((link.a, link.b), (link.b, link.a)):
            if far.partition(":")[0] == endpoint:
                name, _, port = near.partition(":")
                found.append(f"{name}-eth{port}")
    return found


def _core_ports(intent: Intent, headend: str) -> dict[int, str]:
    """The headend's link ports, by the neighbour each leads to."""
    ports: dict[int, str] = {}
    for link in intent.links:
        for near, far in ((link.a, link.b), (link.b, link.a)):
            name, _, port = near.partition(":")
            if name == headend:
                ports[int(port)] = far.partition(":")[0]
    return ports


def _link_counters(emu: Emulation) -> dict[str, tuple[int, int]]:
    """(tx bytes, queue drops) of every switch-side interface."""
    counters: dict[str, tuple[int, int]] = {}
    for ifname in emu.interfaces:
        tx = int(Path(f"/sys/class/net/{ifname}/statistics/tx_bytes").read_text())
        shown = subprocess.run(
            ["tc", "-s", "-j", "qdisc", "show", "dev", ifname], capture_output=True, text=True
        )
        drops = 0
        with contextlib.suppress(ValueError):
            drops = sum(
                int(q.get("drops", 0))
                for q in json.loads(shown.stdout or "[]")
                if q.get("kind") in ("pfifo", "netem")
            )
        counters[ifname] = (tx, drops)
    return counters


def _altmark_monitor(
    intent: Intent, loop: _LoopThread, headend: str, endpoint: str
) -> AltmarkMonitor | None:
    telemetry = {t.name: t for t in intent.telemetry}
    policy = next((p for p in intent.apn_policies if p.sr_policy and p.telemetry), None)
    spec = telemetry[policy.telemetry].altmark if policy and policy.telemetry else None
    if spec is None:
        return None

    async def readers() -> dict[str, SwitchClient]:
        clients = {}
        for name in (headend, endpoint):
            sw = intent.switches[name]
            client = SwitchClient(
                SwitchTarget(name, sw.grpc, device_id=sw.device_id, election_id=1)
            )
            await client.connect()
            clients[name] = client
        return clients

    return AltmarkMonitor(loop.call(readers()), [spec.flow_mon_id], spec.period_log2_us)


async def _poll(monitor: AltmarkMonitor) -> None:
    while True:
        await monitor.poll_once()
        await asyncio.sleep(monitor.period_s / 8)


# -- figures and report ------------------------------------------------------------------------
def _capacity_gbps(intent: Intent, neighbour: str) -> float:
    """Capacity of the headend's link to ``neighbour``."""
    headend = intent.sr_policies[0].headend
    for link in intent.links:
        ends = {link.a.partition(":")[0], link.b.partition(":")[0]}
        if ends == {headend, neighbour}:
            return link.capacity_gbps
    raise ValueError(f"no link {headend}-{neighbour}")


def _figures(scenario: Scenario, intent: Intent, runs: list[PolicyRun]) -> dict[str, Any]:
    scale = intent.emulation.bandwidth_scale
    figures: dict[str, Any] = {
        "backend": "bmv2",
        "bandwidth_scale": scale,
        "link_delay_emulated": False,
    }
    for run in runs:
        p = run.policy
        capacity = {
            n: link_rate_mbps(_capacity_gbps(intent, n), scale) * 1e6 / 8 * run.seconds
            for n in run.path_bytes
        }
        shares = [run.path_bytes[n] / capacity[n] for n in sorted(run.path_bytes)]
        for n in sorted(run.path_bytes):
            figures[f"{p}_path_{n}_utilisation_share_of_capacity"] = round(
                run.path_bytes[n] / capacity[n], 4
            )
        loads = [run.path_bytes[n] for n in sorted(run.path_bytes)]
        figures[f"{p}_busiest_over_mean"] = round(busiest_over_mean(loads), 4)
        figures[f"{p}_jain_index"] = round(jain_index(loads), 4)
        bundle = sum(capacity.values())
        # what the bundle delivered into the endpoint, as share of its capacity (port
        # utilisation, encapsulation included), and what reached the host of what was sent
        figures[f"{p}_goodput_share_of_bundle"] = round(run.delivered_bytes / bundle, 4)
        figures[f"{p}_host_delivered_share_of_sent"] = round(run.host_bytes / run.sent_bytes, 4)
        figures[f"{p}_packets_sent"] = run.sent
        figures[f"{p}_queue_drops_packets"] = run.drops
        figures[f"{p}_utilisation_mean_share"] = round(statistics.fmean(shares), 4)
        if run.detection_ms:
            figures[f"{p}_elephant_detection_latency_ms_p50"] = round(
                statistics.median(run.detection_ms), 1
            )
            figures[f"{p}_elephants_detected"] = len(run.detection_ms)
        if run.altmark_blocks:
            figures[f"{p}_ifit_altmark_blocks"] = run.altmark_blocks
            figures[f"{p}_ifit_altmark_loss_packets"] = run.altmark_lost
            figures[f"{p}_ifit_loss_error_vs_queue_drops_packets"] = run.altmark_lost - run.drops
    split, base = "deep_hash_elephants", "ecmp_5tuple"
    if f"{split}_elephant_detection_latency_ms_p50" in figures:
        latency = figures[f"{split}_elephant_detection_latency_ms_p50"]
        figures["elephant_detection_latency_ms_p50"] = latency
    figures["goal_busiest_over_mean_max"] = 1.05
    figures["goal_goodput_share_of_bundle_min"] = 0.9
    figures["goal_balance_pass"] = figures[f"{split}_busiest_over_mean"] <= 1.05
    figures["goal_goodput_pass"] = figures[f"{split}_goodput_share_of_bundle"] >= 0.9
    figures["goal_splitting_beats_ecmp_pass"] = (
        figures[f"{split}_busiest_over_mean"] < figures[f"{base}_busiest_over_mean"]
    )
    return figures


def _write(
    out_dir: Path, scenario: Scenario, figures: dict[str, Any], runs: list[PolicyRun]
) -> None:
    (out_dir / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    rows = ["policy,path,bytes"]
    rows += [f"{r.policy},{n},{b}" for r in runs for n, b in sorted(r.path_bytes.items())]
    (out_dir / "paths.csv").write_text("\n".join(rows) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = sorted(runs[0].path_bytes)
    width = 0.8 / len(runs)
    for k, run in enumerate(runs):
        values = [figures[f"{run.policy}_path_{n}_utilisation_share_of_capacity"] for n in names]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=run.policy)
    ax.set_xticks([i + width for i in range(len(names))], names)
    ax.set_ylabel("utilisation (share of capacity)")
    ax.set_title(f"{scenario.title}: per-path utilisation on BMv2")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "bmv2_utilisation.png", dpi=120)
    plt.close(fig)
    lines = [
        f"# {scenario.title} on BMv2 + Mininet",
        "",
        scenario.description,
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| `{k}` | {v} |" for k, v in figures.items()]
    lines += ["", "![per-path utilisation](bmv2_utilisation.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
