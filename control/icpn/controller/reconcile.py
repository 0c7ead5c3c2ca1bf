"""Reconciliation: make a switch hold exactly the desired entries, writing only the
difference, and never leave it half-changed (DESIGN.md 4).

An entity's *identity* is what P4Runtime keys it by (a table entry's table, match and
priority; a clone session's id); its *content* is the whole canonical encoding. Comparing
read-back state with the desired state by identity and content gives three lists: entries to
delete (on the switch, not desired), to modify (same identity, other content) and to insert.
They are written in that order, so a full table is never overfilled on the way.

Meters (the tenants' trTCMs) always exist: a configured meter cell is a meter entry with a
config; one the intent wants is written with MODIFY, one it no longer wants is reset (MODIFY
without a config, P4Runtime 9.3), never inserted or deleted.

BMv2 applies a batch entry by entry and keeps the ones that succeeded when one fails
(P4Runtime 12.2, CONTINUE_ON_ERROR), so a failed write can leave a switch part-way. Then the
switch is read again and the difference to the state before is written back; the error
names the entry that failed and says whether the switch was restored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import finsy as fy
from finsy import P4Schema
from finsy.proto import p4r

from icpn.p4rt.client import normalized
from icpn.sketch import ELEPHANT_OVERRIDE
from icpn.switch_api import SwitchApiError

#: Tables whose entries are learned at run time, not rendered from the intent. Their
#: entries are left to their manager when reconciling.
LEARNED_TABLES = frozenset({ELEPHANT_OVERRIDE})


class ReconcileError(RuntimeError):
    """A switch refused part of a write. ``restored`` says whether its state was put back
    as it was before the write."""

    def __init__(self, switch: str, message: str, *, restored: bool) -> None:
        state = "its state was restored" if restored else "ITS STATE COULD NOT BE RESTORED"
        super().__init__(f"{switch}: {message}; {state}")
        self.switch = switch
        self.restored = restored


def identity(entity: Any, schema: P4Schema) -> bytes:
    """The key P4Runtime stores an entity under, as bytes."""
    return _identity(_message(entity, schema))


def content(entity: Any, schema: P4Schema) -> bytes:
    """An entity's whole state (canonical), without run-time data such as counters."""
    return _content(_message(entity, schema))


def _message(entity: Any, schema: P4Schema) -> p4r.Entity:
    if isinstance(entity, p4r.Entity):
        return entity
    message: p4r.Entity = entity.encode(schema)
    return message


def _identity(message: p4r.Entity) -> bytes:
    kind = message.WhichOneof("entity")
    if kind == "table_entry":
        entry = message.table_entry
        key = p4r.TableEntry(
            table_id=entry.table_id,
            priority=entry.priority,
            is_default_action=entry.is_default_action,
        )
        key.match.extend(sorted(entry.match, key=lambda m: m.field_id))
        encoded: bytes = key.SerializeToString(deterministic=True)
        return b"T" + encoded
    if kind == "packet_replication_engine_entry":
        pre = message.packet_replication_engine_entry
        which = pre.WhichOneof("type")
        ident = pre.clone_session_entry.session_id if which == "clone_session_entry" else 0
        if which == "multicast_group_entry":
            ident = pre.multicast_group_entry.multicast_group_id
        return f"P{which}:{ident}".encode()
    if kind == "meter_entry":
        return f"M{message.meter_entry.meter_id}:{message.meter_entry.index.index}".encode()
    whole: bytes = message.SerializeToString(deterministic=True)
    return b"E" + whole


def _content(message: p4r.Entity) -> bytes:
    if message.WhichOneof("entity") == "table_entry":
        entry = message.table_entry
        runtime = [f for f in _RUNTIME_FIELDS if entry.HasField(f)]
        ids = [m.field_id for m in entry.match]
        if runtime or ids != sorted(ids) or not _params_sorted(entry.action):
            copied = p4r.Entity()
            copied.CopyFrom(message)  # the caller's message may be written later: untouched
            for name in runtime:
                copied.table_entry.ClearField(name)
            match = sorted(copied.table_entry.match, key=lambda m: m.field_id)
            del copied.table_entry.match[:]
            copied.table_entry.match.extend(match)
            normalized(copied)
            message = copied
    encoded: bytes = message.SerializeToString(deterministic=True)
    return encoded


def _params_sorted(action: p4r.TableAction) -> bool:
    """Are the action's parameters in id order (P4Runtime does not order them: builders
    and switches may differ, e.g. a TNA-shaped action whose arguments were rewritten)?"""
    actions = [action.action] if action.HasField("action") else []
    if action.HasField("action_profile_action_set"):
        actions += [a.action for a in action.action_profile_action_set.action_profile_actions]
    for one in actions:
        ids = [p.param_id for p in one.params]
        if ids != sorted(ids):
            return False
    return True


#: Table entry fields a switch fills in at run time: not part of the desired state.
_RUNTIME_FIELDS: tuple[
    Literal["counter_data", "meter_counter_data", "time_since_last_hit"], ...
] = (
    "counter_data",
    "meter_counter_data",
    "time_since_last_hit",
)


@dataclass
class Plan:
    """What to write to turn the actual state into the desired one."""

    deletes: list[Any] = field(default_factory=list)
    modifies: list[Any] = field(default_factory=list)
    inserts: list[Any] = field(default_factory=list)
    unchanged: int = 0

    def __len__(self) -> int:
        return len(self.deletes) + len(self.modifies) + len(self.inserts)

    def summary(self) -> str:
        return (
            f"{len(self.inserts)} inserted, {len(self.modifies)} modified, "
            f"{len(self.deletes)} deleted, {self.unchanged} unchanged"
        )


def plan(
    desired: Iterable[Any],
    actual: Iterable[Any],
    schema: P4Schema,
    encode: Callable[[Any], p4r.Entity] | None = None,
) -> Plan:
    """The difference between two states; raises ValueError on a desired duplicate.

    Entities are finsy entities or ``p4r.Entity`` messages; each is encoded once (with
    ``encode``, e.g. a client's thin path, else finsy's), and its identity and content are
    read off that one message."""
    to_message = encode or (lambda entity: _message(entity, schema))
    wanted: dict[bytes, tuple[Any, p4r.Entity]] = {}
    for entity in desired:
        message = to_message(entity)
        key = _identity(message)
        if key in wanted:
            raise ValueError(f"the desired state holds {entity!r} twice")
        wanted[key] = (entity, message)
    have: dict[bytes, tuple[Any, p4r.Entity]] = {}
    for entity in actual:
        message = to_message(entity)
        have[_identity(message)] = (entity, message)
    result = Plan()
    # Meter cells always exist: one no longer wanted is reset (a MODIFY without a
    # config), one wanted is configured by MODIFY; neither is inserted or deleted.
    for key, (entity, message) in have.items():
        if key in wanted:
            continue
        if message.WhichOneof("entity") == "meter_entry":
            reset = p4r.MeterEntry(
                meter_id=message.meter_entry.meter_id, index=message.meter_entry.index
            )
            result.modifies.append(p4r.Entity(meter_entry=reset))
        else:
            result.deletes.append(entity)
    for key, (entity, message) in wanted.items():
        if key not in have:
            meter = message.WhichOneof("entity") == "meter_entry"
            (result.modifies if meter else result.inserts).append(entity)
        elif _content(message) != _content(have[key][1]):
            result.modifies.append(entity)
        else:
            result.unchanged += 1
    return result


async def read_state(client: Any, *, include_learned: bool = False) -> list[Any]:
    """Every table entry, clone session and configured meter cell the switch holds (learned
    tables optional)."""
    entries = await client.read(fy.P4TableEntry())
    if not include_learned:
        entries = [e for e in entries if e.table_id not in LEARNED_TABLES]
    sessions = await client.read(fy.P4CloneSessionEntry())
    meters = []
    for meter in client.schema.meters:
        cells = await client.read(fy.P4MeterEntry(meter.alias))
        meters += [m for m in cells if m.config is not None]
    return [*entries, *sessions, *meters]


async def read_messages(client: Any) -> list[p4r.Entity]:
    """:func:`read_state` (without learned tables) as P4Runtime messages, not decoded:
    what reconciliation compares and writes back."""
    learned = {
        table.id for name in LEARNED_TABLES if (table := client.schema.tables.get(name)) is not None
    }
    entries = await client.read_messages(fy.P4TableEntry())
    entries = [e for e in entries if e.table_entry.table_id not in learned]
    sessions = await client.read_messages(fy.P4CloneSessionEntry())
    meters: list[p4r.Entity] = []
    for meter in client.schema.meters:
        cells = await client.read_messages(fy.P4MeterEntry(meter.alias))
        meters += [m for m in cells if m.meter_entry.HasField("config")]
    return [*entries, *sessions, *meters]


Progress = Callable[[str], None]


async def reconcile(
    client: Any,
    desired: Sequence[Any],
    *,
    batch_size: int | None = None,
    dry_run: bool = False,
) -> Plan:
    """Write the difference between the switch and ``desired``; on a refused write, put the
    switch back as it was and raise :class:`ReconcileError`."""
    before = await read_messages(client)
    todo = plan(desired, before, client.schema, client.encode)
    if dry_run or not todo:
        return todo
    kwargs: dict[str, Any] = {} if batch_size is None else {"batch_size": batch_size}
    try:
        await client.delete(todo.deletes, **kwargs)
        await client.modify(todo.modifies, **kwargs)
        await client.insert(todo.inserts, **kwargs)
    except SwitchApiError as exc:
        restored = await _restore(client, before)
        raise ReconcileError(client.target.name, str(exc), restored=restored) from exc
    return todo


async def _restore(client: Any, before: Sequence[Any]) -> bool:
    """Put back the state read before a failed write; True if the switch now holds it."""
    try:
        now = await read_messages(client)
        undo = plan(before, now, client.schema, client.encode)
        await client.delete(undo.deletes)
        await client.modify(undo.modifies)
        await client.insert(undo.inserts)
        return not plan(before, await read_messages(client), client.schema, client.encode)
    except SwitchApiError:
        return False
