"""P4Runtime entities and counter reads for IFIT (``p4src/v1model/include/control/ifit.p4``):
telemetry profiles (alternate marking at the headend), IOAM node identities per namespace,
ECN thresholds, and the per-(FlowMonID, colour) alternate-marking counters."""

from __future__ import annotations

from dataclasses import dataclass

import finsy as fy
from finsy.p4entity import P4Replica

from icpn.constants import (
    ALTMARK_FLOW_SLOTS,
    IOAM_SUPPORTED_TRACE_TYPE,
    REPORT_UDP_PORT,
    TimestampFormat,
)
from icpn.packets.ioam import node_len_words

IFIT_PROFILE = "ifit_profile"
#: Largest pre-allocation one IOAM option holds: (255 - 2 - 8) // 4 words, and the headend's
#: free-space chunks (1..32 words) add up to at most 63.
MAX_PREALLOCATED_WORDS = 61
IOAM_NODE = "ioam_node"
IOAM_EXPORT = "ioam_export"
IOAM_REPORT = "ioam_report"
ECN_MARKING = "ecn_marking"
ALTMARK_COUNTER = "altmark_colors"


@dataclass(frozen=True)
class AltMarking:
    """Alternate marking at the headend: FlowMonID ``flow_mon_id``; the colour L alternates
    every 2^``period_log2_us`` microseconds (RFC 9341 wants periods far above the path's
    delay and reordering); D marks one packet in 2^``delay_sample_log2``."""

    flow_mon_id: int
    period_log2_us: int
    delay_sample_log2: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.flow_mon_id < (1 << 20):
            raise ValueError(f"FlowMonID is 20 bits, {self.flow_mon_id} is not")
        if not 0 <= self.period_log2_us < 48 or not 0 <= self.delay_sample_log2 < 32:
            raise ValueError("period_log2_us must be 0..47 and delay_sample_log2 0..31")


@dataclass(frozen=True)
class IoamTracing:
    """An IOAM pre-allocated trace with room for ``max_nodes`` nodes of ``trace_type``."""

    namespace_id: int
    trace_type: int
    max_nodes: int

    @property
    def node_len(self) -> int:
        return node_len_words(self.trace_type)

    @property
    def free_words(self) -> int:
        return self.node_len * self.max_nodes

    def __post_init__(self) -> None:
        if not 0 <= self.namespace_id < (1 << 16):
            raise ValueError(f"IOAM namespace is 16 bits, {self.namespace_id} is not")
        if self.trace_type & ~IOAM_SUPPORTED_TRACE_TYPE & 0xFFFFFF or self.node_len == 0:
            raise ValueError(
                f"trace type {self.trace_type:#08x}: need bits within "
                f"{IOAM_SUPPORTED_TRACE_TYPE:#08x}, at least one"
            )
        # RFC 9486: option data = 2 + 8-octet trace header + node data, at most 255 octets.
        if not 1 <= self.free_words <= MAX_PREALLOCATED_WORDS:
            raise ValueError(
                f"{self.max_nodes} nodes of {self.node_len} words do not fit one "
                f"IOAM option (at most {MAX_PREALLOCATED_WORDS} words)"
            )


#: ``ifit_profile`` priorities: an entry for one segment list wins over the profile's own.
PROFILE_PRIORITY = 1
LIST_PROFILE_PRIORITY = 2


def telemetry_profile(
    profile: int,
    *,
    altmark: AltMarking | None = None,
    ioam: IoamTracing | None = None,
    list_id: int | None = None,
) -> fy.P4TableEntry:
    """Telemetry profile ``profile`` (referenced by APN policies): what the headend inserts
    into the outer Hop-by-Hop header. With ``list_id``, the profile as it applies to the
    packets encapsulated onto that segment list only (the table is looked up after the
    encapsulation): how each list gets a FlowMonID of its own (:func:`list_flow_mon_id`)."""
    if not 1 <= profile < 256:
        raise ValueError(f"telemetry profile must be 1..255 (0 means none), not {profile}")
    if altmark is None and ioam is None:
        raise ValueError(f"telemetry profile {profile} asks for nothing")
    if list_id is not None and not 1 <= list_id < (1 << 16):
        raise ValueError(f"segment list id must be 1..65535, not {list_id}")
    am = altmark or AltMarking(0, 0)
    trace = ioam
    match = (
        fy.P4TableMatch(profile=profile)
        if list_id is None
        else fy.P4TableMatch(profile=profile, list_id=(list_id, 0xFFFF))
    )
    return fy.P4TableEntry(
        IFIT_PROFILE,
        match=match,
        priority=PROFILE_PRIORITY if list_id is None else LIST_PROFILE_PRIORITY,
        action=fy.P4TableAction(
            "set_telemetry",
            altmark=int(altmark is not None),
            flow_mon_id=am.flow_mon_id,
            period_log2_us=am.period_log2_us,
            delay_log2=am.delay_sample_log2,
            ioam=int(trace is not None),
            namespace_id=trace.namespace_id if trace else 0,
            trace_type=trace.trace_type if trace else 0,
            node_len=trace.node_len if trace else 0,
            free_words=trace.free_words if trace else 0,
        ),
    )


def ioam_node(
    namespace_id: int,
    node_id: int,
    *,
    node_id_wide: int | None = None,
    namespace_data: int = 0,
    namespace_data_wide: int = 0,
    timestamp_format: TimestampFormat = TimestampFormat.PTP,
) -> fy.P4TableEntry:
    """This switch takes part in IOAM namespace ``namespace_id`` as node ``node_id`` (24-bit;
    the wide, 56-bit id defaults to the same value), writing timestamps in the namespace's
    ``timestamp_format`` (RFC 9197 5; Linux ioam6 nodes write POSIX). On Tofino the format is
    the program's own (docs/tofino.md) and the argument is dropped."""
    if not 0 <= node_id < (1 << 24):
        raise ValueError(f"IOAM node id is 24 bits, {node_id} is not")
    return fy.P4TableEntry(
        IOAM_NODE,
        match=fy.P4TableMatch(namespace_id=namespace_id),
        action=fy.P4TableAction(
            "set_ioam_node",
            id=node_id,
            id_wide=node_id if node_id_wide is None else node_id_wide,
            ns_data=namespace_data,
            ns_data_wide=namespace_data_wide,
            timestamp_format=int(timestamp_format),
        ),
    )


def ecn_threshold(port: int, queue_depth: int) -> fy.P4TableEntry:
    """Mark ECN-capable packets CE when ``port``'s queue holds ``queue_depth`` or more."""
    return fy.P4TableEntry(
        ECN_MARKING,
        match=fy.P4TableMatch(port=port),
        action=fy.P4TableAction("set_ecn_threshold", queue_depth=queue_depth),
    )


def list_flow_mon_id(flow_mon_id: int, list_id: int) -> int:
    """The FlowMonID of segment list ``list_id`` under a profile that marks each list apart
    (``altmark.per_list`` in an intent): the profile's FlowMonID plus the list id, so the
    lists of one headend (ids 1, 2, ...) take consecutive FlowMonIDs after the profile's."""
    value = flow_mon_id + list_id
    if value >= 1 << 20:
        raise ValueError(f"FlowMonID {flow_mon_id} + list {list_id} is past 20 bits")
    return value


def altmark_index(flow_mon_id: int, colour: int) -> int:
    """Index of a (FlowMonID, colour) cell in ``altmark_colors``."""
    return (flow_mon_id % ALTMARK_FLOW_SLOTS) * 2 + (colour & 1)


def collector_session(session_id: int, port: int) -> fy.P4CloneSessionEntry:
    """Clone session ``session_id`` sends copies out of ``port``, towards the collector."""
    if not 1 <= session_id < 32768:
        raise ValueError(f"clone session id must be 1..32767, not {session_id}")
    return fy.P4CloneSessionEntry(session_id, replicas=[P4Replica(port)])


def trace_export(namespace_id: int, session_id: int) -> fy.P4TableEntry:
    """At decapsulation, copy packets carrying a trace of ``namespace_id`` to the clone
    session ``session_id`` (see :func:`collector_session`)."""
    return fy.P4TableEntry(
        IOAM_EXPORT,
        match=fy.P4TableMatch(namespace_id=namespace_id),
        action=fy.P4TableAction("clone_to_collector", session=session_id),
    )


def trace_report(
    namespace_id: int,
    *,
    router_mac: str,
    collector_mac: str,
    source: str,
    collector: str,
    udp_port: int = REPORT_UDP_PORT,
) -> fy.P4TableEntry:
    """How the copies become reports (docs/telemetry-report.md): from ``source`` to
    ``collector`` on UDP port ``udp_port``."""
    return fy.P4TableEntry(
        IOAM_REPORT,
        match=fy.P4TableMatch(namespace_id=namespace_id),
        action=fy.P4TableAction(
            "build_report",
            smac=router_mac,
            dmac=collector_mac,
            src=source,
            dst=collector,
            udp_port=udp_port,
        ),
    )
