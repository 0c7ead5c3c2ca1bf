"""An in-process BfRuntime server that holds a program's tables and enforces its bfrt.json.

It stands in for ``bf_switchd`` in tests of the BfRuntime client and the controller: what
it accepts and refuses is decided by the real ``bfrt.json`` bf-p4c wrote for the TNA
program (table, key and data field ids, widths, match types, action ids, table sizes), and
its refusals take the form bf_switchd's take: the call fails and its status details list a
``bfrt_proto.Error`` per refused update (canonical code and message), the other updates of
the batch applied (CONTINUE_ON_ERROR).

Not modelled: pipes (one copy of each table; registers report ``PIPES`` equal copies),
the SDE's fixed tables (ports, mirror sessions), warm init beyond replacing the program.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from finsy.proto.google.rpc import status_pb2
from google.protobuf import any_pb2

from icpn.bfrt.info import BfrtInfo, Table
from icpn.bfrt.proto import bfruntime_pb2 as bfrt
from icpn.bfrt.proto import bfruntime_pb2_grpc as bfrt_grpc

#: Register copies a read returns (one per pipe of a 4-pipe Tofino).
PIPES = 4

OK = grpc.StatusCode.OK.value[0]
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS.value[0]
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Program:
    name: str
    info: BfrtInfo
    profiles: list[bfrt.ForwardingPipelineConfig.Profile]
    #: table id -> key bytes -> the entry as stored
    entries: dict[int, dict[bytes, bfrt.TableEntry]] = field(default_factory=dict)
    defaults: dict[int, bfrt.TableEntry] = field(default_factory=dict)
    #: counter/register tables: table id -> index -> {field id: value}
    cells: dict[int, dict[int, dict[int, int]]] = field(default_factory=dict)


class FakeBfRuntime(bfrt_grpc.BfRuntimeServicer):
    """The servicer; start it with :func:`serve`."""

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id
        self.program: Program | None = None
        self.bound: set[int] = set()
        self.subscribers: dict[int, asyncio.Queue[bfrt.StreamMessageResponse | None]] = {}
        self.acks: list[tuple[int, int]] = []
        self.writes = 0
        self._list_ids = 0

    # -- pipeline ------------------------------------------------------------------------
    async def SetForwardingPipelineConfig(
        self, request: bfrt.SetForwardingPipelineConfigRequest, context: grpc.aio.ServicerContext
    ) -> bfrt.SetForwardingPipelineConfigResponse:
        if request.client_id not in self.subscribers:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "client is not subscribed")
        action = request.action
        if action == bfrt.SetForwardingPipelineConfigRequest.BIND:
            names = [c.p4_name for c in request.config]
            if self.program is None or names != [self.program.name]:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"program {names} is not loaded on the device"
                )
            self.bound.add(request.client_id)
        elif action == bfrt.SetForwardingPipelineConfigRequest.VERIFY_AND_WARM_INIT_BEGIN_AND_END:
            if len(request.config) != 1:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "exactly one program")
            config = request.config[0]
            try:
                info = BfrtInfo.parse(config.bfruntime_info)
            except (ValueError, KeyError) as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad bfruntime_info: {exc}")
            if not config.profiles or not all(p.context and p.binary for p in config.profiles):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, "each profile needs a context and a binary"
                )
            self.program = Program(config.p4_name, info, list(config.profiles))
            self.bound = {request.client_id}
        else:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"action {action} not modelled")
        return bfrt.SetForwardingPipelineConfigResponse(
            set_forwarding_pipeline_config_response_type=bfrt.WARM_INIT_FINISHED
        )

    async def GetForwardingPipelineConfig(
        self, request: bfrt.GetForwardingPipelineConfigRequest, context: grpc.aio.ServicerContext
    ) -> bfrt.GetForwardingPipelineConfigResponse:
        response = bfrt.GetForwardingPipelineConfigResponse()
        if self.program is not None:
            response.config.add(p4_name=self.program.name, bfruntime_info=self.program.info.text)
        return response

    # -- stream --------------------------------------------------------------------------
    async def StreamChannel(
        self,
        request_iterator: AsyncIterator[bfrt.StreamMessageRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[bfrt.StreamMessageResponse]:
        queue: asyncio.Queue[bfrt.StreamMessageResponse | None] = asyncio.Queue()
        client_id: int | None = None

        async def consume() -> None:
            nonlocal client_id
            async for message in request_iterator:
                which = message.WhichOneof("update")
                if which == "subscribe":
                    client_id = message.client_id
                    self.subscribers[client_id] = queue
                    answer = bfrt.Subscribe()
                    answer.CopyFrom(message.subscribe)
                    answer.status.CopyFrom(status_pb2.Status(code=OK))
                    if message.subscribe.device_id != self.device_id:
                        answer.status.CopyFrom(
                            status_pb2.Status(code=NOT_FOUND, message="no such device")
                        )
                    await queue.put(bfrt.StreamMessageResponse(subscribe=answer))
                elif which == "digest_ack":
                    self.acks.append((message.digest_ack.digest_id, message.digest_ack.list_id))
            await queue.put(None)

        reader = asyncio.ensure_future(consume())
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            reader.cancel()
            if client_id is not None:
                self.subscribers.pop(client_id, None)
                self.bound.discard(client_id)

    async def send_digest(self, name: str, tuples: list[dict[str, int]]) -> int:
        """Learn ``tuples`` (field name -> value) on the named learn filter: sent to every
        subscribed, bound client; returns the list id."""
        program = self._need_program()
        learn = program.info.learn_filter(name)
        self._list_ids += 1
        message = bfrt.DigestList(digest_id=learn.id, list_id=self._list_ids)
        for values in tuples:
            data = message.data.add()
            for field_name, value in values.items():
                spec = learn.fields[field_name]
                data.fields.add(field_id=spec.id, stream=value.to_bytes(spec.octets, "big"))
        for client_id, queue in self.subscribers.items():
            if client_id in self.bound:
                await queue.put(bfrt.StreamMessageResponse(digest=message))
        return self._list_ids

    # -- write ---------------------------------------------------------------------------
    async def Write(
        self, request: bfrt.WriteRequest, context: grpc.aio.ServicerContext
    ) -> bfrt.WriteResponse:
        if request.client_id not in self.bound:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "client is not bound to a program"
            )
        program = self._need_program()
        errors: list[bfrt.Error] = []
        for update in request.updates:
            self.writes += 1
            try:
                self._apply(program, update)
                errors.append(bfrt.Error(canonical_code=OK))
            except _Refused as exc:
                errors.append(bfrt.Error(canonical_code=exc.code, message=str(exc)))
        if any(e.canonical_code != OK for e in errors):
            details = status_pb2.Status(
                code=grpc.StatusCode.UNKNOWN.value[0], message="Error in write"
            )
            for error in errors:
                packed = any_pb2.Any()
                packed.Pack(error)
                details.details.append(packed)
            await context.abort_with_status(_rich_status(details))
        return bfrt.WriteResponse()

    def _apply(self, program: Program, update: bfrt.Update) -> None:
        entry = update.entity.table_entry
        try:
            table = program.info.table_by_id(entry.table_id)
        except ValueError:
            raise _Refused(NOT_FOUND, f"table id {entry.table_id} not found") from None
        if table.table_type in ("Counter", "Register"):
            self._write_cell(program, table, entry, update.type)
            return
        if entry.is_default_entry:
            self._check_data(program, table, entry)
            program.defaults[table.id] = entry
            return
        key = self._check_key(table, entry)
        rows = program.entries.setdefault(table.id, {})
        kind = update.type
        if kind == bfrt.Update.INSERT:
            if key in rows:
                raise _Refused(ALREADY_EXISTS, f"{table.name}: entry already exists")
            if len(rows) >= table.size:
                raise _Refused(RESOURCE_EXHAUSTED, f"{table.name}: no space (size {table.size})")
            self._check_data(program, table, entry)
            rows[key] = _stored(entry)
        elif kind == bfrt.Update.MODIFY:
            if key not in rows:
                raise _Refused(NOT_FOUND, f"{table.name}: entry not found")
            self._check_data(program, table, entry)
            rows[key] = _stored(entry)
        elif kind == bfrt.Update.DELETE:
            if key not in rows:
                raise _Refused(NOT_FOUND, f"{table.name}: entry not found")
            if table.table_type == "Action" and self._member_in_use(program, table, key):
                raise _Refused(FAILED_PRECONDITION, f"{table.name}: member is in use by a group")
            if table.table_type == "Selector" and self._group_in_use(program, table, key):
                raise _Refused(FAILED_PRECONDITION, f"{table.name}: group is in use by an entry")
            del rows[key]
        else:
            raise _Refused(INVALID_ARGUMENT, f"update type {kind} not supported")

    def _check_key(self, table: Table, entry: bfrt.TableEntry) -> bytes:
        keys = {k.id: k for k in table.keys.values()}
        seen: set[int] = set()
        for kf in entry.key.fields:
            spec = keys.get(kf.field_id)
            if spec is None:
                raise _Refused(
                    INVALID_ARGUMENT, f"{table.name}: key field id {kf.field_id} unknown"
                )
            which = kf.WhichOneof("match_type")
            want = {
                "Exact": "exact",
                "Ternary": "ternary",
                "LPM": "lpm",
                "Range": "range",
                "Optional": "optional",
            }[spec.match_type or "Exact"]
            if which != want:
                raise _Refused(
                    INVALID_ARGUMENT, f"{table.name}.{spec.name}: {which} match on a {want} field"
                )
            values = {
                "exact": [kf.exact.value],
                "ternary": [kf.ternary.value, kf.ternary.mask],
                "lpm": [kf.lpm.value],
                "range": [kf.range.low, kf.range.high],
                "optional": [kf.optional.value],
            }[which]
            for value in values:
                if len(value) != spec.octets:
                    raise _Refused(
                        INVALID_ARGUMENT,
                        f"{table.name}.{spec.name}: {len(value)} octets, "
                        f"the field has {spec.octets}",
                    )
                if spec.width is not None and int.from_bytes(value, "big") >> spec.width:
                    raise _Refused(
                        INVALID_ARGUMENT,
                        f"{table.name}.{spec.name}: value exceeds {spec.width} bits",
                    )
            if which == "lpm" and not 0 <= kf.lpm.prefix_len <= (spec.width or 32):
                raise _Refused(INVALID_ARGUMENT, f"{table.name}.{spec.name}: bad prefix length")
            seen.add(kf.field_id)
        missing = [k.name for k in table.keys.values() if k.id not in seen]
        if missing:
            raise _Refused(INVALID_ARGUMENT, f"{table.name}: key fields missing: {missing}")
        ordered = sorted(entry.key.fields, key=lambda f: f.field_id)
        return b"".join(f.SerializeToString(deterministic=True) for f in ordered)

    def _check_data(self, program: Program, table: Table, entry: bfrt.TableEntry) -> None:
        data = entry.data
        if table.actions:
            if not data.action_id and not entry.is_default_entry:
                raise _Refused(INVALID_ARGUMENT, f"{table.name}: no action")
            specs = {}
            if data.action_id:
                action = next((a for a in table.actions.values() if a.id == data.action_id), None)
                if action is None:
                    raise _Refused(
                        INVALID_ARGUMENT, f"{table.name}: action id {data.action_id} unknown"
                    )
                specs = action.data_by_id()
            specs.update({f.id: f for f in table.data.values()})
        else:
            specs = {f.id: f for f in table.data.values()}
        for f in data.fields:
            spec = specs.get(f.field_id)
            if spec is None:
                raise _Refused(
                    INVALID_ARGUMENT, f"{table.name}: data field id {f.field_id} unknown"
                )
            if f.WhichOneof("value") == "stream":
                if len(f.stream) != spec.octets:
                    raise _Refused(
                        INVALID_ARGUMENT,
                        f"{table.name}.{spec.name}: {len(f.stream)} octets, "
                        f"the field has {spec.octets}",
                    )
                if spec.width is not None and int.from_bytes(f.stream, "big") >> spec.width:
                    raise _Refused(
                        INVALID_ARGUMENT,
                        f"{table.name}.{spec.name}: value exceeds {spec.width} bits",
                    )
        if table.table_type == "Selector":
            self._check_group(program, table, entry)
        if table.table_type == "MatchAction_Indirect_Selector":
            self._check_reference(program, table, entry)

    def _check_group(self, program: Program, table: Table, entry: bfrt.TableEntry) -> None:
        members_table = program.info.table_by_id(table.depends_on[0])
        rows = program.entries.get(members_table.id, {})
        member_field = table.data["$ACTION_MEMBER_ID"].id
        size_field = table.data["$MAX_GROUP_SIZE"].id
        limit = table.data["$MAX_GROUP_SIZE"].default or 16
        for f in entry.data.fields:
            if f.field_id == size_field:
                limit = int.from_bytes(f.stream, "big")
        for f in entry.data.fields:
            if f.field_id != member_field:
                continue
            if len(f.int_arr_val.val) > limit:
                raise _Refused(
                    INVALID_ARGUMENT, f"{table.name}: more members than the group size {limit}"
                )
            for member in f.int_arr_val.val:
                if _exact_key(members_table, member) not in rows:
                    raise _Refused(NOT_FOUND, f"{table.name}: member {member} does not exist")

    def _check_reference(self, program: Program, table: Table, entry: bfrt.TableEntry) -> None:
        group_field = table.data["$SELECTOR_GROUP_ID"].id
        groups = next(
            program.info.table_by_id(d)
            for d in table.depends_on
            if program.info.table_by_id(d).table_type == "Selector"
        )
        for f in entry.data.fields:
            if f.field_id == group_field:
                group = int.from_bytes(f.stream, "big")
                if _exact_key(groups, group) not in program.entries.get(groups.id, {}):
                    raise _Refused(
                        NOT_FOUND, f"{table.name}: selector group {group} does not exist"
                    )

    def _member_in_use(self, program: Program, table: Table, key: bytes) -> bool:
        member = int.from_bytes(bfrt.KeyField.FromString(key).exact.value, "big")
        for selector in program.info.tables.values():
            if selector.table_type == "Selector" and table.id in selector.depends_on:
                field_id = selector.data["$ACTION_MEMBER_ID"].id
                for group in program.entries.get(selector.id, {}).values():
                    for f in group.data.fields:
                        if f.field_id == field_id and member in f.int_arr_val.val:
                            return True
        return False

    def _group_in_use(self, program: Program, table: Table, key: bytes) -> bool:
        group = int.from_bytes(bfrt.KeyField.FromString(key).exact.value, "big")
        for user in program.info.tables.values():
            if user.table_type == "MatchAction_Indirect_Selector" and table.id in user.depends_on:
                field_id = user.data["$SELECTOR_GROUP_ID"].id
                for row in program.entries.get(user.id, {}).values():
                    for f in row.data.fields:
                        if f.field_id == field_id and int.from_bytes(f.stream, "big") == group:
                            return True
        return False

    def _write_cell(
        self, program: Program, table: Table, entry: bfrt.TableEntry, kind: int
    ) -> None:
        index = int.from_bytes(entry.key.fields[0].exact.value, "big")
        if not 0 <= index < table.size:
            raise _Refused(INVALID_ARGUMENT, f"{table.name}: index {index} out of range")
        cells = program.cells.setdefault(table.id, {}).setdefault(index, {})
        for f in entry.data.fields:
            cells[f.field_id] = int.from_bytes(f.stream, "big")

    # -- read ----------------------------------------------------------------------------
    async def Read(
        self, request: bfrt.ReadRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bfrt.ReadResponse]:
        if request.client_id not in self.bound:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "client is not bound to a program"
            )
        program = self._need_program()
        response = bfrt.ReadResponse()
        for entity in request.entities:
            wanted = entity.table_entry
            try:
                table = program.info.table_by_id(wanted.table_id)
            except ValueError:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND, f"table id {wanted.table_id} not found"
                )
            if table.table_type in ("Counter", "Register"):
                response.entities.extend(self._read_cells(program, table))
                continue
            for row in program.entries.get(table.id, {}).values():
                response.entities.add(table_entry=row)
        yield response

    def _read_cells(self, program: Program, table: Table) -> list[bfrt.Entity]:
        out = []
        stored = program.cells.get(table.id, {})
        for index in range(table.size):
            entry = _exact_entry(table, index)
            values = stored.get(index, {})
            for spec in table.data.values():
                value = values.get(spec.id, 0).to_bytes(spec.octets, "big")
                copies = PIPES if table.table_type == "Register" else 1
                for _ in range(copies):
                    entry.data.fields.add(field_id=spec.id, stream=value)
            out.append(bfrt.Entity(table_entry=entry))
        return out

    # -- test helpers --------------------------------------------------------------------
    def set_cell(self, table_name: str, index: int, **values: int) -> None:
        """Stand-in for traffic: set a counter or register cell (data field name -> value)."""
        program = self._need_program()
        table = program.info.table(table_name)
        cells = program.cells.setdefault(table.id, {}).setdefault(index, {})
        for name, value in values.items():
            spec = next(
                f for f in table.data.values() if f.name == name or f.name.endswith("." + name)
            )
            cells[spec.id] = value

    def set_direct_counter(
        self, table_name: str, predicate: object, packets: int, octets: int
    ) -> int:
        """Set the direct counters of every entry of a table (``predicate(entry)`` true)."""
        program = self._need_program()
        table = program.info.table(table_name)
        ids = {
            table.data[n].id: v
            for n, v in (("$COUNTER_SPEC_PKTS", packets), ("$COUNTER_SPEC_BYTES", octets))
        }
        changed = 0
        for row in program.entries.get(table.id, {}).values():
            if callable(predicate) and not predicate(row):
                continue
            kept = [f for f in row.data.fields if f.field_id not in ids]
            del row.data.fields[:]
            row.data.fields.extend(kept)
            for field_id, value in ids.items():
                row.data.fields.add(field_id=field_id, stream=value.to_bytes(8, "big"))
            changed += 1
        return changed

    def table_entries(self, table_name: str) -> list[bfrt.TableEntry]:
        program = self._need_program()
        return list(program.entries.get(program.info.table(table_name).id, {}).values())

    def _need_program(self) -> Program:
        if self.program is None:
            raise RuntimeError("no program loaded")
        return self.program


def _stored(entry: bfrt.TableEntry) -> bfrt.TableEntry:
    copy = bfrt.TableEntry()
    copy.CopyFrom(entry)
    copy.ClearField("entry_tgt")
    copy.ClearField("table_flags")
    return copy


def _exact_entry(table: Table, value: int) -> bfrt.TableEntry:
    key = next(iter(table.keys.values()))
    entry = bfrt.TableEntry(table_id=table.id)
    entry.key.fields.add(field_id=key.id).exact.value = value.to_bytes(key.octets, "big")
    return entry


def _exact_key(table: Table, value: int) -> bytes:
    return b"".join(
        f.SerializeToString(deterministic=True) for f in _exact_entry(table, value).key.fields
    )


def _rich_status(details: status_pb2.Status) -> grpc.Status:
    @dataclass(frozen=True)
    class _Status(grpc.Status):  # type: ignore[misc]
        code: grpc.StatusCode
        details: str
        trailing_metadata: tuple[tuple[str, bytes], ...]

    return _Status(
        grpc.StatusCode.UNKNOWN,
        details.message,
        (("grpc-status-details-bin", details.SerializeToString()),),
    )


@contextlib.asynccontextmanager
async def serve(device_id: int = 0) -> AsyncIterator[tuple[FakeBfRuntime, str]]:
    """Run a fake switch on a free loopback port: yields (servicer, "127.0.0.1:port")."""
    servicer = FakeBfRuntime(device_id)
    limit = 64 << 20  # bf_switchd takes pipeline configs far over gRPC's 4 MiB default
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ]
    )
    bfrt_grpc.add_BfRuntimeServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        for queue in servicer.subscribers.values():
            queue.put_nowait(None)
        await server.stop(grace=0.5)
