"""An in-process P4Runtime server that behaves like a switch where the unit tests need it.

It keeps the state a test asserts on: the pipeline pushed, every WriteRequest (so batching
is visible), the entities written (so reads return them), the digest acks and packet-outs
received. Arbitration follows P4Runtime 1.4 section 5: the highest election id is primary
(answered OK), others are backups (answered ALREADY_EXISTS), and only the primary may write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import finsy as fy
import grpc
from finsy.proto import p4i, p4r, p4r_grpc, rpc_code
from google.protobuf import text_format

TABLE_ID = 0x02000001
ACTION_ID = 0x01000001
DIGEST_ID = 0x17000001


def p4info() -> p4i.P4Info:
    """One exact table ``t`` (key ``k``: bit<16>), one action ``a(p: bit<9>)``, a digest
    ``d`` of bit<32>: just enough P4Info for a client to encode and decode."""
    info = p4i.P4Info()
    action = info.actions.add()
    action.preamble.id, action.preamble.name, action.preamble.alias = ACTION_ID, "a", "a"
    param = action.params.add()
    param.id, param.name, param.bitwidth = 1, "p", 9
    table = info.tables.add()
    table.preamble.id, table.preamble.name, table.preamble.alias = TABLE_ID, "t", "t"
    key = table.match_fields.add()
    key.id, key.name, key.bitwidth, key.match_type = 1, "k", 16, p4i.MatchField.EXACT
    table.action_refs.add().id = ACTION_ID
    table.size = 4096
    digest = info.digests.add()
    digest.preamble.id, digest.preamble.name, digest.preamble.alias = DIGEST_ID, "d", "d"
    digest.type_spec.bitstring.bit.bitwidth = 32
    return info


T = TypeVar("T")


def program_files(directory: Path) -> tuple[Path, Path]:
    """The fake program as files a client pushes: (P4Info text, device config)."""
    info = directory / "fake.p4info.txtpb"
    info.write_text(text_format.MessageToString(p4info()))
    blob = directory / "fake.json"
    blob.write_text('{"program": "fake"}')
    return info, blob


def entry(key: int, port: int = 1) -> fy.P4TableEntry:
    """An entry of the fake program's table ``t``."""
    return fy.P4TableEntry("t", match=fy.P4TableMatch(k=key), action=fy.P4TableAction("a", p=port))


def run_with_server(test: Callable[[FakeP4Runtime], Awaitable[T]]) -> T:
    """Run ``test`` against a fresh fake switch, bounded to 20 s."""

    async def main() -> T:
        async with FakeP4Runtime().serving() as server:
            return await asyncio.wait_for(test(server), timeout=20)

    return asyncio.run(main())


@dataclass
class _Stream:
    context: Any
    election_id: int = 0
    outbox: asyncio.Queue[p4r.StreamMessageResponse] = field(default_factory=asyncio.Queue)


class FakeP4Runtime(p4r_grpc.P4RuntimeServicer):
    def __init__(self) -> None:
        self.config: p4r.ForwardingPipelineConfig | None = None
        self.write_requests: list[p4r.WriteRequest] = []
        self.entities: dict[bytes, p4r.Entity] = {}
        self.digest_acks: list[p4r.DigestListAck] = []
        self.packet_outs: list[p4r.PacketOut] = []
        self.reject_key: bytes | None = None  # a match value whose insert fails
        self._streams: list[_Stream] = []
        self._server: grpc.aio.Server | None = None
        self.address = ""

    @contextlib.asynccontextmanager
    async def serving(self, port: int = 0) -> AsyncIterator[FakeP4Runtime]:
        """Serve until the block ends, on ``port`` (0: a free one); a second fake serving on
        the first one's port after it stopped is that switch restarted, with empty state."""
        # A Tofino device config (context + binary) is ~10 MiB; Stratum accepts such messages.
        limit = 64 << 20
        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", limit)])
        p4r_grpc.add_P4RuntimeServicer_to_server(self, self._server)
        port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{port}"
        await self._server.start()
        try:
            yield self
        finally:
            await self._server.stop(None)

    # -- arbitration
    @property
    def primary_election_id(self) -> int:
        return max((s.election_id for s in self._streams), default=0)

    def _arbitration_reply(self, stream: _Stream) -> p4r.StreamMessageResponse:
        primary = stream.election_id == self.primary_election_id
        reply = p4r.StreamMessageResponse()
        reply.arbitration.election_id.low = self.primary_election_id
        reply.arbitration.status.code = rpc_code.OK if primary else rpc_code.ALREADY_EXISTS
        return reply

    async def StreamChannel(
        self, request_iterator: AsyncIterator[p4r.StreamMessageRequest], context: Any
    ) -> AsyncIterator[p4r.StreamMessageResponse]:
        stream = _Stream(context)
        self._streams.append(stream)
        reader = asyncio.ensure_future(self._read_stream(request_iterator, stream))
        try:
            while not reader.done():
                getter = asyncio.ensure_future(stream.outbox.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
        finally:
            reader.cancel()
            self._streams.remove(stream)

    async def _read_stream(
        self, requests: AsyncIterator[p4r.StreamMessageRequest], stream: _Stream
    ) -> None:
        async for request in requests:
            kind = request.WhichOneof("update")
            if kind == "arbitration":
                stream.election_id = request.arbitration.election_id.low
                for other in self._streams:
                    other.outbox.put_nowait(self._arbitration_reply(other))
            elif kind == "digest_ack":
                self.digest_acks.append(request.digest_ack)
            elif kind == "packet":
                self.packet_outs.append(request.packet)

    def send_digest(self, list_id: int, values: list[int]) -> None:
        """Push a DigestList of bit<32> values to the primary client."""
        message = p4r.StreamMessageResponse()
        message.digest.digest_id = DIGEST_ID
        message.digest.list_id = list_id
        for value in values:
            message.digest.data.add().bitstring = value.to_bytes(4, "big").lstrip(b"\0") or b"\0"
        for stream in self._streams:
            if stream.election_id == self.primary_election_id:
                stream.outbox.put_nowait(message)

    # -- unary RPCs
    async def Capabilities(self, request: Any, context: Any) -> p4r.CapabilitiesResponse:
        return p4r.CapabilitiesResponse(p4runtime_api_version="1.4.0")

    async def SetForwardingPipelineConfig(
        self, request: p4r.SetForwardingPipelineConfigRequest, context: Any
    ) -> p4r.SetForwardingPipelineConfigResponse:
        self.config = request.config
        return p4r.SetForwardingPipelineConfigResponse()

    async def GetForwardingPipelineConfig(
        self, request: Any, context: Any
    ) -> p4r.GetForwardingPipelineConfigResponse:
        if self.config is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION, "No forwarding pipeline config set"
            )
        return p4r.GetForwardingPipelineConfigResponse(config=self.config)

    async def Write(self, request: p4r.WriteRequest, context: Any) -> p4r.WriteResponse:
        """Like BMv2: updates are applied one by one; a refused one (``reject_key``, an
        insert of an existing key, a modify or delete of a missing one) does not stop the
        others, and the request then fails as a whole."""
        if request.election_id.low != self.primary_election_id:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not the primary client")
        self.write_requests.append(request)
        refused = []
        for index, update in enumerate(request.updates):
            entry = update.entity.table_entry
            key = _key(entry)
            if (
                self.reject_key is not None
                and entry.match
                and entry.match[0].exact.value == (self.reject_key)
            ):
                refused.append(f"update {index}: entry rejected")
            elif update.type == p4r.Update.INSERT:
                if key in self.entities:
                    refused.append(f"update {index}: already exists")
                else:
                    self.entities[key] = update.entity
            elif key not in self.entities:
                refused.append(f"update {index}: not found")
            elif update.type == p4r.Update.MODIFY:
                self.entities[key] = update.entity
            else:
                del self.entities[key]
        if refused:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "; ".join(refused))
        return p4r.WriteResponse()

    async def Read(self, request: p4r.ReadRequest, context: Any) -> AsyncIterator[p4r.ReadResponse]:
        """Table entries for a table-entry read (all, or one table's); nothing else."""
        found = []
        for wanted in request.entities:
            if wanted.WhichOneof("entity") == "table_entry":
                table = wanted.table_entry.table_id
                found += [e for e in self.entities.values() if table in (0, e.table_entry.table_id)]
        yield p4r.ReadResponse(entities=found)


def _key(entry: p4r.TableEntry) -> bytes:
    """What a switch keys a table entry by: table, match and priority."""
    key = p4r.TableEntry(table_id=entry.table_id, priority=entry.priority)
    key.match.extend(entry.match)
    encoded: bytes = key.SerializeToString(deterministic=True)
    return encoded
