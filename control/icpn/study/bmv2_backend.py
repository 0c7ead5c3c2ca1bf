"""The BMv2 backend of studies: the scenario's topology on Mininet + BMv2 with the real
controller, real traffic from the source host, and measurements from the switches, the
links and the IFIT counters.

For each policy the controller reconciles the switches to a variant of the topology's
intent (only the difference is written):

* ``ecmp_5tuple``: the APN policy steers nothing; routing spreads flows over the equal-cost
  planes by the 5-tuple;
* ``apn_deep_hash``: the SR policy's segment lists, chosen by the deep hash (APN ID, DestQP);
* ``deep_hash_elephants``: the same plus the sketch, whose reports the elephant manager turns
  into overrides, placed and rebalanced by :mod:`icpn.placement`.

The source host sends the scenario's RoCE QPs (the model's QP numbers and rates for the
seed, :mod:`icpn.study.traffic`) over one 5-tuple, paced so that the bundle is offered
``offered_load`` of its emulated capacity in the bytes its links carry (the size of a frame
once encapsulated is measured first, with a few frames). The same frames for every policy.
Measured per policy, from counters read every :data:`SAMPLE_S` while the traffic runs:

* per path: the load offered to the headend's link to its first hop (bytes it carried plus
  its queue's drops) and its utilisation (bytes carried), over the link's emulated capacity
  (Linux counters of the switch side, ``tc -s``);
* busiest/mean and Jain's index of the offered loads, as the model backend computes them;
* goodput as a share of the bundle: bytes the bundle's last links delivered into the
  endpoint; and what reached the destination host, as a share of what was sent;
* drops: packets the links' queues dropped;
* elephant detection latency: first report of a QP minus the first frame sent; the
  manager's overrides and moves;
* IFIT: alternate-marking loss between headend and decapsulating node per finished block
  (:class:`icpn.collector.AltmarkMonitor`), summed, against the queue drops on the paths.

:mod:`icpn.study.bmv2_report` turns the runs into figures and a report that reads like the
model backend's: a table per policy, per-path utilisation, the goals, and the same plots
(:mod:`icpn.study.charts`), over wall time.
Link delays are emulated only where the kernel has sch_netem; IFIT delay is then compared
with it, otherwise reported as not emulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from icpn.collector.altmark import AltmarkMonitor
from icpn.controller.core import Controller
from icpn.controller.render import render
from icpn.intent import Intent, load_intent
from icpn.net.emulation import (
    Emulation,
    emulate,
    link_rate_mbps,
    mininet_available,
)
from icpn.p4rt.client import SwitchClient, SwitchTarget
from icpn.packets import rocev2_write
from icpn.paths import PROJECT_ROOT
from icpn.study import bmv2_report
from icpn.study.bmv2_report import SAMPLE_S, Counters, PolicyRun, Sample, Setup
from icpn.study.policies import POLICIES
from icpn.study.scenarios import Scenario
from icpn.study.traffic import elephant_weights, qp_numbers
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.traffic.generators import Frame
from icpn.traffic.pcap import read_frames, write_pcap

FRAME_PAYLOAD = 900  # octets of RDMA payload: ~1000-octet frames from the host
#: 100,000 frames take 58.5 s a policy at data ingestion's 4e-5 (1,709 frames/s), which
#: BMv2 carries without losses of its own (docs/studies.md, bench/studies.py --bmv2).
MAX_PACKETS_PER_POLICY = 100_000
#: Frames sent to measure the headend's encapsulation before the runs.
CALIBRATION_FRAMES = 40


class BackendUnavailable(RuntimeError):
    """The backend cannot run here; the message says why."""


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
    """Run every policy on BMv2; write results.json, samples.csv, the plots and report.md
    to ``out_dir`` (the model backend's report, from what the switches and links counted);
    return the figures."""
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
    qps = _qps(scenario, seed)
    frames = _frames(intent, qps, per_policy)
    runs: list[PolicyRun] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    with emulate(scenario.name, intent, out_dir / "net") as emu:
        wire_frame = _wire_frame_bytes(emu, art, frames[0])
        rate = _rate_pps(intent, scenario, wire_frame)
        traffic = emu.log_dir / "traffic.pcap"
        write_pcap((Frame(i / rate, f, 0) for i, f in enumerate(frames)), traffic)
        sent_bytes = sum(len(f) for f in frames)
        if progress is not None:
            progress(0, len(POLICIES) * per_policy)
        for number, policy in enumerate(POLICIES):
            # each policy's controller a higher election id: the last one's streams may
            # still be closing, and two streams may not share an id
            run = _run_policy(emu, art, policy, traffic, rate, 10 + number)
            run.sent_bytes = sent_bytes
            runs.append(run)
            if progress is not None:
                progress((number + 1) * per_policy, len(POLICIES) * per_policy)
    setup = Setup(seed, per_policy, rate, len(frames[0]), wire_frame, qps)
    figures = bmv2_report.figures(scenario, intent, runs, setup)
    bmv2_report.write(out_dir, scenario, intent, figures, runs)
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


def _qps(scenario: Scenario, seed: int) -> list[tuple[int, float]]:
    """The scenario's RoCE QPs (DestQP, rate relative to the mean): the QPs and rates the
    model backend gives the same scenario and seed (:mod:`icpn.study.traffic`). The BMv2
    run sends them alone, all from the start: the elephants, without the model's mice."""
    weights = elephant_weights(scenario.traffic, np.random.default_rng(seed))
    qps = qp_numbers(scenario.traffic.roce_qps)
    return [(int(q), float(w)) for q, w in zip(qps, weights, strict=True)]


def _frames(intent: Intent, qps: list[tuple[int, float]], packets: int) -> list[bytes]:
    """``packets`` RoCEv2 WRITEs over one 5-tuple, the QPs interleaved smoothly so that each
    sends at its own rate."""
    from scapy.layers.l2 import Ether

    src, dst = list(intent.hosts.values())[:2]
    router_mac = intent.switches[src.switch].router_mac
    total = sum(w for _, w in qps)
    order: list[int] = []
    credit = [0.0] * len(qps)
    for _ in range(packets):
        for i, (_, w) in enumerate(qps):
            credit[i] += w / total
        i = max(range(len(qps)), key=lambda k: credit[k])
        credit[i] -= 1
        order.append(i)
    templates = [
        bytes(
            Ether(src=src.mac, dst=router_mac)
            / rocev2_write(src.ip, dst.ip, qp, payload=b"\0" * FRAME_PAYLOAD)
        )
        for qp, _ in qps
    ]
    return [templates[i] for i in order]


def _rate_pps(intent: Intent, scenario: Scenario, wire_frame: float) -> float:
    """Frames per second that offer the bundle ``offered_load`` of its emulated capacity in
    the bytes its links carry (``wire_frame``: a frame as the headend sends it)."""
    scale = intent.emulation.bandwidth_scale
    bundle_mbps = sum(link_rate_mbps(p.capacity_gbps, scale) for p in scenario.paths)
    return scenario.offered_load * bundle_mbps * 1e6 / 8 / wire_frame


def _wire_frame_bytes(emu: Emulation, art: build.Artifacts, frame: bytes) -> float:
    """The size of ``frame`` on the bundle, SRv6 and telemetry headers included: measured by
    sending :data:`CALIBRATION_FRAMES` of it, slowly, through the headend under the
    deep-hash variant (no sketch: nothing is learned that the runs would inherit)."""
    intent = variant(emu.intent, "apn_deep_hash")
    headend = intent.sr_policies[0].headend
    ports = [f"{headend}-eth{port}" for port in _core_ports(intent, headend)]
    calibration = emu.log_dir / "calibration.pcap"
    rate = 50.0
    write_pcap((Frame(i / rate, frame, 0) for i in range(CALIBRATION_FRAMES)), calibration)
    with _controller(intent, art, election_id=9):
        before = {name: _counters(name) for name in ports}
        subprocess.run(
            _sender(emu, calibration, rate),
            capture_output=True,
            text=True,
            timeout=CALIBRATION_FRAMES / rate + 60,
            check=True,
        )
        time.sleep(0.5)
        after = {name: _counters(name) for name in ports}
    octets = sum(after[n].tx_bytes - before[n].tx_bytes for n in ports)
    packets = sum(after[n].tx_packets - before[n].tx_packets for n in ports)
    if packets < CALIBRATION_FRAMES // 2:
        raise RuntimeError(
            f"calibration: {packets} of {CALIBRATION_FRAMES} frames left the headend {headend}"
        )
    return octets / packets


def _sender(emu: Emulation, frames_file: Path, rate: float) -> list[str]:
    """The command that sends ``frames_file`` from the first host, paced at ``rate``."""
    src_name = next(iter(emu.intent.hosts))
    return [
        "mnexec",
        "-a",
        str(emu.host_pids[src_name]),
        sys.executable,
        "-m",
        "icpn.study.host_sender",
        str(frames_file),
        f"{src_name}-eth0",
        f"{rate:.3f}",
    ]


def _run_policy(
    emu: Emulation,
    art: build.Artifacts,
    policy: str,
    frames_file: Path,
    rate: float,
    election_id: int,
) -> PolicyRun:
    intent = variant(emu.intent, policy)
    sr = intent.sr_policies[0]
    headend, endpoint = sr.headend, sr.endpoint
    result = PolicyRun(policy)
    core_ports = _core_ports(intent, headend)
    dst = next(iter(list(intent.hosts.values())[1:]))
    packets = sum(1 for _ in read_frames(frames_file))
    with _controller(intent, art, election_id) as (ctl, loop):
        monitor = _altmark_monitor(intent, loop, headend, endpoint)
        polling = loop.spawn(_poll(monitor)) if monitor is not None else None
        if monitor is not None:  # the first poll is the baseline: let it see the old counts
            time.sleep(monitor.period_s * 1.5)
        before = _link_counters(emu)
        first_hops = {f"{headend}-eth{port}": n for port, n in core_ports.items()}
        output, result.samples = _send_sampling(
            _sender(emu, frames_file, rate),
            first_hops,
            _links_into(intent, endpoint),
            packets / rate + 60,
        )
        info = json.loads(output.strip().splitlines()[-1])
        result.started = float(info["started"])
        time.sleep(2 * monitor.period_s + 0.5 if monitor is not None else 1.0)  # drain
        if monitor is not None:
            # and until the last blocks are closed (polls lag on a loaded machine): IFIT's
            # loss then covers every packet, as the end-to-end counters do
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while not monitor.settled and time.monotonic() < deadline:
                time.sleep(monitor.period_s / 4)
        after = _link_counters(emu)
        if polling is not None:
            polling.cancel()
        result.sent, result.seconds = int(info["sent"]), float(info["seconds"])
        host_if = f"{dst.switch}-eth{dst.port}"
        result.host_bytes = after[host_if].tx_bytes - before[host_if].tx_bytes
        result.drops = sum(after[n].drops - before[n].drops for n in after)
        given = sum((after[n] - before[n]).given_packets for n in first_hops)
        # whatever the endpoint's link to the host dropped was lost on the way too
        arrived = (after[host_if] - before[host_if]).tx_packets
        result.path_lost = given - arrived
        manager = ctl.status[headend].elephants
        if manager is not None:
            result.detection_ms = [
                (t - info["started"]) * 1000 for t in manager.first_report.values()
            ]
            result.overrides_installed = manager.stats.installed
            result.moves = manager.stats.moved
            result.aged_out = manager.stats.aged_out
        if monitor is not None:
            blocks = [b for b in monitor.blocks if set(b.packets) == {headend, endpoint}]
            result.altmark_blocks = len(blocks)
            result.altmark_lost = sum(b.segments()[0].lost for b in blocks)
    return result


def _send_sampling(
    command: list[str], first_hops: dict[str, str], into_endpoint: list[str], timeout_s: float
) -> tuple[str, list[Sample]]:
    """Run the sender; meanwhile read the counters every :data:`SAMPLE_S`: of each path's
    first link (``first_hops``: interface -> first hop) and of the links into the endpoint.
    Returns the sender's output and the samples, from just before it ran to just after."""

    def sample() -> Sample:
        return Sample(
            time.monotonic(),
            {hop: _counters(name) for name, hop in first_hops.items()},
            sum(_tx_bytes(name) for name in into_endpoint),
        )

    samples = [sample()]
    deadline = time.monotonic() + timeout_s
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as sender:
        while True:
            try:
                output, errors = sender.communicate(timeout=SAMPLE_S)
                break
            except subprocess.TimeoutExpired:
                samples.append(sample())
                if time.monotonic() > deadline:
                    sender.kill()
                    raise RuntimeError(f"the sender took more than {timeout_s:.0f} s") from None
    samples.append(sample())
    if sender.returncode != 0:
        raise RuntimeError(f"the sender failed ({sender.returncode}): {errors.strip()}")
    return output, samples


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


def _link_counters(emu: Emulation) -> dict[str, Counters]:
    """The counters of every switch-side interface."""
    return {ifname: _counters(ifname) for ifname in emu.interfaces}


def _tx_bytes(ifname: str) -> int:
    return int(Path(f"/sys/class/net/{ifname}/statistics/tx_bytes").read_text())


#: How long the IFIT blocks may take to close after the traffic (and the drain) ended.
SETTLE_TIMEOUT_S = 10.0

#: The queues whose drops are a link's (tbf: a capacity cut, icpn.net.faults).
QUEUE_KINDS = ("pfifo", "netem", "tbf")


def _counters(ifname: str) -> Counters:
    stats = Path(f"/sys/class/net/{ifname}/statistics")
    shown = subprocess.run(
        ["tc", "-s", "-j", "qdisc", "show", "dev", ifname], capture_output=True, text=True
    )
    drops = 0
    with contextlib.suppress(ValueError):
        drops = sum(
            int(q.get("drops", 0))
            for q in json.loads(shown.stdout or "[]")
            if q.get("kind") in QUEUE_KINDS
        )
    return Counters(
        int((stats / "tx_bytes").read_text()),
        int((stats / "tx_packets").read_text()),
        drops,
        int((stats / "tx_dropped").read_text()),
    )


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
