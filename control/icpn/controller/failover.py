"""Failover: segment lists through a dead switch leave their headends' selector groups, and
come back once the switch is reconciled (issue 14).

A headend spreads an SR policy's flows over its segment lists by a weighted one-shot group
of the deep-hash selector (:func:`icpn.features.srv6.sr_policy`). When a switch on one of
those paths dies, the flows hashed to that list are lost for as long as the list stays in
the group: the data plane cannot tell. The controller can: the switch's P4Runtime stream
breaks (or its gRPC stops answering a probe), so within a fraction of a second the lists
whose path crosses it are taken out of the group (the WCMP member goes, weight 0) and their
pinned elephants move to the lists in service (:meth:`icpn.elephant.ElephantManager.set_drained`,
the same actuation telemetry-driven re-steering uses). They return only once the switch is
back *and reconciled*: a restarted BMv2 has no pipeline and no entries until the controller
has restored them, and traffic sent to it earlier would be dropped.

A switch is *down* from the moment its connection breaks (or a probe goes unanswered, or it
has not come up within a grace period after the controller started) until its state has been
reconciled. A headend that is itself down is left alone; when it comes back, reconciling
writes its groups whole and this module drains them again as the other switches require.
A policy whose every list crosses a dead switch (its endpoint died) keeps its group:
there is nowhere else to send the traffic.

Plain routes get the same treatment one hop away: an ECMP route (a one-shot group of next
hops, :func:`icpn.features.routing.route`) loses its members towards a neighbour that is
down, unless they are all it has, and gets them back with the neighbour — what an IGP's
fast reroute does for a dead adjacency. Traffic that no SR policy steers (pings, replies,
packets to a node SID) then also avoids the dead switch. A switch further away on an ECMP
path is not routed around (that would take recomputing the routes without it).

The switches a list crosses are the path it was rendered from (``SwitchConfig.list_paths``);
routing between its segments follows the same least-cost stretches (the segment encoding
guarantees it, :meth:`icpn.controller.render._Network.segments`), so the path is what the
packets take.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import finsy as fy

from icpn.controller.render import SwitchConfig
from icpn.elephant import ElephantManager, PolicyPaths
from icpn.features.routing import ROUTING_V6
from icpn.features.srv6 import sr_policy
from icpn.intent import Intent
from icpn.switch_api import SwitchApiError

LOG = logging.getLogger(__name__)
#: After a refused write (a headend going away, say), failover tries again this much later.
RETRY_S = 0.5


class GroupWriter(Protocol):
    """What failover writes a headend's groups through (a client, shaped for its target)."""

    async def modify(self, entities: Sequence[Any], **kwargs: Any) -> None: ...


@dataclass(frozen=True)
class FailoverEvent:
    """One thing failover saw or did. ``at`` is ``time.monotonic()`` (comparable across
    processes on one machine: the lab's tests and benchmarks time outages with it)."""

    at: float
    kind: str  # down, up, drain, restore, stuck
    switch: str  # the switch that went down or came up; for drain/restore, the headend
    detail: str
    policy: int | None = None
    list_ids: tuple[int, ...] = ()


@dataclass
class _Switch:
    """A live switch failover writes to: its groups (as a headend) and ECMP routes."""

    writer: GroupWriter
    manager: ElephantManager | None
    policies: list[PolicyPaths]
    #: list ids this module holds out of each policy's group (policy id -> list ids)
    applied: dict[int, frozenset[int]] = field(default_factory=dict)
    #: ports this module holds out of each ECMP route (route key -> ports)
    routes: dict[bytes, frozenset[int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Route:
    """An ECMP route as rendered: its members' ports and the neighbours behind them."""

    key: bytes
    entry: fy.P4TableEntry
    neighbour: dict[int, str]  # port -> neighbour switch

    def without(self, ports: frozenset[int]) -> fy.P4TableEntry:
        action = self.entry.action
        assert isinstance(action, fy.P4IndirectAction) and action.action_set is not None
        kept = [(w, a) for w, a in action.action_set if int(a.args["port"]) not in ports]
        return fy.P4TableEntry(
            self.entry.table_id, match=self.entry.match, action=fy.P4IndirectAction(kept)
        )


def neighbours(intent: Intent) -> dict[str, dict[int, str]]:
    """switch -> port -> the switch at the other end of that port's link."""
    found: dict[str, dict[int, str]] = {}
    for link in intent.links:
        (a, pa), (b, pb) = (end.split(":") for end in (link.a, link.b))
        found.setdefault(a, {})[int(pa)] = b
        found.setdefault(b, {})[int(pb)] = a
    return found


def _ecmp_routes(config: SwitchConfig, ports: Mapping[int, str]) -> list[_Route]:
    routes = []
    for entity in config.entities:
        if not isinstance(entity, fy.P4TableEntry) or entity.table_id != ROUTING_V6:
            continue
        action = entity.action
        if not isinstance(action, fy.P4IndirectAction) or not action.action_set:
            continue
        members = {int(a.args["port"]) for _, a in action.action_set}
        if len(members) < 2 or not members <= ports.keys():
            continue
        key = repr(sorted(dict(entity.match or {}).items())).encode()
        routes.append(_Route(key, entity, {p: ports[p] for p in members}))
    return routes


class Failover:
    """Which switches are down, and the groups that avoid them on every live headend."""

    def __init__(
        self,
        configs: Mapping[str, SwitchConfig],
        *,
        links: Mapping[str, Mapping[int, str]] | None = None,
        progress: Callable[[str], None] = lambda message: LOG.info("%s", message),
        journal: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        held: Callable[[str, int], set[int]] = lambda headend, policy: set(),
    ) -> None:
        self.progress = progress
        #: (headend, policy id) -> the list ids held out for other reasons (telemetry's
        #: drains, icpn.steering): a failover write keeps them out too
        self.held = held
        self.journal = journal
        self.clock = clock
        #: headend -> policy id -> list id -> the switches its path crosses after the headend
        self.crosses: dict[str, dict[int, dict[int, frozenset[str]]]] = {}
        self._policies: dict[str, list[PolicyPaths]] = {}
        #: switch -> its ECMP routes (with ``links``: which neighbour each port reaches)
        self.routes = {
            name: _ecmp_routes(config, (links or {}).get(name, {}))
            for name, config in configs.items()
        }
        for name, config in configs.items():
            if not config.policies:
                continue
            self._policies[name] = list(config.policies)
            self.crosses[name] = {
                p.sr_policy_id: {
                    sl.list_id: frozenset(config.list_paths.get(sl.list_id, ())[1:])
                    for sl in p.lists
                }
                for p in config.policies
            }
        #: switch -> why it is down
        self.down: dict[str, str] = {}
        self.seen_up: set[str] = set()
        self.events: list[FailoverEvent] = []
        self._live: dict[str, _Switch] = {}
        self._dirty = asyncio.Event()
        self._stopped = False  # the controller is stopping: its connections close, not fail
        self._came_up: set[str] = set()  # since the last apply: named in the restorations
        self._last_stuck: dict[tuple[str, int | None], str] = {}
        #: False: switches are tracked, groups left alone (a baseline to measure against)
        self.enabled = True

    # -- what the controller reports -----------------------------------------------------
    def switch_down(self, name: str, reason: str) -> None:
        """``name`` stopped answering: take the lists through it out of service."""
        if name in self.down or self._stopped:
            return
        self.down[name] = reason
        self._live.pop(name, None)
        self._record("down", name, reason)
        self._dirty.set()

    def switch_up(
        self, name: str, writer: GroupWriter, manager: ElephantManager | None = None
    ) -> None:
        """``name`` is connected and reconciled: lists through it may return; as a headend,
        its groups are whole again (reconciling wrote them) and get drained anew."""
        self.seen_up.add(name)
        if name in self._policies or self.routes.get(name):
            self._live[name] = _Switch(writer, manager, self._policies.get(name, []))
        if self.down.pop(name, None) is not None:
            self._came_up.add(name)
            self._record("up", name, "reconciled")
        self._dirty.set()

    def not_up_since_start(self, names: Sequence[str]) -> None:
        """After the start-up grace: switches never seen up count as down."""
        for name in names:
            if name not in self.seen_up:
                self.switch_down(name, "not up since the controller started")

    # -- what to drain -------------------------------------------------------------------
    def wanted(self, headend: str, policy: PolicyPaths) -> frozenset[int]:
        """The policy's list ids that cross a down switch; none when all of them do."""
        crosses = self.crosses[headend][policy.sr_policy_id]
        dead = frozenset(i for i, nodes in crosses.items() if nodes & self.down.keys())
        return frozenset() if len(dead) == len(policy.lists) else dead

    def drained(self, headend: str, policy_id: int) -> frozenset[int]:
        """The list ids failover holds out of a policy's group now."""
        found = self._live.get(headend)
        return found.applied.get(policy_id, frozenset()) if found else frozenset()

    # -- acting ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Apply every change as it is reported, until cancelled."""
        try:
            while True:
                await self._dirty.wait()
                self._dirty.clear()
                try:
                    done = await self.apply()
                except Exception as exc:  # a bug here must not stop the controller
                    LOG.exception("failover")
                    self._stuck("controller", f"{type(exc).__name__}: {exc}")
                    done = False
                if not done:
                    await asyncio.sleep(RETRY_S)  # a refused write: try again
                    self._dirty.set()
        except asyncio.CancelledError:
            self._stopped = True
            raise

    async def apply(self) -> bool:
        """Bring every live switch's groups and ECMP routes in line with the switches that
        are down; False if a write was refused (it is retried)."""
        done = True
        if not self.enabled:
            self._came_up.clear()
            return done
        for name, headend in list(self._live.items()):
            for policy in headend.policies:
                wanted = self.wanted(name, policy)
                applied = headend.applied.get(policy.sr_policy_id, frozenset())
                if wanted == applied:
                    continue
                try:
                    await self._write(name, headend, policy, wanted, applied)
                except (SwitchApiError, ValueError) as exc:
                    self._stuck(name, str(exc), policy.sr_policy_id)
                    done = False
                    continue
                headend.applied[policy.sr_policy_id] = wanted
                pid = policy.sr_policy_id
                if wanted - applied:
                    why = self._why(wanted - applied, name, pid)
                    self._record("drain", name, why, pid, wanted - applied)
                if applied - wanted:
                    back = applied - wanted
                    crosses = self.crosses[name][pid]
                    came = sorted({n for i in back for n in crosses[i] & self._came_up})
                    why = f"through {', '.join(came)} (back in service)" if came else "back"
                    self._record("restore", name, why, pid, back)
            done = await self._reroute(name, headend) and done
        self._came_up.clear()
        return done

    async def _reroute(self, name: str, switch: _Switch) -> bool:
        """The switch's ECMP routes without their members towards dead neighbours."""
        changed: list[tuple[_Route, frozenset[int]]] = []
        for route in self.routes.get(name, []):
            dead = frozenset(p for p, n in route.neighbour.items() if n in self.down)
            wanted = frozenset() if len(dead) == len(route.neighbour) else dead
            if wanted != switch.routes.get(route.key, frozenset()):
                changed.append((route, wanted))
        if not changed:
            return True
        try:
            await switch.writer.modify([route.without(ports) for route, ports in changed])
        except SwitchApiError as exc:
            self._stuck(name, f"ECMP routes: {exc}")
            return False
        pruned = restored = 0
        for route, ports in changed:
            before = switch.routes.get(route.key, frozenset())
            pruned += bool(ports - before)
            restored += bool(before - ports)
            switch.routes[route.key] = ports
        avoided = sorted({n for r, ports in changed for p, n in r.neighbour.items() if p in ports})
        if pruned:
            self._record("ecmp-drain", name, f"{pruned} route(s) avoid {', '.join(avoided)}")
        if restored:
            self._record("ecmp-restore", name, f"{restored} route(s) whole again")
        return True

    async def _write(
        self,
        name: str,
        headend: _Switch,
        policy: PolicyPaths,
        wanted: frozenset[int],
        applied: frozenset[int],
    ) -> None:
        manager = headend.manager
        # lists drained for other reasons (telemetry, icpn.steering) stay drained
        held = set(self.held(name, policy.sr_policy_id))
        if manager is not None:
            drained = manager.drained.get(policy.sr_policy_id, ())
            held |= {policy.lists[i].list_id for i in drained} - applied
        target = held | wanted
        if len(target) == len(policy.lists):
            target = set(wanted)  # a dead path outranks a lossy one
        if manager is None:
            active = [sl for sl in policy.lists if sl.list_id not in target]
            await headend.writer.modify([sr_policy(policy.sr_policy_id, policy.headend, active)])
            return
        await manager.set_drained(policy.sr_policy_id, target)

    def _stuck(self, name: str, detail: str, policy: int | None = None) -> None:
        """A refused write, recorded once however often the retry meets it."""
        if self._last_stuck.get((name, policy)) != detail:
            self._last_stuck[(name, policy)] = detail
            self._record("stuck", name, detail, policy)

    def _why(self, list_ids: frozenset[int], headend: str, policy_id: int) -> str:
        crosses = self.crosses[headend][policy_id]
        dead = sorted({n for i in list_ids for n in crosses[i] & self.down.keys()})
        return f"through {', '.join(dead)} (down)"

    def _record(
        self,
        kind: str,
        switch: str,
        detail: str,
        policy: int | None = None,
        list_ids: frozenset[int] = frozenset(),
    ) -> None:
        event = FailoverEvent(self.clock(), kind, switch, detail, policy, tuple(sorted(list_ids)))
        self.events.append(event)
        if policy is None:
            self.progress(f"{switch}: {kind}: {detail}")
        else:
            lists = ", ".join(map(str, event.list_ids))
            self.progress(f"{switch}: SR policy {policy}: {kind} list(s) {lists}: {detail}")
        if self.journal is not None:
            line = json.dumps({**asdict(event), "wall": time.time()})
            with self.journal.open("a") as out:
                out.write(line + "\n")
