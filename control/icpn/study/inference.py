"""Cloud-edge inference under bulk load (DESIGN.md 6, issue 15): does differentiated bearing
keep inference latency within 5 % of an idle network while model distribution fills the WAN?

Scenario (``topologies/cloud-edge-inference.yaml``): an edge site ``ed1`` 200 km from the
cloud DC ``dc1``, two SRv6 paths: the direct 200 km fibre and one through the metro node
``mt1`` (120 + 140 km), 10 Gbit/s each. Inference requests go edge -> cloud, their
responses cloud -> edge; bulk traffic (model distribution, another APN and tenant) goes
cloud -> edge on both paths at full load, so the responses meet it in the DC's egress queues.

The queueing model, and why it is adequate here:

* Each path is one bottleneck: the DC's egress link onto it (capacity C, propagation from its
  length at 5 us/km). Later hops carry what that link already paced, so they add
  propagation only. Requests travel the idle direction: propagation and serialisation.
* Egress queues are packet by packet, non-preemptive: one FIFO (best effort), or strict
  priority between an inference queue and a bulk queue, as qos.p4 gives them (BMv2's
  scheduler serves the highest queue with a packet due). Each queue tail-drops at
  ``buffer_ms`` of C (BMv2: a depth per priority queue).
* Bulk: bursts of ``bulk_burst_packets`` frames (a 64 KB TSO/GSO segment) back to back at
  the host rate, burst starts Poisson, offered at ``bulk_load`` x C per path. Full load is
  just above C: a loss-based sender (CUBIC) keeps probing past the bottleneck, so the FIFO
  sits at its tail-drop limit, the bufferbloat the study is about. Runs start in that steady
  state: a full bulk queue at t = 0 (a metered tenant, held below C, starts empty).
* Tenant meter (policy ``tenant-meter``): the bulk tenant's two-rate three-colour meter
  (RFC 2698, colour-blind, :class:`icpn.qos.TrTcm`) at the edge, red dropped; the bundle's
  rates split evenly over the paths, as the bulk is.
* A lost inference packet costs one retransmission timeout (Linux's minimum, 200 ms) on its
  request: the first loss only; the retransmission is assumed to get through.

Latency of a request = from its first packet leaving the edge host to its response's last
packet reaching it, with no server time (the network's share only: adding the model's
compute time to both the idle and the loaded figure would shrink every ratio). Degradation
= loaded / idle - 1, the idle run being the same requests, paths and policy without bulk.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from icpn.constants import MeterColor
from icpn.qos import TrTcm
from icpn.study.scenarios import PathSpec

F64 = npt.NDArray[np.float64]

NAME = "cloud-edge-inference"
RTO_S = 0.2  # Linux TCP_RTO_MIN
POLICIES: dict[str, str] = {
    "best-effort": "one FIFO per port, inference ECMP-hashed over both paths",
    "tenant-meter": "one FIFO, bulk tenant held by a trTCM (CIR 90 %, PIR 95 % of the bundle)",
    "apn-priority": "inference APN in the strict-priority queue, ECMP-hashed paths",
    "apn-differentiated": "inference APN in the strict-priority queue and pinned by its SR "
    "policy to the lowest-latency path",
}
DIFFERENTIATED = "apn-differentiated"
BEST_EFFORT = "best-effort"


@dataclass(frozen=True)
class InferenceScenario:
    name: str = NAME
    title: str = "Cloud-edge inference, 200 km, under full bulk load"
    switches: tuple[str, ...] = ("dc1", "mt1", "ed1")
    paths: tuple[PathSpec, ...] = (
        PathSpec("direct", ("dc1", "ed1"), 200, 10),
        PathSpec("via-mt1", ("dc1", "mt1", "ed1"), 120 + 140, 10),
    )
    requests_per_s: float = 2000.0
    request_bytes: int = 4096  # prompt
    response_bytes: int = 16384  # generated tokens, counted when the last one arrives
    frame_bytes: int = 1500
    host_gbps: float = 100.0
    bulk_load: float = 1.02
    bulk_burst_packets: int = 43  # one 64 KB segment
    buffer_ms: float = 5.0
    duration_s: float = 0.25
    meter_cir_share: float = 0.90
    meter_pir_share: float = 0.95
    meter_burst_ms: float = 1.0
    goal_degradation_max: float = 0.05
    #: What "large" is for best effort: its p50 degradation at least this (a contrast, not a
    #: target: the point is that the network without differentiation does not hold 5 %).
    goal_best_effort_min: float = 0.5

    def frames(self, size: int) -> list[int]:
        """Frame sizes carrying ``size`` bytes of payload."""
        full, rest = divmod(size, self.frame_bytes)
        return [self.frame_bytes] * full + ([rest] if rest else [])


SCENARIO = InferenceScenario()


@dataclass
class PolicyRun:
    """One policy, loaded and idle: per request latency (s), lost packets, path index."""

    policy: str
    path: npt.NDArray[np.int64]
    idle_s: F64
    loaded_s: F64
    lost: npt.NDArray[np.int64]
    bulk_delivered_bytes: list[float] = field(default_factory=list)  # per path
    bulk_offered_bytes: list[float] = field(default_factory=list)
    bulk_dropped_bytes: list[float] = field(default_factory=list)


@dataclass
class InferenceRun:
    scenario: InferenceScenario
    seed: int
    request_start_s: F64
    policies: dict[str, PolicyRun]
    wall_s: float = 0.0


def _bulk_arrivals(
    sc: InferenceScenario, capacity_bps: float, load: float, rng: np.random.Generator
) -> F64:
    """Arrival times of bulk frames at one path's queue (bursts at the host rate)."""
    burst_bits = sc.bulk_burst_packets * sc.frame_bytes * 8
    rate = load * capacity_bps / burst_bits  # bursts per second
    count = rng.poisson(rate * sc.duration_s)
    starts = np.sort(rng.uniform(0.0, sc.duration_s, count))
    gap = sc.frame_bytes * 8 / (sc.host_gbps * 1e9)
    offsets = np.arange(sc.bulk_burst_packets) * gap
    times: F64 = (starts[:, None] + offsets[None, :]).ravel()
    times.sort()
    return times


def _with_backlog(sc: InferenceScenario, path: PathSpec, times: F64) -> F64:
    """``times`` behind a full queue at t = 0: the steady state of a sender above C."""
    frames = int(sc.buffer_ms / 1e3 * path.capacity_gbps * 1e9 / 8 // sc.frame_bytes)
    return np.concatenate([np.zeros(frames), times])


def _metered(times: F64, size: int, meter: TrTcm) -> F64:
    """The frames a colour-blind trTCM (RFC 2698 3.1) lets through, red dropped."""
    tc, tp, last = float(meter.cbs_bytes), float(meter.pbs_bytes), 0.0
    kept = np.ones(len(times), dtype=bool)
    for i, t in enumerate(times.tolist()):
        tc = min(meter.cbs_bytes, tc + (t - last) * meter.cir_bps)
        tp = min(meter.pbs_bytes, tp + (t - last) * meter.pir_bps)
        last = t
        color = meter.color(tc, tp, size)
        if color is MeterColor.RED:
            kept[i] = False
        elif color is MeterColor.YELLOW:
            tp -= size
        else:
            tp -= size
            tc -= size
    return times[kept]


def _serve(
    bulk: F64,
    urgent: Sequence[tuple[float, int, int]],
    *,
    size: int,
    capacity_bps: float,
    buffer_bytes: float,
    priority: bool,
    until: float,
) -> tuple[dict[int, float], set[int], float, float]:
    """One egress port: bulk frames (all ``size`` bytes) and inference frames ``urgent``
    (arrival, bytes, request id), non-preemptive, tail drop per queue. Returns each request's
    last departure, the requests that lost a frame, bulk bytes sent by ``until`` and bulk
    bytes dropped."""
    queues: list[deque[tuple[int, int]]] = [deque(), deque()]  # [bulk, urgent]: (bytes, req)
    queued = [0.0, 0.0]
    urgent_class = 1 if priority else 0
    last_departure: dict[int, float] = {}
    lost: set[int] = set()
    sent = dropped = 0.0
    bulk_times = bulk.tolist()
    ib, iu, nb, nu = 0, 0, len(bulk_times), len(urgent)
    free_at = 0.0
    inf = math.inf
    while ib < nb or iu < nu or queues[0] or queues[1]:
        next_arrival = min(bulk_times[ib] if ib < nb else inf, urgent[iu][0] if iu < nu else inf)
        waiting = bool(queues[0] or queues[1])
        if next_arrival <= free_at or not waiting:
            # an arrival before the port is free (or an idle port): admit or tail-drop it
            if ib < nb and bulk_times[ib] <= (urgent[iu][0] if iu < nu else inf):
                cls, nbytes, req = 0, size, -1
                ib += 1
            else:
                _, nbytes, req = urgent[iu]
                cls = urgent_class
                iu += 1
            if not waiting:
                free_at = max(free_at, next_arrival)
            if queued[cls] + nbytes > buffer_bytes:
                if req < 0:
                    dropped += nbytes
                else:
                    lost.add(req)
                continue
            queues[cls].append((nbytes, req))
            queued[cls] += nbytes
            continue
        cls = 1 if queues[1] else 0
        nbytes, req = queues[cls].popleft()
        queued[cls] -= nbytes
        free_at += nbytes * 8 / capacity_bps
        if req < 0:
            sent += nbytes if free_at <= until else 0
        else:
            last_departure[req] = free_at
    return last_departure, lost, sent, dropped


def _one_way(sc: InferenceScenario, path: PathSpec, size: int) -> float:
    """An idle path's delay for ``size`` bytes: serialisation at the host and on the path,
    and propagation."""
    bits = size * 8
    return bits / (sc.host_gbps * 1e9) + bits / (path.capacity_gbps * 1e9) + path.latency_ms / 1e3


def _run_policy(
    sc: InferenceScenario,
    policy: str,
    starts: F64,
    ecmp_path: npt.NDArray[np.int64],
    bulk: list[F64],
    loaded: bool,
) -> tuple[F64, npt.NDArray[np.int64], list[float], list[float]]:
    pinned = policy == DIFFERENTIATED
    lowest = int(np.argmin([p.latency_ms for p in sc.paths]))
    paths = np.full(len(starts), lowest) if pinned else ecmp_path
    priority = policy in ("apn-priority", DIFFERENTIATED)
    frames = sc.frames(sc.response_bytes)
    gap = sc.frame_bytes * 8 / (sc.host_gbps * 1e9)
    latency = np.zeros(len(starts))
    lost_count = np.zeros(len(starts), dtype=np.int64)
    sent_bytes, dropped_bytes = [], []
    for p, path in enumerate(sc.paths):
        capacity = path.capacity_gbps * 1e9
        requests = np.flatnonzero(paths == p)
        urgent = []
        for r in requests.tolist():
            # the request reaches the DC; the response leaves it frame by frame
            ready = starts[r] + _one_way(sc, path, sc.request_bytes)
            urgent += [(ready + k * gap, nbytes, r) for k, nbytes in enumerate(frames)]
        urgent.sort()
        bulk_here = bulk[p] if loaded else np.empty(0)
        done, lost, sent, dropped = _serve(
            bulk_here,
            urgent,
            size=sc.frame_bytes,
            capacity_bps=capacity,
            buffer_bytes=sc.buffer_ms / 1e3 * capacity / 8,
            priority=priority,
            until=sc.duration_s,
        )
        for r in requests.tolist():
            if r not in done:  # every frame lost: the response comes after a timeout
                done[r] = starts[r] + 2 * _one_way(sc, path, sc.response_bytes)
            latency[r] = done[r] + path.latency_ms / 1e3 - starts[r]
            if r in lost:
                latency[r] += RTO_S
                lost_count[r] = 1
        sent_bytes.append(sent)
        dropped_bytes.append(dropped)
    return latency, lost_count, sent_bytes, dropped_bytes


def run(sc: InferenceScenario = SCENARIO, seed: int = 1) -> InferenceRun:
    """Every policy, loaded and idle, on the same requests and bulk arrivals."""
    rng = np.random.default_rng(seed)
    count = rng.poisson(sc.requests_per_s * sc.duration_s)
    starts = np.sort(rng.uniform(0.0, sc.duration_s, count))
    ecmp_path = rng.integers(0, len(sc.paths), count)  # a 5-tuple hash: uniform per request
    bulk = [_bulk_arrivals(sc, p.capacity_gbps * 1e9, sc.bulk_load, rng) for p in sc.paths]
    policies: dict[str, PolicyRun] = {}
    for policy in POLICIES:
        bulk_in = [_with_backlog(sc, p, times) for p, times in zip(sc.paths, bulk, strict=True)]
        offered = [len(b) * sc.frame_bytes for b in bulk_in]
        metered_away = [0.0] * len(sc.paths)
        if policy == "tenant-meter":
            offered = [len(b) * sc.frame_bytes for b in bulk]
            bulk_in = []
            for p, times in zip(sc.paths, bulk, strict=True):
                cap_bytes = p.capacity_gbps * 1e9 / 8  # the bundle's rates, split evenly
                meter = TrTcm(
                    cir_bps=round(sc.meter_cir_share * cap_bytes),
                    cbs_bytes=round(sc.meter_cir_share * cap_bytes * sc.meter_burst_ms / 1e3),
                    pir_bps=round(sc.meter_pir_share * cap_bytes),
                    pbs_bytes=round(sc.meter_pir_share * cap_bytes * sc.meter_burst_ms / 1e3),
                )
                bulk_in.append(_metered(times, sc.frame_bytes, meter))
            metered_away = [
                o - len(b) * sc.frame_bytes for o, b in zip(offered, bulk_in, strict=True)
            ]
        idle, _, _, _ = _run_policy(sc, policy, starts, ecmp_path, bulk_in, loaded=False)
        loaded, lost, sent, dropped = _run_policy(
            sc, policy, starts, ecmp_path, bulk_in, loaded=True
        )
        paths = np.full(count, int(np.argmin([p.latency_ms for p in sc.paths])))
        if policy != DIFFERENTIATED:
            paths = ecmp_path
        policies[policy] = PolicyRun(
            policy,
            paths,
            idle,
            loaded,
            lost,
            bulk_delivered_bytes=sent,
            bulk_offered_bytes=[float(o) for o in offered],
            bulk_dropped_bytes=[d + m for d, m in zip(dropped, metered_away, strict=True)],
        )
    return InferenceRun(sc, seed, starts, policies)
