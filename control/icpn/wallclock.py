"""The wall clock of a BMv2 switch, which has none: its timestamps count microseconds from
the switch's start. The controller keeps, per switch, the wall-clock time of that start in the
table ``wall_clock`` (``p4src/v1model/include/control/ifit.p4``); the switch adds it to every
IOAM timestamp, so traces written by icpn nodes and by hosts with real clocks (Linux ioam6)
can be subtracted from one another (RFC 9197 4.4.2.3-4).

How the start is found: clock probes. A probe is a packet with an IOAM trace of the
timestamp bits in a namespace the switch serves; the prober notes its own wall clock when it
sends the probe and when the probe comes back. The switch stamped it in between, at ingress;
the probe with the shortest round trip bounds that moment best, and its midpoint is taken
(the NTP estimate, RFC 5905 8). The correction is added to what the switch currently holds,
so the same probes refresh a running offset as the clocks drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import finsy as fy
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.constants import NTP_UNIX_EPOCH_OFFSET_S, TimestampFormat
from icpn.packets import IOAM, IOAMTrace, preallocated_trace

WALL_CLOCK = "wall_clock"
NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
#: Trace-Type of a probe: timestamp seconds and fraction (bits 2 and 3).
PROBE_TRACE_TYPE = 0x300000
#: UDP port of probes: unassigned, dynamic range (RFC 6335); for whoever captures them.
PROBE_UDP_PORT = 50506


def wall_clock(start_ns: int) -> fy.P4TableEntry:
    """The ``wall_clock`` default entry: the switch's clock 0 is POSIX time ``start_ns``.
    Write it with MODIFY (a default action is never inserted)."""
    if not 0 <= start_ns < (1 << 32) * NS_PER_S:
        raise ValueError(f"start {start_ns} ns is not a 32-bit POSIX second")
    us = (start_ns + NS_PER_US // 2) // NS_PER_US
    return fy.P4TableEntry(
        WALL_CLOCK,
        action=fy.P4TableAction(
            "set_wall_clock", seconds=us // 1_000_000, microseconds=us % 1_000_000
        ),
        is_default_action=True,
    )


def timestamp_ns(seconds: int, fraction: int, fmt: TimestampFormat) -> int:
    """An IOAM timestamp (Trace-Type bits 2 and 3) as POSIX nanoseconds (RFC 9197 5).

    PTP's epoch is TAI, ahead of UTC by the leap seconds; icpn writes PTP from the same UTC
    clock as POSIX, so the two compare directly (a collector mixing true PTP nodes would
    subtract the TAI-UTC offset here)."""
    if fmt is TimestampFormat.POSIX:
        return seconds * NS_PER_S + fraction * NS_PER_US
    if fmt is TimestampFormat.NTP:
        return (seconds - NTP_UNIX_EPOCH_OFFSET_S) * NS_PER_S + (fraction * NS_PER_S >> 32)
    return seconds * NS_PER_S + fraction


@dataclass(frozen=True)
class ClockSample:
    """One probe: the prober's wall clock at sending and at receiving it back (POSIX ns),
    and what the switch wrote (POSIX ns under the offset it held then)."""

    sent_ns: int
    received_ns: int
    switch_ns: int

    @property
    def round_trip_ns(self) -> int:
        return self.received_ns - self.sent_ns


def correction_ns(samples: Sequence[ClockSample]) -> int:
    """How far the switch's timestamps are behind the wall clock (add it to the start it
    holds): from the probe with the shortest round trip, its midpoint minus its stamp."""
    if not samples:
        raise ValueError("no clock probe came back")
    best = min(samples, key=lambda s: s.round_trip_ns)
    if best.round_trip_ns < 0:
        raise ValueError(f"probe received before it was sent: {best}")
    return best.sent_ns + best.round_trip_ns // 2 - best.switch_ns


def probe_frame(
    namespace_id: int, *, src_mac: str, dst_mac: str, src: str, dst: str, sequence: int
) -> bytes:
    """A probe: IPv6 with an IOAM pre-allocated trace (one node, timestamps only) in
    ``namespace_id``, UDP to PROBE_UDP_PORT carrying ``sequence``."""
    trace = IOAM(data=preallocated_trace(PROBE_TRACE_TYPE, 1, namespace_id))
    return bytes(
        Ether(src=src_mac, dst=dst_mac)
        / IPv6(src=src, dst=dst)
        / IPv6ExtHdrHopByHop(options=[trace])
        / UDP(sport=PROBE_UDP_PORT, dport=PROBE_UDP_PORT)
        / Raw(sequence.to_bytes(4, "big"))
    )


def probe_stamp_ns(frame: bytes, fmt: TimestampFormat) -> tuple[int, int] | None:
    """(sequence, switch stamp in POSIX ns) of a probe that came back, or None if the frame
    is no probe or carries no stamp."""
    pkt = Ether(frame)
    if IOAMTrace not in pkt or UDP not in pkt or pkt[UDP].dport != PROBE_UDP_PORT:
        return None
    nodes = pkt[IOAMTrace].nodes()
    payload = bytes(pkt[UDP].payload)
    if len(nodes) != 1 or len(payload) < 4:
        return None
    node = nodes[0]
    if node.ts_sec is None or node.ts_frac is None:
        return None
    return int.from_bytes(payload[:4], "big"), timestamp_ns(node.ts_sec, node.ts_frac, fmt)


def measure(
    send: Callable[[bytes], None],
    receive: Callable[[float], bytes | None],
    frame_for: Callable[[int], bytes],
    fmt: TimestampFormat,
    *,
    probes: int = 16,
    timeout_s: float = 1.0,
) -> list[ClockSample]:
    """Send ``probes`` probes one at a time and collect the samples of those that come back.
    ``receive(timeout)`` returns the next frame seen (or None at the timeout); frames that are
    not the awaited probe are skipped. Bounded: ``probes`` rounds of at most ``timeout_s``."""
    samples: list[ClockSample] = []
    for sequence in range(probes):
        frame = frame_for(sequence)
        sent = time.time_ns()
        send(frame)
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            back = receive(left)
            received = time.time_ns()
            if back is None:
                break
            stamp = probe_stamp_ns(back, fmt)
            if stamp is not None and stamp[0] == sequence:
                samples.append(ClockSample(sent, received, stamp[1]))
                break
    return samples
