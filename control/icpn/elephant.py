"""The elephant manager (DESIGN.md 4): elephant digests in, override entries out.

For every flow the switch reports (one digest per flow per window, :mod:`icpn.sketch`), pin
it to the least-loaded segment list of its SR policy; unpin flows that went idle; keep the
override table within its size by evicting the coldest entry; and stay bounded under a
digest storm: reports wait in a bounded queue (deduplicated by flow), writes go out at a
limited rate, and what cannot be kept is dropped and counted, never allowed to grow.

Load of a list = its byte rate from the ``segment_list_load`` counter over the last poll,
plus the expected rate of the elephants placed on it since (the mean measured rate of
pinned elephants, from the override table's direct counter).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import finsy as fy

from icpn.sketch import (
    ELEPHANT_DIGEST,
    ELEPHANT_OVERRIDE,
    ElephantReport,
    FlowKey,
    elephant_override,
)
from icpn.srv6 import SEGMENT_LIST_LOAD, SegmentList

LOG = logging.getLogger(__name__)
OVERRIDE_HITS = "override_hits"


class ElephantSwitch(Protocol):
    """What the manager needs of a switch: :class:`icpn.p4rt.SwitchClient` provides it."""

    def digests(self, digest: str) -> AsyncIterator[fy.P4DigestList]: ...

    async def insert(self, entities: Sequence[Any], **kwargs: Any) -> None: ...

    async def delete(self, entities: Sequence[Any], **kwargs: Any) -> None: ...

    async def read_counter(self, counter: str, index: int) -> fy.P4CounterData: ...

    async def read(self, entity: Any) -> list[Any]: ...


@dataclass(frozen=True)
class PolicyPaths:
    """An SR policy's headend address and its segment lists (each with its list id)."""

    sr_policy_id: int
    headend: str
    lists: tuple[SegmentList, ...]


@dataclass(frozen=True)
class ManagerSettings:
    max_overrides: int = 512  # at most the P4 table's size
    max_pending: int = 4096  # reports waiting to be placed
    writes_per_second: float = 1000.0
    write_burst: int = 64
    poll_interval_s: float = 1.0  # counters; one idle poll = one idle interval
    idle_polls: int = 3  # unpin after this many polls without traffic
    default_elephant_bytes_per_s: float = 1e6  # before any pinned flow has been measured


@dataclass
class Pinned:
    policy: int
    flow: FlowKey
    list_index: int
    entry: fy.P4TableEntry
    last_packets: int = 0
    last_bytes: int = 0
    bytes_per_s: float = 0.0
    idle_polls: int = 0
    installed_at: float = field(default_factory=time.monotonic)


MAX_FIRST_REPORTS = 65536


@dataclass
class Stats:
    reports: int = 0
    reports_dropped: int = 0  # the pending queue was full
    reports_ignored: int = 0  # unknown SR policy
    installed: int = 0
    aged_out: int = 0
    evicted: int = 0


class ElephantManager:
    def __init__(
        self,
        switch: ElephantSwitch,
        policies: Sequence[PolicyPaths],
        settings: ManagerSettings | None = None,
    ) -> None:
        self.switch = switch
        self.policies = {p.sr_policy_id: p for p in policies}
        self.settings = settings or ManagerSettings()
        self.pinned: dict[tuple[int, FlowKey], Pinned] = {}
        self.pending: OrderedDict[tuple[int, FlowKey], ElephantReport] = OrderedDict()
        self.stats = Stats()
        #: When each flow was first reported (time.monotonic()), for detection latency;
        #: bounded: flows beyond the first MAX_FIRST_REPORTS are not recorded.
        self.first_report: dict[tuple[int, FlowKey], float] = {}
        self._tokens = float(self.settings.write_burst)
        self._tokens_at = time.monotonic()
        self._list_rate: dict[int, float] = {}  # list id -> bytes/s over the last poll
        self._list_bytes: dict[int, int] = {}
        self._placed_since_poll: dict[int, int] = {}
        self._polled_at = 0.0
        self._wakeup = asyncio.Event()

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

    # -- reports -----------------------------------------------------------------------------
    def offer(self, report: ElephantReport) -> None:
        """Queue a report for placement; bounded, deduplicated, never blocking."""
        self.stats.reports += 1
        key = (report.sr_policy_id, report.flow)
        if key not in self.first_report and len(self.first_report) < MAX_FIRST_REPORTS:
            self.first_report[key] = time.monotonic()
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
        now = time.monotonic()
        rate = self.settings.writes_per_second
        self._tokens = min(self.settings.write_burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    async def place_pending(self) -> int:
        """Pin as many pending elephants as the write budget allows; return how many."""
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
            placements.append(self._placement(report))
            budget -= 1
        if evictions:
            await self.switch.delete([v.entry for v in evictions], strict=False)
            for victim in evictions:
                del self.pinned[(victim.policy, victim.flow)]
            self.stats.evicted += len(evictions)
        if placements:
            await self.switch.insert([p.entry for p in placements])
            for pin in placements:
                self.pinned[(pin.policy, pin.flow)] = pin
            self.stats.installed += len(placements)
        return len(placements)

    def _placement(self, report: ElephantReport) -> Pinned:
        policy = self.policies[report.sr_policy_id]
        index = self.least_loaded(policy)
        chosen = policy.lists[index]
        self._placed_since_poll[chosen.list_id] = self._placed_since_poll.get(chosen.list_id, 0) + 1
        entry = elephant_override(policy.sr_policy_id, report.flow, policy.headend, chosen)
        return Pinned(policy.sr_policy_id, report.flow, index, entry)

    def least_loaded(self, policy: PolicyPaths) -> int:
        expected = self._expected_elephant_rate()

        def load(index: int) -> float:
            list_id = policy.lists[index].list_id
            return self._list_rate.get(list_id, 0.0) + expected * self._placed_since_poll.get(
                list_id, 0
            )

        return min(range(len(policy.lists)), key=lambda i: (load(i), i))

    def _expected_elephant_rate(self) -> float:
        measured = [p.bytes_per_s for p in self.pinned.values() if p.bytes_per_s > 0]
        if not measured:
            return self.settings.default_elephant_bytes_per_s
        return sum(measured) / len(measured)

    def _coldest(self, exclude: Sequence[Pinned]) -> Pinned | None:
        candidates = [p for p in self.pinned.values() if p not in exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda p: (p.bytes_per_s, p.installed_at))

    # -- counters: list loads, elephant rates, aging -------------------------------------------
    async def poll(self) -> None:
        now = time.monotonic()
        elapsed = now - self._polled_at if self._polled_at else 0.0
        self._polled_at = now
        list_ids = {sl.list_id for p in self.policies.values() for sl in p.lists}
        for list_id in sorted(list_ids):
            data = await self.switch.read_counter(SEGMENT_LIST_LOAD, list_id)
            previous = self._list_bytes.get(list_id)
            self._list_bytes[list_id] = data.byte_count
            if previous is not None and elapsed > 0:
                self._list_rate[list_id] = (data.byte_count - previous) / elapsed
        self._placed_since_poll.clear()
        await self._age(elapsed)

    async def _age(self, elapsed: float) -> None:
        if not self.pinned:
            return
        hits: dict[tuple[int, FlowKey], fy.P4CounterData] = {}
        for cell in await self.switch.read(fy.P4DirectCounterEntry(OVERRIDE_HITS)):
            entry = cell.table_entry
            if entry is None or entry.table_id != ELEPHANT_OVERRIDE or cell.data is None:
                continue
            hits[_entry_key(entry)] = cell.data
        idle = []
        for pin in self.pinned.values():
            data = hits.get((pin.policy, pin.flow))
            packets = data.packet_count if data else pin.last_packets
            octets = data.byte_count if data else pin.last_bytes
            if packets == pin.last_packets:
                pin.idle_polls += 1
            else:
                pin.idle_polls = 0
            pin.bytes_per_s = (octets - pin.last_bytes) / elapsed if elapsed > 0 else 0.0
            pin.last_packets, pin.last_bytes = packets, octets
            if pin.idle_polls >= self.settings.idle_polls:
                idle.append(pin)
        if idle:
            await self.switch.delete([p.entry for p in idle], strict=False)
            for pin in idle:
                del self.pinned[(pin.policy, pin.flow)]
            self.stats.aged_out += len(idle)


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
