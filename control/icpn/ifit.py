"""P4Runtime entities and counter reads for IFIT (``p4src/v1model/include/control/ifit.p4``):
telemetry profiles (alternate marking at the headend), IOAM node identities per namespace,
ECN thresholds, and the per-(FlowMonID, colour) alternate-marking counters."""

from __future__ import annotations

import finsy as fy

from icpn.constants import ALTMARK_FLOW_SLOTS

IFIT_PROFILE = "ifit_profile"
IOAM_NODE = "ioam_node"
ECN_MARKING = "ecn_marking"
ALTMARK_COUNTER = "altmark_colors"


def altmark_profile(
    profile: int, flow_mon_id: int, *, period_log2_us: int, delay_sample_log2: int
) -> fy.P4TableEntry:
    """Profile ``profile``: the headend marks with FlowMonID ``flow_mon_id``; the colour L
    alternates every 2^``period_log2_us`` microseconds (RFC 9341 recommends periods far above
    the path's delay and reordering); D marks one packet in 2^``delay_sample_log2``."""
    if not 1 <= profile < 256:
        raise ValueError(f"telemetry profile must be 1..255 (0 means none), not {profile}")
    if not 0 <= flow_mon_id < (1 << 20):
        raise ValueError(f"FlowMonID is 20 bits, {flow_mon_id} is not")
    if not 0 <= period_log2_us < 48 or not 0 <= delay_sample_log2 < 32:
        raise ValueError("period_log2_us must be 0..47 and delay_sample_log2 0..31")
    return fy.P4TableEntry(
        IFIT_PROFILE,
        match=fy.P4TableMatch(profile=profile),
        action=fy.P4TableAction(
            "insert_altmark",
            flow_mon_id=flow_mon_id,
            period_log2_us=period_log2_us,
            delay_log2=delay_sample_log2,
        ),
    )


def ioam_node(
    namespace_id: int,
    node_id: int,
    *,
    node_id_wide: int | None = None,
    namespace_data: int = 0,
    namespace_data_wide: int = 0,
) -> fy.P4TableEntry:
    """This switch takes part in IOAM namespace ``namespace_id`` as node ``node_id`` (24-bit;
    the wide, 56-bit id defaults to the same value)."""
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
        ),
    )


def ecn_threshold(port: int, queue_depth: int) -> fy.P4TableEntry:
    """Mark ECN-capable packets CE when ``port``'s queue holds ``queue_depth`` or more."""
    return fy.P4TableEntry(
        ECN_MARKING,
        match=fy.P4TableMatch(port=port),
        action=fy.P4TableAction("set_ecn_threshold", queue_depth=queue_depth),
    )


def altmark_index(flow_mon_id: int, colour: int) -> int:
    """Index of a (FlowMonID, colour) cell in ``altmark_colors``."""
    return (flow_mon_id % ALTMARK_FLOW_SLOTS) * 2 + (colour & 1)
