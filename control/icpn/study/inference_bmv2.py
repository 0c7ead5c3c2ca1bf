"""The cloud-edge inference study on BMv2: the DC's egress bottleneck as BMv2's own queues.

What runs: the Thrift ``simple_switch`` with ``p4src/v1model/queue_probe.p4`` (a frame's
class goes into ``standard_metadata.priority``, as ``qos.p4`` writes it; the P4Runtime
simple_switch_grpc built here cannot set queue rates, docs/qos.md). Port 2's queues are
paced at ``RATE_PPS`` and hold the scenario's buffer; bulk frames are sent into class 1 at
``bulk_load`` x that rate from a full queue, inference responses (the scenario's frames per
response, back to back) into class 6 (``apn-differentiated``) or class 1 with the bulk
(``best-effort``). Each policy runs idle and loaded on the same response schedule.

Scale: one emulated frame time (1 / RATE_PPS) stands for one frame on a ``LINK_GBPS`` link,
so BMv2's queue holds the scenario's buffer in frames (5 ms at 1 Gbit/s: 416). A
response's time through the switch (last frame received - first sent, kernel timestamps)
is scaled back by that factor and added to the real path's idle parts (the request's way
up, propagation back), as the model composes them; a lost frame costs one RTO. The SR path
choice is not emulated (one switch, one path: the direct one); the model shows its effect.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from icpn.features import qos
from icpn.study.inference import (
    BEST_EFFORT,
    DIFFERENTIATED,
    RTO_S,
    SCENARIO,
    InferenceRun,
    InferenceScenario,
    PolicyRun,
    _one_way,
)
from icpn.targets import veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Error, Bmv2Options, ThriftSwitch

RATE_PPS = 1000
LINK_GBPS = 1.0
PROBE_ETHERTYPE = 0x88B5
BULK_CLASS, INFERENCE_CLASS = 1, 6
POLICIES = (BEST_EFFORT, DIFFERENTIATED)
SO_TIMESTAMPNS = 35  # Linux, asm-generic/socket.h


class Unavailable(RuntimeError):
    """The Thrift simple_switch (or root for veths) is missing; the message says which."""


@dataclass(frozen=True)
class Emulation:
    rate_pps: int
    scale: float  # real seconds per emulated second
    depth_packets: int
    requests: int
    seconds: float

    @property
    def prefill_s(self) -> float:
        """How long the full queue takes to send (at 4x the queue rate), before the run."""
        return self.depth_packets / (4 * self.rate_pps)


def _frame(tc: int, seq: int) -> bytes:
    # queue_probe.p4's probe header: class (8), sequence (32), two words the switch fills
    return (
        b"\x00\x00\x00\x00\x00\x02"
        + b"\x00\x00\x00\x00\x00\x01"
        + struct.pack("!HBIII", PROBE_ETHERTYPE, tc, seq, 0, 0)
        + bytes(46)
    )


class _Receiver(threading.Thread):
    """Kernel receive times of the probes on port 2's host side, by sequence number."""

    def __init__(self, ifname: str) -> None:
        super().__init__(daemon=True)
        self.sock = veth.capture_socket(ifname, PROBE_ETHERTYPE)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self.sock.settimeout(0.2)
        self.arrivals: dict[int, float] = {}
        self.bulk: list[float] = []  # receive times of bulk frames (sequence 0)
        self.stop = False

    def run(self) -> None:
        while not self.stop:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(256, 64)
            except TimeoutError:
                continue
            when = time.time()
            for level, kind, raw in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", raw[:16])
                    when = sec + nsec / 1e9
            (seq,) = struct.unpack("!I", data[15:19])
            if seq:
                self.arrivals[seq] = when
            else:
                self.bulk.append(when)


def _run_once(
    switch: ThriftSwitch,
    em: Emulation,
    sc: InferenceScenario,
    offsets: np.ndarray,
    inference_class: int,
    loaded: bool,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """One run: response times through the switch (emulated s) and losses per request, and
    bulk frames (offered, received, received within the sending window)."""
    frames_per_response = len(sc.frames(sc.response_bytes))
    schedule: list[tuple[float, bytes]] = []
    seq = 0
    count = 0
    if loaded:
        # a full queue first (a sender above C), then bulk at bulk_load x the rate
        schedule += [
            (i / (4 * em.rate_pps), _frame(BULK_CLASS, 0)) for i in range(em.depth_packets)
        ]
        start = em.depth_packets / (4 * em.rate_pps)
        count = int(sc.bulk_load * em.rate_pps * em.seconds)
        schedule += [
            (start + i / (sc.bulk_load * em.rate_pps), _frame(BULK_CLASS, 0)) for i in range(count)
        ]
    else:
        start = em.prefill_s
    first_seq: list[int] = []
    for at in offsets.tolist():
        first_seq.append(seq + 1)
        for _ in range(frames_per_response):
            seq += 1
            schedule.append((start + at, _frame(inference_class, seq)))
    schedule.sort(key=lambda item: item[0])
    receiver = _Receiver(switch.host_interfaces[2])
    receiver.start()
    sent: dict[int, float] = {}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as tx:
        tx.bind((switch.host_interfaces[1], 0))
        t0 = time.perf_counter()
        wall0 = time.time() - t0
        for at, frame in schedule:
            while (now := time.perf_counter()) - t0 < at:
                if at - (now - t0) > 0.002:
                    time.sleep(0.001)
            tx.send(frame)
            number = struct.unpack("!I", frame[15:19])[0]
            if number:
                sent[number] = wall0 + time.perf_counter()
    window_end = wall0 + t0 + start + em.seconds
    time.sleep(em.depth_packets / em.rate_pps + 1.0)  # the queue drains
    receiver.stop = True
    receiver.join()
    receiver.sock.close()
    through = np.full(len(offsets), np.nan)
    lost = np.zeros(len(offsets), dtype=np.int64)
    for r, first in enumerate(first_seq):
        numbers = range(first, first + frames_per_response)
        if all(n in receiver.arrivals for n in numbers):
            through[r] = max(receiver.arrivals[n] for n in numbers) - sent[first]
        else:
            lost[r] = 1
            got = [receiver.arrivals[n] for n in numbers if n in receiver.arrivals]
            through[r] = (max(got) - sent[first]) if got else 0.0
    offered = em.depth_packets + count if loaded else 0
    in_window = sum(1 for t in receiver.bulk if t <= window_end)
    return through, lost, (offered, len(receiver.bulk), in_window)


def run(
    sc: InferenceScenario = SCENARIO, seed: int = 1, requests: int = 60, seconds: float = 4.0
) -> tuple[InferenceRun, Emulation]:
    """Both policies, idle and loaded, on one Thrift simple_switch."""
    frame_s = sc.frame_bytes * 8 / (LINK_GBPS * 1e9)
    em = Emulation(
        rate_pps=RATE_PPS,
        scale=frame_s * RATE_PPS,
        depth_packets=int(sc.buffer_ms / 1e3 / frame_s),
        requests=requests,
        seconds=seconds,
    )
    rng = np.random.default_rng(seed)
    margin = 0.2 * seconds
    offsets = np.sort(rng.uniform(margin, seconds - margin, requests))
    path = min(sc.paths, key=lambda p: p.latency_ms)
    real_path = replace(path, capacity_gbps=LINK_GBPS)
    fixed = _one_way(sc, real_path, sc.request_bytes) + path.latency_ms / 1e3
    art = build.compile_program("queue_probe")
    try:
        switch = ThriftSwitch(art.json, "inference", Bmv2Options(num_ports=2, log_level="warn"))
        switch.start()
    except Bmv2Error as exc:
        raise Unavailable(f"no Thrift simple_switch for the BMv2 inference run: {exc}") from exc
    policies: dict[str, PolicyRun] = {}
    try:
        rates = qos.QueueRates(switch.thrift_port or 0)
        for queue in range(8):
            rates.set_rate(2, queue, em.rate_pps)
            rates.set_depth(2, queue, em.depth_packets)
        for policy in POLICIES:
            tc = INFERENCE_CLASS if policy == DIFFERENTIATED else BULK_CLASS
            idle, _, _ = _run_once(switch, em, sc, offsets, tc, loaded=False)
            loaded, lost, (offered, received, in_window) = _run_once(
                switch, em, sc, offsets, tc, loaded=True
            )
            frame = sc.frame_bytes
            policies[policy] = PolicyRun(
                policy,
                np.zeros(requests, dtype=np.int64),
                fixed + idle * em.scale,
                fixed + loaded * em.scale + lost * RTO_S,
                lost,
                bulk_delivered_bytes=[float(in_window * frame)],
                bulk_offered_bytes=[float(offered * frame)],
                bulk_dropped_bytes=[float((offered - received) * frame)],
            )
    finally:
        switch.stop()
    starts = offsets * em.scale
    return InferenceRun(sc, seed, starts, policies), em
