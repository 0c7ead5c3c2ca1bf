"""A user's capture as a study's traffic: ``icpn study NAME --trace FILE``.

The capture (pcap or pcapng, plain or gzip'd) is read with scapy's ``RawPcapReader``
(already a dependency; it picks pcap or pcapng from the magic, undoes gzip, and gives each
record's original length, which a capture truncated by its snap length needs), in batches of
:data:`BATCH` records. Each batch's headers are decoded with numpy over the first
:data:`HEAD` octets of every frame, so no Python work is done per packet beyond the reader's.

What a packet becomes (docs/studies.md, "Real traces"):

* link types: Ethernet (with up to two 802.1Q/802.1ad tags), raw IP, Linux cooked (SLL);
* IPv6: SA, DA, flow label, the next header after up to three extension headers (hop-by-hop,
  routing, destination options), L4 ports; IPv4: SA and DA as IPv4-mapped IPv6 addresses
  (::ffff:a.b.c.d, RFC 4291 section 2.5.5.2), flow label 0, protocol, ports (none for
  non-first fragments);
* RoCEv2 (UDP destination port 4791, the IANA port of RoCEv2): the BTH's DestQP (24 bits
  at octet 5 of the BTH, InfiniBand Architecture Specification Annex A17). Other packets
  have DestQP 0, as on the switch;
* the sketch key is (SA, DA, DestQP), as the switch's SRC_DST_QP profile; the 5-tuple ECMP
  hashes (SA, DA, flow label, next header, ports); the deep hash (APN ID, DestQP), with the
  scenario's RoCE APN ID for RoCEv2 packets and its mice APN ID for the rest (the host's
  traffic carries no APN: the headend's APN profile gives it one);
* the frame length counted is the original length of the record (Ethernet frame octets);
* packets that are neither IPv4 nor IPv6 are skipped and counted.

The capture is read twice, streaming: once to learn its span, packets, octets and sketch
keys (RoCE QPs first: the report's "elephant QPs"), once to run the policies on it. Memory
is bounded by the batch and the model's chunk, plus a few words per distinct sketch key.
Timestamps are taken relative to the first packet; a packet older than the chunk being
built (captures of several queues are not always in order) is counted at the chunk's start.
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from icpn.study.policies import FlowColumns, deep_hash_members, ecmp_5tuple_members
from icpn.study.scenarios import Scenario
from icpn.study.traffic import Chunk, Rates

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]

#: Octets of each frame decoded: Ethernet + 2 tags + IPv6 + 3 extension headers of up to
#: 64 octets + UDP + BTH fit (longer extension headers: ports and DestQP read as 0).
HEAD = 320
BATCH = 1 << 16
ROCE_PORT = 4791
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL = 1, 101, 113
#: Other link types some tools write for raw IP.
RAW_LINKTYPES = (LINKTYPE_RAW, 12, 14)


class TraceError(ValueError):
    """The capture cannot be read (named with the file and, where known, the record)."""


@dataclass(frozen=True)
class Batch:
    """Decoded packets (IP only), as columns."""

    time_s: F64  # absolute, seconds
    length: I64  # original frame length
    src: U8  # (n, 16)
    dst: U8
    flow_label: U32
    proto: npt.NDArray[np.uint8]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    dest_qp: U32
    skipped: int  # records that were not IP

    def __len__(self) -> int:
        return len(self.time_s)


def read_batches(path: Path, batch: int = BATCH) -> Iterator[Batch]:
    """The capture's IP packets in batches, streaming."""
    from scapy.error import Scapy_Exception
    from scapy.utils import RawPcapReader

    if not path.is_file():
        raise TraceError(f"{path}: no such capture file")
    try:
        reader = RawPcapReader(str(path))
    except Scapy_Exception as exc:
        raise TraceError(f"{path}: not a pcap or pcapng capture ({exc})") from exc
    with reader:
        pcapng = hasattr(reader, "interfaces")
        linktype = getattr(reader, "linktype", LINKTYPE_ETHERNET)
        scale = 1e-9 if getattr(reader, "nano", False) else 1e-6
        heads: list[bytes] = []
        metas: list[Any] = []
        record = 0
        # The cyclic GC would walk the batch's records (tens of thousands of tuples, none in
        # a cycle) again and again while they pile up: off while a batch fills.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for data, meta in reader:
                heads.append(data[:HEAD])
                metas.append(meta)
                if len(heads) == batch:
                    record += len(heads)
                    decoded = _decode_records(heads, metas, pcapng, linktype, scale, path, record)
                    heads, metas = [], []
                    if collecting:
                        gc.enable()
                    yield decoded
                    gc.disable()
        finally:
            if collecting:
                gc.enable()
        if heads:
            record += len(heads)
            yield _decode_records(heads, metas, pcapng, linktype, scale, path, record)


def _decode_records(
    heads: list[bytes],
    metas: list[Any],
    pcapng: bool,
    linktype: int,
    scale: float,
    path: Path,
    record: int,
) -> Batch:
    """A batch of the reader's records: timestamps, lengths and link types, then decoded."""
    if not pcapng:  # (sec, usec, wirelen, caplen): flattened in C
        flat = itertools.chain.from_iterable(metas)
        m = np.fromiter(flat, dtype=np.float64, count=4 * len(metas)).reshape(-1, 4)
        lengths = m[:, 2].astype(np.int64)
        links = np.full(len(metas), linktype, dtype=np.int64)
        return decode(heads, m[:, 0] + m[:, 1] * scale, lengths, links, path, record)
    # pcapng: (linktype, tsresol, tshigh, tslow, wirelen, comments, ...), transposed in C.
    fields = list(zip(*metas, strict=True))

    def column(i: int) -> npt.NDArray[np.float64]:
        return np.array(fields[i], dtype=np.float64)

    times = (column(2) * 2.0**32 + column(3)) / column(1)
    lengths, links = column(4).astype(np.int64), column(0).astype(np.int64)
    return decode(heads, times, lengths, links, path, record)


def _u16(head: U8, at: I64) -> npt.NDArray[np.int64]:
    return (head[_rows(head), at].astype(np.int64) << 8) | head[_rows(head), at + 1]


def _rows(head: U8) -> I64:
    return np.arange(head.shape[0])


def decode(
    heads: list[bytes],
    times: F64,
    lengths: I64,
    links: I64,
    path: Path,
    last_record: int,
) -> Batch:
    """Decode a batch of frames' first octets (see the module doc for what is read)."""
    n = len(heads)
    width = HEAD + 64  # slack: offsets computed from garbage read past short frames
    head = np.zeros((n, width), dtype=np.uint8)
    captured = np.fromiter(map(len, heads), dtype=np.int64, count=n)
    flat = np.frombuffer(b"".join(heads), dtype=np.uint8)
    if np.all(captured == HEAD):
        head[:, :HEAD] = flat.reshape(n, HEAD)
    else:  # each frame's octets to the start of its row
        starts = np.cumsum(captured) - captured
        shift = np.repeat(np.arange(n, dtype=np.int64) * width - starts, captured)
        head.ravel()[np.arange(len(flat)) + shift] = flat
    link = links
    rows = _rows(head)
    known = np.isin(link, (LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, *RAW_LINKTYPES))
    if not known.any():
        raise TraceError(
            f"{path}: records up to {last_record}: link type {int(link[0])} is not supported "
            "(Ethernet, raw IP or Linux cooked)"
        )
    # The network layer's offset and ethertype.
    l3 = np.zeros(n, dtype=np.int64)
    ethertype = np.zeros(n, dtype=np.int64)
    eth = link == LINKTYPE_ETHERNET
    l3[eth] = 14
    ethertype[eth] = _u16(head, np.full(n, 12))[eth]
    for _ in range(2):  # 802.1Q / 802.1ad tags
        tagged = eth & np.isin(ethertype, (0x8100, 0x88A8))
        ethertype[tagged] = _u16(head, l3 + 2)[tagged]
        l3[tagged] += 4
    sll = link == LINKTYPE_LINUX_SLL
    l3[sll] = 16
    ethertype[sll] = _u16(head, np.full(n, 14))[sll]
    raw = np.isin(link, RAW_LINKTYPES)
    version = head[rows, l3] >> 4
    ethertype[raw & (version == 6)] = 0x86DD
    ethertype[raw & (version == 4)] = 0x0800
    v6, v4 = ethertype == 0x86DD, ethertype == 0x0800
    v6 &= (head[rows, l3] >> 4) == 6
    v4 &= (head[rows, l3] >> 4) == 4
    src = np.zeros((n, 16), dtype=np.uint8)
    dst = np.zeros((n, 16), dtype=np.uint8)
    cols = np.arange(16)
    src[v6] = head[rows[v6, None], l3[v6, None] + 8 + cols]
    dst[v6] = head[rows[v6, None], l3[v6, None] + 24 + cols]
    flow_label = np.zeros(n, dtype=np.uint32)
    fl = (
        (head[rows, l3 + 1].astype(np.uint32) & 0x0F) << 16
        | head[rows, l3 + 2].astype(np.uint32) << 8
        | head[rows, l3 + 3]
    )
    flow_label[v6] = fl[v6]
    proto = np.zeros(n, dtype=np.int64)
    l4 = np.zeros(n, dtype=np.int64)
    proto[v6] = head[rows, l3 + 6][v6]
    l4[v6] = l3[v6] + 40
    for _ in range(3):  # IPv6 extension headers: hop-by-hop, routing, destination options
        ext = v6 & np.isin(proto, (0, 43, 60))
        proto[ext] = head[rows, l4][ext]
        l4[ext] += (head[rows, l4 + 1][ext].astype(np.int64) + 1) * 8
        l4 = np.minimum(l4, HEAD)
    mapped = np.array([0] * 10 + [0xFF, 0xFF], dtype=np.uint8)
    src[v4, :12] = mapped
    dst[v4, :12] = mapped
    src[v4, 12:] = head[rows[v4, None], l3[v4, None] + 12 + cols[:4]]
    dst[v4, 12:] = head[rows[v4, None], l3[v4, None] + 16 + cols[:4]]
    proto[v4] = head[rows, l3 + 9][v4]
    l4[v4] = l3[v4] + (head[rows, l3][v4].astype(np.int64) & 0x0F) * 4
    fragment_offset = _u16(head, l3 + 6) & 0x1FFF
    ports = (v6 | (v4 & (fragment_offset == 0))) & np.isin(proto, (6, 17))
    sport = np.where(ports, _u16(head, l4), 0)
    dport = np.where(ports, _u16(head, l4 + 2), 0)
    roce = ports & (proto == 17) & (dport == ROCE_PORT)
    bth = l4 + 8
    qp = (
        head[rows, bth + 5].astype(np.uint32) << 16
        | head[rows, bth + 6].astype(np.uint32) << 8
        | head[rows, bth + 7]
    )
    dest_qp = np.where(roce, qp, 0).astype(np.uint32)
    ip = v6 | v4
    return Batch(
        time_s=times[ip],
        length=lengths[ip],
        src=src[ip],
        dst=dst[ip],
        flow_label=flow_label[ip],
        proto=proto[ip].astype(np.uint8),
        sport=sport[ip].astype(np.uint16),
        dport=dport[ip].astype(np.uint16),
        dest_qp=dest_qp[ip],
        skipped=int(n - np.count_nonzero(ip)),
    )


def _key_rows(batch: Batch) -> npt.NDArray[np.void]:
    """Each packet's sketch key (SA, DA, DestQP) as one 36-octet row."""
    qp = batch.dest_qp.astype(">u4").view(np.uint8).reshape(-1, 4)
    rows = np.ascontiguousarray(np.concatenate([batch.src, batch.dst, qp], axis=1))
    return rows.view(np.dtype((np.void, 36))).ravel()


@dataclass
class TraceSummary:
    """What the first pass learns: span, volume and the sketch keys (RoCE QPs first)."""

    path: Path
    packets: int
    octets: int
    first_s: float
    last_s: float
    skipped: int
    key_rows: list[bytes]  # sketch keys, RoCE QPs first
    roce_keys: int
    key_octets: F64  # each key's octets
    records_read: int

    @property
    def duration_s(self) -> float:
        """The span, and a microsecond more: the last packet falls in the last window."""
        return self.last_s - self.first_s + 1e-6


def summarise(path: Path) -> TraceSummary:
    """The first pass over the capture."""
    packets = octets = skipped = records = 0
    first, last = np.inf, -np.inf
    key_octets: dict[bytes, int] = {}
    for batch in read_batches(path):
        records += len(batch) + batch.skipped
        skipped += batch.skipped
        if not len(batch):
            continue
        packets += len(batch)
        octets += int(batch.length.sum())
        first = min(first, float(batch.time_s.min()))
        last = max(last, float(batch.time_s.max()))
        unique, inverse = np.unique(_key_rows(batch), return_inverse=True)
        sums = np.bincount(inverse, weights=batch.length, minlength=len(unique))
        for row, total in zip(unique.tolist(), sums.tolist(), strict=True):
            key_octets[row] = key_octets.get(row, 0) + int(total)
    if packets == 0:
        raise TraceError(f"{path}: no IPv4 or IPv6 packets in {records} records")
    roce = [k for k in key_octets if k[32:36] != b"\0\0\0\0"]
    other = [k for k in key_octets if k[32:36] == b"\0\0\0\0"]
    rows = roce + other
    return TraceSummary(
        path=path,
        packets=packets,
        octets=octets,
        first_s=first,
        last_s=last,
        skipped=skipped,
        key_rows=rows,
        roce_keys=len(roce),
        key_octets=np.array([key_octets[k] for k in rows], dtype=np.float64),
        records_read=records,
    )


def describe(summary: TraceSummary) -> dict[str, object]:
    """The capture, for the report."""
    return {
        "trace_file": str(summary.path),
        "trace_records": summary.records_read,
        "trace_ip_packets": summary.packets,
        "trace_skipped_records": summary.skipped,
        "trace_octets": summary.octets,
        "trace_duration_s": round(summary.duration_s, 6),
        "trace_sketch_keys": len(summary.key_rows),
        "trace_roce_qp_keys": summary.roce_keys,
    }


def trace_scenario(scenario: Scenario, summary: TraceSummary) -> Scenario:
    """The scenario with the capture's span as its duration (windows, polls and the sketch
    window follow from it as for synthetic traffic)."""
    return dataclasses.replace(scenario, duration_s=summary.duration_s)


def trace_rates(scenario: Scenario, summary: TraceSummary) -> Rates:
    """As for synthetic traffic, the bundle is scaled so that the capture's mean rate is the
    scenario's offered load (results are ratios); ``scale`` says by how much."""
    offered = summary.octets / summary.duration_s
    bundle = offered / scenario.offered_load
    capacities = np.array([p.capacity_gbps for p in scenario.paths], dtype=np.float64)
    return Rates(
        packets_per_s=summary.packets / summary.duration_s,
        offered_bytes_per_s=offered,
        bundle_bytes_per_s=bundle,
        path_bytes_per_s=bundle * capacities / capacities.sum(),
        scale=bundle * 8 / (scenario.bundle_gbps * 1e9),
    )


class TraceKeys:
    """The capture's sketch keys as the model's key table (:class:`FlowTable`'s fields the
    model reads): addresses, DestQP and each key's list under the deep hash."""

    def __init__(self, scenario: Scenario, summary: TraceSummary) -> None:
        rows = np.frombuffer(b"".join(summary.key_rows), dtype=np.uint8).reshape(-1, 36)
        self.keys = len(summary.key_rows)
        self.elephants = summary.roce_keys
        self.key_src = np.ascontiguousarray(rows[:, :16])
        self.key_dst = np.ascontiguousarray(rows[:, 16:32])
        self.key_qp = rows[:, 32:36].copy().view(">u4").ravel().astype(np.uint32)
        mix = scenario.traffic
        self.paths = len(scenario.paths)
        self.apn = (mix.roce_apn_id, mix.mice_apn_id)
        self.key_deep = deep_hash_members(
            FlowColumns(
                src=self.key_src,
                dst=self.key_dst,
                proto=np.zeros(self.keys, np.uint8),
                sport=np.zeros(self.keys, np.uint16),
                dport=np.zeros(self.keys, np.uint16),
                dest_qp=self.key_qp,
                apn_id=np.where(self.key_qp != 0, *self.apn).astype(np.uint32),
            ),
            self.paths,
        )
        self.index = {row: i for i, row in enumerate(summary.key_rows)}
        self.deep = self.key_deep[: self.elephants]

    def __len__(self) -> int:
        return self.keys


class TraceSource:
    """The capture as :class:`icpn.study.traffic.TrafficSource`'s ``chunk(t0, t1)``: packets
    of [t0, t1) relative to the first packet, in time order, streaming."""

    def __init__(self, scenario: Scenario, summary: TraceSummary) -> None:
        self.rates = trace_rates(scenario, summary)
        self.flows = TraceKeys(scenario, summary)
        self.summary = summary
        self.elephant_bytes_per_s = summary.key_octets[: summary.roce_keys] / summary.duration_s
        self._batches = read_batches(summary.path)
        self._pending: list[Chunk] = []
        self._done = False

    @property
    def exhausted(self) -> bool:
        """Every packet of the capture handed out."""
        return self._done and not self._pending

    def _columns(self, batch: Batch) -> Chunk:
        flows = self.flows
        unique, inverse = np.unique(_key_rows(batch), return_inverse=True)
        ids = np.array([flows.index[row] for row in unique.tolist()], dtype=np.int64)
        key = ids[inverse]
        five = np.concatenate(
            [
                batch.src,
                batch.dst,
                batch.flow_label.astype(">u4").view(np.uint8).reshape(-1, 4),
                batch.proto[:, None],
                batch.sport.astype(">u2").view(np.uint8).reshape(-1, 2),
                batch.dport.astype(">u2").view(np.uint8).reshape(-1, 2),
                batch.dest_qp.astype(">u4").view(np.uint8).reshape(-1, 4),
            ],
            axis=1,
        )
        tuples, which = np.unique(
            np.ascontiguousarray(five).view(np.dtype((np.void, five.shape[1]))).ravel(),
            return_inverse=True,
        )
        t = np.frombuffer(tuples.tobytes(), dtype=np.uint8).reshape(len(tuples), -1)
        columns = FlowColumns(
            src=t[:, :16],
            dst=t[:, 16:32],
            proto=t[:, 36].copy(),
            sport=t[:, 37:39].copy().view(">u2").ravel().astype(np.uint16),
            dport=t[:, 39:41].copy().view(">u2").ravel().astype(np.uint16),
            dest_qp=t[:, 41:45].copy().view(">u4").ravel().astype(np.uint32),
            apn_id=np.zeros(len(t), np.uint32),
            flow_label=t[:, 32:36].copy().view(">u4").ravel().astype(np.uint32),
        )
        columns = dataclasses.replace(
            columns, apn_id=np.where(columns.dest_qp != 0, *flows.apn).astype(np.uint32)
        )
        ecmp = ecmp_5tuple_members(columns, flows.paths)[which]
        deep = deep_hash_members(columns, flows.paths)[which]
        time = batch.time_s - self.summary.first_s
        return Chunk(time, key, batch.length, ecmp, deep)

    def chunk(self, t0: float, t1: float) -> Chunk:
        """The packets of [t0, t1) (and any late one older than t0, counted at t0)."""
        while not self._done and not any(len(c) and c.time_s.max() >= t1 for c in self._pending):
            batch = next(self._batches, None)
            if batch is None:
                self._done = True
            elif len(batch):
                self._pending.append(self._columns(batch))
        if not self._pending:
            empty = np.zeros(0, dtype=np.int64)
            return Chunk(np.zeros(0), empty, empty, empty, empty)
        parts = zip(*(p.columns() for p in self._pending), strict=True)
        merged = [np.concatenate(column) for column in parts]
        time = merged[0]
        inside = time < t1
        order = np.flatnonzero(inside)[np.argsort(time[inside], kind="stable")]
        rest = np.flatnonzero(~inside)
        self._pending = [Chunk(*(m[rest] for m in merged))] if len(rest) else []
        out = [m[order] for m in merged]
        out[0] = np.maximum(out[0], t0)
        return Chunk(*out)
