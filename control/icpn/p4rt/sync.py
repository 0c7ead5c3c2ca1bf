"""Blocking facade over :class:`SwitchClient` for code that is not asyncio (PTF tests, scripts).

The facade owns one event loop on a daemon thread and runs the async client's coroutines there,
so there is still only one P4Runtime client implementation. Streams become thread-safe
queues: packet-ins are collected from the moment of connection (none is lost between a send
and a ``get_packet_in``), digests from the moment a digest is subscribed.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Coroutine, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

import finsy as fy

from icpn.p4rt.client import SwitchClient, SwitchTarget

T = TypeVar("T")

#: Bound on every blocking call: a hung switch fails a test instead of hanging CI.
CALL_TIMEOUT_S = 30.0


class SyncSwitchClient:
    """``with SyncSwitchClient(target) as sw: sw.insert([...])``."""

    def __init__(self, target: SwitchTarget) -> None:
        self.target = target
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"p4rt-{target.name}", daemon=True
        )
        self._client = SwitchClient(target)
        self._packets: queue.Queue[fy.P4PacketIn] = queue.Queue()
        self._digests: dict[str, queue.Queue[fy.P4DigestList]] = {}
        self._stream_tasks: list[Future[None]] = []

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- connection
    def connect(self) -> SyncSwitchClient:
        self._thread.start()
        try:
            self._run(self._client.connect())
            if self._client.schema.controller_packet_metadata.get("packet_in") is not None:
                self._stream_tasks.append(
                    self._drain_into(self._client.packets_in(), self._packets)
                )
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for task in self._stream_tasks:
            task.cancel()
        if self._thread.is_alive():
            try:
                self._run(self._client.close(), timeout=10)
                self._run(_finish_pending_tasks(), timeout=10)
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def __enter__(self) -> SyncSwitchClient:
        return self.connect()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client(self) -> SwitchClient:
        """The async client underneath, for code that wants both worlds."""
        return self._client

    @property
    def is_primary(self) -> bool:
        return self._client.is_primary

    @property
    def schema(self) -> fy.P4Schema:
        return self._client.schema

    # -- writes and reads
    def write(self, updates: Iterable[Any], **kwargs: Any) -> None:
        self._run(self._client.write(list(updates), **kwargs))

    def insert(self, entities: Iterable[Any], **kwargs: Any) -> None:
        self._run(self._client.insert(list(entities), **kwargs))

    def modify(self, entities: Iterable[Any], **kwargs: Any) -> None:
        self._run(self._client.modify(list(entities), **kwargs))

    def delete(self, entities: Iterable[Any], **kwargs: Any) -> None:
        self._run(self._client.delete(list(entities), **kwargs))

    def read(self, entity: Any) -> list[Any]:
        return self._run(self._client.read(entity))

    def read_counter(self, counter: str, index: int) -> fy.P4CounterData:
        return self._run(self._client.read_counter(counter, index))

    def read_counters(self, counter: str) -> dict[int, fy.P4CounterData]:
        return self._run(self._client.read_counters(counter))

    # -- stream
    def packet_out(self, payload: bytes, **metadata: Any) -> None:
        self._run(self._client.packet_out(payload, **metadata))

    def get_packet_in(self, timeout: float = 2.0) -> fy.P4PacketIn | None:
        """The next packet-in, or None if none arrives within ``timeout`` seconds."""
        try:
            return self._packets.get(timeout=timeout)
        except queue.Empty:
            return None

    def subscribe_digest(self, digest: str, **config: Any) -> None:
        """Enable a digest on the switch and start collecting (and acking) its lists."""
        if digest in self._digests:
            return
        self._digests[digest] = queue.Queue()
        self._stream_tasks.append(
            self._drain_into(self._client.digests(digest), self._digests[digest])
        )
        self._run(self._client.configure_digest(digest, **config))

    def get_digest(self, digest: str, timeout: float = 2.0) -> fy.P4DigestList | None:
        try:
            return self._digests[digest].get(timeout=timeout)
        except queue.Empty:
            return None

    def _drain_into(self, stream: Any, sink: queue.Queue[Any]) -> Future[None]:
        async def pump() -> None:
            async for item in stream:
                sink.put(item)

        return asyncio.run_coroutine_threadsafe(pump(), self._loop)


async def _finish_pending_tasks() -> None:
    """Cancel what still runs on the loop (stream pumps, gRPC's own call tasks) and let it
    finish, so that stopping the loop destroys no pending task."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
