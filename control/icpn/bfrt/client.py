"""The BfRuntime client of icpn: drives a Tofino switch through ``bf_switchd``'s gRPC API
with the same entities, and the same calls, as :class:`icpn.p4rt.client.SwitchClient`.

A BfRuntime session goes: open the stream and **subscribe** (device, learn notifications on),
then **bind** to the program with SetForwardingPipelineConfig — BIND if the switch already
runs it, VERIFY_AND_WARM_INIT_BEGIN_AND_END with the compiled pipeline (bfrt.json, context,
binary) if it does not or when forced. Then writes and reads go through
:class:`icpn.bfrt.translate.Translator`, digests arrive on the stream and are acknowledged
before they are handed out.

BfRuntime has no arbitration: a program has one bound client, so a bound client is primary.
It has no packet I/O either (Tofino's CPU port is a kernel netdev on the switch), so
``packet_out`` is refused with that reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
import grpc
from finsy import P4Schema
from finsy.proto import p4r
from finsy.proto.google.rpc import status_pb2

from icpn.bfrt.info import BfrtInfo
from icpn.bfrt.proto import bfruntime_pb2 as bfrt
from icpn.bfrt.proto import bfruntime_pb2_grpc as bfrt_grpc
from icpn.bfrt.translate import ALL_PIPES, TranslationError, Translator
from icpn.switch_api import EntityOps, SwitchApiError

LOG = logging.getLogger(__name__)

#: Updates per WriteRequest (the same default as the P4Runtime client).
DEFAULT_BATCH_SIZE = 1000
#: How long the switch has to answer a subscription.
SUBSCRIBE_TIMEOUT_S = 10.0
#: gRPC message size limit both ways: a pipeline config (context.json + binary) is
#: about 10 MiB for icpn, over gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 64 << 20
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
#: Reconnect back-off in run(): first retry, and the most it grows to.
RETRY_S = (0.25, 2.0)


class BfRuntimeError(SwitchApiError):
    """A BfRuntime call failed or an update was refused; the message names the switch and,
    for refused updates, each one with the switch's reason."""


@dataclass(frozen=True)
class PipelineFiles:
    """What SetForwardingPipelineConfig loads: bf-p4c's outputs for one program."""

    p4_name: str
    bfrt_json: Path
    #: (profile name, context.json, binary) per pipeline profile; icpn builds one, "pipe".
    profiles: tuple[tuple[str, Path, Path], ...]

    def config(self) -> bfrt.ForwardingPipelineConfig:
        config = bfrt.ForwardingPipelineConfig(
            p4_name=self.p4_name, bfruntime_info=self.bfrt_json.read_bytes()
        )
        for name, context, binary in self.profiles:
            config.profiles.add(
                profile_name=name,
                context=context.read_bytes(),
                binary=binary.read_bytes(),
                pipe_scope=[0, 1, 2, 3],
            )
        return config


@dataclass(frozen=True)
class BfrtTarget:
    """Where a Tofino switch is, the program's schemas, and what to load into it."""

    name: str
    address: str
    p4info: P4Schema
    bfrt_info: BfrtInfo
    p4_name: str
    device_id: int = 0
    client_id: int = 1
    pipeline: PipelineFiles | None = None
    force_pipeline: bool = False


class BfrtSwitchClient(EntityOps):
    """Async BfRuntime connection to one switch. Use ``async with`` or connect()/close()."""

    def __init__(self, target: BfrtTarget) -> None:
        self.target = target
        self.name = target.name
        self.translator = Translator(target.p4info, target.bfrt_info)
        self._channel: grpc.aio.Channel | None = None
        self._stub: bfrt_grpc.BfRuntimeStub | None = None
        self._requests: asyncio.Queue[bfrt.StreamMessageRequest | None] = asyncio.Queue()
        self._stream: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._digests: asyncio.Queue[bfrt.DigestList] = asyncio.Queue()
        self._subscribed: asyncio.Future[status_pb2.Status] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._bound = False

    @property
    def schema(self) -> P4Schema:
        return self.target.p4info

    @property
    def is_primary(self) -> bool:
        return self._bound

    def _target_device(self) -> bfrt.TargetDevice:
        return bfrt.TargetDevice(device_id=self.target.device_id, pipe_id=ALL_PIPES)

    # -- connection ----------------------------------------------------------------------
    async def connect(self) -> None:
        """Subscribe, then bind to the program (loading it when needed)."""
        try:
            self._channel = grpc.aio.insecure_channel(self.target.address, options=_CHANNEL_OPTIONS)
            self._stub = bfrt_grpc.BfRuntimeStub(self._channel)  # type: ignore[no-untyped-call]
            loop = asyncio.get_running_loop()
            self._subscribed = loop.create_future()
            self._requests = asyncio.Queue()
            self._stream = self._stub.StreamChannel(self._request_stream())
            self._reader = asyncio.ensure_future(self._read_stream())
            await self._requests.put(self._subscribe_request())
            status = await asyncio.wait_for(self._subscribed, SUBSCRIBE_TIMEOUT_S)
            if status.code != 0:
                raise BfRuntimeError(f"{self.name}: subscription refused: {status.message}")
            await self._bind()
        except grpc.aio.AioRpcError as exc:
            await self.close()
            raise BfRuntimeError(f"{self.name}: {_describe(exc)}") from exc
        except (TimeoutError, BfRuntimeError):
            await self.close()
            raise

    def _subscribe_request(self) -> bfrt.StreamMessageRequest:
        notifications = bfrt.Subscribe.Notifications(enable_learn_notifications=True)
        return bfrt.StreamMessageRequest(
            client_id=self.target.client_id,
            subscribe=bfrt.Subscribe(device_id=self.target.device_id, notifications=notifications),
        )

    async def _bind(self) -> None:
        assert self._stub is not None
        current = await self._stub.GetForwardingPipelineConfig(
            bfrt.GetForwardingPipelineConfigRequest(
                device_id=self.target.device_id, client_id=self.target.client_id
            )
        )
        loaded = {c.p4_name: c.bfruntime_info for c in current.config}
        request = bfrt.SetForwardingPipelineConfigRequest(
            device_id=self.target.device_id, client_id=self.target.client_id
        )
        same = loaded.get(self.target.p4_name) == self.target.bfrt_info.text
        if self.target.p4_name in loaded and same and not self.target.force_pipeline:
            request.action = bfrt.SetForwardingPipelineConfigRequest.BIND
            request.config.add(p4_name=self.target.p4_name)
        elif self.target.pipeline is not None:
            request.action = (
                bfrt.SetForwardingPipelineConfigRequest.VERIFY_AND_WARM_INIT_BEGIN_AND_END
            )
            request.config.append(self.target.pipeline.config())
            LOG.info("%s: loading %s", self.name, self.target.p4_name)
        else:
            have = ", ".join(loaded) or "no program"
            raise BfRuntimeError(
                f"{self.name}: the switch runs {have}, not this build of "
                f"{self.target.p4_name}, and no compiled pipeline was given to load"
            )
        await self._stub.SetForwardingPipelineConfig(request)
        self._bound = True

    async def _request_stream(self) -> AsyncIterator[bfrt.StreamMessageRequest]:
        while (message := await self._requests.get()) is not None:
            yield message

    async def _read_stream(self) -> None:
        try:
            async for message in self._stream:
                which = message.WhichOneof("update")
                if which == "subscribe" and self._subscribed and not self._subscribed.done():
                    self._subscribed.set_result(message.subscribe.status)
                elif which == "digest":
                    await self._digests.put(message.digest)
        except grpc.aio.AioRpcError as exc:
            if self._subscribed and not self._subscribed.done():
                self._subscribed.set_exception(exc)
            LOG.info("%s: stream closed: %s", self.name, _describe(exc))
        finally:
            self._bound = False
            for task in list(self._tasks):
                task.cancel()

    async def close(self) -> None:
        self._bound = False
        await self._requests.put(None)
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> BfrtSwitchClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def run(self, on_ready: Callable[[BfrtSwitchClient], Awaitable[None]]) -> None:
        """Stay connected until cancelled: connect and bind, call ``on_ready``, and when the
        stream ends (the switch restarted), connect again and call it again."""
        delay = RETRY_S[0]
        while True:
            try:
                await self.connect()
            except (BfRuntimeError, TimeoutError, OSError) as exc:
                LOG.info("%s: %s; retrying in %.2f s", self.name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_S[1])
                continue
            delay = RETRY_S[0]
            await on_ready(self)
            if self._reader is not None:
                await asyncio.gather(self._reader, return_exceptions=True)
            await self.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """A task tied to the current connection: cancelled when the stream ends."""
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- writes and reads ----------------------------------------------------------------
    async def write(
        self, updates: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE, strict: bool = True
    ) -> None:
        """Send finsy updates (``+entry``, ``-entry``, ``~entry``) as BfRuntime updates.
        With ``strict=False`` a refused MODIFY or DELETE of a missing entry is not an error."""
        pending = list(updates)
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            try:
                encoded = [u.encode_update(self.schema) for u in chunk]
                translated = self.translator.updates(encoded)
            except (TranslationError, ValueError) as exc:
                raise BfRuntimeError(f"{self.name}: cannot write: {exc}") from exc
            await self._write(translated, strict=strict)

    # Inserts, modifies and deletes take entities or already-encoded ``p4r.Entity`` messages
    # (what reconciliation reads back and may write again); the caller's are not marked.
    async def insert(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_kind(p4r.Update.INSERT, entities, **kwargs)

    async def modify(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_kind(p4r.Update.MODIFY, entities, **kwargs)

    async def delete(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_kind(p4r.Update.DELETE, entities, **kwargs)

    def encode(self, entity: Any) -> p4r.Entity:
        """An entity's P4Runtime message (the form the translator takes)."""
        if isinstance(entity, p4r.Entity):
            return entity
        message: p4r.Entity = entity.encode(self.schema)
        return message

    async def _write_kind(
        self,
        kind: p4r.Update.Type.ValueType,
        entities: Iterable[Any],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        strict: bool = True,
    ) -> None:
        pending = list(entities)
        for start in range(0, len(pending), batch_size):
            try:
                updates = [
                    p4r.Update(type=kind, entity=self.encode(e))
                    for e in pending[start : start + batch_size]
                ]
                translated = self.translator.updates(updates)
            except (TranslationError, ValueError) as exc:
                raise BfRuntimeError(f"{self.name}: cannot write: {exc}") from exc
            await self._write(translated, strict=strict)

    async def _write(self, updates: list[bfrt.Update], *, strict: bool) -> None:
        stub = self._need_stub()
        request = bfrt.WriteRequest(
            target=self._target_device(),
            client_id=self.target.client_id,
            p4_name=self.target.p4_name,
        )
        request.updates.extend(updates)
        try:
            await stub.Write(request)
        except grpc.aio.AioRpcError as exc:
            refused = _refused_updates(exc, updates)
            if not strict:
                refused = [
                    (u, e)
                    for u, e in refused
                    if not (
                        e.canonical_code == grpc.StatusCode.NOT_FOUND.value[0]
                        and u.type != bfrt.Update.INSERT
                    )
                ]
                if not refused and _has_details(exc):
                    return
            lines = [f"{_update_name(u, self.target.bfrt_info)}: {e.message}" for u, e in refused]
            detail = "; ".join(lines[:5]) or _describe(exc)
            more = f" (and {len(lines) - 5} more)" if len(lines) > 5 else ""
            raise BfRuntimeError(f"{self.name}: write refused: {detail}{more}") from exc

    async def read(self, entity: Any) -> list[Any]:
        """All entities matching a (partially filled) finsy entity, as finsy entities."""
        return [_decode(m, self.schema) for m in await self.read_messages(entity)]

    async def read_messages(self, entity: Any) -> list[p4r.Entity]:
        """Like :meth:`read`, as P4Runtime messages, not decoded (what reconciliation
        compares)."""
        try:
            request = self.encode(entity)
            tables = self.translator.read_targets(request)
        except (TranslationError, ValueError) as exc:
            raise BfRuntimeError(f"{self.name}: cannot read {entity!r}: {exc}") from exc
        if not tables:
            return []
        tables += self.translator.selector_tables(tables)
        read = await self._read_tables([t.id for t in tables])
        try:
            return list(self.translator.entities_back(request, read))
        except TranslationError as exc:
            raise BfRuntimeError(f"{self.name}: read-back: {exc}") from exc

    async def _read_tables(self, table_ids: list[int]) -> dict[int, list[bfrt.TableEntry]]:
        stub = self._need_stub()
        request = bfrt.ReadRequest(
            target=self._target_device(),
            client_id=self.target.client_id,
            p4_name=self.target.p4_name,
        )
        for table_id in table_ids:
            request.entities.add(table_entry=bfrt.TableEntry(table_id=table_id))
        found: dict[int, list[bfrt.TableEntry]] = {t: [] for t in table_ids}
        try:
            async for response in stub.Read(request):
                for got in response.entities:
                    found.setdefault(got.table_entry.table_id, []).append(got.table_entry)
        except grpc.aio.AioRpcError as exc:
            raise BfRuntimeError(f"{self.name}: read failed: {_describe(exc)}") from exc
        return found

    async def read_register(self, name: str) -> dict[int, dict[str, list[int]]]:
        """Every cell of a register: index -> data field (``count``, ``window`` …) -> one
        value per pipe. BMv2's P4Runtime cannot read registers; BfRuntime can."""
        table = self.target.bfrt_info.table(name)
        read = await self._read_tables([table.id])
        names = {f.id: f.name.rsplit(".", 1)[-1] for f in table.data.values()}
        cells: dict[int, dict[str, list[int]]] = {}
        for entry in read.get(table.id, []):
            index = int.from_bytes(entry.key.fields[0].exact.value, "big")
            values: dict[str, list[int]] = {}
            for f in entry.data.fields:
                values.setdefault(names.get(f.field_id, str(f.field_id)), []).append(
                    int.from_bytes(f.stream, "big")
                )
            cells[index] = values
        return cells

    # -- stream: digests -----------------------------------------------------------------
    async def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]:
        """Digest lists of one digest (learn filter), each acknowledged before it is
        handed out, so the switch may resend it only after we have it."""
        wanted = self.target.bfrt_info.learn_filter(digest).id
        while True:
            message = await self._digests.get()
            if message.digest_id != wanted:
                continue
            ack = bfrt.DigestListAck(digest_id=message.digest_id, list_id=message.list_id)
            await self._requests.put(
                bfrt.StreamMessageRequest(client_id=self.target.client_id, digest_ack=ack)
            )
            translated = self.translator.digest_back(message)
            yield fy.P4DigestList.decode(p4r.StreamMessageResponse(digest=translated), self.schema)

    async def configure_digest(self, digest: str, **_settings: Any) -> None:
        """Nothing to configure: the subscription turned learn notifications on. Checks
        the digest exists, so a wrong name fails here as it would over P4Runtime."""
        self.target.bfrt_info.learn_filter(digest)

    async def packet_out(self, payload: bytes, **metadata: Any) -> None:
        raise BfRuntimeError(
            f"{self.name}: BfRuntime has no packet-out; Tofino's CPU port is a netdev on the switch"
        )

    def _need_stub(self) -> bfrt_grpc.BfRuntimeStub:
        if self._stub is None or not self._bound:
            raise BfRuntimeError(f"{self.name}: not connected")
        return self._stub


def _decode(message: p4r.Entity, schema: P4Schema) -> Any:
    kind = message.WhichOneof("entity")
    if kind == "table_entry":
        return fy.P4TableEntry.decode(message, schema)
    if kind == "counter_entry":
        return fy.P4CounterEntry.decode(message, schema)
    if kind == "direct_counter_entry":
        return fy.P4DirectCounterEntry.decode(message, schema)
    raise TranslationError(f"cannot decode {kind}")


def _describe(exc: grpc.aio.AioRpcError) -> str:
    return f"{exc.code().name}: {exc.details()}"


def _details(exc: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            status: status_pb2.Status = status_pb2.Status.FromString(value)
            return status
    return None


def _has_details(exc: grpc.aio.AioRpcError) -> bool:
    return _details(exc) is not None


def _refused_updates(
    exc: grpc.aio.AioRpcError, updates: list[bfrt.Update]
) -> list[tuple[bfrt.Update, bfrt.Error]]:
    """The updates the switch refused, each with its error (status details, in order)."""
    details = _details(exc)
    if details is None:
        return []
    refused = []
    for update, packed in zip(updates, details.details, strict=False):
        error = bfrt.Error()
        if packed.Unpack(error) and error.canonical_code != 0:
            refused.append((update, error))
    return refused


def _update_name(update: bfrt.Update, info: BfrtInfo) -> str:
    kind = bfrt.Update.Type.Name(update.type)
    try:
        table = info.table_by_id(update.entity.table_entry.table_id).name
    except ValueError:
        table = f"table id {update.entity.table_entry.table_id}"
    return f"{kind} {table}"
