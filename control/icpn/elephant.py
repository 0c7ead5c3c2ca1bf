"""The elephant manager (DESIGN.md 4): elephant digests in, override entries out.

For every flow the switch reports (one digest per flow per window, :mod:`icpn.features.sketch`), pin
it to a segment list of its SR policy; every poll, move pinned elephants while the lists are
out of balance; unpin flows that went idle; keep the override table within its size by
evicting the coldest entry; and stay bounded under a digest storm: reports wait in a
bounded queue (deduplicated by flow), writes go out at a limited rate, and what cannot be
kept is dropped and counted, never allowed to grow.

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
from dataclasses import dataclass, field
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
from icpn.features.srv6 import SEGMENT_LIST_LOAD, SegmentList
from icpn.hashing import weighted_member

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

    def hashed_list(self, report: ElephantReport) -> int | None:
        """The list the deep hash gives the reported flow (where its packets go before it is
        pinned), when the flow key pins it down: (SA, DA, DestQP) keys do — a 5-tuple key
        may cover many QPs, hashed apart — and the report carries the APN ID (Tofino's
        digest does not: then the placement does without)."""
        if report.key_type != FlowKeyType.SRC_DST_QP or report.apn_id is None:
            return None
        key = [(report.apn_id, 128), (report.flow.dest_qp, 24)]
        return weighted_member(key, [sl.weight for sl in self.lists])


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
            self.pinned[(policy_id, flow)] = Pinned(policy_id, flow, index, ours, now, now)
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
        elif key in self.pending:
            self.pending[key] = report
        elif len(self.pending) >= self.settings.max_pending:
            if self.stats.reports_dropped == 0:
                LOG.warning(
                    "elephant reports arrive faster than they can be placed: dropping "
                    "beyond %d pending (counted in stats.reports_dropped)",
                    self.settings.max_pending,
                )
            self.stats.reports_dropped += 1
        else:
            self.pending[key] = report

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
            key, report = self.pending.popitem(last=False)
            if len(self.pinned) - len(evictions) + len(placements) >= self.settings.max_overrides:
                victim = self._coldest(exclude=evictions)
                if victim is None:  # full of this batch's own placements: try again later
                    self.pending[key] = report
                    self.pending.move_to_end(key, last=False)
                    break
                evictions.append(victim)
            placements.append(self._placement(report, placements))
            budget -= 1
        if evictions:
            await self.switch.delete([v.entry for v in evictions], strict=False)
            for victim in evictions:
                del self.pinned[(victim.policy, victim.flow)]
            self.stats.evicted += len(evictions)
        if placements:
            await self.switch.insert([p.entry for p in placements])
            now = self.clock()
            for pin in placements:
                pin.installed_at = now
                self.pinned[(pin.policy, pin.flow)] = pin
            self.stats.installed += len(placements)
        return len(placements)

    def _placement(self, report: ElephantReport, batch: Sequence[Pinned]) -> Pinned:
        """Where the reported flow goes; ``batch``: the placements not yet written."""
        policy = self.policies[report.sr_policy_id]
        flows, recent = self._placement_inputs(policy.sr_policy_id)
        recent += [p.list_index for p in batch if p.policy == policy.sr_policy_id]
        index = placement.place(
            policy.list_states(self._background),
            flows,
            recent,
            self._placing,
            origin=policy.hashed_list(report),
            default_rate=self.settings.default_elephant_bytes_per_s,
        )
        entry = elephant_override(
            policy.sr_policy_id, report.flow, policy.headend, policy.lists[index]
        )
        now = self.clock()
        return Pinned(policy.sr_policy_id, report.flow, index, entry, now, now)

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
        candidates = [p for p in self.pinned.values() if p not in exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda p: (p.bytes_per_s, p.installed_at))

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
            pin.last_packets, pin.last_bytes = packets, octets
            list_id = self.policies[pin.policy].lists[pin.list_index].list_id
            per_list[list_id] = per_list.get(list_id, 0) + delta
            measured_s = now - max(now - elapsed, pin.installed_at) if elapsed > 0 else 0.0
            if measured_s > 0:
                previous = pin.bytes_per_s if pin.measured else None
                pin.bytes_per_s = placement.smooth(previous, delta / measured_s, self._placing)
                pin.measured = True
        return per_list

    async def _unpin_idle(self) -> None:
        idle = [p for p in self.pinned.values() if p.idle_polls >= self.settings.idle_polls]
        if idle:
            await self.switch.delete([p.entry for p in idle], strict=False)
            for pin in idle:
                del self.pinned[(pin.policy, pin.flow)]
            self.stats.aged_out += len(idle)

    async def _rebalance(self, now: float) -> None:
        """Move pinned flows as :func:`icpn.placement.rebalance` decides, within the write
        budget (what it cannot write now is decided again at the next poll)."""
        changed: list[Pinned] = []
        for policy in self.policies.values():
            moves = placement.rebalance(
                policy.list_states(self._background),
                self._placement_inputs(policy.sr_policy_id)[0],
                now,
                self._placing,
            )
            for move in moves[: self._take_tokens(len(moves))]:
                pin = self.pinned[move.key]
                pin.list_index, pin.placed_at = move.target, now
                target = policy.lists[move.target]
                pin.entry = elephant_override(policy.sr_policy_id, pin.flow, policy.headend, target)
                changed.append(pin)
        if changed:
            await self.switch.modify([p.entry for p in changed])
            self.stats.moved += len(changed)


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
