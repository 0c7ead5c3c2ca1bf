"""The offered traffic of a scenario as a packet stream, generated in time chunks.

Rates are scaled so that the requested number of packets spans the scenario's duration:
the bundle's capacity in the model is whatever makes the offered load (a share of it) come
out at ``packets / duration`` packets per second. Results are ratios (utilisation,
imbalance, loss), as DESIGN.md section 6 asks of emulated links; the scale is reported.

* Elephants (RoCE QPs) are paced: QP i sends a packet every ``frame / rate_i`` seconds from
  its start time on.
* Mice (TCP flows) arrive as a Poisson process with sizes from the workload; a mouse of S
  bytes sends max(1, round(S / 1460)) packets paced at the metro rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from icpn.study.policies import FlowColumns, deep_hash_members, ecmp_5tuple_members
from icpn.study.scenarios import Scenario, TrafficMix
from icpn.traffic.workloads import MSS_BYTES, get_workload, mean_flow_size, sample_flow_sizes

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

ROCE_PORT = 4791
ROCE_SPORT_BASE = 49152
TCP_PORTS = (80, 443, 5001, 8080)
#: How far back (in run durations) the mice of the steady state are generated from.
WARM_UP_RUNS = 5.0


def _addresses(prefix: int, count: int) -> U8:
    """``count`` IPv6 addresses 2001:db8:<prefix>::<i + 1> as an (n, 16) uint8 array."""
    out = np.zeros((count, 16), dtype=np.uint8)
    out[:, 0:6] = [0x20, 0x01, 0x0D, 0xB8, (prefix >> 8) & 0xFF, prefix & 0xFF]
    out[:, 12:16] = np.arange(1, count + 1, dtype=">u4").view(np.uint8).reshape(count, 4)
    return out


def qp_numbers(count: int) -> npt.NDArray[np.uint32]:
    """The DestQPs of a scenario's RoCE elephants (both backends send these)."""
    return ((0x000100 + np.arange(count) * 0x1F3) & 0xFFFFFF).astype(np.uint32)


def elephant_weights(mix: TrafficMix, rng: np.random.Generator) -> F64:
    """Each QP's rate relative to the mean, uniform in [1 - spread, 1 + spread]: the first
    draw of a run's generator, so a seed gives both backends the same QP rates."""
    return rng.uniform(1 - mix.elephant_rate_spread, 1 + mix.elephant_rate_spread, mix.roce_qps)


@dataclass(frozen=True)
class Rates:
    """The scaled rates of a run."""

    packets_per_s: float
    offered_bytes_per_s: float
    bundle_bytes_per_s: float
    path_bytes_per_s: F64
    scale: float  # model bundle rate / the scenario's real bundle rate


def rates(scenario: Scenario, packets: int) -> Rates:
    mix = scenario.traffic
    e = mix.elephant_byte_share
    packets_per_s = packets / scenario.duration_s
    offered = packets_per_s / (e / mix.roce_frame_bytes + (1 - e) / mix.mouse_frame_bytes)
    bundle = offered / scenario.offered_load
    capacities = np.array([p.capacity_gbps for p in scenario.paths], dtype=np.float64)
    return Rates(
        packets_per_s=packets_per_s,
        offered_bytes_per_s=offered,
        bundle_bytes_per_s=bundle,
        path_bytes_per_s=bundle * capacities / capacities.sum(),
        scale=bundle * 8 / (scenario.bundle_gbps * 1e9),
    )


class FlowTable:
    """The elephants, with the path each static policy gives them, and every sketch key
    (SA, DA, DestQP): one per QP, then one per mice host pair. Mice are drawn by
    :meth:`add_mice` and held by the traffic source while they send."""

    def __init__(self, scenario: Scenario) -> None:
        mix = scenario.traffic
        self.paths = len(scenario.paths)
        self.mice_hosts = mix.mice_hosts
        pairs = mix.roce_host_pairs
        # Sketch keys: one per QP, then one per mice host pair (TCP has DestQP 0).
        roce_src, roce_dst = _addresses(0x0001, pairs), _addresses(0x0002, pairs)
        mice_src, mice_dst = _addresses(0x0011, mix.mice_hosts), _addresses(0x0012, mix.mice_hosts)
        pair_of_qp = np.arange(mix.roce_qps) % pairs
        src_of_pair = np.repeat(np.arange(mix.mice_hosts), mix.mice_hosts)
        dst_of_pair = np.tile(np.arange(mix.mice_hosts), mix.mice_hosts)
        self.elephants = mix.roce_qps
        self.key_src = np.concatenate([roce_src[pair_of_qp], mice_src[src_of_pair]])
        self.key_dst = np.concatenate([roce_dst[pair_of_qp], mice_dst[dst_of_pair]])
        self.qps = qp_numbers(mix.roce_qps)
        self.key_qp = np.concatenate([self.qps, np.zeros(mix.mice_hosts**2, dtype=np.uint32)])
        self.keys = len(self.key_qp)
        elephant_flows = FlowColumns(
            src=roce_src[pair_of_qp],
            dst=roce_dst[pair_of_qp],
            proto=np.full(mix.roce_qps, 17, np.uint8),
            sport=(ROCE_SPORT_BASE + pair_of_qp).astype(np.uint16),
            dport=np.full(mix.roce_qps, ROCE_PORT, np.uint16),
            dest_qp=self.qps,
            apn_id=np.full(mix.roce_qps, mix.roce_apn_id, np.uint32),
        )
        self._mice_src, self._mice_dst = mice_src, mice_dst
        self._mice_apn = mix.mice_apn_id
        self.key = np.arange(mix.roce_qps, dtype=np.int64)
        self.ecmp = ecmp_5tuple_members(elephant_flows, self.paths)
        self.deep = deep_hash_members(elephant_flows, self.paths)
        # Each sketch key's list under the deep hash: a QP's own; TCP has DestQP 0, so every
        # mice host pair's is that of (mice APN ID, 0).
        mice_deep = deep_hash_members(
            FlowColumns(
                src=mice_src[:1],
                dst=mice_dst[:1],
                proto=np.full(1, 6, np.uint8),
                sport=np.zeros(1, np.uint16),
                dport=np.zeros(1, np.uint16),
                dest_qp=np.zeros(1, np.uint32),
                apn_id=np.full(1, mix.mice_apn_id, np.uint32),
            ),
            self.paths,
        )
        self.key_deep = np.concatenate([self.deep, np.repeat(mice_deep, mix.mice_hosts**2)])
        self.frame = np.full(mix.roce_qps, mix.roce_frame_bytes, dtype=np.int64)
        self.mouse_frame = mix.mouse_frame_bytes
        self.mice_added = 0

    def __len__(self) -> int:
        return self.elephants + self.mice_added

    def add_mice(self, count: int, rng: np.random.Generator) -> Mice:
        """``count`` new mice between random host pairs. Their columns are returned, not
        kept: a mouse lives a few chunks, and the table stays the size of the elephants."""
        h = self.mice_hosts
        src = rng.integers(0, h, count)
        dst = rng.integers(0, h, count)
        flows = FlowColumns(
            src=self._mice_src[src],
            dst=self._mice_dst[dst],
            proto=np.full(count, 6, np.uint8),
            sport=rng.integers(32768, 61000, count).astype(np.uint16),
            dport=np.asarray(TCP_PORTS, dtype=np.uint16)[rng.integers(0, len(TCP_PORTS), count)],
            dest_qp=np.zeros(count, np.uint32),
            apn_id=np.full(count, self._mice_apn, np.uint32),
        )
        self.mice_added += count
        return Mice(
            key=self.elephants + src * h + dst,
            ecmp=ecmp_5tuple_members(flows, self.paths),
            deep=deep_hash_members(flows, self.paths),
        )


@dataclass(frozen=True)
class Mice:
    """New mice: each one's sketch key and path under each static policy."""

    key: I64
    ecmp: I64
    deep: I64


@dataclass(frozen=True)
class Chunk:
    """Packets in time order, as columns: what every policy needs of a packet."""

    time_s: F64  # sorted
    key: I64  # sketch key (SA, DA, DestQP)
    frame: I64  # octets
    ecmp: I64  # path under 5-tuple ECMP
    deep: I64  # path under the APN deep hash

    def __len__(self) -> int:
        return len(self.time_s)

    def head(self, end: int) -> Chunk:
        return Chunk(
            self.time_s[:end], self.key[:end], self.frame[:end], self.ecmp[:end], self.deep[:end]
        )

    def columns(self) -> tuple[npt.NDArray[np.generic], ...]:
        return (self.time_s, self.key, self.frame, self.ecmp, self.deep)


def _paced(start: F64, interval: F64, first: I64, end: I64) -> tuple[F64, I64]:
    """Times start + k x interval for k in [first, end) of each row, and each time's row."""
    counts = np.maximum(end - first, 0)
    rows = np.repeat(np.arange(len(start)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    k = first[rows] + offsets
    return start[rows] + k * interval[rows], rows


class TrafficSource:
    """Generates the scenario's packets chunk by chunk, in time order, deterministically."""

    def __init__(self, scenario: Scenario, packets: int, rng: np.random.Generator) -> None:
        mix = scenario.traffic
        self.rng = rng
        self.rates = rates(scenario, packets)
        self.flows = FlowTable(scenario)
        e = mix.elephant_byte_share
        weights = elephant_weights(mix, rng)
        elephant_rates = e * self.rates.offered_bytes_per_s * weights / weights.sum()
        self.elephant_bytes_per_s = elephant_rates
        self.elephant_start = rng.uniform(
            0, mix.elephant_start_fraction * scenario.duration_s, mix.roce_qps
        )
        self.elephant_interval = mix.roce_frame_bytes / elephant_rates
        self.workload = mix.mice_workload
        mean_packets = max(1.0, mean_flow_size(self.workload) / MSS_BYTES)
        self.mice_per_s = (
            (1 - e) * self.rates.offered_bytes_per_s / (mean_packets * mix.mouse_frame_bytes)
        )
        mouse_rate = mix.mouse_rate_share * float(self.rates.path_bytes_per_s.mean())
        self.mouse_interval = mix.mouse_frame_bytes / mouse_rate
        # Mice still sending: sketch key, paths, start, packets.
        self._mice = Mice(*(np.zeros(0, dtype=np.int64) for _ in range(3)))
        self._mice_start = np.zeros(0, dtype=np.float64)
        self._mice_packets = np.zeros(0, dtype=np.int64)
        # Start in the steady state: mice that arrived before 0 and are still sending (the
        # longest mouse lasts its packets x the pacing interval; looking back at most
        # WARM_UP_RUNS x the duration).
        longest = float(self.workload_max_packets * self.mouse_interval)
        warm = min(longest, WARM_UP_RUNS * scenario.duration_s)
        if warm > 0:
            self._arrivals(-warm, 0.0)

    @property
    def workload_max_packets(self) -> float:
        return max(1.0, float(get_workload(self.workload).sizes[-1]) / MSS_BYTES)

    def _arrivals(self, t0: float, t1: float) -> None:
        """Mice arriving in [t0, t1)."""
        count = int(self.rng.poisson(self.mice_per_s * (t1 - t0)))
        if not count:
            return
        mice = self.flows.add_mice(count, self.rng)
        starts = np.sort(self.rng.uniform(t0, t1, count))
        sizes = sample_flow_sizes(self.workload, count, self.rng)
        npk = np.maximum(1, np.rint(sizes / MSS_BYTES)).astype(np.int64)
        if t0 < 0:  # warm-up: keep only the mice still sending at 0
            alive = starts + npk * self.mouse_interval > 0
            mice = Mice(mice.key[alive], mice.ecmp[alive], mice.deep[alive])
            starts, npk = starts[alive], npk[alive]
        self._mice = Mice(
            *(np.concatenate(pair) for pair in zip(_cols(self._mice), _cols(mice), strict=True))
        )
        self._mice_start = np.concatenate([self._mice_start, starts])
        self._mice_packets = np.concatenate([self._mice_packets, npk])

    def chunk(self, t0: float, t1: float) -> Chunk:
        """The packets sent in [t0, t1)."""
        # Elephants.
        start, iv = self.elephant_start, self.elephant_interval
        first = np.maximum(0, np.ceil((t0 - start) / iv)).astype(np.int64)
        end = np.maximum(0, np.ceil((t1 - start) / iv)).astype(np.int64)
        e_time, e_flow = _paced(start, iv, first, end)
        self._arrivals(t0, t1)
        m_start = self._mice_start
        m_iv = np.full(len(m_start), self.mouse_interval)
        first = np.maximum(0, np.ceil((t0 - m_start) / m_iv)).astype(np.int64)
        end = np.minimum(
            self._mice_packets, np.maximum(0, np.ceil((t1 - m_start) / m_iv)).astype(np.int64)
        )
        m_time, m_row = _paced(m_start, m_iv, first, end)
        live = self._mice
        alive = end < self._mice_packets
        self._mice = Mice(live.key[alive], live.ecmp[alive], live.deep[alive])
        self._mice_start = self._mice_start[alive]
        self._mice_packets = self._mice_packets[alive]
        flows = self.flows
        time = np.concatenate([e_time, m_time])
        order = np.argsort(time, kind="stable")
        elephants = len(e_time)
        frame = np.full(len(time), flows.mouse_frame, dtype=np.int64)
        frame[:elephants] = flows.frame[e_flow]
        columns = [
            np.concatenate([e_flow, live.key[m_row]]),
            frame,
            np.concatenate([flows.ecmp[e_flow], live.ecmp[m_row]]),
            np.concatenate([flows.deep[e_flow], live.deep[m_row]]),
        ]
        return Chunk(time[order], *(c[order] for c in columns))


def _cols(mice: Mice) -> tuple[I64, I64, I64]:
    return (mice.key, mice.ecmp, mice.deep)


def window_log2_us(duration_s: float, windows: int) -> int:
    """The sketch window: duration / windows rounded down to a power of two of microseconds."""
    return max(0, math.floor(math.log2(max(1.0, duration_s * 1e6 / windows))))
