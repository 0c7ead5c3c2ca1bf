"""Trace reports (docs/telemetry-report.md) turned into paths and delays, with lost reports
found from sequence gaps and malformed datagrams counted by reason, never raised past
:meth:`TraceCollector.handle_datagram`: one bad datagram must not stop the collector.

Delays come from the IOAM node data (RFC 9197 section 4.4.2): the timestamp (seconds and
fraction, Trace-Type bits 2 and 3) is when the node *received* the packet, so the delay of
hop i (node i to node i+1) is t[i+1] - t[i]; it includes node i's own transit time and the
link, and it is only meaningful when the nodes' clocks agree (BMv2 counts from each switch's
start unless the controller set its wall clock, icpn.wallclock; it is reported as measured).
The transit delay (bit 4) is node-local and needs no synchronisation. What the two timestamp
fields mean is the namespace's choice (RFC 9197 section 5: PTP, NTP or POSIX): the collector
is told each namespace's format (PTP when not told, what icpn nodes write by default) and
converts every node's stamp to POSIX nanoseconds before subtracting, so icpn nodes and Linux
ioam6 nodes (POSIX) of one namespace give per-hop delays.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from icpn.constants import IOAM_OPT_TYPE, REPORT_HEADER_OCTETS, IoamOptionType, TimestampFormat
from icpn.packets.ioam import IOAMNode, IOAMTrace, TraceTypeError, node_len_words
from icpn.packets.report import (
    FLAG_ALTMARK,
    FLAG_COLOUR,
    FLAG_OVERFLOW,
    REPORT_TYPE_IOAM_TRACE,
    InnerFlow,
    TraceReport,
)
from icpn.wallclock import timestamp_ns

NS_PER_S = 1_000_000_000
#: Sequence numbers are 32 bits and wrap (serial number arithmetic, RFC 1982).
SEQUENCE_MODULUS = 1 << 32
#: A sequence this far *behind* the expected one is taken as the exporter restarting (its
#: counter starts at 0 again), not as a late report.
RESTART_WINDOW = 1 << 16
#: Latest records kept for the live view, one per (exporter, flow); the oldest goes first.
MAX_FLOWS_KEPT = 4096
#: setns(2)'s namespace type for network namespaces (linux/sched.h).
CLONE_NEWNET = 0x40000000


class MalformedReport(ValueError):
    """A datagram that is not a usable trace report; ``reason`` is a short label used as
    the counter key (and Prometheus label)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class TraceRecord:
    """One decoded report. Node-indexed tuples are in path order (first hop first);
    ``hop_delays_ns[i]`` is the delay from ``path[i]`` to ``path[i + 1]``."""

    received_at: float  # collector's wall clock, seconds since the epoch
    exporter: int  # node id in the report header
    sequence: int
    export_time_ns: int  # exporter's clock (BMv2: its wall clock once the controller set it)
    overflow: bool
    namespace_id: int
    trace_type: int
    nodes: tuple[IOAMNode, ...]
    flow: InnerFlow | None
    timestamp_format: TimestampFormat = TimestampFormat.PTP  # the namespace's
    #: The reported packet's alternate-marking colour (report flags 0x40/0x20), None when
    #: it carried no marking (or its exporter does not say).
    altmark_colour: int | None = None

    @property
    def path(self) -> tuple[int | None, ...]:
        """Node ids in path order (``None`` where the Trace-Type carries no node id)."""
        return tuple(n.node_id if n.node_id is not None else n.node_id_wide for n in self.nodes)

    @property
    def timestamps_ns(self) -> tuple[int | None, ...]:
        """When each node received the packet, in POSIX ns of its own clock, decoded in the
        namespace's timestamp format (None: not traced)."""
        return tuple(
            timestamp_ns(n.ts_sec, n.ts_frac, self.timestamp_format)
            if n.ts_sec is not None and n.ts_frac is not None
            else None
            for n in self.nodes
        )

    @property
    def hop_delays_ns(self) -> tuple[int | None, ...]:
        """Per-hop delay from consecutive receive timestamps (RFC 9197 4.4.2.3/4.4.2.4)."""
        ts = self.timestamps_ns
        return tuple(
            b - a if a is not None and b is not None else None for a, b in itertools.pairwise(ts)
        )

    @property
    def transit_delays_ns(self) -> tuple[int | None, ...]:
        """Time each node held the packet (RFC 9197 4.4.2.5), node-local."""
        return tuple(n.transit_delay for n in self.nodes)

    @property
    def end_to_end_ns(self) -> int | None:
        """First node's receive time to the report's export time (same-clock caveat)."""
        ts = self.timestamps_ns
        return self.export_time_ns - ts[0] if ts and ts[0] is not None else None


def decode_report(
    data: bytes,
    received_at: float | None = None,
    timestamp_formats: Mapping[int, TimestampFormat] | None = None,
) -> TraceRecord:
    """Decode a report's UDP payload; raise :class:`MalformedReport` on anything wrong.

    Checks are explicit rather than left to scapy, which decodes garbage without complaint:
    version and type, the IOAM container (type 0x31, pre-allocated trace, the only kind
    the data plane fills; RFC 9486 section 3), and the trace header's consistency (NodeLen
    as the Trace-Type implies, RemainingLen within the data, whole nodes; RFC 9197 section 4.4.1).
    """
    if len(data) < REPORT_HEADER_OCTETS:
        raise MalformedReport("short", f"{len(data)} octets, the header alone is 20")
    report = TraceReport(data)
    if report.version != 1:
        raise MalformedReport("version", f"report version {report.version}, not 1")
    if report.type != REPORT_TYPE_IOAM_TRACE:
        raise MalformedReport("type", f"report type {report.type}, not an IOAM trace")
    body = bytes(report.body)
    if len(body) < 4 or len(body) < body[1] + 2:
        raise MalformedReport("option", f"body of {len(body)} octets holds no whole IOAM option")
    otype, optlen, ioam_type = body[0], body[1], body[3]
    if otype != IOAM_OPT_TYPE:
        raise MalformedReport("option", f"option type {otype:#04x}, not IOAM {IOAM_OPT_TYPE:#04x}")
    if ioam_type != IoamOptionType.PREALLOCATED_TRACE:
        raise MalformedReport("option", f"IOAM-Opt-Type {ioam_type} is no pre-allocated trace")
    if optlen < 2 + 8:
        raise MalformedReport("trace", f"option length {optlen} leaves no trace header")
    trace = IOAMTrace(body[4 : 2 + optlen])
    try:
        words = node_len_words(trace.trace_type)
    except TraceTypeError as exc:
        raise MalformedReport("trace_type", str(exc)) from exc
    node_data = bytes(trace.node_data)
    if words == 0 or trace.nodelen != words:
        raise MalformedReport(
            "trace", f"NodeLen {trace.nodelen}, Trace-Type {trace.trace_type:#08x} implies {words}"
        )
    filled = len(node_data) - trace.remlen * 4
    if filled < 0 or len(node_data) % 4 or filled % (words * 4):
        raise MalformedReport(
            "trace",
            f"RemainingLen {trace.remlen} words and {len(node_data)} octets of node data "
            f"do not leave whole nodes of {words} words",
        )
    try:
        flow: InnerFlow | None = report.inner_flow()
    except ValueError:
        flow = None  # the trace is still good; the flow is just not identified
    return TraceRecord(
        received_at=time.time() if received_at is None else received_at,
        exporter=int(report.node_id),
        sequence=int(report.sequence),
        export_time_ns=int(report.seconds) * NS_PER_S + int(report.nanoseconds),
        overflow=bool(report.flags & FLAG_OVERFLOW),
        namespace_id=int(trace.namespace_id),
        trace_type=int(trace.trace_type),
        nodes=tuple(trace.nodes()),
        flow=flow,
        timestamp_format=(timestamp_formats or {}).get(
            int(trace.namespace_id), TimestampFormat.PTP
        ),
        altmark_colour=(
            int(bool(report.flags & FLAG_COLOUR)) if report.flags & FLAG_ALTMARK else None
        ),
    )


@dataclass
class SequenceState:
    """What one exporter's sequence numbers have told us."""

    expected: int | None = None
    received: int = 0
    lost: int = 0  # reports skipped by forward gaps
    late: int = 0  # behind the expected number: reordered or duplicated
    restarts: int = 0


class SequenceTracker:
    """Lost-report detection per exporter from the report sequence (+1 per report).

    A forward jump of k counts k - 1 lost; a report behind the expected number counts as
    late (it was counted lost when the gap opened; we do not guess whether it is a
    duplicate); one far behind is the exporter restarting and resynchronises.
    """

    def __init__(self) -> None:
        self.exporters: dict[int, SequenceState] = {}

    def observe(self, exporter: int, sequence: int) -> int:
        """Record a report; return how many reports this one shows lost just before it."""
        state = self.exporters.setdefault(exporter, SequenceState())
        state.received += 1
        if state.expected is None:
            state.expected = (sequence + 1) % SEQUENCE_MODULUS
            return 0
        ahead = (sequence - state.expected) % SEQUENCE_MODULUS
        behind = SEQUENCE_MODULUS - ahead
        gap = 0
        if ahead < SEQUENCE_MODULUS // 2:
            gap = ahead
            state.lost += gap
            state.expected = (sequence + 1) % SEQUENCE_MODULUS
        elif behind > RESTART_WINDOW:
            state.restarts += 1
            state.expected = (sequence + 1) % SEQUENCE_MODULUS
        else:
            state.late += 1
        return gap

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.exporters.values())


@dataclass
class TraceStats:
    """Counters over everything received."""

    datagrams: int = 0
    reports: int = 0
    malformed: Counter[str] = field(default_factory=Counter)


TraceSink = Callable[[TraceRecord, int], None]
"""Called with each good report and the number of reports lost just before it."""


class TraceCollector:
    """Decodes datagrams, tracks sequences, keeps the latest record per (exporter, flow)
    and hands every record to the sinks (CSV, Prometheus, ...)."""

    def __init__(
        self,
        sinks: list[TraceSink] | None = None,
        timestamp_formats: Mapping[int, TimestampFormat] | None = None,
    ) -> None:
        #: Each namespace's timestamp format (RFC 9197 5); PTP for those not listed.
        self.timestamp_formats = dict(timestamp_formats or {})
        self.sinks: list[TraceSink] = list(sinks or [])
        self.stats = TraceStats()
        self.sequences = SequenceTracker()
        self.latest: dict[tuple[int, InnerFlow | None], TraceRecord] = {}
        #: Reasons seen, for the operator (bounded: one entry per reason).
        self.last_error: dict[str, str] = {}

    def handle_datagram(self, data: bytes, received_at: float | None = None) -> TraceRecord | None:
        """Take one UDP payload; return its record, or None if it was malformed (counted)."""
        self.stats.datagrams += 1
        try:
            record = decode_report(data, received_at, self.timestamp_formats)
        except MalformedReport as exc:
            self.count_malformed(exc.reason, str(exc))
            return None
        except Exception as exc:  # scapy can raise anything on garbage
            self.count_malformed("undecodable", f"{type(exc).__name__}: {exc}")
            return None
        self.stats.reports += 1
        gap = self.sequences.observe(record.exporter, record.sequence)
        key = (record.exporter, record.flow)
        self.latest.pop(key, None)  # re-inserted last: the dict stays in recency order
        self.latest[key] = record
        if len(self.latest) > MAX_FLOWS_KEPT:
            del self.latest[next(iter(self.latest))]
        for sink in self.sinks:
            sink(record, gap)
        return record

    def count_malformed(self, reason: str, detail: str) -> None:
        self.stats.malformed[reason] += 1
        self.last_error[reason] = detail


class ReportProtocol(asyncio.DatagramProtocol):
    """asyncio UDP endpoint feeding a :class:`TraceCollector`."""

    def __init__(self, collector: TraceCollector) -> None:
        self.collector = collector

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.collector.handle_datagram(data)

    def error_received(self, exc: Exception) -> None:
        self.collector.count_malformed("socket", str(exc))


def bind_in_netns(host: str, port: int, netns: str | None = None) -> socket.socket:
    """A UDP socket bound to (host, port), created inside the network namespace ``netns``
    (a path such as ``/proc/PID/ns/net``; None: this process's own).

    A socket belongs to the namespace it was created in, for good: so the collector can
    receive reports where they arrive (the collector host of ``icpn net``) while the rest
    of the process, its gRPC connections to the switches' 127.0.0.1 included, stays in the
    root namespace. Only the calling thread enters ``netns`` (setns(2)), and only for the
    socket() call; it returns to its own namespace before anything else runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if netns is None:
        sock = socket.socket(family, socket.SOCK_DGRAM)
    else:
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/thread-self/ns/net", "rb") as own, open(netns, "rb") as target:
            if libc.setns(target.fileno(), CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"cannot enter network namespace {netns}: {os.strerror(err)}")
            try:
                sock = socket.socket(family, socket.SOCK_DGRAM)
            finally:
                if libc.setns(own.fileno(), CLONE_NEWNET) != 0:
                    # Never carry on in the wrong namespace: every connection would break.
                    os._exit(70)
    try:
        if family == socket.AF_INET6 and host in ("::", ""):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


async def listen(
    collector: TraceCollector, host: str, port: int, netns: str | None = None
) -> tuple[asyncio.DatagramTransport, tuple[str, int]]:
    """Bind a UDP socket for reports (in ``netns`` if given, :func:`bind_in_netns`);
    return the transport and the bound (host, port) (port 0 picks a free one, which tests
    use)."""
    loop = asyncio.get_running_loop()
    sock = bind_in_netns(host, port, netns)
    transport, _ = await loop.create_datagram_endpoint(lambda: ReportProtocol(collector), sock=sock)
    sockname = transport.get_extra_info("sockname")
    return transport, (str(sockname[0]), int(sockname[1]))
