"""The TNA program's P4Info as the controller sees it, and the entities the Python builders
make, shaped for it.

``icpn build`` asks bf-p4c for standard P4Runtime counters, registers and action profiles
(``--p4runtime-force-std-externs``, as Stratum needs); what stays a TNA extern (port
metadata; without that flag, every counter, register and selector) comes as ``externs``
with ``barefoot.*`` messages that P4Runtime's own protos (and so finsy) do not know.
:func:`load_schema` reads the rest and lists the extern instances by type, by name.

The TNA tables carry the v1model names, keys and actions. Three action parameters differ,
where Tofino cannot compute what v1model computes (docs/tofino.md): :func:`for_tna` turns a
v1model-shaped entity into the TNA one, and leaves every other entity as it is.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
from finsy.proto import p4i as p4info_pb2
from google.protobuf import text_format

from icpn import hashing, sketch_key
from icpn.constants import TNA_MAX_ENCAP_SEGMENTS, FlowKeyType
from icpn.features.apn import APN_POLICY
from icpn.features.ifit import IFIT_PROFILE, IOAM_NODE
from icpn.features.sketch import ELEPHANT_OVERRIDE, SKETCH_PROFILE

_EXTERNS = re.compile(r"^externs \{\n.*?^\}\n", re.S | re.M)
_EXTERN_REFS = re.compile(r"^\s*(implementation_id|direct_resource_ids): (\d+)\n", re.M)
_INSTANCE_ID = re.compile(r"^      id: (\d+)", re.M)
_EXTERN_TYPE = re.compile(r'extern_type_name: "([^"]+)"')
_INSTANCE = re.compile(r'^      name: "([^"]+)"', re.M)

#: Timestamp bits the TNA sketch keeps for its window: bits 16..47 of the ingress time in ns,
#: so bit 0 of the kept word is 2^16 ns = 65.536 us, about 2^6 us.
_WINDOW_SHIFT_LOG2_US = 6


@dataclass(frozen=True)
class TnaSchema:
    """The finsy schema of the tables, actions and digests, and the extern instances."""

    schema: fy.P4Schema
    externs: dict[str, frozenset[str]]

    def has_extern(self, kind: str, alias: str) -> bool:
        names = self.externs.get(kind, frozenset())
        return any(n == alias or n.endswith("." + alias) for n in names)


def load_schema(p4info: Path) -> TnaSchema:
    """Read a bf-p4c P4Info (text format)."""
    text = p4info.read_text()
    externs: dict[str, set[str]] = {}
    extern_ids: set[str] = set()
    for block in _EXTERNS.findall(text):
        kind = _EXTERN_TYPE.search(block)
        if kind:
            externs.setdefault(kind.group(1), set()).update(_INSTANCE.findall(block))
        extern_ids.update(_INSTANCE_ID.findall(block))

    def unless_extern(ref: re.Match[str]) -> str:
        """Drop a table's reference to an extern instance (finsy cannot resolve it);
        keep those to standard objects (action profiles, direct counters)."""
        return "" if ref.group(2) in extern_ids else ref.group(0)

    plain = _EXTERN_REFS.sub(unless_extern, _EXTERNS.sub("", text))
    return TnaSchema(
        schema=fy.P4Schema(text_format.Parse(plain, p4info_pb2.P4Info())),
        externs={k: frozenset(v) for k, v in externs.items()},
    )


def window_mask(window_log2_us: int) -> int:
    """The TNA sketch's window as a mask over its 32 timestamp bits (1.024 * 2^k us windows)."""
    drop = max(0, window_log2_us - _WINDOW_SHIFT_LOG2_US)
    return (0xFFFFFFFF << drop) & 0xFFFFFFFF


def delay_mask(delay_log2: int) -> int:
    """The alternate-marking D-bit sampling mask: 1 packet in 2^k (0: every packet)."""
    return (1 << delay_log2) - 1


def _flow_key_masks(flow_key: int) -> dict[str, int]:
    if flow_key == FlowKeyType.FIVE_TUPLE:
        return {"proto_mask": 0xFF, "port_mask": 0xFFFF, "qp_mask": 0}
    if flow_key == FlowKeyType.SRC_DST_QP:
        return {"proto_mask": 0, "port_mask": 0, "qp_mask": 0xFFFFFF}
    raise ValueError(f"unknown flow key type {flow_key}")


def flow_fingerprint(match: fy.P4TableMatch) -> int:
    """CRC-32 of a flow key as the sketch hashes it (src, dst, proto, sport, dport, DestQP;
    unused fields 0), with the deployment's polynomial (icpn.sketch_key.tna_polynomial):
    the TNA ``elephant_override`` table's key."""
    fields = dict(match)

    def number(name: str) -> int:
        value = fields.get(name, 0)
        if isinstance(value, str):
            return int(ipaddress.IPv6Address(value))
        return int(value)

    packed = hashing.pack_fields(
        [
            (number("src"), 128),
            (number("dst"), 128),
            (number("proto"), 8),
            (number("sport"), 16),
            (number("dport"), 16),
            (number("dest_qp"), 24),
        ]
    )
    return hashing.crc(packed, sketch_key.tna_polynomial(32), 32, 0xFFFFFFFF, 0xFFFFFFFF)


def _reshaped(entry: fy.P4TableEntry, name: str, params: dict[str, Any]) -> fy.P4TableEntry:
    return dataclasses.replace(entry, action=fy.P4TableAction(name, **params))


def for_tna(entity: Any) -> Any:
    """The TNA form of one entity the builders made for v1model. Raises ValueError for an
    encapsulation deeper than a Tofino headend pushes (TNA_MAX_ENCAP_SEGMENTS)."""
    if isinstance(entity, fy.P4TableEntry):
        _check_encap_depth(entity)
    if not isinstance(entity, fy.P4TableEntry) or not isinstance(entity.action, fy.P4TableAction):
        return entity
    action = entity.action
    args = dict(action.args)
    if entity.table_id == ELEPHANT_OVERRIDE and entity.match is not None:
        if "fingerprint" in dict(entity.match):
            return entity  # already TNA-shaped (read back from a Tofino switch)
        policy = dict(entity.match)["sr_policy_id"]
        match = fy.P4TableMatch(sr_policy_id=policy, fingerprint=flow_fingerprint(entity.match))
        return dataclasses.replace(entity, match=match)
    if entity.table_id == IFIT_PROFILE and action.name == "set_telemetry":
        args["delay_mask"] = delay_mask(int(args.pop("delay_log2")))
        return _reshaped(entity, action.name, args)
    if entity.table_id == APN_POLICY and action.name == "set_policy":
        # The Tofino headend writes APN6 in the Hop-by-Hop header only (docs/tofino.md).
        args.pop("apn_in_doh", None)
        return _reshaped(entity, action.name, args)
    if entity.table_id == IOAM_NODE and action.name == "set_ioam_node":
        # Tofino writes its clock in one format of its own (docs/tofino.md): no parameter.
        args.pop("timestamp_format", None)
        return _reshaped(entity, action.name, args)
    if entity.table_id == SKETCH_PROFILE and action.name == "set_sketch":
        window = int(args.pop("window_log2"))
        # No epoch on Tofino: the controller clears the sketch where v1model would move on.
        args.pop("window_epoch", None)
        args.update(_flow_key_masks(int(args["flow_key"])))
        args["window_mask"] = window_mask(window)
        return _reshaped(entity, action.name, args)
    return entity


def _check_encap_depth(entry: fy.P4TableEntry) -> None:
    """H.Encaps with more SRH entries than the Tofino build pushes has no action there."""
    actions: list[Any] = []
    if isinstance(entry.action, fy.P4TableAction):
        actions = [entry.action]
    elif isinstance(entry.action, fy.P4IndirectAction) and entry.action.action_set:
        actions = [a for _, a in entry.action.action_set]
    for action in actions:
        name = str(action.name)
        if "encaps_" not in name:
            continue
        count = int(name.rpartition("_")[2])
        entries = count - 1 if "_red_" in name else count
        if entries > TNA_MAX_ENCAP_SEGMENTS:
            raise ValueError(
                f"{entry.table_id}: {name} pushes {entries} SRH segments, a Tofino headend at "
                f"most {TNA_MAX_ENCAP_SEGMENTS} (TNA_MAX_ENCAP_SEGMENTS)"
            )
