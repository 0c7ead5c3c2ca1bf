"""The elephant manager (DESIGN.md 4): elephant digests in, override entries out.

For every flow the switch reports (one digest per flow per window, :mod:`icpn.features.sketch`), pin
it to a segment list of its SR policy; every poll, move pinned elephants while the lists are
out of balance; unpin flows that went idle; keep the override table within its size by
evicting the coldest entry; and stay bounded under a digest storm: reports wait in a
bounded queue (deduplicated by flow), writes go out at a limited rate, and what cannot be
kept is dropped and counted, never allowed to grow.

A report is a claim, not a fact (a sketch overestimates, and crafted traffic can make it
claim more, docs/elephants.md "Crafted traffic"): a pin is provisional until its own direct
counter has measured the flow for ``verify_after_s``; a flow slower than ``confirm_fraction``
of its policy's elephant rate is then unpinned, and its reports are ignored for
``refute_hold_s``. And no tenant — an ingress port, an APN ID — may hold more than its quota
of the override table or of the report queue (``port_quota``, ``apn_quota``: shares of
``max_overrides`` and of ``max_pending``), so one sender cannot crowd the others out.

Where a flow goes is decided by :mod:`icpn.placement` (the same code the study model runs),
on what the switch measured at the last poll: each list's byte rate (``segment_list_load``)
and each pinned flow's (the override table's direct counter ``override_hits``). A list's
*background* is its traffic no override pins: its rate minus the rates of the flows pinned
on it. A report between polls is placed on those figures plus the expected rate of the
flows placed since; the next poll measures them and :func:`icpn.placement.rebalance` moves
what was misplaced (a MODIFY of the override entry: the flow keeps its counter).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import finsy as fy

from icpn import placement
from icpn.constants import FlowKeyType
from icpn.features.sketch import (
    ELEPHANT_DIGEST,
    ELEPHANT_OVERRIDE,
    ElephantReport,
    FlowKey,
    elephant_override,
)
from icpn.features.srv6 import SEGMENT_LIST_LOAD, SegmentList, sr_policy
from icpn.hashing import sr_list_member

LOG = logging.getLogger(__name__)
OVERRIDE_HITS = "override_hits"


class ElephantSwitch(Protocol):
    """What the manager needs of a switch: :class:`icpn.p4rt.SwitchClient` provides it."""

    def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]: ...

    async def insert(self, entities: Sequence[Any], **kwargs: Any) -> None: ...

    async def modify(self, entities: Sequence[Any], **kwargs: Any) -> None: ...

    async def delete(self, entities: Sequence[Any], **kwargs: Any) -> None: ...

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData: ...

    async def read(self, entity: Any) -> list[Any]: ...


@dataclass(frozen=True)
class PolicyPaths:
    """An SR policy's headend address and its segment lists (each with its list id), with
    each list's path latency and capacity (any unit; empty: all lists alike), which the
    placement needs for its reordering rule and utilisation."""

    sr_policy_id: int
    headend: str
    lists: tuple[SegmentList, ...]
    latency_ms: tuple[float, ...] = ()
    capacity: tuple[float, ...] = ()
    #: The sketch profile's elephant rate, threshold / window, in packets per second (or
    #: bytes per second with ``count_bytes``); 0: pins are not verified.
    elephant_rate: float = 0.0
    count_bytes: bool = False

    def __post_init__(self) -> None:
        for name in ("latency_ms", "capacity"):
            given = getattr(self, name)
            if given and len(given) != len(self.lists):
                raise ValueError(f"{name}: {len(given)} values for {len(self.lists)} lists")

    def list_states(self, background: dict[int, float]) -> list[placement.ListState]:
        """The lists as :mod:`icpn.placement` sees them; ``background`` by list id."""
        latency = self.latency_ms or (0.0,) * len(self.lists)
        capacity = self.capacity or (1.0,) * len(self.lists)
        return [
            placement.ListState(c, ms, background.get(sl.list_id, 0.0))
            for sl, ms, c in zip(self.lists, latency, capacity, strict=True)
        ]

    def hashed_list(
        self, report: ElephantReport, active: Sequence[int] | None = None
    ) -> int | None:
        """The list the deep hash gives the reported flow (where its packets go before it is
        pinned), when the flow key pins it down: (SA, DA, DestQP) keys do — a 5-tuple key
        may cover many QPs, hashed apart — and the report carries the APN ID (Tofino's
        digest does not: then the placement does without). ``active``: the lists in the
        selector group (all but the drained ones), in order."""
        if report.key_type != FlowKeyType.SRC_DST_QP or report.apn_id is None:
            return None
        members = list(range(len(self.lists))) if active is None else list(active)
        key = [(report.apn_id, 128), (report.flow.dest_qp, 24)]
        return members[sr_list_member(key, [self.lists[i].weight for i in members])]


@dataclass(frozen=True)
class ManagerSettings:
    max_overrides: int = 512  # at most the P4 table's size
    max_pending: int = 4096  # reports waiting to be placed
    writes_per_second: float = 1000.0
    write_burst: int = 64
    poll_interval_s: float = 1.0  # counters; one idle poll = one idle interval
    idle_polls: int = 3  # unpin after this many polls without traffic
    default_elephant_bytes_per_s: float = 1e6  # before any pinned flow has been measured
    placement: placement.PlacementSettings = field(default_factory=placement.PlacementSettings)
    #: Verification: a pin measured for verify_after_s at less than confirm_fraction of its
    #: policy's elephant rate is removed; the flow's reports are ignored for refute_hold_s.
    confirm_fraction: float = 0.5
    verify_after_s: float = 1.0
    refute_hold_s: float = 30.0
    max_refuted: int = 65536
    #: Quotas: the share of max_overrides and of max_pending one ingress port (one APN ID)
    #: may hold; 1.0: no quota.
    port_quota: float = 1.0
    apn_quota: float = 1.0

    def __post_init__(self) -> None:
        for name in ("port_quota", "apn_quota", "confirm_fraction"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1], not {value}")


@dataclass
class Pinned:
    policy: int
    flow: FlowKey
    list_index: int
    entry: fy.P4TableEntry
    installed_at: float  # the override took effect (its counter started)
    placed_at: float  # on its current list since (placement's hold-down)
    last_packets: int = 0
    last_bytes: int = 0
    bytes_per_s: float = 0.0
    measured: bool = False  # bytes_per_s is from a poll
    idle_polls: int = 0
    ingress_port: int = 0
    apn_id: int | None = 0  # None: the report had none (Tofino's digest)
    confirmed: bool = False  # its counter has shown an elephant's rate
    verify_packets: int = 0  # the counter when the pin took effect (verification's start)
    verify_bytes: int = 0

    def tenants(self) -> tuple[Tenant, Tenant]:
        return (("port", self.ingress_port), ("apn", self.apn_id))


#: A quota holder: ("port", ingress port) or ("apn", APN ID; None when reports carry none).
Tenant = tuple[str, int | None]


def tenants_of(report: ElephantReport) -> tuple[Tenant, Tenant]:
    """Who a report counts against: its ingress port and its APN ID."""
    return (("port", report.ingress_port), ("apn", report.apn_id))


MAX_FIRST_REPORTS = 65536


@dataclass(frozen=True)
class Adopted:
    """What :meth:`ElephantManager.adopt` found: overrides kept, and deleted as stale."""

    kept: int
    dropped: int


@dataclass
class Stats:
    reports: int = 0
    reports_dropped: int = 0  # the pending queue was full
    reports_ignored: int = 0  # unknown SR policy
    installed: int = 0
    aged_out: int = 0
    evicted: int = 0
    moved: int = 0
    over_quota: int = 0  # reports dropped: their tenant held its share of queue or table
    refuted: int = 0  # pins removed: their counter did not confirm an elephant
    confirmed: int = 0
    refuted_reports: int = 0  # reports ignored: the flow was refuted recently


class ElephantManager:
    def __init__(
        self,
        switch: ElephantSwitch,
        policies: Sequence[PolicyPaths],
        settings: ManagerSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.switch = switch
        self.policies = {p.sr_policy_id: p for p in policies}
        self.settings = settings or ManagerSettings()
        self.clock = clock
        self._placing = self.settings.placement
        self.pinned: dict[tuple[int, FlowKey], Pinned] = {}
        self.pending: OrderedDict[tuple[int, FlowKey], ElephantReport] = OrderedDict()
        self.stats = Stats()
        #: When each flow was first reported (``clock()``), for detection latency;
        #: bounded: flows beyond the first MAX_FIRST_REPORTS are not recorded.
        self.first_report: dict[tuple[int, FlowKey], float] = {}
        #: Flows whose pin was refuted, until when their reports are ignored (bounded).
        self.refuted: OrderedDict[tuple[int, FlowKey], float] = OrderedDict()
        #: Lists out of service per SR policy (indices into its lists), set by telemetry-
        #: driven re-steering (:mod:`icpn.resteer`): no placement there, their pins moved.
        self.drained: dict[int, set[int]] = {}
        #: Pending reports and pins per tenant (ingress port, APN ID), for the quotas.
        self._pending_of: dict[Tenant, int] = {}
        self._pinned_of: dict[Tenant, int] = {}
        self._tokens = float(self.settings.write_burst)
        self._tokens_at = clock()
        self._list_bytes: dict[int, int] = {}
        self._background: dict[int, float] = {}  # list id -> bytes/s no override pins
        self._polled_at: float | None = None
        self._wakeup = asyncio.Event()
        #: Placing and polling take turns: a poll must not move or unpin an entry that a
        #: placement is evicting, nor a placement evict one a poll is moving.
        self._turn = asyncio.Lock()

    # -- the loops ---------------------------------------------------------------------------
    async def run(self) -> None:
        """Consume digests, place elephants and age them out, until cancelled."""
        await self.poll()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume())
            tasks.create_task(self._place_forever())
            tasks.create_task(self._poll_forever())

    async def _consume(self) -> None:
        async for digest_list in self.switch.digests(ELEPHANT_DIGEST):
            for item in digest_list:
                self.offer(ElephantReport.decode(item))
            self._wakeup.set()

    async def _place_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self.pending:
                placed = await self.place_pending()
                if not placed:  # out of write tokens: wait for more
                    await asyncio.sleep(1 / self.settings.writes_per_second)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            await self.poll()

    # -- adoption ----------------------------------------------------------------------------
    async def adopt(self) -> Adopted:
        """Take over the overrides already on the switch (a previous controller's placement
        of the elephants): each one that pins a flow of a known policy to one of its current
        lists is kept as pinned, as if just placed (its counter measured from the next
        poll); the others (an unknown policy, a list the intent no longer has, beyond
        ``max_overrides``) are deleted. Deleting them all would send every elephant back to
        its hashed list until it is reported again, a window later: a burst of collisions."""
        found = await self.switch.read(fy.P4TableEntry(ELEPHANT_OVERRIDE))
        now = self.clock()
        stale: list[Any] = []
        for entry in found:
            if not isinstance(entry, fy.P4TableEntry):
                continue
            try:
                policy_id, flow = _entry_key(entry)
            except KeyError:  # keyed by a fingerprint (Tofino): which flow is not known
                stale.append(entry)
                continue
            index = self._list_of(policy_id, flow, entry)
            if index is None or len(self.pinned) >= self.settings.max_overrides:
                stale.append(entry)
                continue
            policy = self.policies[policy_id]
            ours = elephant_override(policy_id, flow, policy.headend, policy.lists[index])
            self._pin(Pinned(policy_id, flow, index, ours, now, now))  # counted per tenant
        if stale:
            await self.switch.delete(stale, strict=False)
        return Adopted(len(self.pinned), len(stale))

    def _list_of(self, policy_id: int, flow: FlowKey, entry: fy.P4TableEntry) -> int | None:
        """Which of the policy's lists an override read back from the switch pins its flow
        to (same action, same arguments), or None."""
        policy = self.policies.get(policy_id)
        if policy is None or not isinstance(entry.action, fy.P4TableAction):
            return None
        try:
            found = (entry.action.name, _normal(entry.action.args))
        except ValueError:  # not an argument list icpn writes
            return None
        for index, segment_list in enumerate(policy.lists):
            action = segment_list.action(policy.headend, pinned=True)
            if (action.name, _normal(action.args)) == found:
                return index
        return None

    # -- reports -----------------------------------------------------------------------------
    def offer(self, report: ElephantReport) -> None:
        """Queue a report for placement; bounded, deduplicated, never blocking."""
        self.stats.reports += 1
        key = (report.sr_policy_id, report.flow)
        if key not in self.first_report and len(self.first_report) < MAX_FIRST_REPORTS:
            self.first_report[key] = self.clock()
        if report.sr_policy_id not in self.policies:
            self.stats.reports_ignored += 1
        elif key in self.pinned:
            self.pinned[key].idle_polls = 0  # still an elephant
        elif key in self.pending:  # the newest report of the flow, counted once
            for tenant in tenants_of(self.pending[key]):
                self._pending_of[tenant] -= 1
            self._queue(key, report)
        elif self._refuted_now(key):
            self.stats.refuted_reports += 1
        elif self._over_quota(report):
            self.stats.over_quota += 1
        elif len(self.pending) >= self.settings.max_pending:
            if self.stats.reports_dropped == 0:
                LOG.warning(
                    "elephant reports arrive faster than they can be placed: dropping "
                    "beyond %d pending (counted in stats.reports_dropped)",
                    self.settings.max_pending,
                )
            self.stats.reports_dropped += 1
        else:
            self._queue(key, report)

    def _queue(
        self, key: tuple[int, FlowKey], report: ElephantReport, *, first: bool = False
    ) -> None:
        self.pending[key] = report
        if first:
            self.pending.move_to_end(key, last=False)
        for tenant in tenants_of(report):
            self._pending_of[tenant] = self._pending_of.get(tenant, 0) + 1

    def _unqueue(self) -> tuple[tuple[int, FlowKey], ElephantReport]:
        key, report = self.pending.popitem(last=False)
        for tenant in tenants_of(report):
            self._pending_of[tenant] -= 1
        return key, report

    def quota(self, kind: str, of_table: bool) -> int:
        """How many entries (or pending reports) one tenant of ``kind`` may hold."""
        share = self.settings.port_quota if kind == "port" else self.settings.apn_quota
        total = self.settings.max_overrides if of_table else self.settings.max_pending
        return max(1, int(share * total))

    def _over_quota(self, report: ElephantReport) -> bool:
        """Would queueing ``report`` put its tenant over its share of the queue, or is the
        tenant already holding (with what it has queued) its share of the table?"""
        for tenant in tenants_of(report):
            share = self.settings.port_quota if tenant[0] == "port" else self.settings.apn_quota
            if share >= 1.0:
                continue
            queued = self._pending_of.get(tenant, 0)
            if queued >= self.quota(tenant[0], of_table=False):
                return True
            if self._pinned_of.get(tenant, 0) + queued >= self.quota(tenant[0], of_table=True):
                return True
        return False

    def _refuted_now(self, key: tuple[int, FlowKey]) -> bool:
        until = self.refuted.get(key)
        if until is None:
            return False
        if until > self.clock():
            return True
        del self.refuted[key]
        return False

    def _pin(self, pin: Pinned) -> None:
        self.pinned[(pin.policy, pin.flow)] = pin
        for tenant in pin.tenants():
            self._pinned_of[tenant] = self._pinned_of.get(tenant, 0) + 1

    def _unpin(self, pin: Pinned) -> None:
        del self.pinned[(pin.policy, pin.flow)]
        for tenant in pin.tenants():
            self._pinned_of[tenant] -= 1

    def tenant_entries(self, tenant: Tenant) -> int:
        """Override entries held by ``tenant`` (("port", n) or ("apn", id))."""
        return self._pinned_of.get(tenant, 0)

    def _take_tokens(self, wanted: int) -> int:
        now = self.clock()
        rate = self.settings.writes_per_second
        self._tokens = min(self.settings.write_burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    async def place_pending(self) -> int:
        """Pin as many pending elephants as the write budget allows; return how many."""
        async with self._turn:
            return await self._place_pending()

    async def _place_pending(self) -> int:
        budget = self._take_tokens(len(self.pending))
        evictions: list[Pinned] = []
        placements: list[Pinned] = []
        while budget > 0 and self.pending:
            key, report = self._unqueue()
            if len(self.pinned) - len(evictions) + len(placements) >= self.settings.max_overrides:
                victim = self._coldest(exclude=evictions)
                if victim is None:  # full of this batch's own placements: try again later
                    self._queue(key, report, first=True)
                    break
                evictions.append(victim)
            placements.append(self._placement(report, placements))
            budget -= 1
        if evictions:
            await self.switch.delete([v.entry for v in evictions], strict=False)
            for victim in evictions:
                self._unpin(victim)
            self.stats.evicted += len(evictions)
        if placements:
            await self.switch.insert([p.entry for p in placements])
            now = self.clock()
            for pin in placements:
                pin.installed_at = now
                self._pin(pin)
            self.stats.installed += len(placements)
        return len(placements)

    def _active(self, policy: PolicyPaths) -> list[int]:
        drained = self.drained.get(policy.sr_policy_id, set())
        return [i for i in range(len(policy.lists)) if i not in drained]

    def _view(
        self, policy: PolicyPaths
    ) -> tuple[
        list[int], list[placement.ListState], list[placement.Flow[tuple[int, FlowKey]]], list[int]
    ]:
        """The policy as placement sees it with its drained lists left out: the lists in
        service (their indices), their states, the measured pins on them and the lists of
        the unmeasured ones, renumbered to positions among the lists in service."""
        active = self._active(policy)
        position = {full: k for k, full in enumerate(active)}
        states = policy.list_states(self._background)
        flows, recent = self._placement_inputs(policy.sr_policy_id)
        flows = [replace(f, list=position[f.list]) for f in flows if f.list in position]
        recent = [position[i] for i in recent if i in position]
        return active, [states[i] for i in active], flows, recent

    def _place_in_service(
        self, policy: PolicyPaths, extra: Sequence[int], origin: int | None
    ) -> int:
        """The list (index into policy.lists) for one more elephant; ``extra``: lists of
        placements not yet written; ``origin``: its deep-hash list, if known."""
        active, states, flows, recent = self._view(policy)
        position = {full: k for k, full in enumerate(active)}
        recent += [position[i] for i in extra if i in position]
        chosen = placement.place(
            states,
            flows,
            recent,
            self._placing,
            origin=position.get(origin) if origin is not None else None,
            default_rate=self.settings.default_elephant_bytes_per_s,
        )
        return active[chosen]

    def _placement(self, report: ElephantReport, batch: Sequence[Pinned]) -> Pinned:
        """Where the reported flow goes; ``batch``: the placements not yet written."""
        policy = self.policies[report.sr_policy_id]
        extra = [p.list_index for p in batch if p.policy == policy.sr_policy_id]
        origin = policy.hashed_list(report, self._active(policy))
        index = self._place_in_service(policy, extra, origin)
        entry = elephant_override(
            policy.sr_policy_id, report.flow, policy.headend, policy.lists[index]
        )
        now = self.clock()
        return Pinned(
            policy.sr_policy_id,
            report.flow,
            index,
            entry,
            now,
            now,
            ingress_port=report.ingress_port,
            apn_id=report.apn_id,
        )

    def _placement_inputs(
        self, policy: int
    ) -> tuple[list[placement.Flow[tuple[int, FlowKey]]], list[int]]:
        """The policy's pinned flows with a measured rate, as the placement sees them, and
        the lists of those not measured yet."""
        flows, recent = [], []
        for key, pin in self.pinned.items():
            if pin.policy != policy:
                continue
            if pin.measured:
                flows.append(placement.Flow(key, pin.list_index, pin.bytes_per_s, pin.placed_at))
            else:
                recent.append(pin.list_index)
        return flows, recent

    def _coldest(self, exclude: Sequence[Pinned]) -> Pinned | None:
        """The entry to evict: the coldest measured, unconfirmed pins before confirmed."""
        candidates = [p for p in self.pinned.values() if p not in exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda p: (p.confirmed, p.bytes_per_s, p.installed_at))

    # -- counters: list loads, elephant rates, aging, rebalancing -------------------------------
    async def poll(self) -> None:
        """Read the counters, unpin idle flows, and rebalance every policy."""
        async with self._turn:
            await self._poll()

    async def _poll(self) -> None:
        now = self.clock()
        elapsed = now - self._polled_at if self._polled_at is not None else 0.0
        self._polled_at = now
        list_bytes: dict[int, int] = {}
        list_ids = {sl.list_id for p in self.policies.values() for sl in p.lists}
        for list_id in sorted(list_ids):
            data = await self.switch.read_counter(SEGMENT_LIST_LOAD, list_id)
            previous = self._list_bytes.get(list_id)
            self._list_bytes[list_id] = data.byte_count
            if previous is not None:
                list_bytes[list_id] = max(0, data.byte_count - previous)
        pinned_bytes = await self._measure_pins(now, elapsed)
        if elapsed > 0:
            for list_id, octets in list_bytes.items():
                sample = max(0, octets - pinned_bytes.get(list_id, 0)) / elapsed
                self._background[list_id] = placement.smooth(
                    self._background.get(list_id), sample, self._placing
                )
        await self._unpin_idle()
        await self._verify(now)
        if elapsed > 0:
            await self._rebalance(now)

    async def _measure_pins(self, now: float, elapsed: float) -> dict[int, int]:
        """Each pin's rate since the last poll (or since it took effect) from its direct
        counter; returns the pinned bytes per list id."""
        if not self.pinned:
            return {}
        hits: dict[tuple[int, FlowKey], fy.P4CounterData] = {}
        for cell in await self.switch.read(fy.P4DirectCounterEntry(OVERRIDE_HITS)):
            entry = cell.table_entry
            if entry is None or entry.table_id != ELEPHANT_OVERRIDE or cell.data is None:
                continue
            hits[_entry_key(entry)] = cell.data
        per_list: dict[int, int] = {}
        for pin in self.pinned.values():
            data = hits.get((pin.policy, pin.flow))
            packets = data.packet_count if data else pin.last_packets
            octets = data.byte_count if data else pin.last_bytes
            delta = octets - pin.last_bytes if octets >= pin.last_bytes else octets  # reset
            pin.idle_polls = pin.idle_polls + 1 if packets == pin.last_packets else 0
            if octets < pin.last_bytes:  # the counter restarted: so does verification
                pin.verify_packets = pin.verify_bytes = 0
            pin.last_packets, pin.last_bytes = packets, octets
            list_id = self.policies[pin.policy].lists[pin.list_index].list_id
            per_list[list_id] = per_list.get(list_id, 0) + delta
            measured_s = now - max(now - elapsed, pin.installed_at) if elapsed > 0 else 0.0
            if measured_s >= placement.MIN_RATE_SPAN * self.settings.poll_interval_s:
                previous = pin.bytes_per_s if pin.measured else None
                pin.bytes_per_s = placement.smooth(previous, delta / measured_s, self._placing)
                pin.measured = True
        return per_list

    async def _unpin_idle(self) -> None:
        idle = [p for p in self.pinned.values() if p.idle_polls >= self.settings.idle_polls]
        if idle:
            await self.switch.delete([p.entry for p in idle], strict=False)
            for pin in idle:
                self._unpin(pin)
            self.stats.aged_out += len(idle)

    def verdict(self, pin: Pinned, now: float) -> bool | None:
        """Whether ``pin``'s own counter confirms an elephant (None: not yet known): its
        rate since it took effect, once measured for verify_after_s, against the policy's
        elephant rate. A pin stays confirmed; a slow elephant ages out as before."""
        policy = self.policies[pin.policy]
        if pin.confirmed or policy.elephant_rate <= 0:
            return True
        span = now - pin.installed_at
        if span < self.settings.verify_after_s:
            return None
        if policy.count_bytes:
            amount = pin.last_bytes - pin.verify_bytes
        else:
            amount = pin.last_packets - pin.verify_packets
        return amount / span >= self.settings.confirm_fraction * policy.elephant_rate

    async def _verify(self, now: float) -> None:
        """Unpin what its counter refutes; remember it so its reports do not re-pin it."""
        refuted = []
        for pin in self.pinned.values():
            verdict = self.verdict(pin, now)
            if verdict is True and not pin.confirmed:
                pin.confirmed = True
                self.stats.confirmed += 1
            elif verdict is False:
                refuted.append(pin)
        if not refuted:
            return
        await self.switch.delete([p.entry for p in refuted], strict=False)
        for pin in refuted:
            self._unpin(pin)
            key = (pin.policy, pin.flow)
            self.refuted[key] = now + self.settings.refute_hold_s
            self.refuted.move_to_end(key)
            while len(self.refuted) > self.settings.max_refuted:
                self.refuted.popitem(last=False)
        self.stats.refuted += len(refuted)

    async def _rebalance(self, now: float) -> None:
        """Move pinned flows as :func:`icpn.placement.rebalance` decides, within the write
        budget (what it cannot write now is decided again at the next poll)."""
        changed: list[Pinned] = []
        for policy in self.policies.values():
            active, states, flows, _ = self._view(policy)
            moves = placement.rebalance(states, flows, now, self._placing)
            for move in moves[: self._take_tokens(len(moves))]:
                pin = self.pinned[move.key]
                pin.list_index, pin.placed_at = active[move.target], now
                target = policy.lists[pin.list_index]
                pin.entry = elephant_override(policy.sr_policy_id, pin.flow, policy.headend, target)
                changed.append(pin)
        if changed:
            await self.switch.modify([p.entry for p in changed])
            self.stats.moved += len(changed)

    # -- re-steering -----------------------------------------------------------------------
    async def set_drained(self, sr_policy_id: int, list_ids: set[int]) -> int:
        """Put exactly the policy's lists ``list_ids`` out of service (the others back in):
        rewrite the SR policy's selector group without them (WCMP weight 0 for its hashed
        traffic) and move their pinned elephants to the lists in service at once, past the
        latency bound and the hold-down (a lossy path costs more than a reorder). Returns
        how many pins moved."""
        async with self._turn:
            policy = self.policies[sr_policy_id]
            indices = {i for i, sl in enumerate(policy.lists) if sl.list_id in list_ids}
            if len(indices) == len(policy.lists):
                raise ValueError(f"SR policy {sr_policy_id}: cannot drain every segment list")
            self.drained[sr_policy_id] = indices
            group = [policy.lists[i] for i in self._active(policy)]
            await self.switch.modify([sr_policy(sr_policy_id, policy.headend, group)])
            moving = [
                p
                for p in self.pinned.values()
                if p.policy == sr_policy_id and p.list_index in indices
            ]
            now = self.clock()
            placed: list[int] = []
            for pin in moving:
                pin.list_index = self._place_in_service(policy, placed, None)
                placed.append(pin.list_index)
                pin.placed_at = now
                target = policy.lists[pin.list_index]
                pin.entry = elephant_override(sr_policy_id, pin.flow, policy.headend, target)
            if moving:
                await self.switch.modify([p.entry for p in moving])
                self.stats.moved += len(moving)
            return len(moving)


def _entry_key(entry: fy.P4TableEntry) -> tuple[int, FlowKey]:
    """(SR policy, flow) of an override entry as read back from the switch."""
    m: dict[str, Any] = dict(entry.match or {})
    flow = FlowKey(
        src=str(ipaddress.IPv6Address(m["src"])),
        dst=str(ipaddress.IPv6Address(m["dst"])),
        proto=m.get("proto", 0),
        sport=m.get("sport", 0),
        dport=m.get("dport", 0),
        dest_qp=m.get("dest_qp", 0),
    )
    return int(m["sr_policy_id"]), flow


def _normal(args: dict[str, Any]) -> dict[str, int]:
    """Action arguments as integers: a switch reads addresses back as numbers, the entries
    icpn builds spell them as text."""
    return {
        name: int(ipaddress.IPv6Address(value)) if isinstance(value, str) else int(value)
        for name, value in args.items()
    }
