"""Telemetry-driven re-steering, wired (issue 12 part 3): the collector's measurements of
each segment list in, drains and restorations of the lists out.

* **Which list a measurement is about.** Alternate marking (RFC 9341) gives a list its own
  loss when the headend marks each list with a FlowMonID of its own (``altmark.per_list``,
  :func:`icpn.features.ifit.list_flow_mon_id`): a finished block of that FlowMonID, counted
  at the headend and at the decapsulating node, is the list's loss over one period. An IOAM
  trace (RFC 9197) names the nodes the packet crossed: the node ids of a list's path, in
  order, identify the list (:meth:`ListFeed.list_of_path`), and the trace's first timestamp
  to its export is the list's delay.
* **What is done about it.** :class:`icpn.resteer.Resteer` decides (bounds of the SR
  policy: ``max_loss``, the policy's ``max_latency_ms``; hysteresis and flap damping); a
  :data:`Apply` callback carries it out — the controller's
  :meth:`icpn.controller.core.Controller.set_drained`, which keeps the drains across
  reconnects and reconciliations.

Pure but for the callback: samples and a clock in, the callback awaited. Everything it did
is in :attr:`Steering.events`, for the study's timeline.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from icpn.collector.altmark import AltmarkBlock
from icpn.collector.traces import TraceRecord
from icpn.features.ifit import list_flow_mon_id
from icpn.intent import Intent
from icpn.resteer import Action, Decision, Resteer, SteerSettings

NS_PER_MS = 1_000_000

#: ``apply(headend switch, SR policy id, list ids out of service)``: make it so.
Apply = Callable[[str, int, set[int]], Awaitable[None]]


@dataclass(frozen=True)
class ListPath:
    """One segment list as the telemetry sees it: its headend (switch name), SR policy and
    list id; the switches of its path (headend first, decapsulating node last) and their
    IOAM node ids; its FlowMonID when it is marked apart (None: loss not measured per
    list); the policy's latency bound in ms (None: delay not judged)."""

    headend: str
    sr_policy_id: int
    list_id: int
    switches: tuple[str, ...]
    node_ids: tuple[int, ...]
    flow_mon_id: int | None
    max_delay_ms: float | None
    period_log2_us: int | None = None

    @property
    def endpoint(self) -> str:
        return self.switches[-1]


def list_paths(intent: Intent) -> list[ListPath]:
    """Every segment list of the intent's SR policies, numbered as the controller renders
    them (:func:`icpn.controller.render.render`: list ids from 1 per headend, in the order
    of :meth:`icpn.topology.Topology.sr_paths`)."""
    topology = intent.topology()
    telemetry = {t.name: t for t in intent.telemetry}
    next_id: dict[str, int] = {}
    out = []
    for i, policy in enumerate(intent.sr_policies):
        marks = [
            telemetry[a.telemetry].altmark
            for a in intent.apn_policies
            if a.sr_policy == policy.name and a.telemetry
        ]
        per_list = next((m for m in marks if m is not None and m.per_list), None)
        paths = topology.sr_paths(
            policy.headend,
            policy.endpoint,
            count=policy.paths,
            max_latency_ms=policy.max_latency_ms,
        )
        for path in paths:
            list_id = next_id.get(policy.headend, 1)
            next_id[policy.headend] = list_id + 1
            out.append(
                ListPath(
                    headend=policy.headend,
                    sr_policy_id=i + 1,
                    list_id=list_id,
                    switches=tuple(path.nodes),
                    node_ids=tuple(intent.switches[n].ioam_node_id for n in path.nodes),
                    flow_mon_id=(
                        list_flow_mon_id(per_list.flow_mon_id, list_id) if per_list else None
                    ),
                    max_delay_ms=policy.max_latency_ms,
                    period_log2_us=per_list.period_log2_us if per_list else None,
                )
            )
    return out


@dataclass(frozen=True)
class Sample:
    """One measurement of one list: loss ratio over a block, or mean delay over an
    interval."""

    key: int  # index into the feed's lists
    at: float
    loss: float | None = None
    delay_ms: float | None = None
    packets: int = 0  # sent in the block (loss) or traces averaged (delay)


class ListFeed:
    """Turns alternate-marking blocks and IOAM trace records into per-list samples.

    A block with fewer than ``min_packets`` sent says too little (one packet lost of ten is
    10 %) and gives no sample; so does a block of a FlowMonID no list has. Delays are
    averaged per list and handed out by :meth:`flush_delays`, once per interval."""

    def __init__(self, lists: Sequence[ListPath], *, min_packets: int = 20) -> None:
        self.lists = list(lists)
        self.min_packets = min_packets
        self._by_flow = {p.flow_mon_id: k for k, p in enumerate(self.lists) if p.flow_mon_id}
        by_path: dict[tuple[int, ...], list[int]] = {}
        for k, p in enumerate(self.lists):
            by_path.setdefault(p.node_ids, []).append(k)
            by_path.setdefault(p.node_ids[1:], []).append(k)  # headend outside the namespace
        #: node ids -> list, where one list only has that path (parallel links: ambiguous)
        self._by_path = {nodes: ks[0] for nodes, ks in by_path.items() if len(ks) == 1}
        self._delays: dict[int, list[float]] = {}

    def list_of_flow(self, flow_mon_id: int) -> int | None:
        return self._by_flow.get(flow_mon_id)

    def list_of_path(self, node_ids: Iterable[int | None]) -> int | None:
        """The list whose path is exactly these nodes (a trace's, in path order)."""
        path = tuple(node_ids)
        if None in path:
            return None
        return self._by_path.get(path)  # type: ignore[arg-type]

    def loss(self, block: AltmarkBlock, at: float) -> Sample | None:
        """The block's loss between its list's headend and decapsulating node. The
        endpoint's count is read even when it counted nothing (every packet lost)."""
        key = self.list_of_flow(block.flow_mon_id)
        if key is None:
            return None
        path = self.lists[key]
        sent = block.packets.get(path.headend, 0)
        if sent < self.min_packets:
            return None
        received = block.packets.get(path.endpoint, 0)
        return Sample(key, at, loss=max(0, sent - received) / sent, packets=sent)

    def trace(self, record: TraceRecord) -> int | None:
        """Keep the record's delay for its list; returns the list, or None when the path
        names no single list or the record carries no delay."""
        key = self.list_of_path(record.path)
        delay = record.end_to_end_ns
        if key is None or delay is None:
            return None
        self._delays.setdefault(key, []).append(delay / NS_PER_MS)
        return key

    def flush_delays(self, at: float) -> list[Sample]:
        """The mean delay of each list since the last flush."""
        out = [
            Sample(key, at, delay_ms=sum(values) / len(values), packets=len(values))
            for key, values in sorted(self._delays.items())
            if values
        ]
        self._delays.clear()
        return out


@dataclass(frozen=True)
class Event:
    """What happened, for the timeline: a sample taken, a drain or a restore applied
    (``at``: when the switch had been written)."""

    at: float
    kind: str  # "loss", "delay", "drain", "restore"
    headend: str
    sr_policy_id: int
    list_id: int
    value: float | None = None  # loss ratio or delay in ms
    reason: str = ""


@dataclass
class Steering:
    """The loop's state: the feed, the decisions and what was applied."""

    lists: Sequence[ListPath]
    apply: Apply
    settings: SteerSettings = field(default_factory=SteerSettings)
    min_packets: int = 20
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.feed = ListFeed(self.lists, min_packets=self.min_packets)
        self.resteer = Resteer(
            {k: (p.sr_policy_id, p.max_delay_ms) for k, p in enumerate(self.lists)},
            self.settings,
        )
        self.events: list[Event] = []

    def _event(self, kind: str, key: int, at: float, value: float | None, reason: str) -> None:
        p = self.lists[key]
        self.events.append(Event(at, kind, p.headend, p.sr_policy_id, p.list_id, value, reason))

    async def on_block(self, block: AltmarkBlock) -> Decision | None:
        """A finished alternate-marking block (an :class:`AltmarkMonitor` sink's input)."""
        now = self.clock()
        sample = self.feed.loss(block, now)
        if sample is None:
            return None
        self._event("loss", sample.key, now, sample.loss, f"{sample.packets} packets")
        return await self._observe(sample)

    def on_trace(self, record: TraceRecord) -> None:
        """A trace record from the collector: kept until the next :meth:`tick`."""
        self.feed.trace(record)

    async def tick(self) -> list[Decision]:
        """Once per interval: judge the delays gathered, restore the lists whose hold
        passed."""
        now = self.clock()
        done = []
        for sample in self.feed.flush_delays(now):
            self._event("delay", sample.key, now, sample.delay_ms, f"{sample.packets} traces")
            decision = await self._observe(sample)
            if decision is not None:
                done.append(decision)
        for decision in self.resteer.due(now):
            await self._carry_out(decision)
            done.append(decision)
        return done

    async def _observe(self, sample: Sample) -> Decision | None:
        decision = self.resteer.observe(
            sample.key, sample.at, loss=sample.loss, delay_ms=sample.delay_ms
        )
        if decision is not None:
            await self._carry_out(decision)
        return decision

    async def _carry_out(self, decision: Decision) -> None:
        key = decision.list_id  # Resteer's list key: the index into self.lists
        path = self.lists[key]
        drained = {self.lists[k].list_id for k in self.resteer.drained(decision.policy)}
        await self.apply(path.headend, path.sr_policy_id, drained)
        kind = "drain" if decision.action is Action.DRAIN else "restore"
        self._event(kind, key, self.clock(), None, decision.reason)  # once written

    def drained(self) -> dict[tuple[str, int], set[int]]:
        """(headend, SR policy) -> list ids out of service now."""
        out: dict[tuple[str, int], set[int]] = {}
        for k, p in enumerate(self.lists):
            if k in self.resteer.drained(p.sr_policy_id):
                out.setdefault((p.headend, p.sr_policy_id), set()).add(p.list_id)
        return out
