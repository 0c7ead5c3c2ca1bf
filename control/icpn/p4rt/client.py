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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import finsy as fy
from finsy import P4Schema

from icpn.switch_api import EntityOps, SwitchApiError

#: Updates per WriteRequest unless told otherwise. BMv2 applies a batch entry by entry, so
#: big batches mostly save round trips; 1000 keeps a request far below gRPC's 4 MiB limit.
DEFAULT_BATCH_SIZE = 1000


class P4RuntimeError(SwitchApiError):
    """A P4Runtime call failed; wraps finsy's error with the switch's name."""


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


class SwitchClient(EntityOps):
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
        self.name = target.name

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

    async def run(self, on_ready: Callable[[SwitchClient], Awaitable[None]]) -> None:
        """Stay connected until cancelled: connect, arbitrate, push the pipeline when we are
        primary, then call ``on_ready``; after the switch restarts or the channel breaks,
        connect again (throttled) and call ``on_ready`` again. Also called when we become
        primary or backup. Tasks started with :meth:`spawn` end when the channel goes down.
        """

        async def ready(_switch: fy.Switch) -> None:
            await on_ready(self)

        self._switch.options = self._switch.options(ready_handler=ready)
        self._connected = False
        await self._switch.run()

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
    async def write(  # type: ignore[override]
        self, updates: Iterable[Any], *, batch_size: int = DEFAULT_BATCH_SIZE, strict: bool = True
    ) -> None:
        """Send updates (finsy's ``+entry``, ``-entry``, ``~entry``) in batches.

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

    async def read(self, entity: Any) -> list[Any]:
        """All entities matching a (partially filled) entity, e.g. ``P4TableEntry("t")``."""
        try:
            # finsy types read() as a coroutine; at run time it is an async generator.
            return [e async for e in self._switch.read(entity)]  # type: ignore[attr-defined]
        except fy.P4ClientError as exc:
            raise P4RuntimeError(f"{self.target.name}: read failed: {exc}") from exc

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


def canonical(entity: Any, schema: P4Schema) -> bytes:
    """An entity as the P4Runtime bytes it stands for (canonical values, deterministic
    serialisation, action parameters in id order): equal for equal entries however they
    were spelled (a MAC as text or an integer, parameters in any order), so written and
    read-back state can be compared exactly."""
    message = normalized(entity.encode(schema))
    encoded: bytes = message.SerializeToString(deterministic=True)
    return encoded


def normalized(message: Any) -> Any:
    """A P4Runtime entity message with its action parameters sorted by id (P4Runtime
    does not order them; builders and switches may differ)."""
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
