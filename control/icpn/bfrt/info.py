"""The BfRuntime schema of a compiled program, read from bf-p4c's ``bfrt.json``.

Every id the BfRuntime client puts on the wire comes from here: a table's id, its key
fields' ids, match types and widths, its actions' ids and their data fields, the table's own
data fields (``$ACTION_MEMBER_ID``, ``$COUNTER_SPEC_PKTS`` …), and the learn filters
(digests). Names are the ones P4Info uses, so the translator can go from one to the other;
bfrt.json prefixes tables and learn filters with the pipeline (``pipe.``), which lookups
accept with or without.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BfrtSchemaError(ValueError):
    """The bfrt.json is not one icpn can read, or a name is not in it."""


@dataclass(frozen=True)
class Field:
    """A key or data field: its id, its type (``bytes``, ``uint32``, ``uint64``, ``bool``
    …) and, for ``bytes``, its width in bits."""

    id: int
    name: str
    type: str
    width: int | None = None
    match_type: str | None = None  # key fields only: Exact, Ternary, LPM, Range, Optional
    repeated: bool = False
    default: int | None = None

    @property
    def octets(self) -> int:
        """Bytes a value of this field takes on the wire."""
        if self.width is not None:
            return (self.width + 7) // 8
        return {"uint64": 8, "uint32": 4, "uint16": 2, "uint8": 1, "bool": 1}.get(self.type, 4)


@dataclass(frozen=True)
class Action:
    id: int
    name: str
    data: dict[str, Field]

    def data_by_id(self) -> dict[int, Field]:
        return {f.id: f for f in self.data.values()}


@dataclass(frozen=True)
class Table:
    id: int
    name: str
    table_type: str
    size: int
    keys: dict[str, Field]
    actions: dict[str, Action]
    data: dict[str, Field]
    depends_on: tuple[int, ...] = ()

    def key(self, name: str) -> Field:
        try:
            return self.keys[name]
        except KeyError:
            raise BfrtSchemaError(f"table {self.name} has no key field {name!r}") from None

    def action(self, name: str) -> Action:
        try:
            return self.actions[name]
        except KeyError:
            raise BfrtSchemaError(f"table {self.name} has no action {name!r}") from None

    def datum(self, name: str) -> Field:
        try:
            return self.data[name]
        except KeyError:
            raise BfrtSchemaError(f"table {self.name} has no data field {name!r}") from None

    def action_by_id(self, action_id: int) -> Action:
        for action in self.actions.values():
            if action.id == action_id:
                return action
        raise BfrtSchemaError(f"table {self.name} has no action with id {action_id}")


@dataclass(frozen=True)
class LearnFilter:
    id: int
    name: str
    fields: dict[str, Field]


@dataclass
class BfrtInfo:
    """Tables and learn filters of one program, by name and by id."""

    tables: dict[str, Table]
    learn_filters: dict[str, LearnFilter]
    text: bytes = b""  # the file's bytes, as SetForwardingPipelineConfig sends them
    _by_id: dict[int, Table] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {t.id: t for t in self.tables.values()}

    @classmethod
    def load(cls, path: Path) -> BfrtInfo:
        data = path.read_bytes()
        try:
            return cls.parse(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise BfrtSchemaError(f"{path}: not a bfrt.json icpn can read: {exc}") from exc

    @classmethod
    def parse(cls, data: bytes) -> BfrtInfo:
        doc = json.loads(data)
        tables = {t["name"]: _table(t) for t in doc["tables"]}
        filters = {
            lf["name"]: LearnFilter(
                lf["id"], lf["name"], {f["name"]: _field(f) for f in lf["fields"]}
            )
            for lf in doc.get("learn_filters", [])
        }
        return cls(tables, filters, data)

    def table(self, name: str) -> Table:
        """A table by its P4Info name (``IcpnIngress.routing.routing_v6``) or its full
        bfrt.json name (``pipe.IcpnIngress.routing.routing_v6``)."""
        found = self.tables.get(name) or self.tables.get(f"pipe.{name}")
        if found is None:
            raise BfrtSchemaError(f"no table {name!r} in the program's bfrt.json")
        return found

    def has_table(self, name: str) -> bool:
        return name in self.tables or f"pipe.{name}" in self.tables

    def table_by_id(self, table_id: int) -> Table:
        try:
            return self._by_id[table_id]
        except KeyError:
            raise BfrtSchemaError(f"no table with id {table_id} in bfrt.json") from None

    def learn_filter(self, name: str) -> LearnFilter:
        for full, lf in self.learn_filters.items():
            if full == name or full.endswith("." + name):
                return lf
        raise BfrtSchemaError(f"no learn filter (digest) {name!r} in the program's bfrt.json")

    def learn_filter_by_id(self, filter_id: int) -> LearnFilter:
        for lf in self.learn_filters.values():
            if lf.id == filter_id:
                return lf
        raise BfrtSchemaError(f"no learn filter with id {filter_id} in bfrt.json")


def _field(doc: dict[str, Any]) -> Field:
    kind = doc.get("type", {})  # absent for container fields (fixed tables icpn does not use)
    return Field(
        id=doc["id"],
        name=doc["name"],
        type=kind.get("type", "container"),
        width=kind.get("width"),
        match_type=doc.get("match_type"),
        repeated=bool(doc.get("repeated", False)),
        default=kind.get("default_value") if isinstance(kind.get("default_value"), int) else None,
    )


def _data_fields(entries: list[dict[str, Any]]) -> dict[str, Field]:
    """A table's data fields; a ``oneof`` (a selector table's member-or-group) lists all."""
    found: dict[str, Field] = {}
    for entry in entries:
        for doc in entry.get("oneof", [entry["singleton"]] if "singleton" in entry else []):
            found[doc["name"]] = _field(doc)
    return found


def _table(doc: dict[str, Any]) -> Table:
    actions = {
        a["name"]: Action(a["id"], a["name"], {d["name"]: _field(d) for d in a.get("data", [])})
        for a in doc.get("action_specs", [])
    }
    return Table(
        id=doc["id"],
        name=doc["name"],
        table_type=doc["table_type"],
        size=int(doc.get("size", 0)),
        keys={k["name"]: _field(k) for k in doc.get("key", [])},
        actions=actions,
        data=_data_fields(doc.get("data", [])),
        depends_on=tuple(doc.get("depends_on", [])),
    )
