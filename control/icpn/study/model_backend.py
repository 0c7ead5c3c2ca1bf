"""The model backend: a scenario run on the reference model, no switch.

The packet stream — the scenario's synthetic traffic (:mod:`icpn.study.traffic`) or a
capture (:mod:`icpn.study.trace`) — comes in time chunks of whole measurement windows (a
few hundred thousand packets each, so memory stays bounded whatever the run's length), each
packet as columns: time, sketch key, frame length, and its path under each static policy
(hashed once per flow when the flow appears, :mod:`icpn.study.policies`). Each chunk is
placed by every policy at once:

* the static policies' paths come with the packets;
* ``deep_hash_elephants`` feeds the chunk through the count-min sketch model
  (:class:`icpn.model.sketch.Sketch`, bit-exact with BMv2; each sketch key hashed once,
  at the start, and its hashes gathered per packet), hands its reports to
  :class:`ManagerModel` and places each packet by the overrides in force at its time.

Per policy the run keeps the bytes offered to each path in each measurement window; the
fluid model (:mod:`icpn.study.metrics`) turns them into delivered and dropped bytes.
No Python work is done per packet, only per chunk, per report and per poll.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from icpn import placement
from icpn.constants import FlowKeyType
from icpn.model.sketch import Packets, Sketch, gather, windows_of
from icpn.study import trace
from icpn.study.policies import POLICIES
from icpn.study.scenarios import Scenario
from icpn.study.traffic import Chunk, FlowTable, Rates, TrafficSource, window_log2_us

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Measurement windows per run (for utilisation over time); chunks hold whole windows.
MEASUREMENT_WINDOWS = 200
CHUNK_PACKETS = 1 << 18

Progress = Callable[[int, int], None]


@dataclass
class _Pin:
    list: int
    placed_at: float  # on this list since (report or poll time)
    in_force_at: float  # the override took effect (its counter started)
    rate: float = 0.0  # bytes/s at the last poll
    measured: bool = False
    idle: int = 0


class ManagerModel:
    """:class:`icpn.elephant.ElephantManager` in simulated time, deciding with the same
    placement code (:mod:`icpn.placement`) on what the simulated switch counted.

    As the manager: a report for a flow not yet pinned pins it (:func:`placement.place` on
    the last poll's measurements and the flows placed since); a report for a pinned flow
    keeps it alive. Every poll measures, as the switch's counters would, each list's bytes
    and each pinned flow's bytes since its override took effect (the override's direct
    counter: packets the deep hash placed before do not count), unpins flows idle for
    ``idle_polls`` polls, and rebalances (:func:`placement.rebalance`). Every decision is
    in force ``control_loop_s`` after it is taken (detection to forwarding, the manager's
    write included). The manager's write-rate limit and table size do not bind at these flow
    counts and are left out; the moves per round are bounded by the placement settings.
    """

    def __init__(
        self,
        lists: Sequence[placement.ListState],
        origin: I64,
        *,
        control_loop_s: float,
        idle_polls: int,
        default_rate: float,
        settings: placement.PlacementSettings,
    ) -> None:
        self.lists = list(lists)
        self.origin = origin  # each sketch key's list under the deep hash
        self.pin = np.full(len(origin), -1, dtype=np.int64)  # in force
        self.pinned: dict[int, _Pin] = {}  # decided, in decision order
        self.pending: list[tuple[float, int, int]] = []  # (in force at, key, path)
        self.control_loop_s = control_loop_s
        self.idle_polls = idle_polls
        self.default_rate = default_rate
        self.settings = settings
        self.installed = 0
        self.aged_out = 0
        self.moves = 0
        self.polled = False  # background measured yet
        #: Every decision, in order: ("place", key, list) and ("move", key, list).
        self.decisions: list[tuple[str, int, int]] = []

    def report(self, key: int, time_s: float) -> None:
        pin = self.pinned.get(key)
        if pin is not None:
            pin.idle = 0
            return
        flows, recent = self._placement_inputs()
        path = placement.place(
            self.lists,
            flows,
            recent,
            self.settings,
            origin=int(self.origin[key]),
            default_rate=self.default_rate,
        )
        self.pinned[key] = _Pin(path, time_s, time_s + self.control_loop_s)
        self.pending.append((time_s + self.control_loop_s, key, path))
        self.installed += 1
        self.decisions.append(("place", key, path))

    def _placement_inputs(self) -> tuple[list[placement.Flow[int]], list[int]]:
        """The pinned flows with a measured rate, and the lists of those not measured yet."""
        flows, recent = [], []
        for key, pin in self.pinned.items():
            if pin.measured:
                flows.append(placement.Flow(key, pin.list, pin.rate, pin.placed_at))
            else:
                recent.append(pin.list)
        return flows, recent

    def poll(self, now: float, list_bytes: F64, pinned_bytes: F64, interval_s: float) -> None:
        """A poll at ``now`` of the counters of the last ``interval_s``: each list's bytes,
        and each sketch key's bytes forwarded by its override."""
        start = now - interval_s
        on_list = np.zeros(len(self.lists))
        for key, pin in self.pinned.items():
            octets = float(pinned_bytes[key])
            on_list[pin.list] += octets
            pin.idle = 0 if octets > 0 else pin.idle + 1
            measured_s = now - max(start, pin.in_force_at)
            if measured_s >= placement.MIN_RATE_SPAN * interval_s:
                previous = pin.rate if pin.measured else None
                pin.rate = placement.smooth(previous, octets / measured_s, self.settings)
                pin.measured = True
        background = np.maximum(list_bytes - on_list, 0.0) / interval_s
        self.lists = [
            placement.ListState(
                lst.capacity,
                lst.latency_ms,
                placement.smooth(lst.background if self.polled else None, float(b), self.settings),
            )
            for lst, b in zip(self.lists, background, strict=True)
        ]
        self.polled = True
        expired = [key for key, pin in self.pinned.items() if pin.idle >= self.idle_polls]
        for key in expired:
            del self.pinned[key]
            self.pin[key] = -1
        if expired:
            gone = set(expired)
            self.pending = [p for p in self.pending if p[1] not in gone]
            self.aged_out += len(expired)
        moves = placement.rebalance(self.lists, self._placement_inputs()[0], now, self.settings)
        for move in moves:
            pin = self.pinned[move.key]
            pin.list, pin.placed_at = move.target, now
            self.pending.append((now + self.control_loop_s, move.key, move.target))
            self.decisions.append(("move", move.key, move.target))
        self.moves += len(moves)

    def place(self, time_s: F64, key: I64, default: I64) -> tuple[I64, npt.NDArray[np.bool_]]:
        """Paths of packets (in time order, all before the next poll) under the pins in
        force, and which packets an override placed."""
        path = np.where(self.pin[key] >= 0, self.pin[key], default)
        by_pin = self.pin[key] >= 0
        if not self.pending or time_s.size == 0:
            return path, by_pin
        end = float(time_s[-1])
        still: list[tuple[float, int, int]] = []
        for at, k, p in sorted(self.pending):
            if at > end:
                still.append((at, k, p))
                continue
            first = int(np.searchsorted(time_s, at, side="left"))
            rows = first + np.flatnonzero(key[first:] == k)
            path[rows] = p
            by_pin[rows] = True
            self.pin[k] = p
        self.pending = still
        return path, by_pin


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
        seen = np.bincount(key, minlength=self.keys)
        new = (seen > 0) & np.isnan(self.first_time)
        if new.any():  # first packets: only of keys not seen before (few, after a while)
            rows = np.flatnonzero(new[key])
            present, first_index = np.unique(key[rows], return_index=True)
            self.first_time[present] = time_s[rows[first_index]]
        for j in reported.tolist():
            k = int(key[j])
            if self.report_packets[k] < 0:
                self.report_time[k] = time_s[j]
                in_chunk = int(np.count_nonzero(key[: j + 1] == k))
                self.report_packets[k] = self.packets_seen[k] + in_chunk
        self.packets_seen += seen


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
    manager_moves: int
    poll_s: float
    placement: placement.PlacementSettings
    flows: int
    mice: int
    wall_s: float = 0.0
    #: The capture the run replayed (what :func:`icpn.study.trace.describe` says), if any.
    trace: dict[str, object] | None = None


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
    source = TrafficSource(scenario, packets, np.random.default_rng(seed))
    return simulate(scenario, source, packets, seed=seed, progress=progress)


def run_trace(scenario: Scenario, path: Path, *, progress: Progress | None = None) -> ModelRun:
    """Run ``scenario``'s policies on the capture ``path`` (:mod:`icpn.study.trace`): one
    pass to learn its span and keys, one to run it, both streaming."""
    summary = trace.summarise(path)
    timed = trace.trace_scenario(scenario, summary)
    run = simulate(timed, trace.TraceSource(timed, summary), summary.packets, progress=progress)
    run.trace = trace.describe(summary)
    return run


def simulate(
    scenario: Scenario,
    source: TrafficSource | trace.TraceSource,
    packets: int,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> ModelRun:
    """The policies on ``source``'s packets (``packets`` of them, whole windows)."""
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
    sketch = Sketch(depth=settings.sketch_depth, width=settings.sketch_width)
    # Packets are few sketch keys (a QP, a mice host pair): each key is hashed once.
    key_hashes = sketch.hashes(_key_packets(flows), FlowKeyType.SRC_DST_QP)
    frame_r = scenario.traffic.roce_frame_bytes
    poll_s = settings.poll_fraction * scenario.duration_s
    lists = [
        placement.ListState(float(capacity), spec.latency_ms)
        for capacity, spec in zip(source.rates.path_bytes_per_s, scenario.paths, strict=True)
    ]
    manager = ManagerModel(
        lists,
        flows.key_deep,
        control_loop_s=settings.control_loop_ms / 1000,
        idle_polls=settings.idle_polls,
        default_rate=threshold * frame_r / sketch_window_s,
        settings=settings.placement(poll_s),
    )
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
        if not len(chunk) and getattr(source, "exhausted", False):
            break
        key = chunk.key
        frame = chunk.frame.astype(np.float64)
        wid = np.minimum(((chunk.time_s - t0) / window_s).astype(np.int64), windows_used - 1)

        def per_window_path(
            path: I64, wid: I64 = wid, frame: F64 = frame, used: int = windows_used
        ) -> F64:
            cells = np.bincount(wid * paths + path, weights=frame, minlength=used * paths)
            result: F64 = cells.reshape(used, paths).astype(np.float64)
            return result

        offered["ecmp_5tuple"].append(per_window_path(chunk.ecmp))
        deep = chunk.deep
        offered["apn_deep_hash"].append(per_window_path(deep))

        # deep_hash_elephants: sketch reports, then placement between polls.
        reports = sketch.process_hashed(
            gather(key_hashes, key),
            chunk.frame.astype(np.uint32),
            windows_of((chunk.time_s * 1e6).astype(np.uint64), log2_us),
            threshold=threshold,
        )
        detection.update(chunk.time_s, key, reports.packet)
        placed = np.empty(len(chunk), dtype=np.int64)
        chunk_end = t0 + windows_used * window_s
        start = 0
        while True:  # one pass per stretch between polls
            stop = max(start, int(np.searchsorted(chunk.time_s, next_poll, side="left")))
            for j in reports.packet[(reports.packet >= start) & (reports.packet < stop)]:
                manager.report(int(key[j]), float(chunk.time_s[j]))
            part = slice(start, stop)
            placed[part], by_pin = manager.place(chunk.time_s[part], key[part], deep[part])
            poll_list_bytes += np.bincount(placed[part], weights=frame[part], minlength=paths)
            poll_key_bytes += np.bincount(
                key[part][by_pin], weights=frame[part][by_pin], minlength=flows.keys
            )
            if next_poll > chunk_end:
                break
            manager.poll(next_poll, poll_list_bytes, poll_key_bytes, poll_s)
            poll_list_bytes[:] = 0
            poll_key_bytes[:] = 0
            next_poll += poll_s
            start = stop
        offered["deep_hash_elephants"].append(per_window_path(placed))
        done += len(chunk)
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
        manager_moves=manager.moves,
        poll_s=poll_s,
        placement=manager.settings,
        flows=len(flows),
        mice=len(flows) - flows.elephants,
    )


def _key_packets(flows: FlowTable | trace.TraceKeys) -> Packets:
    """One packet per sketch key (SA, DA, DestQP), to hash each key once."""
    n = flows.keys
    return Packets(
        src=flows.key_src,
        dst=flows.key_dst,
        proto=np.zeros(n, np.uint8),
        sport=np.zeros(n, np.uint16),
        dport=np.zeros(n, np.uint16),
        dest_qp=flows.key_qp,
        length=np.zeros(n, np.uint32),
        window=np.zeros(n, np.uint32),
    )


def _trim(chunk: Chunk, wanted: int, t0: float, window_s: float, windows: int) -> tuple[Chunk, int]:
    """Cut the chunk after the first whole window by which ``wanted`` packets are reached."""
    if len(chunk) < wanted:
        return chunk, windows
    at = float(chunk.time_s[wanted - 1])
    used = min(windows, int((at - t0) // window_s) + 1)
    end = int(np.searchsorted(chunk.time_s, t0 + used * window_s, side="left"))
    return chunk.head(end), used
