"""The controller: one asyncio process, one P4Runtime connection per switch (DESIGN.md 4).

Two ways to run it:

* :meth:`Controller.apply` connects to every switch, reconciles each with the intent and
  disconnects (``icpn ctl run --once``). Every switch must answer before anything is
  written, so an unreachable switch stops the run with nothing changed.
* :meth:`Controller.run` stays connected (``icpn ctl run``). Each switch has its own
  lifecycle: connect, arbitrate, push the pipeline if the switch lacks it, reconcile, start
  the elephant manager. When a switch restarts (its P4Runtime channel breaks), the client
  reconnects and goes through the same steps, so the switch gets its pipeline and state back;
  when this controller restarts, reconciling writes only what differs.

Arbitration follows P4Runtime 5: several controllers may connect with distinct election ids;
the highest is primary and writes, the others are backups that only read and take over
(reconciling) when the primary goes away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import finsy as fy

from icpn.build import Artifacts
from icpn.controller.reconcile import Plan, ReconcileError, reconcile
from icpn.controller.render import SwitchConfig
from icpn.elephant import ElephantManager
from icpn.intent import Intent
from icpn.p4rt.client import P4RuntimeError, SwitchClient, SwitchTarget, TlsFiles
from icpn.sketch import ELEPHANT_DIGEST, ELEPHANT_OVERRIDE
from icpn.sketch_key import SketchHashKey, hash_key_entry

LOG = logging.getLogger("icpn.controller")

#: How long a switch has to answer (connect, arbitrate, push the pipeline) in apply().
CONNECT_TIMEOUT_S = 15.0
#: Digest settings of the elephant reports: a list per report, resent after 1 s unacked.
DIGEST_ACK_TIMEOUT_NS = 1_000_000_000


class UnreachableError(RuntimeError):
    """One or more switches did not answer; nothing was written to any switch."""


@dataclass
class SwitchStatus:
    """What the controller knows about one switch, for ``icpn ctl show`` and tests."""

    name: str
    address: str
    primary: bool = False
    connects: int = 0
    last_plan: Plan | None = None  # None while a (re)connected switch is being reconciled
    last_reconcile_s: float | None = None
    last_error: str | None = None
    elephants: ElephantManager | None = None


@dataclass
class Controller:
    intent: Intent
    configs: dict[str, SwitchConfig]
    artifacts: Artifacts | None
    election_id: int = 10
    batch_size: int | None = None
    progress: Callable[[str], None] = field(default=lambda message: LOG.info("%s", message))
    status: dict[str, SwitchStatus] = field(init=False)
    sketch_hash_key: SketchHashKey = field(init=False)

    def __post_init__(self) -> None:
        self.status = {
            name: SwitchStatus(name, sw.grpc) for name, sw in self.intent.switches.items()
        }
        #: The sketches' secret hash key: the intent's, or drawn now for this run (a new
        #: key only restarts the sketches' counts; overrides are relearned at start anyway).
        given = [c.sketch_hash_key for c in self.configs.values() if c.sketch_hash_key]
        self.sketch_hash_key = given[0] if given else SketchHashKey.generate()

    # -- targets -------------------------------------------------------------------------
    def target(self, name: str, *, election_id: int | None = None) -> SwitchTarget:
        switch = self.intent.switches[name]
        tls = self.intent.tls
        return SwitchTarget(
            name,
            switch.grpc,
            device_id=switch.device_id,
            p4info=self.artifacts.p4info if self.artifacts else None,
            p4blob=self.artifacts.json if self.artifacts else None,
            election_id=self.election_id if election_id is None else election_id,
            tls=TlsFiles(tls.ca_cert, tls.cert, tls.key) if tls else None,
        )

    # -- one-shot ------------------------------------------------------------------------
    async def apply(self, *, dry_run: bool = False) -> dict[str, Plan]:
        """Reconcile every switch once. Raises UnreachableError (nothing written) or
        ReconcileError (that switch restored; the others keep their reconciled state)."""
        clients = {name: SwitchClient(self.target(name)) for name in self.configs}
        try:
            await self._connect_all(clients)
            plans = await asyncio.gather(
                *(self._reconcile(clients[name], dry_run=dry_run) for name in self.configs)
            )
            return dict(zip(self.configs, plans, strict=True))
        finally:
            await asyncio.gather(*(c.close() for c in clients.values()))

    async def _connect_all(self, clients: dict[str, SwitchClient]) -> None:
        async def connect(client: SwitchClient) -> str | None:
            try:
                await asyncio.wait_for(client.connect(), CONNECT_TIMEOUT_S)
            except (P4RuntimeError, TimeoutError, OSError, fy.P4ClientError) as exc:
                reason = str(exc) or type(exc).__name__
                return f"{client.target.name} ({client.target.address}): {reason}"
            if not client.is_primary:
                return f"{client.target.name}: another controller is primary (higher election id)"
            return None

        failures = [f for f in await asyncio.gather(*map(connect, clients.values())) if f]
        if failures:
            raise UnreachableError(
                "not every switch can be controlled, nothing was written:\n  "
                + "\n  ".join(failures)
            )

    async def _reconcile(self, client: SwitchClient, *, dry_run: bool = False) -> Plan:
        name = client.target.name
        status = self.status[name]
        started = time.perf_counter()
        try:
            todo = await reconcile(
                client, self.configs[name].entities, batch_size=self.batch_size, dry_run=dry_run
            )
        except ReconcileError as exc:
            status.last_error = str(exc)
            raise
        status.last_reconcile_s = time.perf_counter() - started
        status.last_plan, status.last_error = todo, None
        self.progress(f"{name}: {'would write' if dry_run else 'reconciled'}: {todo.summary()}")
        return todo

    # -- long-running --------------------------------------------------------------------
    async def run(self) -> None:
        """Control every switch until cancelled; each reconnects on its own."""
        async with asyncio.TaskGroup() as tasks:
            for name in self.configs:
                client = SwitchClient(self.target(name))
                tasks.create_task(client.run(self._on_ready), name=f"switch {name}")

    async def _on_ready(self, client: SwitchClient) -> None:
        name = client.target.name
        status = self.status[name]
        status.primary = client.is_primary
        status.connects += 1
        status.last_plan = None
        if not client.is_primary:
            self.progress(f"{name}: connected as backup, not writing")
            return
        self.progress(f"{name}: primary, pipeline in place; reconciling")
        try:
            await self._clear_learned(client)
            await self._reconcile(client)
        except (ReconcileError, P4RuntimeError) as exc:
            status.last_error = str(exc)
            self.progress(f"{name}: {exc}")
            return
        config = self.configs[name]
        if config.detects_elephants:
            try:
                await client.modify([hash_key_entry(self.sketch_hash_key)])
            except P4RuntimeError as exc:
                status.last_error = f"setting the sketch's hash key: {exc}"
                self.progress(f"{name}: {status.last_error}")
                return
        if config.detects_elephants and config.policies:
            await self._configure_digest(client)
            manager = ElephantManager(client, config.policies, config.elephant_settings)
            status.elephants = manager
            client.spawn(manager.run(), name=f"elephants {name}")

    async def _clear_learned(self, client: SwitchClient) -> None:
        """Overrides a previous controller installed: dropped; elephants report again
        within a sketch window and get placed on the current load."""
        stale = await client.read(fy.P4TableEntry(ELEPHANT_OVERRIDE))
        if stale:
            await client.delete(stale, strict=False)

    async def _configure_digest(self, client: SwitchClient) -> None:
        def entry() -> fy.P4DigestEntry:  # a fresh one per write: +/~ mark the entity itself
            return fy.P4DigestEntry(
                ELEPHANT_DIGEST,
                max_list_size=1,
                max_timeout_ns=0,
                ack_timeout_ns=DIGEST_ACK_TIMEOUT_NS,
            )

        try:
            await client.write([+entry()])
        except P4RuntimeError:  # configured by an earlier controller: update it
            await client.write([~entry()])
