"""icpn.wallclock: IOAM timestamp formats (RFC 9197 5), the clock-probe estimate, the
``wall_clock`` entry, and the collector decoding each namespace's format."""

from __future__ import annotations

import finsy as fy
import pytest

from icpn import wallclock
from icpn.collector.traces import TraceRecord
from icpn.constants import NTP_FRACTION_PER_US, NTP_UNIX_EPOCH_OFFSET_S, TimestampFormat
from icpn.packets.ioam import IOAMNode
from icpn.wallclock import ClockSample, correction_ns, timestamp_ns

T_NS = 1_795_000_000_123_456_000  # a POSIX time in 2026, whole microseconds


def test_the_three_formats_decode_to_the_same_instant() -> None:
    s, us = divmod(T_NS // 1000, 1_000_000)
    assert timestamp_ns(s, us, TimestampFormat.POSIX) == T_NS
    assert timestamp_ns(s, us * 1000, TimestampFormat.PTP) == T_NS
    ntp_frac = us * (1 << 32) // 1_000_000
    ntp = timestamp_ns(s + NTP_UNIX_EPOCH_OFFSET_S, ntp_frac, TimestampFormat.NTP)
    assert 0 <= T_NS - ntp <= 1  # the 2^-32 s fraction, floored twice


def test_ntp_fraction_multiplier_is_exact_for_every_microsecond() -> None:
    """What the data plane computes, (us * m) >> 34, against the exact fraction."""
    for us in (*range(0, 1_000_000, 997), 999_999, 627_966, 643_591):
        assert (us * NTP_FRACTION_PER_US) >> 34 == us * (1 << 32) // 1_000_000, us


def test_correction_takes_the_shortest_round_trip_midpoint() -> None:
    samples = [
        ClockSample(sent_ns=1_000, received_ns=9_000, switch_ns=100),  # slow: ignored
        ClockSample(sent_ns=20_000, received_ns=21_000, switch_ns=15_000),
        ClockSample(sent_ns=30_000, received_ns=33_000, switch_ns=25_000),
    ]
    assert correction_ns(samples) == 20_500 - 15_000


def test_correction_needs_a_sample() -> None:
    with pytest.raises(ValueError, match="no clock probe"):
        correction_ns([])


def test_wall_clock_entry_rounds_to_microseconds() -> None:
    entry = wallclock.wall_clock(T_NS + 600)
    assert entry.is_default_action
    assert isinstance(entry.action, fy.P4TableAction)
    args = dict(entry.action.args)
    assert (args["seconds"], args["microseconds"]) == (T_NS // 10**9, 123_457)
    with pytest.raises(ValueError):
        wallclock.wall_clock(-1)


def test_probe_round_trip_decodes_its_stamp() -> None:
    frame = wallclock.probe_frame(
        0x77,
        src_mac="02:00:00:00:00:01",
        dst_mac="02:00:00:00:00:02",
        src="::1",
        dst="::2",
        sequence=5,
    )
    assert wallclock.probe_stamp_ns(frame, TimestampFormat.PTP) is None  # not stamped yet
    assert wallclock.probe_stamp_ns(b"\x00" * 60, TimestampFormat.PTP) is None


def _record(nodes: list[IOAMNode], fmt: TimestampFormat) -> TraceRecord:
    return TraceRecord(
        received_at=0.0,
        exporter=1,
        sequence=0,
        export_time_ns=0,
        overflow=False,
        namespace_id=0x10,
        trace_type=0xF00000,
        nodes=tuple(nodes),
        flow=None,
        timestamp_format=fmt,
    )


def test_collector_hop_delays_use_the_namespace_format() -> None:
    # POSIX: microsecond fractions, as Linux ioam6 writes them.
    a = IOAMNode(node_id=1, ts_sec=100, ts_frac=999_900)
    b = IOAMNode(node_id=2, ts_sec=101, ts_frac=50)
    assert _record([a, b], TimestampFormat.POSIX).hop_delays_ns == (150_000,)
    # The same numbers read as PTP nanoseconds would be ~1 s apart: the format matters.
    assert _record([a, b], TimestampFormat.PTP).hop_delays_ns == (10**9 + 50 - 999_900,)
