"""The controller: one asyncio process, one P4Runtime connection per switch (DESIGN.md 4).

Two ways to run it:

* :meth:`Controller.apply` connects to every switch, reconciles each with the intent and
  disconnects (``icpn ctl run --once``). Every switch must answer before anything is
  written, so an unreachable switch stops the run with nothing changed.
* :meth:`Controller.run` stays connected (``icpn ctl run``). Each switch has its own
  lifecycle: connect, arbitrate, push the pipeline if the switch lacks it, reconcile, start
  the elephant manager. When a switch restarts (its P4Runtime channel breaks), the client
  reconnects and goes through the same steps, so the switch gets its pipeline and state back;
  when this controller restarts, reconciling writes only what differs, and the elephant
  overrides it finds (the placement of the elephants, learned at run time) are adopted by
  the elephant manager rather than deleted.

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

from icpn.bfrt.client import BfrtSwitchClient
from icpn.controller.reconcile import Plan, ReconcileError, reconcile
from icpn.controller.render import SwitchConfig
from icpn.controller.targets import (
    Client,
    ShapedSwitch,
    elephant_digest,
    make_client,
    shape_config,
)
from icpn.elephant import ElephantManager
from icpn.features import qos
from icpn.features.sketch import ELEPHANT_DIGEST, ELEPHANT_OVERRIDE
from icpn.intent import Intent
from icpn.p4rt.client import SwitchTarget, TlsFiles
from icpn.routers import RouterResponder
from icpn.sketch_key import SketchHashKey, hash_key_entry
from icpn.switch_api import SwitchApiError
from icpn.targets.bmv2.build import Artifacts

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
    #: answers neighbour/router solicitations, pings to the router, ICMPv6 errors
    responder: RouterResponder | None = None


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
        # Each switch's desired state as its program takes it (TNA-shaped on Tofino).
        self.configs = {
            name: shape_config(config, self.intent.switches[name])
            for name, config in self.configs.items()
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

    def client(self, name: str, *, election_id: int | None = None) -> Client:
        """A client for the switch through its API (P4Runtime or BfRuntime)."""
        return make_client(
            name,
            self.intent.switches[name],
            artifacts=self.artifacts,
            election_id=self.election_id if election_id is None else election_id,
            tls=self.intent.tls,
        )

    # -- one-shot ------------------------------------------------------------------------
    async def apply(self, *, dry_run: bool = False) -> dict[str, Plan]:
        """Reconcile every switch once. Raises UnreachableError (nothing written) or
        ReconcileError (that switch restored; the others keep their reconciled state)."""
        clients = {name: self.client(name) for name in self.configs}
        try:
            await self._connect_all(clients)
            plans = await asyncio.gather(
                *(self._reconcile(clients[name], dry_run=dry_run) for name in self.configs)
            )
            return dict(zip(self.configs, plans, strict=True))
        finally:
            await asyncio.gather(*(c.close() for c in clients.values()))

    async def _connect_all(self, clients: dict[str, Client]) -> None:
        async def connect(client: Client) -> str | None:
            try:
                await asyncio.wait_for(client.connect(), CONNECT_TIMEOUT_S)
            except (SwitchApiError, TimeoutError, OSError, fy.P4ClientError) as exc:
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

    async def _reconcile(self, client: Client, *, dry_run: bool = False) -> Plan:
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
        switch = self.intent.switches[name]
        rates = self.configs[name].queue_rates
        if not dry_run and switch.thrift is not None and rates:
            await asyncio.to_thread(qos.apply_queue_rates, switch.thrift, rates)
        status.last_reconcile_s = time.perf_counter() - started
        status.last_plan, status.last_error = todo, None
        self.progress(f"{name}: {'would write' if dry_run else 'reconciled'}: {todo.summary()}")
        return todo

    # -- long-running --------------------------------------------------------------------
    async def run(self) -> None:
        """Control every switch until cancelled; each reconnects on its own."""
        async with asyncio.TaskGroup() as tasks:
            for name in self.configs:
                client = self.client(name)
                tasks.create_task(client.run(self._on_ready), name=f"switch {name}")

    async def _on_ready(self, client: Client) -> None:
        name = client.target.name
        status = self.status[name]
        status.primary = client.is_primary
        status.connects += 1
        status.last_plan = None
        if not client.is_primary:
            self.progress(f"{name}: connected as backup, not writing")
            return
        self.progress(f"{name}: primary, pipeline in place; reconciling")
        config = self.configs[name]
        if config.router is not None:
            if isinstance(client, BfrtSwitchClient):
                self.progress(f"{name}: BfRuntime has no packet I/O: no answers to NS/echo")
            else:
                responder = RouterResponder(client, config.router)
                status.responder = responder
                client.spawn(responder.run(), name=f"router {name}")
        manages_elephants = config.detects_elephants and bool(config.policies)
        try:
            await self._reconcile(client)
            if not manages_elephants:
                await self._clear_learned(client)
        except (ReconcileError, SwitchApiError) as exc:
            status.last_error = str(exc)
            self.progress(f"{name}: {exc}")
            return
        switch_intent = self.intent.switches[name]
        if config.detects_elephants and not switch_intent.is_tofino:
            # Tofino's sketch hashes with the polynomials it was compiled with (docs/tofino.md)
            try:
                await client.modify([hash_key_entry(self.sketch_hash_key)])
            except SwitchApiError as exc:
                status.last_error = f"setting the sketch's hash key: {exc}"
                self.progress(f"{name}: {status.last_error}")
                return
        if manages_elephants:
            switch = ShapedSwitch(client, switch_intent)
            manager = ElephantManager(switch, config.policies, config.elephant_settings)
            try:
                await self._configure_digest(client)
                adopted = await manager.adopt()
            except SwitchApiError as exc:
                status.last_error = str(exc)
                self.progress(f"{name}: {exc}")
                return
            if adopted.kept or adopted.dropped:
                self.progress(
                    f"{name}: adopted {adopted.kept} elephant overrides found on the switch"
                    f" (deleted {adopted.dropped} the intent no longer places)"
                )
            status.elephants = manager
            client.spawn(manager.run(), name=f"elephants {name}")

    async def _clear_learned(self, client: Client) -> None:
        """Overrides on a switch that no longer detects elephants: nothing manages them."""
        if client.schema.tables.get(ELEPHANT_OVERRIDE) is None:
            return
        stale = await client.read(fy.P4TableEntry(ELEPHANT_OVERRIDE))
        if stale:
            await client.delete(stale, strict=False)

    async def _configure_digest(self, client: Client) -> None:
        if isinstance(client, BfrtSwitchClient):
            await client.configure_digest(elephant_digest(self.intent.switches[client.name]))
            return

        def entry() -> fy.P4DigestEntry:  # a fresh one per write: +/~ mark the entity itself
            return fy.P4DigestEntry(
                ELEPHANT_DIGEST,
                max_list_size=1,
                max_timeout_ns=0,
                ack_timeout_ns=DIGEST_ACK_TIMEOUT_NS,
            )

        try:
            await client.insert([entry()])
        except SwitchApiError:  # configured by an earlier controller: update it
            await client.modify([entry()])
