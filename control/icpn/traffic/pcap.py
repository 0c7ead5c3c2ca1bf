"""Streaming pcap output and input: one frame in memory at a time, whatever the trace size."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from scapy.data import DLT_EN10MB
from scapy.utils import RawPcapReader, RawPcapWriter

from icpn.traffic.generators import Frame


@dataclass(frozen=True)
class PcapSummary:
    path: Path
    packets: int
    bytes: int
    duration_s: float  #: time of the last frame minus that of the first


def write_pcap(
    frames: Iterable[Frame],
    path: Path | str,
    *,
    limit: int | None = None,
    epoch: float = 0.0,
) -> PcapSummary:
    """Write ``frames`` (at most ``limit``) to an Ethernet pcap with nanosecond timestamps
    ``epoch + frame.time``; the parent directory is created. Streams: nothing is kept."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    packets = total = 0
    first = last = 0.0
    writer = RawPcapWriter(str(out), linktype=DLT_EN10MB, nano=True, sync=False)
    try:
        writer.write_header(None)  # an empty trace is still a valid pcap
        for frame in itertools.islice(frames, limit):
            stamp = epoch + frame.time
            sec = int(stamp)
            writer.write_packet(frame.data, sec=sec, usec=round((stamp - sec) * 1e9))
            if packets == 0:
                first = frame.time
            last = frame.time
            packets += 1
            total += len(frame.data)
    finally:
        writer.close()
    return PcapSummary(out, packets, total, last - first)


def read_frames(path: Path | str, *, limit: int | None = None) -> Iterator[bytes]:
    """The frames of a pcap as bytes, streamed (at most ``limit``)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    reader = RawPcapReader(str(path))
    try:
        for data, _meta in itertools.islice(reader, limit):
            yield bytes(data)
    finally:
        reader.close()
