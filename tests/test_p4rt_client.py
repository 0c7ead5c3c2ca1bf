"""The P4Runtime client layer against an in-process fake switch: pipeline push, batching,
canonical encoding, arbitration, digest acks, errors. BMv2 tests cover the same client on a
real switch; these pin down the logic, fast and everywhere."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TypeVar

import finsy as fy
import pytest

from icpn.p4rt import P4RuntimeError, SwitchClient, SwitchTarget, SyncSwitchClient
from tests.fake_p4runtime import FakeP4Runtime, entry, program_files, run_with_server

T = TypeVar("T")


@pytest.fixture
def program(tmp_path: Path) -> tuple[Path, Path]:
    return program_files(tmp_path)


def target(server: FakeP4Runtime, program: tuple[Path, Path], **kw: object) -> SwitchTarget:
    return SwitchTarget("fake", server.address, p4info=program[0], p4blob=program[1], **kw)  # type: ignore[arg-type]


def test_primary_pushes_the_pipeline(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with SwitchClient(target(server, program, force_pipeline=True)) as client:
            assert client.is_primary
        assert server.config is not None
        assert server.config.p4_device_config == program[1].read_bytes()
        assert server.config.p4info.tables[0].preamble.name == "t"

    run_with_server(check)


def test_writes_are_batched_and_canonically_encoded(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with SwitchClient(target(server, program)) as client:
            await client.insert([entry(k) for k in range(2500)], batch_size=1000)
        assert [len(r.updates) for r in server.write_requests] == [1000, 1000, 500]
        first = server.write_requests[0].updates[0].entity.table_entry
        # P4Runtime 8.4: canonical bytestrings have no leading zero bytes (0 is b"\x00").
        assert first.match[0].exact.value == b"\x00"
        second = server.write_requests[0].updates[1].entity.table_entry
        assert second.match[0].exact.value == b"\x01"
        assert second.action.action.params[0].value == b"\x01"

    run_with_server(check)


def test_read_returns_what_was_written(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with SwitchClient(target(server, program)) as client:
            written = [entry(7, 3), entry(9, 4)]
            await client.insert(written)
            read = await client.read(fy.P4TableEntry("t"))
        assert sorted(map(repr, read)) == sorted(map(repr, written))

    run_with_server(check)


def test_backup_client_cannot_write(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with (
            SwitchClient(target(server, program, election_id=20)) as primary,
            SwitchClient(target(server, program, election_id=10)) as backup,
        ):
            await asyncio.sleep(0.2)  # let arbitration settle for both
            assert primary.is_primary
            assert not backup.is_primary
            with pytest.raises(P4RuntimeError, match="fake: write failed"):
                await backup.insert([entry(1)])
            await primary.insert([entry(1)])
        assert len(server.write_requests) == 1

    run_with_server(check)


def test_rejected_entry_raises_with_the_switch_name(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        server.reject_key = b"\x2a"
        async with SwitchClient(target(server, program)) as client:
            with pytest.raises(P4RuntimeError, match="fake: write failed"):
                await client.insert([entry(42)])

    run_with_server(check)


def test_digest_lists_are_acked_and_delivered(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        async with SwitchClient(target(server, program)) as client:
            stream = client.digests("d")
            first = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(0.1)  # the subscription is open before the switch sends
            server.send_digest(list_id=5, values=[0xDEADBEEF, 7])
            got = await asyncio.wait_for(first, 5)
            assert got.list_id == 5
            assert list(got) == [0xDEADBEEF, 7]
            await asyncio.sleep(0.1)
            await stream.aclose()  # type: ignore[attr-defined]
        assert [(a.digest_id, a.list_id) for a in server.digest_acks] == [(0x17000001, 5)]

    run_with_server(check)


def test_sync_facade_writes_reads_and_closes(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        def blocking() -> list[object]:
            with SyncSwitchClient(target(server, program)) as sw:
                sw.insert([entry(3)])
                return sw.read(fy.P4TableEntry("t"))

        read = await asyncio.to_thread(blocking)
        assert [repr(e) for e in read] == [repr(entry(3))]

    run_with_server(check)


def test_entities_can_be_inserted_then_deleted(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        entity = entry(5)
        async with SwitchClient(target(server, program)) as client:
            await client.insert([entity])
            await client.delete([entity])  # the same object: it must not carry the INSERT mark
        assert server.entities == {}

    run_with_server(check)


def test_sync_facade_subscribes_acks_and_delivers_digests(program: tuple[Path, Path]) -> None:
    async def check(server: FakeP4Runtime) -> None:
        def blocking() -> object:
            with SyncSwitchClient(target(server, program)) as sw:
                sw.subscribe_digest("d", ack_timeout_ns=1_000_000)
                return sw.get_digest("d", timeout=5)

        receiving = asyncio.ensure_future(asyncio.to_thread(blocking))
        for _ in range(50):  # bounded: wait for the subscription (a DigestEntry write)
            if server.write_requests:
                break
            await asyncio.sleep(0.05)
        assert server.write_requests, "the digest was never enabled"
        entry = server.write_requests[0].updates[0].entity.digest_entry
        assert entry.config.ack_timeout_ns == 1_000_000
        server.send_digest(list_id=11, values=[42])
        got = await receiving
        assert got is not None and list(got) == [42]  # type: ignore[call-overload]
        for _ in range(40):  # the ack goes out on the stream before delivery; it may be in flight
            if server.digest_acks:
                break
            await asyncio.sleep(0.05)
        assert [a.list_id for a in server.digest_acks] == [11]

    run_with_server(check)


def test_a_failing_on_ready_backs_off_instead_of_spinning(program: tuple[Path, Path]) -> None:
    """on_ready raising ends the session at once; the client reconnects with a growing
    delay (0.2, 0.4, 0.8, 1.6 s ...), not every 0.1 s."""

    async def check(server: FakeP4Runtime) -> int:
        calls = 0

        async def on_ready(_client: SwitchClient) -> None:
            nonlocal calls
            calls += 1
            raise RuntimeError("a bug in the caller")

        client = SwitchClient(target(server, program))
        task = asyncio.ensure_future(client.run(on_ready))
        await asyncio.sleep(3.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return calls

    calls = run_with_server(check)
    assert 2 <= calls <= 6, calls  # 0.1 s apart would be ~25
