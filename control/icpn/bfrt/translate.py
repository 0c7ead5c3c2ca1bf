"""P4Runtime entities to BfRuntime updates and back, driven by P4Info and ``bfrt.json``.

The controller renders one entity model for every target: finsy's P4Runtime entities
(table entries with direct or one-shot selector actions, indirect and direct counters,
digests). A BfRuntime switch knows only tables, so this module maps each P4Runtime message
onto the tables bf-p4c describes in ``bfrt.json``, resolving every name there (table, key
field, action, data field: ids and widths) and back, so read-back state compares with the
desired state exactly (reconciliation, golden tests).

Three mappings are not one-to-one, and are fixed here once:

* **Priorities.** P4Runtime: the larger priority wins. BfRuntime's ``$MATCH_PRIORITY``: the
  smaller wins (TCAM order). A priority ``p`` travels as ``MAX_PRIORITY - p``.
* **One-shot action selectors.** P4Runtime lets a table entry carry its action set; a
  BfRuntime selector table points at a group (``$SELECTOR_GROUP_ID``) of members of the
  action profile table. Each entry gets its own group, and each action ``weight`` members
  (BfRuntime groups have no weights: a member listed ``w`` times is how WCMP is written, as
  Stratum does). Reading back counts equal members into a weight again.
* **Wildcards.** P4Runtime omits a don't-care ternary or LPM field; BfRuntime writes every
  key field, so a don't-care travels as value 0 and mask (or prefix) 0 and is omitted again
  on the way back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from finsy import P4Schema
from finsy.proto import p4r

from icpn.bfrt.info import BfrtInfo, BfrtSchemaError, Table
from icpn.bfrt.proto import bfruntime_pb2 as bfrt

#: Largest ``$MATCH_PRIORITY`` (24 bits); P4Runtime priorities are mapped below it.
MAX_PRIORITY = (1 << 24) - 1
#: TargetDevice.pipe_id meaning every pipe: icpn programs all pipes alike.
ALL_PIPES = 0xFFFF

MATCH_PRIORITY = "$MATCH_PRIORITY"
MEMBER_ID = "$ACTION_MEMBER_ID"
GROUP_ID = "$SELECTOR_GROUP_ID"
MEMBER_STATUS = "$ACTION_MEMBER_STATUS"
MAX_GROUP_SIZE = "$MAX_GROUP_SIZE"
COUNTER_INDEX = "$COUNTER_INDEX"
REGISTER_INDEX = "$REGISTER_INDEX"
COUNTER_BYTES = "$COUNTER_SPEC_BYTES"
COUNTER_PACKETS = "$COUNTER_SPEC_PKTS"

_UPDATE_TYPES = {
    p4r.Update.INSERT: bfrt.Update.INSERT,
    p4r.Update.MODIFY: bfrt.Update.MODIFY,
    p4r.Update.DELETE: bfrt.Update.DELETE,
}


class TranslationError(ValueError):
    """An entity has no BfRuntime form (an unknown name, a value wider than its field, a
    kind of entity icpn does not map)."""


def to_bytes(value: int, octets: int) -> bytes:
    return value.to_bytes(octets, "big")


def from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "big")


def fit(value: bytes, octets: int, what: str) -> bytes:
    """A canonical P4Runtime value widened (or checked) to a BfRuntime field's octets."""
    stripped = value.lstrip(b"\0")
    if len(stripped) > octets:
        raise TranslationError(f"{what}: value 0x{value.hex()} is wider than {octets} octets")
    return stripped.rjust(octets, b"\0")


def canonical_bytes(value: bytes) -> bytes:
    """P4Runtime's canonical form of a value: no leading zero octets, at least one octet."""
    return value.lstrip(b"\0") or b"\0"


@dataclass
class _Group:
    """The selector group standing for one table entry's one-shot action set."""

    group_id: int
    member_ids: list[int]


@dataclass
class _Ids:
    """Member and group ids of one action profile: allocated lowest-free first."""

    used: set[int] = field(default_factory=set)

    def take(self) -> int:
        candidate = 1
        while candidate in self.used:
            candidate += 1
        self.used.add(candidate)
        return candidate

    def give_back(self, ident: int) -> None:
        self.used.discard(ident)


@dataclass(frozen=True)
class _Selector:
    """The action profile (members) and selector (groups) tables behind a selector table."""

    members: Table
    groups: Table


class Translator:
    """Maps P4Runtime messages (ids of ``p4info``) to BfRuntime messages (ids of ``info``).

    It remembers which selector group stands for which table entry: from the writes it
    makes and from what it reads back, so a controller that restarts learns the groups
    when it first reads the switch (reconciliation always reads first).
    """

    def __init__(self, p4info: P4Schema, info: BfrtInfo) -> None:
        self.p4info = p4info
        self.info = info
        self._groups: dict[bytes, _Group] = {}  # identity of the table entry -> its group
        self._member_ids: dict[int, _Ids] = {}  # members table id -> ids in use
        self._group_ids: dict[int, _Ids] = {}  # selector table id -> ids in use

    # -- names ---------------------------------------------------------------------------
    def table_for(self, table_id: int) -> Table:
        try:
            name = self.p4info.tables[table_id].name
        except (KeyError, ValueError):
            raise TranslationError(f"no table with P4Info id {table_id}") from None
        try:
            return self.info.table(name)
        except BfrtSchemaError as exc:
            raise TranslationError(str(exc)) from None

    def selector_for(self, table: Table) -> _Selector:
        """The members and groups tables a selector-backed match table depends on."""
        members = groups = None
        for dep in table.depends_on:
            dep_table = self.info.table_by_id(dep)
            if dep_table.table_type == "Action":
                members = dep_table
            elif dep_table.table_type == "Selector":
                groups = dep_table
        if members is None or groups is None:
            raise TranslationError(f"{table.name}: no action profile and selector in bfrt.json")
        return _Selector(members, groups)

    def _ids(self, pool: dict[int, _Ids], table: Table) -> _Ids:
        return pool.setdefault(table.id, _Ids())

    # -- P4Runtime -> BfRuntime ----------------------------------------------------------
    def updates(self, updates: Iterable[p4r.Update]) -> list[bfrt.Update]:
        """The BfRuntime updates for P4Runtime updates, in an order the switch accepts
        (members before the groups that list them before the entries that use them;
        the reverse for deletes)."""
        out: list[bfrt.Update] = []
        for update in updates:
            out.extend(self._update(update))
        return out

    def _update(self, update: p4r.Update) -> list[bfrt.Update]:
        kind = update.entity.WhichOneof("entity")
        if kind != "table_entry":
            raise TranslationError(
                f"{kind} has no BfRuntime mapping in icpn (table entries only; counters are "
                "read, digests arrive on the stream)"
            )
        if update.type not in _UPDATE_TYPES:
            raise TranslationError(f"update type {update.type} is not supported")
        entry = update.entity.table_entry
        table = self.table_for(entry.table_id)
        which = entry.action.WhichOneof("type")
        if which == "action_profile_action_set":
            return self._one_shot(update.type, entry, table)
        if which in ("action_profile_member_id", "action_profile_group_id"):
            raise TranslationError(
                f"{table.name}: icpn writes selector tables with one-shot action sets only"
            )
        bf_entry = self._match_entry(entry, table)
        if entry.action.HasField("action") and update.type != p4r.Update.DELETE:
            bf_entry.data.CopyFrom(self._action_data(entry.action.action, table))
        if entry.HasField("counter_data") and update.type != p4r.Update.DELETE:
            self._counter_fields(bf_entry.data, table, entry.counter_data)
        return [bfrt.Update(type=_UPDATE_TYPES[update.type], entity=_entity(bf_entry))]

    def _match_entry(self, entry: p4r.TableEntry, table: Table) -> bfrt.TableEntry:
        bf_entry = bfrt.TableEntry(table_id=table.id, is_default_entry=entry.is_default_action)
        if entry.is_default_action:
            return bf_entry
        p4table = self.p4info.tables[entry.table_id]
        given = {m.field_id: m for m in entry.match}
        for match_field in p4table.match_fields:
            key = table.key(match_field.name)
            what = f"{table.name}.{key.name}"
            m = given.get(match_field.id)
            kf = bf_entry.key.fields.add(field_id=key.id)
            if key.match_type == "Exact":
                if m is None:
                    raise TranslationError(f"{what}: exact field missing")
                kf.exact.value = fit(m.exact.value, key.octets, what)
            elif key.match_type == "Ternary":
                value = m.ternary.value if m else b""
                mask = m.ternary.mask if m else b""
                kf.ternary.value = fit(value, key.octets, what)
                kf.ternary.mask = fit(mask, key.octets, what)
            elif key.match_type == "LPM":
                kf.lpm.value = fit(m.lpm.value if m else b"", key.octets, what)
                kf.lpm.prefix_len = m.lpm.prefix_len if m else 0
            elif key.match_type == "Range":
                kf.range.low = fit(m.range.low if m else b"", key.octets, what)
                kf.range.high = fit(m.range.high if m else b"\xff" * key.octets, key.octets, what)
            elif key.match_type == "Optional":
                kf.optional.value = fit(m.optional.value if m else b"", key.octets, what)
                kf.optional.is_valid = m is not None
            else:
                raise TranslationError(f"{what}: match type {key.match_type} not supported")
        if MATCH_PRIORITY in table.keys:
            if not 0 <= entry.priority <= MAX_PRIORITY:
                raise TranslationError(f"{table.name}: priority {entry.priority} out of range")
            kf = bf_entry.key.fields.add(field_id=table.keys[MATCH_PRIORITY].id)
            kf.exact.value = to_bytes(MAX_PRIORITY - entry.priority, 4)
        return bf_entry

    def _action_data(self, action: p4r.Action, table: Table) -> bfrt.TableData:
        p4action = self.p4info.actions[action.action_id]
        bf_action = table.action(p4action.name)
        data = bfrt.TableData(action_id=bf_action.id)
        params = {p.id: p for p in p4action.params}
        for param in action.params:
            name = params[param.param_id].name
            spec = bf_action.data.get(name)
            if spec is None:
                raise TranslationError(f"{bf_action.name}: no data field {name!r} in bfrt.json")
            value = fit(param.value, spec.octets, f"{bf_action.name}.{name}")
            data.fields.add(field_id=spec.id, stream=value)
        return data

    @staticmethod
    def _counter_fields(data: bfrt.TableData, table: Table, counter: p4r.CounterData) -> None:
        if COUNTER_BYTES in table.data:
            data.fields.add(
                field_id=table.data[COUNTER_BYTES].id, stream=to_bytes(counter.byte_count, 8)
            )
        if COUNTER_PACKETS in table.data:
            data.fields.add(
                field_id=table.data[COUNTER_PACKETS].id, stream=to_bytes(counter.packet_count, 8)
            )

    def _one_shot(self, kind: int, entry: p4r.TableEntry, table: Table) -> list[bfrt.Update]:
        selector = self.selector_for(table)
        ident = self.identity(entry)
        old = self._groups.get(ident)
        members = self._ids(self._member_ids, selector.members)
        groups = self._ids(self._group_ids, selector.groups)
        out: list[bfrt.Update] = []
        if kind == p4r.Update.DELETE:
            if old is None:
                raise TranslationError(f"{table.name}: the entry's selector group is unknown")
            out.append(_update(bfrt.Update.DELETE, self._match_entry(entry, table)))
            out.append(_update(bfrt.Update.DELETE, _keyed(selector.groups, GROUP_ID, old.group_id)))
            out += [
                _update(bfrt.Update.DELETE, _keyed(selector.members, MEMBER_ID, m))
                for m in old.member_ids
            ]
            del self._groups[ident]
            groups.give_back(old.group_id)
            for m in old.member_ids:
                members.give_back(m)
            return out
        if kind == p4r.Update.INSERT and old is not None:
            raise TranslationError(f"{table.name}: entry already has a selector group")
        new_members: list[int] = []
        for weighted in entry.action.action_profile_action_set.action_profile_actions:
            for _ in range(max(1, weighted.weight)):
                member_id = members.take()
                new_members.append(member_id)
                member = _keyed(selector.members, MEMBER_ID, member_id)
                member.data.CopyFrom(self._action_data(weighted.action, selector.members))
                out.append(_update(bfrt.Update.INSERT, member))
        if len(new_members) > _max_group(selector.groups):
            raise TranslationError(
                f"{table.name}: {len(new_members)} members (weights summed) exceed the "
                f"selector's group size {_max_group(selector.groups)}"
            )
        group_id = old.group_id if old else groups.take()
        group = _keyed(selector.groups, GROUP_ID, group_id)
        group.data.fields.add(
            field_id=selector.groups.datum(MEMBER_ID).id,
            int_arr_val=bfrt.DataField.IntArray(val=new_members),
        )
        group.data.fields.add(
            field_id=selector.groups.datum(MEMBER_STATUS).id,
            bool_arr_val=bfrt.DataField.BoolArray(val=[True] * len(new_members)),
        )
        group.data.fields.add(
            field_id=selector.groups.datum(MAX_GROUP_SIZE).id,
            stream=to_bytes(_max_group(selector.groups), 4),
        )
        bf_entry = self._match_entry(entry, table)
        bf_entry.data.fields.add(field_id=table.datum(GROUP_ID).id, stream=to_bytes(group_id, 4))
        if old is None:
            out.append(_update(bfrt.Update.INSERT, group))
            out.append(_update(bfrt.Update.INSERT, bf_entry))
        else:
            out.append(_update(bfrt.Update.MODIFY, group))
            out += [
                _update(bfrt.Update.DELETE, _keyed(selector.members, MEMBER_ID, m))
                for m in old.member_ids
            ]
            for m in old.member_ids:
                members.give_back(m)
        self._groups[ident] = _Group(group_id, new_members)
        return out

    # -- what to read --------------------------------------------------------------------
    def read_targets(self, entity: p4r.Entity) -> list[Table]:
        """The BfRuntime tables that hold what a (wildcard) P4Runtime read asks for."""
        kind = entity.WhichOneof("entity")
        if kind == "table_entry":
            table_id = entity.table_entry.table_id
            if table_id:
                return [self.table_for(table_id)]
            return [
                self.info.table(t.name) for t in self.p4info.tables if self.info.has_table(t.name)
            ]
        if kind == "direct_counter_entry":
            table_id = entity.direct_counter_entry.table_entry.table_id
            if table_id:
                return [self.table_for(table_id)]
            return [self.table_for(c.direct_table_id) for c in self.p4info.direct_counters]
        if kind == "counter_entry":
            ids = (
                [entity.counter_entry.counter_id]
                if entity.counter_entry.counter_id
                else [c.id for c in self.p4info.counters]
            )
            return [self.info.table(self.p4info.counters[i].name) for i in ids]
        if kind in (
            "packet_replication_engine_entry",
            "meter_entry",
            "action_profile_member",
            "action_profile_group",
        ):
            return []  # icpn writes none of these over BfRuntime (README: Deploying on Tofino)
        raise TranslationError(f"reading {kind} over BfRuntime is not supported")

    def selector_tables(self, tables: Iterable[Table]) -> list[Table]:
        """The member and group tables a read of these tables needs to rebuild action sets."""
        needed: dict[int, Table] = {}
        for table in tables:
            if table.table_type == "MatchAction_Indirect_Selector":
                selector = self.selector_for(table)
                needed[selector.members.id] = selector.members
                needed[selector.groups.id] = selector.groups
        return list(needed.values())

    # -- BfRuntime -> P4Runtime ----------------------------------------------------------
    def entities_back(
        self, request: p4r.Entity, read: dict[int, list[bfrt.TableEntry]]
    ) -> Iterator[p4r.Entity]:
        """P4Runtime entities for what was read (``read``: table id -> its entries), shaped
        as the request asked (table entries, direct or indirect counter cells)."""
        kind = request.WhichOneof("entity")
        for table_id, entries in read.items():
            table = self.info.table_by_id(table_id)
            if table.table_type in ("Action", "Selector"):
                continue
            for bf_entry in entries:
                if kind == "counter_entry":
                    yield p4r.Entity(counter_entry=self._counter_back(table, bf_entry))
                    continue
                entry = self._entry_back(table, bf_entry, read)
                if kind == "direct_counter_entry":
                    data = entry.counter_data
                    entry.ClearField("counter_data")
                    entry.ClearField("action")
                    yield p4r.Entity(
                        direct_counter_entry=p4r.DirectCounterEntry(table_entry=entry, data=data)
                    )
                else:
                    if not request.table_entry.HasField("counter_data"):
                        entry.ClearField("counter_data")
                    yield p4r.Entity(table_entry=entry)

    def _entry_back(
        self, table: Table, bf_entry: bfrt.TableEntry, read: dict[int, list[bfrt.TableEntry]]
    ) -> p4r.TableEntry:
        p4table = self.p4info.tables[_p4_name(table.name)]
        entry = p4r.TableEntry(table_id=p4table.id, is_default_action=bf_entry.is_default_entry)
        keys = {k.id: k for k in table.keys.values()}
        by_name = {m.name: m for m in p4table.match_fields}
        for kf in bf_entry.key.fields:
            key = keys[kf.field_id]
            if key.name == MATCH_PRIORITY:
                entry.priority = MAX_PRIORITY - from_bytes(kf.exact.value)
                continue
            match_field = by_name[key.name]
            which = kf.WhichOneof("match_type")
            fm = p4r.FieldMatch(field_id=match_field.id)
            if which == "exact":
                fm.exact.value = canonical_bytes(kf.exact.value)
            elif which == "ternary":
                if not kf.ternary.mask.strip(b"\0"):
                    continue
                fm.ternary.value = canonical_bytes(kf.ternary.value)
                fm.ternary.mask = canonical_bytes(kf.ternary.mask)
            elif which == "lpm":
                if kf.lpm.prefix_len == 0:
                    continue
                fm.lpm.value = canonical_bytes(kf.lpm.value)
                fm.lpm.prefix_len = kf.lpm.prefix_len
            elif which == "range":
                fm.range.low = canonical_bytes(kf.range.low)
                fm.range.high = canonical_bytes(kf.range.high)
            elif which == "optional":
                if not kf.optional.is_valid:
                    continue
                fm.optional.value = canonical_bytes(kf.optional.value)
            entry.match.append(fm)
        entry.match.sort(key=lambda m: m.field_id)
        fields = {f.field_id: f for f in bf_entry.data.fields}
        counters = {
            name: table.data[name].id
            for name in (COUNTER_BYTES, COUNTER_PACKETS)
            if name in table.data
        }
        if counters:
            entry.counter_data.CopyFrom(
                p4r.CounterData(
                    byte_count=_int_field(fields, counters.get(COUNTER_BYTES)),
                    packet_count=_int_field(fields, counters.get(COUNTER_PACKETS)),
                )
            )
        if table.table_type == "MatchAction_Indirect_Selector" and not bf_entry.is_default_entry:
            group_field = fields.get(table.datum(GROUP_ID).id)
            if group_field is not None:
                group_id = from_bytes(group_field.stream)
                entry.action.action_profile_action_set.CopyFrom(
                    self._action_set_back(table, entry, group_id, read)
                )
        elif bf_entry.data.action_id:
            entry.action.action.CopyFrom(self._action_back(table, bf_entry.data))
        return entry

    def _action_back(self, table: Table, data: bfrt.TableData) -> p4r.Action:
        bf_action = table.action_by_id(data.action_id)
        p4action = self.p4info.actions[bf_action.name]
        by_name = {p.name: p for p in p4action.params}
        specs = bf_action.data_by_id()
        action = p4r.Action(action_id=p4action.id)
        for f in data.fields:
            spec = specs.get(f.field_id)
            if spec is None:  # counters, or fields icpn does not read
                continue
            action.params.add(param_id=by_name[spec.name].id, value=canonical_bytes(f.stream))
        action.params.sort(key=lambda p: p.param_id)
        return action

    def _action_set_back(
        self,
        table: Table,
        entry: p4r.TableEntry,
        group_id: int,
        read: dict[int, list[bfrt.TableEntry]],
    ) -> p4r.ActionProfileActionSet:
        selector = self.selector_for(table)
        groups = {_key_int(g): g for g in read.get(selector.groups.id, [])}
        members = {_key_int(m): m for m in read.get(selector.members.id, [])}
        group = groups.get(group_id)
        if group is None:
            raise TranslationError(f"{table.name}: group {group_id} not found on the switch")
        member_field = selector.groups.datum(MEMBER_ID).id
        member_ids = [
            list(f.int_arr_val.val) for f in group.data.fields if f.field_id == member_field
        ]
        ids = member_ids[0] if member_ids else []
        counted: Counter[bytes] = Counter()
        order: list[bytes] = []
        for member_id in ids:
            member = members.get(member_id)
            if member is None:
                raise TranslationError(f"{table.name}: member {member_id} not found")
            action = self._action_back(selector.members, member.data)
            encoded = action.SerializeToString(deterministic=True)
            if encoded not in counted:
                order.append(encoded)
            counted[encoded] += 1
        self._groups[self.identity(entry)] = _Group(group_id, list(ids))
        self._ids(self._group_ids, selector.groups).used.add(group_id)
        self._ids(self._member_ids, selector.members).used.update(ids)
        result = p4r.ActionProfileActionSet()
        for encoded in order:
            weighted = result.action_profile_actions.add(weight=counted[encoded])
            weighted.action.ParseFromString(encoded)
        return result

    def _counter_back(self, table: Table, bf_entry: bfrt.TableEntry) -> p4r.CounterEntry:
        counter = self.p4info.counters[_p4_name(table.name)]
        fields = {f.field_id: f for f in bf_entry.data.fields}
        return p4r.CounterEntry(
            counter_id=counter.id,
            index=p4r.Index(index=_key_int(bf_entry)),
            data=p4r.CounterData(
                byte_count=_int_field(
                    fields, table.data[COUNTER_BYTES].id if COUNTER_BYTES in table.data else None
                ),
                packet_count=_int_field(
                    fields,
                    table.data[COUNTER_PACKETS].id if COUNTER_PACKETS in table.data else None,
                ),
            ),
        )

    def digest_back(self, digest: bfrt.DigestList) -> p4r.DigestList:
        """A learn-filter list as the P4Runtime digest list of the same digest."""
        learn = self.info.learn_filter_by_id(digest.digest_id)
        p4digest = self.p4info.digests[_p4_name(learn.name)]
        ids = {f.id: name for name, f in learn.fields.items()}
        members = list(getattr(p4digest.type_spec, "members", {}))
        out = p4r.DigestList(digest_id=p4digest.id, list_id=digest.list_id)
        for tuple_ in digest.data:
            values = {ids[f.field_id]: canonical_bytes(f.stream) for f in tuple_.fields}
            data = out.data.add()
            for member in members:
                data.struct.members.add(bitstring=values.get(member, b"\0"))
        return out

    # -- identities ----------------------------------------------------------------------
    @staticmethod
    def identity(entry: p4r.TableEntry) -> bytes:
        key = p4r.TableEntry(table_id=entry.table_id, priority=entry.priority)
        key.match.extend(sorted(entry.match, key=lambda m: m.field_id))
        encoded: bytes = key.SerializeToString(deterministic=True)
        return encoded


def _max_group(groups: Table) -> int:
    """Members a group may hold: the selector's ``$MAX_GROUP_SIZE`` default in bfrt.json
    (the P4 program's selector group size)."""
    return groups.datum(MAX_GROUP_SIZE).default or 16


def _entity(entry: bfrt.TableEntry) -> bfrt.Entity:
    return bfrt.Entity(table_entry=entry)


def _update(kind: int, entry: bfrt.TableEntry) -> bfrt.Update:
    return bfrt.Update(type=kind, entity=_entity(entry))  # type: ignore[arg-type]


def _keyed(table: Table, key_name: str, value: int) -> bfrt.TableEntry:
    entry = bfrt.TableEntry(table_id=table.id)
    entry.key.fields.add(field_id=table.key(key_name).id).exact.value = to_bytes(value, 4)
    return entry


def _key_int(entry: bfrt.TableEntry) -> int:
    return from_bytes(entry.key.fields[0].exact.value)


def _int_field(fields: dict[int, bfrt.DataField], field_id: int | None) -> int:
    if field_id is None or field_id not in fields:
        return 0
    return from_bytes(fields[field_id].stream)


def _p4_name(bfrt_name: str) -> str:
    return bfrt_name.removeprefix("pipe.")
