"""The one P4Runtime client of icpn: used by the controller (asyncio) and, through
:class:`icpn.p4rt.sync.SyncSwitchClient`, by the PTF tests.

It is built on finsy (https://github.com/byllyfish/finsy), which supplies the generated
P4Runtime protos, the P4Info schema and canonical value encoding (P4Runtime spec 8.4), the
stream channel with arbitration, and typed entities. This module narrows finsy to what icpn
needs and fixes the choices every caller would otherwise repeat:

* arbitration with an explicit election id, and a clear error when we are not primary;
* pipeline push from the build artifacts (BMv2 JSON + P4Info), forced or by cookie;
* batched writes (one WriteRequest per ``batch_size`` updates);
* reads, counter reads, packet-out, packet-in and digest subscriptions that ack each list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
from finsy import P4Schema
from finsy.proto import p4r

from icpn.p4rt.encode import Encoder
from icpn.switch_api import SwitchApiError

#: Updates per WriteRequest unless told otherwise. BMv2 applies a batch entry by entry, so
#: big batches mostly save round trips; 1000 keeps a request far below gRPC's 4 MiB limit.
DEFAULT_BATCH_SIZE = 1000


#: Between connection attempts to a switch that does not answer (nothing listens yet): the
#: most a restarted switch waits, after it accepts connections, to be reconnected.
RETRY_INTERVAL_S = 0.1
#: Cap of the back-off after sessions that reached the switch but failed to come up, or
#: ended within MIN_SESSION_S.
MAX_RETRY_INTERVAL_S = 5.0
MIN_SESSION_S = 2.0

LOG = logging.getLogger(__name__)


class P4RuntimeError(SwitchApiError):
    """A P4Runtime call failed; wraps finsy's error with the switch's name."""


class _SessionFailed(Exception):
    """A connection attempt that did not come up; ``unreachable``: nothing answered."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


@dataclass(frozen=True)
class SwitchTarget:
    """Where a switch is and what to load into it.

    ``election_id`` decides arbitration: the highest id connected is primary (P4Runtime 5).
    ``force_pipeline`` pushes the program even if the switch reports the same cookie.
    """

    name: str
    address: str
    device_id: int = 0
    p4info: Path | None = None
    #: BMv2's JSON, or the bytes of a device config (Stratum's BfPipelineConfig on Tofino).
    p4blob: Path | bytes | None = None
    election_id: int = 10
    force_pipeline: bool = False
    tls: TlsFiles | None = None


@dataclass(frozen=True)
class TlsFiles:
    """P4Runtime over TLS: the CA certificate that signed the switch's certificate, and our
    own certificate and key when the switch authenticates clients (mutual TLS)."""

    ca_cert: Path
    cert: Path | None = None
    key: Path | None = None

    def credentials(self) -> fy.GRPCCredentialsTLS:
        return fy.GRPCCredentialsTLS(cacert=self.ca_cert, cert=self.cert, private_key=self.key)


class SwitchClient:
    """Async P4Runtime connection to one switch. Use ``async with`` or connect()/close()."""

    def __init__(self, target: SwitchTarget) -> None:
        self.target = target
        options = fy.SwitchOptions(
            p4info=target.p4info,
            p4blob=target.p4blob,
            p4force=target.force_pipeline,
            device_id=target.device_id,
            initial_election_id=target.election_id,
            channel_credentials=target.tls.credentials() if target.tls else None,
        )
        self._switch = fy.Switch(target.name, target.address, options)
        self._connected = False
        self._encoding: Encoder | None = None

    # -- connection
    async def connect(self) -> None:
        """Open the stream, arbitrate, and push the pipeline when we are primary."""
        try:
            await self._switch.__aenter__()
        except fy.P4ClientError as exc:
            raise P4RuntimeError(f"{self.target.name}: {exc}") from exc
        self._connected = True

    async def close(self) -> None:
        if self._connected:
            self._connected = False
            await self._switch.__aexit__(None, None, None)

    async def run(
        self,
        on_ready: Callable[[SwitchClient], Awaitable[None]],
        *,
        retry_interval_s: float = RETRY_INTERVAL_S,
    ) -> None:
        """Stay connected until cancelled: connect, arbitrate, push the pipeline when we are
        primary, then call ``on_ready``; after the switch restarts or the channel breaks,
        connect again and call ``on_ready`` again. Also called when we become primary or
        backup. Tasks started with :meth:`spawn` end when the channel goes down.

        Why not finsy's own ``Switch.run``: it keeps one gRPC channel whose reconnect
        back-off grows while the switch is down (up to 15 s), and waits a fixed 10 s after a
        session that failed within 2 s (as the first attempt against a restarting switch
        does). Nor does gRPC retry at once: its subchannels (shared by the channels to one
        address) remember the back-off of failed attempts. So here the switch's port is
        probed with a plain TCP connect every ``retry_interval_s``, and gRPC is tried only
        once the switch accepts connections, on a fresh channel: a restarted switch is
        reconnected within that interval of accepting connections. Only sessions that
        connect and then fail, or end within :data:`MIN_SESSION_S`, back off (doubling, up to
        :data:`MAX_RETRY_INTERVAL_S`): a switch refusing our pipeline is not hammered.
        """

        async def ready(_switch: fy.Switch) -> None:
            await on_ready(self)

        self._switch.options = self._switch.options(ready_handler=ready)
        failures = 0  # sessions in a row that reached the switch but did not come up
        while True:
            try:
                if not await _accepts_connections(self.target.address):
                    raise _SessionFailed("not accepting connections", unreachable=True)
                started = time.monotonic()
                await self._session()
                # a session that ends at once (a failing on_ready) must not spin
                failures = failures + 1 if time.monotonic() - started < MIN_SESSION_S else 0
            except _SessionFailed as failed:
                failures = 0 if failed.unreachable else failures + 1
                if failures:
                    LOG.warning("%s: %s", self.target.name, failed)
            await asyncio.sleep(min(retry_interval_s * 2**failures, MAX_RETRY_INTERVAL_S))

    async def _session(self) -> None:
        """One connection, from connect to channel down."""
        try:
            await self._switch.__aenter__()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled
            # finsy cancelled its own tasks after one failed (e.g. the pipeline push)
            raise _SessionFailed("the connection failed before it was ready") from None
        except fy.P4ClientError as exc:
            unreachable = exc.code == fy.GRPCStatusCode.UNAVAILABLE
            raise _SessionFailed(str(exc), unreachable=unreachable) from exc
        self._connected = True
        down: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_down(_switch: fy.Switch) -> None:
            if not down.done():
                down.set_result(None)

        # Subscribed before any await: the channel is up now, so the event is still ahead.
        self._switch.ee.on(fy.SwitchEvent.CHANNEL_DOWN, on_down)
        try:
            await down
        finally:
            self._switch.ee.remove_listener(fy.SwitchEvent.CHANNEL_DOWN, on_down)
            await self.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """A task tied to the current connection: cancelled when the channel goes down."""
        return self._switch.create_task(coro, name=name)

    async def __aenter__(self) -> SwitchClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def is_primary(self) -> bool:
        return bool(self._switch.is_primary)

    @property
    def schema(self) -> P4Schema:
        """The P4Info as finsy's schema: names, ids, bit widths."""
        return self._switch.p4info

    # -- writes and reads
    async def write(
        self, updates: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE, strict: bool = True
    ) -> None:
        """Send updates (finsy's ``+entry``, ``-entry``, ``~entry``, or ``p4r.Update``) in
        batches, through finsy's general encoding (any entity, stream messages too).

        With ``strict=False`` a MODIFY or DELETE of a missing entity is not an error, which is
        what cleanup wants.
        """
        pending = list(updates)
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            try:
                await self._switch.write(chunk, strict=strict)
            except fy.P4ClientError as exc:
                raise P4RuntimeError(f"{self.target.name}: write failed: {exc}") from exc

    # Inserts, modifies and deletes take the thin path (icpn.p4rt.encode): each update is
    # built in place inside its WriteRequest, from entities or already-encoded
    # ``p4r.Entity`` messages; the caller's entities are not marked or copied.
    async def insert(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_all(p4r.Update.INSERT, entities, **kwargs)

    async def modify(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_all(p4r.Update.MODIFY, entities, **kwargs)

    async def delete(self, entities: Iterable[Any], **kwargs: Any) -> None:
        await self._write_all(p4r.Update.DELETE, entities, **kwargs)

    def encode(self, entity: Any) -> p4r.Entity:
        """An entity's P4Runtime message, as this client writes it (thin path, cached ids)."""
        return self._encoder().entity(entity)

    def _encoder(self) -> Encoder:
        schema = self._switch.p4info
        if self._encoding is None or self._encoding.schema is not schema:
            self._encoding = Encoder(schema)
        return self._encoding

    async def _write_all(
        self,
        kind: p4r.Update.Type.ValueType,
        entities: Iterable[Any],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        strict: bool = True,
    ) -> None:
        encoder = self._encoder()
        pending = list(entities)
        for start in range(0, len(pending), batch_size):
            request = p4r.WriteRequest(device_id=self._switch.device_id)
            updates = request.updates
            for entity in pending[start : start + batch_size]:
                encoder.fill(updates.add(type=kind).entity, entity)
            await self._request(request, strict=strict)

    def _channel(self) -> Any:
        """finsy's P4Client of the current connection: the one gRPC channel, which also
        stamps requests with our election id and role (P4Runtime 5)."""
        client = self._switch._p4client  # finsy 0.30 (pinned) has no public accessor
        if client is None:
            raise P4RuntimeError(f"{self.target.name}: not connected")
        return client

    async def _request(self, request: p4r.WriteRequest, *, strict: bool) -> None:
        try:
            await self._channel().request(request)
        except fy.P4ClientError as exc:
            if strict or not exc.is_not_found_only:
                raise P4RuntimeError(f"{self.target.name}: write failed: {exc}") from exc

    async def read_messages(self, entity: Any) -> list[p4r.Entity]:
        """Like :meth:`read`, as P4Runtime messages, not decoded: what reconciliation
        compares (decoding 10k entries costs more than reading them)."""
        request = p4r.ReadRequest(device_id=self._switch.device_id)
        request.entities.append(self._encoder().entity(entity))
        found: list[p4r.Entity] = []
        try:
            async for reply in self._channel().request_iter(request):
                found.extend(reply.entities)
        except fy.P4ClientError as exc:
            raise P4RuntimeError(f"{self.target.name}: read failed: {exc}") from exc
        return found

    async def read(self, entity: Any) -> list[Any]:
        """All entities matching a (partially filled) entity, e.g. ``P4TableEntry("t")``."""
        try:
            # finsy types read() as a coroutine; at run time it is an async generator.
            return [e async for e in self._switch.read(entity)]  # type: ignore[attr-defined]
        except fy.P4ClientError as exc:
            raise P4RuntimeError(f"{self.target.name}: read failed: {exc}") from exc

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData:
        """One cell of an indirect counter (packets and bytes)."""
        cells = await self.read(fy.P4CounterEntry(counter, index=index))
        if len(cells) != 1 or cells[0].data is None:
            raise P4RuntimeError(f"{self.target.name}: counter {counter}[{index}] not readable")
        data: fy.P4CounterData = cells[0].data
        return data

    async def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
        """Every cell of an indirect counter, by index."""
        cells = await self.read(fy.P4CounterEntry(counter))
        return {c.index: c.data for c in cells if c.data is not None}

    # -- stream: packet I/O and digests
    async def packet_out(self, payload: bytes, **metadata: Any) -> None:
        await self._switch.write([fy.P4PacketOut(payload, **metadata)])

    def packets_in(self) -> AsyncIterator[fy.P4PacketIn]:
        """Packets the switch sends to the controller, as they arrive."""
        return self._switch.read_packets()

    async def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]:
        """Digest lists of one digest, each acknowledged before it is handed out, so the
        switch may send the same learned data again only after we have it."""
        async for digest_list in self._switch.read_digests(digest):
            await self._switch.write([digest_list.ack()])
            yield digest_list

    async def configure_digest(
        self, digest: str, *, max_timeout_ns: int = 0, max_list_size: int = 1, ack_timeout_ns: int
    ) -> None:
        """Enable a digest (P4Runtime DigestEntry); the switch sends nothing until then."""
        entry = fy.P4DigestEntry(
            digest,
            max_list_size=max_list_size,
            max_timeout_ns=max_timeout_ns,
            ack_timeout_ns=ack_timeout_ns,
        )
        await self.write([+entry])


async def _accepts_connections(address: str, timeout_s: float = 1.0) -> bool:
    """Whether a TCP connection to ``host:port`` (``[v6]:port``) is accepted."""
    host, _, port = address.rpartition(":")
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), timeout_s
        )
    except (OSError, TimeoutError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def canonical(entity: Any, schema: P4Schema) -> bytes:
    """An entity as the P4Runtime bytes it stands for (canonical values, deterministic
    serialisation, action parameters in id order): equal for equal entries however they
    were spelled (a MAC as text or an integer, parameters in any order), so written and
    read-back state can be compared exactly. A ``p4r.Entity`` is taken as it is (a copy is
    normalised)."""
    if isinstance(entity, p4r.Entity):
        message = p4r.Entity()
        message.CopyFrom(entity)
    else:
        message = entity.encode(schema)
    encoded: bytes = normalized(message).SerializeToString(deterministic=True)
    return encoded


def normalized(message: Any) -> Any:
    """A P4Runtime entity message with its action parameters sorted by id, in place
    (P4Runtime does not order them; builders and switches may differ)."""
    if message.WhichOneof("entity") != "table_entry":
        return message
    action = message.table_entry.action
    actions = [action.action] if action.HasField("action") else []
    if action.HasField("action_profile_action_set"):
        actions += [a.action for a in action.action_profile_action_set.action_profile_actions]
    for one in actions:
        params = sorted(one.params, key=lambda p: p.param_id)
        del one.params[:]
        one.params.extend(params)
    return message
