"""The model backend: a scenario run on the reference model, no switch.

The packet stream (:mod:`icpn.study.traffic`) is generated in time chunks (a few hundred
thousand packets each, so memory stays bounded whatever the run's length) and each chunk is
placed by every policy at once:

* the static policies look up each packet's flow in the flow table (hashes computed once per
  flow, :mod:`icpn.study.policies`);
* ``deep_hash_elephants`` feeds the chunk through the count-min sketch model
  (:class:`icpn.model.sketch.Sketch`, bit-exact with BMv2), hands its reports to
  :class:`ManagerModel` and places each packet by the overrides in force at its time.

Per policy the run keeps the bytes offered to each path in each measurement window; the
fluid model (:mod:`icpn.study.metrics`) turns them into delivered and dropped bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from icpn.constants import FlowKeyType
from icpn.model.sketch import Packets, Sketch, windows_of
from icpn.study.policies import POLICIES
from icpn.study.scenarios import Scenario
from icpn.study.traffic import Chunk, Rates, TrafficSource, window_log2_us

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Measurement windows per run (for utilisation over time); chunks hold whole windows.
MEASUREMENT_WINDOWS = 200
CHUNK_PACKETS = 1 << 18

Progress = Callable[[int, int], None]


class ManagerModel:
    """:class:`icpn.elephant.ElephantManager`'s placement rule in simulated time.

    On a report for a flow not yet pinned: pin it to the list with the least load, where a
    list's load = its byte rate over the last poll + the expected elephant rate x the flows
    placed on it since that poll (ties: the lowest index); expected elephant rate = the mean
    measured rate of the pinned flows (before any is measured: the threshold rate, the least
    an elephant sends). The pin is in force ``control_loop_s`` after the report. A report for
    a pinned flow keeps it alive; a pinned flow with no packets for ``idle_polls`` polls is
    unpinned. The manager's write-rate limit and table size do not bind at these flow
    counts and are left out.
    """

    def __init__(
        self,
        paths: int,
        keys: int,
        *,
        control_loop_s: float,
        idle_polls: int,
        default_rate: float,
    ) -> None:
        self.paths = paths
        self.pin = np.full(keys, -1, dtype=np.int64)  # in force
        self.chosen = np.full(keys, -1, dtype=np.int64)  # decided (maybe not yet in force)
        self.idle = np.zeros(keys, dtype=np.int64)
        self.key_rate = np.zeros(keys)
        self.list_rate = np.zeros(paths)
        self.placed_since_poll = np.zeros(paths)
        self.pending: list[tuple[float, int, int]] = []  # (in force at, key, path)
        self.control_loop_s = control_loop_s
        self.idle_polls = idle_polls
        self.default_rate = default_rate
        self.installed = 0
        self.aged_out = 0

    def report(self, key: int, time_s: float) -> None:
        if self.chosen[key] >= 0:
            self.idle[key] = 0
            return
        measured = self.key_rate[(self.chosen >= 0) & (self.key_rate > 0)]
        expected = float(measured.mean()) if measured.size else self.default_rate
        load = self.list_rate + expected * self.placed_since_poll
        path = int(np.argmin(load))
        self.placed_since_poll[path] += 1
        self.chosen[key] = path
        self.idle[key] = 0
        self.pending.append((time_s + self.control_loop_s, key, path))
        self.installed += 1

    def poll(self, list_bytes: F64, key_bytes: F64, interval_s: float) -> None:
        self.list_rate = list_bytes / interval_s
        self.key_rate = key_bytes / interval_s
        self.placed_since_poll[:] = 0
        pinned = self.chosen >= 0
        quiet = pinned & (key_bytes == 0)
        self.idle[quiet] += 1
        self.idle[pinned & ~quiet] = 0
        expired = np.flatnonzero(pinned & (self.idle >= self.idle_polls))
        if expired.size:
            self.chosen[expired] = -1
            self.pin[expired] = -1
            self.idle[expired] = 0
            self.pending = [p for p in self.pending if p[1] not in set(expired.tolist())]
            self.aged_out += int(expired.size)

    def place(self, time_s: F64, key: I64, default: I64) -> I64:
        """Paths of packets (in time order, all before the next poll) under the pins."""
        pinned = self.pin[key]
        path = np.where(pinned >= 0, pinned, default)
        if not self.pending or time_s.size == 0:
            return path
        end = float(time_s[-1])
        still: list[tuple[float, int, int]] = []
        for at, k, p in sorted(self.pending):
            if at > end:
                still.append((at, k, p))
                continue
            first = int(np.searchsorted(time_s, at, side="left"))
            rows = first + np.flatnonzero(key[first:] == k)
            path[rows] = p
            self.pin[k] = p
        self.pending = still
        return path


@dataclass
class Detection:
    """First packet and first report of each sketch key."""

    keys: int
    first_time: F64 = field(init=False)
    report_time: F64 = field(init=False)
    report_packets: I64 = field(init=False)
    packets_seen: I64 = field(init=False)

    def __post_init__(self) -> None:
        self.first_time = np.full(self.keys, np.nan)
        self.report_time = np.full(self.keys, np.nan)
        self.report_packets = np.full(self.keys, -1, dtype=np.int64)
        self.packets_seen = np.zeros(self.keys, dtype=np.int64)

    def update(self, time_s: F64, key: I64, reported: I64) -> None:
        present, first_index = np.unique(key, return_index=True)
        new = np.isnan(self.first_time[present])
        self.first_time[present[new]] = time_s[first_index[new]]
        for j in reported.tolist():
            k = int(key[j])
            if self.report_packets[k] < 0:
                self.report_time[k] = time_s[j]
                in_chunk = int(np.count_nonzero(key[: j + 1] == k))
                self.report_packets[k] = self.packets_seen[k] + in_chunk
        self.packets_seen += np.bincount(key, minlength=self.keys)


@dataclass
class ModelRun:
    """What a run measured; :mod:`icpn.study.report` derives the figures from it."""

    scenario: Scenario
    seed: int
    packets: int
    duration_s: float
    window_s: float
    rates: Rates
    offered: dict[str, F64]  # policy -> (windows, paths) bytes
    elephants: int
    elephant_bytes_per_s: F64
    elephant_deep_path: I64  # each QP's list under the deep hash
    detection: Detection
    sketch_window_us: int
    sketch_threshold_packets: int
    manager_installed: int
    manager_aged_out: int
    flows: int
    mice: int
    wall_s: float = 0.0


def run(
    scenario: Scenario,
    packets: int,
    *,
    seed: int = 1,
    progress: Progress | None = None,
) -> ModelRun:
    """Run ``scenario`` for at least ``packets`` packets (whole measurement windows)."""
    if packets < 1000:
        raise ValueError(f"a study needs at least 1000 packets, not {packets}")
    rng = np.random.default_rng(seed)
    source = TrafficSource(scenario, packets, rng)
    flows = source.flows
    paths = len(scenario.paths)
    window_s = scenario.duration_s / MEASUREMENT_WINDOWS
    per_window = packets / MEASUREMENT_WINDOWS
    chunk_windows = max(1, int(CHUNK_PACKETS // max(per_window, 1.0)))
    settings = scenario.elephants
    log2_us = window_log2_us(scenario.duration_s, settings.windows_per_run)
    sketch_window_s = (1 << log2_us) / 1e6
    threshold = max(
        2, round(settings.threshold_share * source.rates.packets_per_s * sketch_window_s)
    )
    sketch = Sketch()
    frame_r = scenario.traffic.roce_frame_bytes
    manager = ManagerModel(
        paths,
        flows.keys,
        control_loop_s=settings.control_loop_ms / 1000,
        idle_polls=settings.idle_polls,
        default_rate=threshold * frame_r / sketch_window_s,
    )
    poll_s = settings.poll_fraction * scenario.duration_s
    next_poll = poll_s
    poll_list_bytes = np.zeros(paths)
    poll_key_bytes = np.zeros(flows.keys)
    detection = Detection(flows.keys)
    offered: dict[str, list[F64]] = {p: [] for p in POLICIES}
    done, window = 0, 0
    while done < packets:
        t0, t1 = window * window_s, (window + chunk_windows) * window_s
        chunk = source.chunk(t0, t1)
        chunk, windows_used = _trim(chunk, packets - done, t0, window_s, chunk_windows)
        flow = chunk.flow
        key = flows.key[flow]
        frame = flows.frame[flow].astype(np.float64)
        wid = np.minimum(((chunk.time_s - t0) / window_s).astype(np.int64), windows_used - 1)

        def per_window_path(
            path: I64, wid: I64 = wid, frame: F64 = frame, used: int = windows_used
        ) -> F64:
            cells = np.bincount(wid * paths + path, weights=frame, minlength=used * paths)
            result: F64 = cells.reshape(used, paths).astype(np.float64)
            return result

        offered["ecmp_5tuple"].append(per_window_path(flows.ecmp[flow]))
        deep = flows.deep[flow]
        offered["apn_deep_hash"].append(per_window_path(deep))

        # deep_hash_elephants: sketch reports, then placement between polls.
        stream = Packets(
            src=flows.key_src[key],
            dst=flows.key_dst[key],
            proto=np.zeros(len(flow), np.uint8),
            sport=np.zeros(len(flow), np.uint16),
            dport=np.zeros(len(flow), np.uint16),
            dest_qp=flows.key_qp[key],
            length=flows.frame[flow].astype(np.uint32),
            window=windows_of((chunk.time_s * 1e6).astype(np.uint64), log2_us),
        )
        reports = sketch.process(stream, FlowKeyType.SRC_DST_QP, threshold=threshold)
        detection.update(chunk.time_s, key, reports.packet)
        placed = np.empty(len(flow), dtype=np.int64)
        chunk_end = t0 + windows_used * window_s
        start = 0
        while True:  # one pass per stretch between polls
            stop = max(start, int(np.searchsorted(chunk.time_s, next_poll, side="left")))
            for j in reports.packet[(reports.packet >= start) & (reports.packet < stop)]:
                manager.report(int(key[j]), float(chunk.time_s[j]))
            part = slice(start, stop)
            placed[part] = manager.place(chunk.time_s[part], key[part], deep[part])
            poll_list_bytes += np.bincount(placed[part], weights=frame[part], minlength=paths)
            poll_key_bytes += np.bincount(key[part], weights=frame[part], minlength=flows.keys)
            if next_poll > chunk_end:
                break
            manager.poll(poll_list_bytes, poll_key_bytes, poll_s)
            poll_list_bytes[:] = 0
            poll_key_bytes[:] = 0
            next_poll += poll_s
            start = stop
        offered["deep_hash_elephants"].append(per_window_path(placed))
        done += len(flow)
        window += windows_used
        if progress is not None:
            progress(min(done, packets), packets)
    return ModelRun(
        scenario=scenario,
        seed=seed,
        packets=done,
        duration_s=window * window_s,
        window_s=window_s,
        rates=source.rates,
        offered={p: np.concatenate(v) for p, v in offered.items()},
        elephants=flows.elephants,
        elephant_bytes_per_s=source.elephant_bytes_per_s,
        elephant_deep_path=flows.deep[: flows.elephants].copy(),
        detection=detection,
        sketch_window_us=1 << log2_us,
        sketch_threshold_packets=threshold,
        manager_installed=manager.installed,
        manager_aged_out=manager.aged_out,
        flows=len(flows),
        mice=len(flows) - flows.elephants,
    )


def _trim(chunk: Chunk, wanted: int, t0: float, window_s: float, windows: int) -> tuple[Chunk, int]:
    """Cut the chunk after the first whole window by which ``wanted`` packets are reached."""
    if len(chunk.flow) < wanted:
        return chunk, windows
    at = float(chunk.time_s[wanted - 1])
    used = min(windows, int((at - t0) // window_s) + 1)
    end = int(np.searchsorted(chunk.time_s, t0 + used * window_s, side="left"))
    return Chunk(chunk.time_s[:end], chunk.flow[:end]), used
