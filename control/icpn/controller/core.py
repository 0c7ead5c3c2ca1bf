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

With ``steering`` in the intent, :meth:`Controller.run` also measures every segment list's
loss (alternate marking, a FlowMonID per list) and drains the lists that degrade
(:mod:`icpn.steering`). A drain is the controller's state, not only the switch's: the
desired state it reconciles holds each SR policy's group without its drained lists, so a
reconnect or a restarted switch keeps them drained until they are restored.

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
from pathlib import Path
from typing import Any

import finsy as fy

from icpn.bfrt.client import BfrtSwitchClient
from icpn.collector.altmark import AltmarkMonitor
from icpn.controller.failover import Failover, GroupWriter, neighbours
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
from icpn.features import qos, srv6
from icpn.features.routing import DROP_COUNTER
from icpn.features.sketch import ELEPHANT_DIGEST, ELEPHANT_OVERRIDE
from icpn.intent import Intent
from icpn.p4rt.client import SwitchClient, SwitchTarget, TlsFiles
from icpn.routers import RouterResponder
from icpn.sketch_key import SketchHashKey, hash_key_entry
from icpn.steering import ListPath, Steering, list_paths
from icpn.switch_api import SwitchApiError
from icpn.targets.bmv2.build import Artifacts

LOG = logging.getLogger("icpn.controller")

#: How long a switch has to answer (connect, arbitrate, push the pipeline) in apply().
CONNECT_TIMEOUT_S = 15.0
#: Digest settings of the elephant reports: a list per report, resent after 1 s unacked.
DIGEST_ACK_TIMEOUT_NS = 1_000_000_000
#: Failover (icpn.controller.failover): a P4Runtime switch is probed with a one-cell counter
#: read this often; one that has not answered within PROBE_TIMEOUT_S counts as down (a hung
#: process keeps its TCP connection, so its stream does not break). The timeout is well above
#: what a busy BMv2 takes, so that load alone never drains a path.
PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 1.5
#: A switch not up this long after the controller started counts as down.
STARTUP_GRACE_S = 10.0


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
    #: Where failover events go as JSON lines (the lab's log directory), if anywhere.
    journal: Path | None = None
    status: dict[str, SwitchStatus] = field(init=False)
    sketch_hash_key: SketchHashKey = field(init=False)
    failover: Failover = field(init=False)
    #: (headend, SR policy id) -> list ids out of service (telemetry-driven re-steering)
    drains: dict[tuple[str, int], set[int]] = field(init=False, default_factory=dict)
    steering: Steering | None = field(init=False, default=None)
    _clients: dict[str, Client] = field(init=False, default_factory=dict)

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
        self.failover = Failover(
            self.configs,
            links=neighbours(self.intent),
            progress=lambda message: self.progress(message),
            journal=self.journal,
            held=lambda headend, policy: self.drains.get((headend, policy), set()),
        )

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
                client, self.desired(name), batch_size=self.batch_size, dry_run=dry_run
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

    # -- drained segment lists -----------------------------------------------------------
    def _group(self, name: str, sr_policy_id: int) -> Any:
        """The SR policy's entry on switch ``name`` without its drained lists."""
        config = self.configs[name]
        policy = next(p for p in config.policies if p.sr_policy_id == sr_policy_id)
        out = self.out_of_service(name, sr_policy_id)
        entry = srv6.sr_policy(
            sr_policy_id, policy.headend, [sl for sl in policy.lists if sl.list_id not in out]
        )
        return shape_config(SwitchConfig(name, [entry]), self.intent.switches[name]).entities[0]

    def out_of_service(self, name: str, sr_policy_id: int) -> set[int]:
        """The SR policy's lists held out of its group on headend ``name`` now: those
        telemetry drained (:attr:`drains`) and those through a dead switch (failover), one
        set, so neither cause's write brings back a list the other holds out. Should the
        two together cover every list, a dead path outranks a lossy one: failover's alone."""
        dead = set(self.failover.drained(name, sr_policy_id))
        out = self.drains.get((name, sr_policy_id), set()) | dead
        policy = next(p for p in self.configs[name].policies if p.sr_policy_id == sr_policy_id)
        return dead if {sl.list_id for sl in policy.lists} <= out else out

    def desired(self, name: str) -> list[Any]:
        """The switch's desired state: the rendered one, with each SR policy's selector
        group short of the lists drained now (a reconcile must not undo a drain)."""
        drained = {policy for (switch, policy) in self.drains if switch == name}
        if not drained:
            return self.configs[name].entities
        out = []
        for entity in self.configs[name].entities:
            policy = _sr_policy_id(entity)
            out.append(self._group(name, policy) if policy in drained else entity)
        return out

    async def set_drained(self, name: str, sr_policy_id: int, list_ids: set[int]) -> None:
        """Put exactly ``list_ids`` of the SR policy on headend ``name`` out of service.
        Kept here first (the next reconcile writes it too), then written now when the
        switch is controlled: through its elephant manager (which also moves the pinned
        elephants off), else as the SR policy's entry alone."""
        config = self.configs[name]
        policy = next((p for p in config.policies if p.sr_policy_id == sr_policy_id), None)
        if policy is None:
            raise ValueError(f"{name}: no SR policy {sr_policy_id} here")
        if {sl.list_id for sl in policy.lists} <= set(list_ids):
            raise ValueError(f"SR policy {sr_policy_id}: cannot drain every segment list")
        if list_ids:
            self.drains[(name, sr_policy_id)] = set(list_ids)
        else:
            self.drains.pop((name, sr_policy_id), None)
        self.progress(
            f"{name}: SR policy {sr_policy_id}: segment lists out of service: "
            f"{sorted(list_ids) or 'none'}"
        )
        await self._write_drains(name, only=sr_policy_id)

    def client_of(self, name: str) -> Client:
        """The live connection :meth:`run` keeps to switch ``name``."""
        return self._clients[name]

    async def reconcile_now(self, name: str) -> Plan:
        """Reconcile switch ``name`` again over the live connection (as a reconnection
        would), drains included; for operators and tests."""
        client = self._clients.get(name)
        if client is None or not self.status[name].primary:
            raise RuntimeError(f"{name}: not controlled by this controller now")
        return await self._reconcile(client)

    async def _write_drains(self, name: str, *, only: int | None = None) -> None:
        client = self._clients.get(name)
        status = self.status[name]
        if client is None or not status.primary or status.last_plan is None:
            return  # not controlled now: the reconcile on (re)connection writes it
        policies = [p.sr_policy_id for p in self.configs[name].policies]
        for sr_policy_id in policies if only is None else [only]:
            out = self.out_of_service(name, sr_policy_id)
            if only is None and not out:
                continue
            manager = status.elephants
            try:
                if manager is not None and sr_policy_id in manager.policies:
                    await manager.set_drained(sr_policy_id, out)
                else:
                    await client.modify([self._group(name, sr_policy_id)])
            except SwitchApiError as exc:
                status.last_error = f"draining: {exc}"
                self.progress(f"{name}: {status.last_error}")

    # -- long-running --------------------------------------------------------------------
    async def run(self) -> None:
        """Control every switch until cancelled; each reconnects on its own, and failover
        keeps the headends' groups off the switches that are down."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self.failover.run(), name="failover")
            tasks.create_task(self._grace(), name="start-up grace")
            for name in self.configs:
                client = self.client(name)
                self._clients[name] = client
                tasks.create_task(client.run(self._on_ready), name=f"switch {name}")
            if self.intent.steering is not None:
                tasks.create_task(self.steer(), name="steering")

    async def steer(self) -> None:
        """Measure each segment list's loss and drain or restore lists (:mod:`icpn.steering`),
        until cancelled: one alternate-marking monitor per (headend, decapsulating node,
        period), reading the colour counters through this controller's own connections."""
        spec = self.intent.steering
        assert spec is not None
        lists = [p for p in list_paths(self.intent) if p.flow_mon_id is not None]
        if not lists:
            self.progress("steering: no segment list is marked apart (altmark.per_list)")
            return
        self.steering = Steering(lists, self.set_drained, spec.settings(), spec.min_packets)
        groups: dict[tuple[str, str, int], list[ListPath]] = {}
        for path in lists:
            assert path.period_log2_us is not None
            groups.setdefault((path.headend, path.endpoint, path.period_log2_us), []).append(path)
        monitors = []
        for (headend, endpoint, period), group in groups.items():
            readers = {n: self._clients[n] for n in (headend, endpoint)}
            if not all(hasattr(r, "read_counters") for r in readers.values()):
                self.progress(f"steering: {headend}-{endpoint}: counters not readable (BfRuntime)")
                continue
            flows = [p.flow_mon_id for p in group if p.flow_mon_id is not None]
            guard = (1 << period) * 1e-6 * spec.guard_share
            monitors.append(AltmarkMonitor(readers, flows, period, guard_s=guard))
        if not monitors:
            return
        # every period/8: a block is seen finished within an eighth of a period of its guard
        interval = max(0.05, min(m.period_s / 8 for m in monitors))
        while True:
            try:
                for monitor in monitors:
                    for block in await monitor.poll_once():
                        await self.steering.on_block(block)
                await self.steering.tick()
            except (SwitchApiError, ValueError, RuntimeError) as exc:  # keep the switches
                self.progress(f"steering: {exc}")
            await asyncio.sleep(interval)

    async def _grace(self) -> None:
        await asyncio.sleep(STARTUP_GRACE_S)
        self.failover.not_up_since_start(list(self.configs))

    async def _on_ready(self, client: Client) -> None:
        name = client.target.name
        status = self.status[name]
        status.primary = client.is_primary
        status.connects += 1
        status.last_plan = None
        status.elephants = None  # the last connection's manager went with it
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
            # Drains decided while this switch was away or being reconciled: the reconcile
            # wrote the groups; the manager must know them before it places anything (and
            # move the pins it adopted off them).
            await self._write_drains(name)
            client.spawn(manager.run(), name=f"elephants {name}")
        else:
            await self._write_drains(name)  # a drain decided during the reconcile
        self._supervise(client, status.elephants if manages_elephants else None)

    def _supervise(self, client: Client, manager: ElephantManager | None) -> None:
        """The switch is up and reconciled: tell failover, and watch for its loss (the
        connection's tasks end when its stream breaks; a probe catches a hung switch)."""
        name = client.target.name
        writer: GroupWriter = ShapedSwitch(client, self.intent.switches[name])
        self.failover.switch_up(name, writer, manager)
        client.spawn(self._watch(name), name=f"watch {name}")
        if isinstance(client, SwitchClient) and client.schema.counters.get(DROP_COUNTER):
            client.spawn(self._probe(client, writer, manager), name=f"probe {name}")

    async def _watch(self, name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:  # cancelled: the connection went down (or the controller is stopping)
            self.failover.switch_down(name, "P4Runtime stream down")

    async def _probe(
        self, client: SwitchClient, writer: GroupWriter, manager: ElephantManager | None
    ) -> None:
        """A switch whose gRPC stops answering is down; when it answers again it is
        reconciled (a hang may have outlived a restart of its state) before it is up."""
        name = client.target.name
        hung = False
        while True:
            await asyncio.sleep(PROBE_INTERVAL_S)
            try:
                await asyncio.wait_for(client.read_counter(DROP_COUNTER, 0), PROBE_TIMEOUT_S)
            except SwitchApiError:
                pass  # an answer all the same (a broken stream is _watch's to see)
            except TimeoutError:
                if not hung:
                    hung = True
                    self.failover.switch_down(name, "gRPC not answering")
                continue
            if hung:
                try:
                    await self._reconcile(client)
                except (ReconcileError, SwitchApiError) as exc:
                    self.progress(f"{name}: answering again, but {exc}")
                    continue
                hung = False
                self.failover.switch_up(name, writer, manager)

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


def _sr_policy_id(entity: Any) -> int | None:
    """The SR policy id of an ``sr_policy`` table entry, else None."""
    if not isinstance(entity, fy.P4TableEntry) or entity.table_id != srv6.SR_POLICY:
        return None
    return int(dict(entity.match or {})["sr_policy_id"])
