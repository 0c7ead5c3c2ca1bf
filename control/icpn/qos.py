"""Differentiated bearing (``p4src/v1model/include/control/qos.p4``; DESIGN.md 4): P4Runtime
entities for traffic classes, tenant meters and per-queue ECN, the counters that show them,
and the per-queue rates BMv2 takes only over its Thrift runtime API.

Why Thrift: P4Runtime has no notion of egress queues; BMv2's ``simple_switch`` sets a
queue's rate with ``set_egress_priority_queue_rate`` on its Thrift service. The Python Thrift
library is not installed here, and one call with three integers is all icpn needs, so
:class:`QueueRates` speaks the Thrift binary protocol itself (a few dozen lines).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import finsy as fy

from icpn.constants import QOS_QUEUES, QOS_TENANT_METERS, MeterColor
from icpn.switch_api import SwitchApiError

QOS_CLASS = "qos_class"
QOS_TENANT = "qos_tenant"
QUEUE_ECN = "queue_ecn"
TENANT_METER = "tenant_meter"
TENANT_COLORS = "tenant_colors"
CLASS_TX = "class_tx"


def _check_class(tc: int, what: str = "traffic class") -> None:
    if not 0 <= tc < QOS_QUEUES:
        raise ValueError(f"{what} must be 0..{QOS_QUEUES - 1} (one per egress queue), not {tc}")


def traffic_class(value: int, mask: int, tc: int, *, priority: int) -> fy.P4TableEntry:
    """APN IDs with ``id & mask == value`` go to traffic class (egress queue) ``tc``."""
    _check_class(tc)
    return fy.P4TableEntry(
        QOS_CLASS,
        match=fy.P4TableMatch(apn_id=f"{value:#x}/&{mask:#x}"),
        action=fy.P4TableAction("set_traffic_class", tc=tc),
        priority=priority,
    )


@dataclass(frozen=True)
class RedPolicy:
    """What happens to a tenant's red packets: dropped, or sent on with ``dscp`` in the
    outermost IPv6 header and in class ``tc`` (a scavenger class, typically 0)."""

    drop: bool = True
    dscp: int = 0
    tc: int = 0

    def __post_init__(self) -> None:
        _check_class(self.tc, "remark class")
        if not 0 <= self.dscp < 64:
            raise ValueError(f"DSCP is 6 bits, {self.dscp} is not")


def tenant_meter_rule(
    value: int, mask: int, meter_index: int, red: RedPolicy, *, priority: int
) -> fy.P4TableEntry:
    """APN IDs with ``id & mask == value`` (a USER-Group) are metered by meter
    ``meter_index``; their red packets get ``red``."""
    if not 0 <= meter_index < QOS_TENANT_METERS:
        raise ValueError(f"meter index must be 0..{QOS_TENANT_METERS - 1}, not {meter_index}")
    return fy.P4TableEntry(
        QOS_TENANT,
        match=fy.P4TableMatch(apn_id=f"{value:#x}/&{mask:#x}"),
        action=fy.P4TableAction(
            "meter_tenant",
            index=meter_index,
            drop_red=int(red.drop),
            remark_dscp=red.dscp,
            remark_tc=red.tc,
        ),
        priority=priority,
    )


@dataclass(frozen=True)
class TrTcm:
    """RFC 2698 two-rate three-colour meter: committed and peak information rates (bytes/s)
    and burst sizes (bytes). RFC 2698 requires PIR >= CIR and both bursts > 0."""

    cir_bps: int
    cbs_bytes: int
    pir_bps: int
    pbs_bytes: int

    def __post_init__(self) -> None:
        if self.cir_bps <= 0 or self.cbs_bytes <= 0 or self.pbs_bytes <= 0:
            raise ValueError("CIR, CBS and PBS must be positive (RFC 2698 section 2)")
        if self.pir_bps < self.cir_bps:
            raise ValueError(f"PIR {self.pir_bps} B/s is below CIR {self.cir_bps} B/s")

    def color(self, tc_tokens: float, tp_tokens: float, size: int) -> MeterColor:
        """RFC 2698 3.1, colour-blind: red if Tp < B, yellow if Tc < B, else green."""
        if tp_tokens < size:
            return MeterColor.RED
        if tc_tokens < size:
            return MeterColor.YELLOW
        return MeterColor.GREEN


def meter_config(index: int, meter: TrTcm) -> fy.P4MeterEntry:
    """The P4Runtime entry that sets tenant meter ``index`` (written with MODIFY)."""
    return fy.P4MeterEntry(
        TENANT_METER,
        index=index,
        config=fy.P4MeterConfig(
            cir=meter.cir_bps, cburst=meter.cbs_bytes, pir=meter.pir_bps, pburst=meter.pbs_bytes
        ),
    )


def queue_ecn(port: int, queue: int, queue_depth: int) -> fy.P4TableEntry:
    """Mark ECN-capable packets CE when ``queue`` of ``port`` held ``queue_depth`` or more."""
    _check_class(queue, "queue")
    return fy.P4TableEntry(
        QUEUE_ECN,
        match=fy.P4TableMatch(port=port, queue=queue),
        action=fy.P4TableAction("set_queue_ecn_threshold", queue_depth=queue_depth),
    )


def color_index(meter_index: int, color: MeterColor) -> int:
    """Index of ``tenant_colors`` for one tenant meter and colour."""
    return (meter_index << 2) | int(color)


class ThriftError(SwitchApiError):
    """BMv2's Thrift server refused a call or could not be reached."""


# Thrift binary protocol (strict): message header version 1, types I32 = 8, I64 = 10.
_VERSION_1 = 0x80010000
_CALL, _REPLY, _EXCEPTION = 1, 2, 3
_T_STOP, _T_I32, _T_I64 = 0, 8, 10
_SERVICE = "simple_switch"  # BMv2 multiplexes its services by name ("service:method")


class QueueRates:
    """Per-queue rate and depth of a BMv2 ``simple_switch`` over its Thrift API.

    ``queue`` is the traffic class (``standard_metadata.priority``), as simple_switch's own
    ``set_queue_rate <pps> <port> <priority>`` takes it. Rates are packets per second; BMv2
    paces each queue on its own (there is no port rate shared by the queues).
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout_s: float = 5.0) -> None:
        self.address = (host, port)
        self.timeout_s = timeout_s
        self._seq = 0

    def set_rate(self, port: int, queue: int, rate_pps: int) -> None:
        _check_class(queue, "queue")
        if rate_pps < 0:
            raise ValueError(f"queue rate must be >= 0 packets/s (0: unlimited), not {rate_pps}")
        self._call(
            "set_egress_priority_queue_rate", [(_T_I32, port), (_T_I32, queue), (_T_I64, rate_pps)]
        )

    def set_depth(self, port: int, queue: int, depth_packets: int) -> None:
        _check_class(queue, "queue")
        if depth_packets <= 0:
            raise ValueError(f"queue depth must be > 0 packets, not {depth_packets}")
        self._call(
            "set_egress_priority_queue_depth",
            [(_T_I32, port), (_T_I32, queue), (_T_I32, depth_packets)],
        )

    def _call(self, method: str, args: list[tuple[int, int]]) -> None:
        self._seq += 1
        name = f"{_SERVICE}:{method}".encode()
        msg = (
            struct.pack("!II", _VERSION_1 | _CALL, len(name)) + name + struct.pack("!i", self._seq)
        )
        for field_id, (ttype, value) in enumerate(args, start=1):
            fmt = "!q" if ttype == _T_I64 else "!i"
            msg += struct.pack("!bh", ttype, field_id) + struct.pack(fmt, value)
        msg += struct.pack("!b", _T_STOP)
        try:
            with socket.create_connection(self.address, timeout=self.timeout_s) as sock:
                sock.sendall(msg)
                reply = _read_reply(sock)
        except OSError as exc:
            raise ThriftError(f"BMv2 Thrift {self.address[0]}:{self.address[1]}: {exc}") from exc
        kind = struct.unpack("!I", reply[:4])[0] & 0xFF
        if kind != _REPLY:
            raise ThriftError(f"BMv2 refused {method}{[v for _, v in args]} (message type {kind})")
        # Thrift's reply struct: field 0 (the int "success") or an exception field, then STOP.
        # A void-looking success: this method returns 0, or 1 for an invalid port/priority.
        name_len = struct.unpack("!I", reply[4:8])[0]
        body = reply[12 + name_len :]
        if body[:1] == bytes([_T_I32]) and struct.unpack("!i", body[3:7])[0] != 0:
            raise ThriftError(f"BMv2 refused {method}{[v for _, v in args]}: bad port or queue")


def apply_queue_rates(address: str, rates: dict[tuple[int, int], int]) -> None:
    """Set every (port, queue) -> packets/s of ``rates`` on the BMv2 at ``address``
    (host:port of its Thrift runtime)."""
    host, _, port = address.rpartition(":")
    client = QueueRates(int(port), host or "127.0.0.1")
    for (egress_port, queue), pps in sorted(rates.items()):
        client.set_rate(egress_port, queue, pps)


def _read_reply(sock: socket.socket) -> bytes:
    """One Thrift reply: the server sends it whole and waits for the next call, so read until
    the outermost struct's STOP is in (replies here are a dozen bytes or so)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ThriftError("BMv2 Thrift closed the connection without a reply")
        data += chunk
        if len(data) >= 12:
            name_len = struct.unpack("!I", data[4:8])[0]
            body = data[12 + name_len :]
            if body[:1] == bytes([_T_STOP]) or (body[:1] == bytes([_T_I32]) and len(body) >= 8):
                return data
