"""A thin encoding path for table entries: finsy's value semantics, without its per-entity
lookups (issue 16, part 4).

finsy encodes each entity from scratch: schema lookups by name for the table, every match
field, the action and every parameter, and a fresh parse of every value (a MAC address
text is parsed octet by octet for each of 10k routes that share it). That made batched
writes run at a third of a plain gRPC client's rate. :class:`Encoder` keeps, per P4Info,
the looked-up table, field and action objects, and caches each encoded match field and
action parameter by value, so a value common to many entries (a next hop's MACs and port)
is encoded once; only values seen for the first time go through finsy's own encoders,
which keeps the result identical to finsy's (the unit tests compare them byte for byte).

Entities the thin path does not cover (indirect actions, counters, meters, idle timeouts,
metadata, anything but a table entry) and any value it cannot encode go through finsy's
``encode``, so errors keep finsy's messages.
"""

from __future__ import annotations

import socket
from collections.abc import Hashable
from typing import Any

import finsy as fy
from finsy import P4Schema
from finsy.p4schema import P4MatchType
from finsy.proto import p4r

#: Cached encodings (match fields and parameters) per encoder before the cache is emptied:
#: bounds memory when every entry brings new values (routes), where caching buys nothing.
MAX_CACHED_VALUES = 1 << 16


class _Table:
    """A table's P4Info objects, looked up once."""

    def __init__(self, table: Any) -> None:
        self.id: int = table.id
        self.fields = table.match_fields
        self.actions = table.actions
        self.has_profile = table.action_profile is not None
        #: name -> (field id, match type, bit width) of each match field
        self.kinds: dict[str, tuple[int, Any, int]] = {
            f.name: (f.id, f.match_type, f.bitwidth) for f in table.match_fields
        }


def _number(value: Any, bitwidth: int) -> int | None:
    """The integer an exact value stands for, when it is an int or an address in the usual
    notation (what finsy parses slowly); None for anything else (finsy decides)."""
    if type(value) is int:
        number = value
    elif type(value) is str and bitwidth == 32 and "." in value:
        try:
            number = int.from_bytes(socket.inet_pton(socket.AF_INET, value), "big")
        except OSError:
            return None
    elif type(value) is str and bitwidth == 128 and ":" in value:
        try:
            number = int.from_bytes(socket.inet_pton(socket.AF_INET6, value), "big")
        except OSError:
            return None
    else:
        return None
    return number if 0 <= number < (1 << bitwidth) else None


def _canonical(number: int) -> bytes:
    """P4Runtime's canonical bytes of an unsigned value (P4Runtime 8.4): no leading zero
    bytes, at least one byte."""
    return number.to_bytes((number.bit_length() + 7) // 8 or 1, "big")


def _add_fast_field(fields: Any, kind: tuple[int, Any, int], value: Any) -> bool:
    """Add an exact or ``address/prefix`` LPM match field to ``fields`` without finsy;
    False (nothing added) when the value needs finsy."""
    field_id, match_type, bitwidth = kind
    if match_type == P4MatchType.EXACT:
        number = _number(value, bitwidth)
        if number is None:
            return False
        fields.add(field_id=field_id).exact.value = _canonical(number)
        return True
    if match_type == P4MatchType.LPM and type(value) is str:
        address, slash, length = value.partition("/")
        number = _number(address, bitwidth)
        if not slash or not length.isdigit() or number is None or int(length) > bitwidth:
            return False
        prefix = int(length)
        if prefix:  # /0 is a don't care: no field
            number &= ~((1 << (bitwidth - prefix)) - 1)
            lpm = fields.add(field_id=field_id).lpm
            lpm.value, lpm.prefix_len = _canonical(number), prefix
        return True
    return False


class Encoder:
    """Entities to ``p4r.Entity`` messages for one P4Info (one per client and schema)."""

    def __init__(self, schema: P4Schema) -> None:
        self.schema = schema
        self._tables: dict[str, _Table] = {}
        self._fields: dict[tuple[str, str, Hashable], p4r.FieldMatch | None] = {}
        self._params: dict[tuple[str, str, Hashable], p4r.Action.Param] = {}
        self._actions: dict[tuple[str, str], tuple[Any, int]] = {}

    def entity(self, entity: Any) -> p4r.Entity:
        """The P4Runtime message of an entity (a ``p4r.Entity`` is passed through)."""
        if isinstance(entity, p4r.Entity):
            return entity
        message = p4r.Entity()
        self.fill(message, entity)
        return message

    def update(self, kind: p4r.Update.Type.ValueType, entity: Any) -> p4r.Update:
        """An INSERT, MODIFY or DELETE of an entity, built in place (no message copies)."""
        update = p4r.Update(type=kind)
        self.fill(update.entity, entity)
        return update

    def fill(self, message: p4r.Entity, entity: Any) -> None:
        """Encode ``entity`` into an empty ``message`` (e.g. a new update's entity)."""
        if isinstance(entity, p4r.Entity):
            message.CopyFrom(entity)
            return
        if type(entity) is fy.P4TableEntry and _plain(entity):
            try:
                self._table_entry(message.table_entry, entity)
                return
            except (ValueError, KeyError, TypeError):
                message.Clear()  # finsy's encode below raises with its message
        message.CopyFrom(entity.encode(self.schema))

    def _table_entry(self, target: p4r.TableEntry, entry: fy.P4TableEntry) -> None:
        name = entry.table_id
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = _Table(self.schema.tables[name])
        target.table_id = table.id
        if entry.match:
            fields = target.match
            for key, value in entry.match.items():
                if not _add_fast_field(fields, table.kinds[key], value):
                    field = self._field(name, table, key, value)
                    if field is not None:
                        fields.append(field)
        if entry.action:
            assert isinstance(entry.action, fy.P4TableAction)
            self._table_action(target, name, table, entry.action)
        if entry.priority:
            target.priority = entry.priority
        if entry.is_default_action:
            target.is_default_action = True

    def _field(self, name: str, table: _Table, key: str, value: Any) -> p4r.FieldMatch | None:
        cache_key = (name, key, value)
        try:
            return self._fields[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: encode, do not cache
            encoded: p4r.FieldMatch | None = table.fields[key].encode_field(value)
            return encoded
        encoded = table.fields[key].encode_field(value)
        self._remember(self._fields, cache_key, encoded)
        return encoded

    def _table_action(
        self, target: p4r.TableEntry, name: str, table: _Table, action: fy.P4TableAction
    ) -> None:
        found = self._actions.get((name, action.name))
        if found is None:
            ref = table.actions[action.name]
            found = self._actions[(name, action.name)] = (ref, len(ref.params))
        ref, param_count = found
        if table.has_profile:  # a one-shot action set of one, as finsy promotes it
            member = target.action.action_profile_action_set.action_profile_actions.add()
            member.weight = 1
            encoded = member.action
        else:
            encoded = target.action.action
        encoded.action_id = ref.id
        params = encoded.params
        for key, value in action.args.items():
            param = ref.params[key]
            number = _number(value, param.bitwidth)
            if number is not None:
                params.add(param_id=param.id, value=_canonical(number))
            else:
                params.append(self._param(action.name, param, value))
        if params and len(params) != param_count:
            raise ValueError("missing parameters")  # finsy names them

    def _param(self, action: str, param: Any, value: Any) -> p4r.Action.Param:
        cache_key = (action, param.name, value)
        try:
            return self._params[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: encode, do not cache
            encoded: p4r.Action.Param = param.encode_param(value)
            return encoded
        encoded = param.encode_param(value)
        self._remember(self._params, cache_key, encoded)
        return encoded

    def _remember(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        if len(self._fields) + len(self._params) >= MAX_CACHED_VALUES:
            self._fields.clear()
            self._params.clear()
        cache[key] = value


def _plain(entry: fy.P4TableEntry) -> bool:
    """Whether a table entry has only what the thin path encodes: a table, match fields,
    a direct action, a priority, the default-action flag."""
    return bool(
        entry.table_id
        and (entry.action is None or type(entry.action) is fy.P4TableAction)
        and not entry.metadata
        and not entry.controller_metadata
        and entry.meter_config is None
        and entry.counter_data is None
        and entry.meter_counter_data is None
        and not entry.idle_timeout_ns
        and entry.time_since_last_hit is None
        and not entry.is_const
    )
