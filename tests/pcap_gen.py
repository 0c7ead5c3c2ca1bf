"""Captures for the trace tests and bench/trace.py, written streaming (block by block), so
that a capture larger than memory can be made without holding it.

Each record is one of: RoCEv2 over IPv6 (UDP 4791, BTH with a DestQP; some 802.1Q-tagged),
TCP over IPv4, or ARP (not IP: skipped by the reader). Frames are ``frame`` octets (all
captured, or cut to ``snaplen``), timestamps ``1 / rate`` apart.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ROCE_QPS = (0x000101, 0x000202, 0x000303, 0x000404)
ROCE_SRC = bytes.fromhex("20010db8000100000000000000000001")
ROCE_DST = bytes.fromhex("20010db8000200000000000000000001")
MICE_SRC = bytes((10, 0, 0, 1))
MICE_DST = bytes((10, 0, 1, 1))
MICE_PORTS = 64
FLOW_LABEL = 0x12345
#: Share of records: RoCE (tagged or not), TCP, ARP.
KINDS = ("roce", "roce_vlan", "tcp", "arp")
KIND_SHARE = (0.45, 0.15, 0.35, 0.05)


def _templates(frame: int) -> list[bytes]:
    mac = bytes.fromhex("020000000001020000000002")
    udp_len = frame - 14 - 40
    roce = (
        mac
        + b"\x86\xdd"
        + struct.pack("!IHBB", (6 << 28) | FLOW_LABEL, udp_len, 17, 64)
        + ROCE_SRC
        + ROCE_DST
        + struct.pack("!HHHH", 49152, 4791, udp_len, 0)
        + bytes((0x04, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0))  # BTH, DestQP at 5..7
    )
    vlan = mac + b"\x81\x00\x00\x64" + roce[12:]
    tcp = (
        mac
        + b"\x08\x00"
        + struct.pack("!BBHHHBBH", 0x45, 0, frame - 14, 0, 0, 64, 6, 0)
        + MICE_SRC
        + MICE_DST
        + struct.pack("!HHIIBBHHH", 40000, 443, 0, 0, 0x50, 0x10, 1024, 0, 0)
    )
    arp = mac + b"\x08\x06" + bytes(28)
    return [t.ljust(frame, b"\0")[:frame] for t in (roce, vlan[:frame], tcp, arp)]


def write_pcap(
    path: Path,
    packets: int,
    *,
    frame: int = 1500,
    snaplen: int | None = None,
    rate_pps: float = 1e6,
    seed: int = 1,
    block: int = 1 << 14,
) -> dict[str, int]:
    """Write a little-endian microsecond pcap; returns what it holds (records per kind and
    octets), for the tests to compare with."""
    rng = np.random.default_rng(seed)
    caplen = frame if snaplen is None else min(frame, snaplen)
    templates = np.frombuffer(b"".join(_templates(frame)), dtype=np.uint8).reshape(4, frame)
    counts = dict.fromkeys(KINDS, 0)
    qp_offset = {0: 14 + 40 + 8 + 5, 1: 18 + 40 + 8 + 5}
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        done = 0
        while done < packets:
            n = min(block, packets - done)
            kind = rng.choice(4, size=n, p=KIND_SHARE)
            records = np.zeros((n, 16 + caplen), dtype=np.uint8)
            records[:, 16:] = templates[kind, :caplen]
            t_us = np.rint((done + np.arange(n)) * 1e6 / rate_pps).astype(np.int64)
            header = np.zeros((n, 4), dtype="<u4")
            header[:, 0] = t_us // 1_000_000
            header[:, 1] = t_us % 1_000_000
            header[:, 2] = caplen
            header[:, 3] = frame
            records[:, :16] = header.view(np.uint8).reshape(n, 16)
            qp = np.asarray(ROCE_QPS, dtype=">u4")[rng.integers(0, len(ROCE_QPS), n)]
            qp_octets = qp.view(np.uint8).reshape(n, 4)[:, 1:]
            for k, at in qp_offset.items():
                rows = np.flatnonzero(kind == k)
                if at + 3 <= caplen:
                    records[rows[:, None], 16 + at + np.arange(3)] = qp_octets[rows]
            tcp = np.flatnonzero(kind == 2)
            sport = (40000 + rng.integers(0, MICE_PORTS, len(tcp))).astype(">u2")
            records[tcp[:, None], 16 + 34 + np.arange(2)] = sport.view(np.uint8).reshape(-1, 2)
            out.write(records.tobytes())
            for k, name in enumerate(KINDS):
                counts[name] += int(np.count_nonzero(kind == k))
            done += n
    counts["records"] = packets
    counts["ip_octets"] = (packets - counts["arp"]) * frame
    return counts
