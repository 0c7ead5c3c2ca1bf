"""What the collector measures, derived from the SR policies' real paths (issue 14 part 2),
and loss and delay per segment list (the typed API re-steering reads, :class:`PathSample`).

Every node counts a FlowMonID's packets per colour (RFC 9341), whatever segment list they
follow, so two nodes' counts are only comparable where they see the same packets. Chaining
all switches in listed order compares unrelated nodes (on four parallel planes: sh1 with
gz1, gz1 with gz2, ...). Instead the segments come from the hops of the policies' paths:

* **Segments** (:meth:`PathPlan.segments`): the hops of a FlowMonID's paths, grouped into
  the connected parts of the bipartite graph (hop tail, hop head). Every packet counted at
  a tail leaves by one of the group's hops and every packet counted at a head came by one,
  so the sums are exact: ``sh1 → gz1+gz2+gz3+gz4`` and ``gz1+gz2+gz3+gz4 → nx1`` on the
  planes; a single hop where the paths share it (``a → b`` on a chain). Plus end to end,
  headend to endpoint, per policy.
* **Per segment list** (:class:`PathMeter`): from the first node only that list passes (its
  counter counts exactly the list's packets) to the endpoint, whose arrivals per list are
  the trace reports it exports (one per traced packet; the report path names the list, the
  report flags the colour, docs/telemetry-report.md). Per block that gives the list's loss
  and mean one-way delay (IOAM timestamps of the first and last node, RFC 9197 4.4.2.3-4).
  The part before that node (the headend's fan-out) is shared by all lists: its loss is
  only known per group, in the segments above. A list with no node of its own (it shares
  every node with another list), or of a policy measured under
  several FlowMonIDs (a report does not name its FlowMonID), gets no per-list sample.

Report counts are differenced at the same moments as the counters: a block of colour c
closes a guard time (T/2) after the colour switched, when every report of it has arrived
and before colour c comes back (a whole period T after the switch).
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from icpn.collector.altmark import AltmarkBlock, LossCounts, SegmentLoss
from icpn.collector.traces import TraceRecord
from icpn.controller.render import SrRoute, render, sr_routes
from icpn.intent import Intent

NS_PER_MS = 1_000_000
#: Samples kept in memory (the sinks see every one).
MAX_SAMPLES_KEPT = 10_000


@dataclass(frozen=True)
class MeasuredPath:
    """One segment list of an SR policy, measured under one FlowMonID."""

    policy: str
    list_id: int
    flow_mon_id: int
    nodes: tuple[str, ...]  # headend first, endpoint last
    latency_ms: float  # the path's computed latency (the intent's links)
    #: The first node only this list (of the FlowMonID's lists) passes: per-list loss is
    #: measured from its arrivals to the endpoint's. None: the list has no node of its own.
    start: str | None

    @property
    def headend(self) -> str:
        return self.nodes[0]

    @property
    def endpoint(self) -> str:
        return self.nodes[-1]


@dataclass(frozen=True)
class PathSample(LossCounts):
    """Loss and delay of one segment list over one finished colour block.

    ``sent`` packets were counted at ``start`` (the list's own first node), ``received`` of
    them reached the endpoint (its trace reports of that colour). ``delay_ms`` is the mean
    one-way delay of those reports, first traced node to endpoint (None without
    timestamps); it is as good as the nodes' clocks agree."""

    policy: str
    list_id: int
    flow_mon_id: int
    colour: int
    block: int  # the FlowMonID's block number (AltmarkBlock.number)
    finished_at: float  # wall clock, seconds since the epoch
    start: str
    endpoint: str
    sent: int
    received: int
    delay_ms: float | None


@dataclass(frozen=True)
class SegmentGroup:
    """Hops whose tails' and heads' counts sum to the same packets (see the module doc)."""

    flow_mon_id: int
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]


@dataclass
class PathPlan:
    """The lists to measure and the segments they make, per FlowMonID."""

    paths: list[MeasuredPath]
    node_ids: dict[str, int] = field(default_factory=dict)  # switch -> IOAM node id

    def __post_init__(self) -> None:
        self._names = {node_id: name for name, node_id in self.node_ids.items()}
        self.groups: dict[int, list[SegmentGroup]] = {
            flow: _groups(flow, [p.nodes for p in self.paths if p.flow_mon_id == flow])
            for flow in self.flow_mon_ids
        }

    @property
    def flow_mon_ids(self) -> list[int]:
        return list(dict.fromkeys(p.flow_mon_id for p in self.paths))

    def nodes(self) -> list[str]:
        """Every node on a measured path, headends first: the first node that counted a
        flow is the monitor's reference (icpn.collector.altmark)."""
        headends = [p.headend for p in self.paths]
        rest = [n for p in self.paths for n in p.nodes]
        return list(dict.fromkeys([*headends, *rest]))

    def segments(self, block: AltmarkBlock) -> list[SegmentLoss]:
        """The block's loss per segment group, then end to end per (headend, endpoint)."""
        count = block.packets
        out = [
            SegmentLoss(
                "+".join(g.upstream),
                "+".join(g.downstream),
                sum(count.get(n, 0) for n in g.upstream),
                sum(count.get(n, 0) for n in g.downstream),
            )
            for g in self.groups.get(block.flow_mon_id, [])
        ]
        ends = dict.fromkeys(
            (p.headend, p.endpoint) for p in self.paths if p.flow_mon_id == block.flow_mon_id
        )
        for head, end in ends:
            out.append(SegmentLoss(head, end, count.get(head, 0), count.get(end, 0), True))
        return out

    def match(self, record: TraceRecord) -> MeasuredPath | None:
        """The list a report's trace followed: its nodes are the list's, or the list's
        after the headend (a headend outside the namespace leaves its slot free)."""
        names = self._names
        traced = tuple(names.get(n, "?") if n is not None else "?" for n in record.path)
        for path in self.paths:
            if names.get(record.exporter) != path.endpoint:
                continue
            if traced in (path.nodes, path.nodes[1:]):
                return path
        return None


def _groups(flow_mon_id: int, paths: list[tuple[str, ...]]) -> list[SegmentGroup]:
    """Connected parts of the bipartite graph (tail, head) over the paths' hops, in path
    order of their first hop."""
    graph: nx.Graph = nx.Graph()
    order: list[tuple[str, str]] = []
    for nodes in paths:
        for a, b in itertools.pairwise(nodes):
            graph.add_edge(("up", a), ("down", b))
            order.append((a, b))
    groups = []
    seen: set[tuple[str, str]] = set()
    for a, _ in order:
        if ("up", a) in seen:
            continue
        part = nx.node_connected_component(graph, ("up", a))
        seen |= part
        up = dict.fromkeys(t for t, _ in order if ("up", t) in part)
        down = dict.fromkeys(h for _, h in order if ("down", h) in part)
        groups.append(SegmentGroup(flow_mon_id, tuple(up), tuple(down)))
    return groups


def plan_from_routes(
    routes: Iterable[SrRoute], flows: Mapping[str, list[int]], node_ids: Mapping[str, int]
) -> PathPlan:
    """Measured paths from segment lists and each policy's FlowMonIDs (policy -> ids)."""
    routes = list(routes)
    paths = []
    for route in routes:
        own = flows.get(route.policy, [])
        for flow in own:
            siblings = [
                r.nodes
                for r in routes
                if flow in flows.get(r.policy, [])
                and (r.policy, r.list_id) != (route.policy, route.list_id)
            ]
            shared = {n for nodes in siblings for n in nodes}
            start = next((n for n in route.nodes if n not in shared), None)
            if len(own) > 1:
                start = None  # a report does not name its FlowMonID: lists cannot be split
            paths.append(
                MeasuredPath(
                    route.policy, route.list_id, flow, route.nodes, route.latency_ms, start
                )
            )
    return PathPlan(paths, dict(node_ids))


def plan_from_intent(intent: Intent) -> PathPlan:
    """The plan of an intent: its SR policies' computed paths (as the controller renders
    them), under the FlowMonIDs of the telemetry profiles their APN policies name."""
    marks = {t.name: t.altmark.flow_mon_id for t in intent.telemetry if t.altmark is not None}
    flows: dict[str, list[int]] = defaultdict(list)
    for policy in intent.apn_policies:
        flow = marks.get(policy.telemetry or "")
        if policy.sr_policy and flow is not None and flow not in flows[policy.sr_policy]:
            flows[policy.sr_policy].append(flow)
    ids = [s.ioam_node_id for s in intent.switches.values()]
    node_ids = {
        n: s.ioam_node_id for n, s in intent.switches.items() if ids.count(s.ioam_node_id) == 1
    }
    return plan_from_routes(sr_routes(render(intent)), flows, node_ids)


PathSink = Callable[[PathSample], None]


@dataclass
class _Tally:
    reports: int = 0
    delay_ns: int = 0
    delays: int = 0


class PathMeter:
    """Counts the endpoint's reports per (list, colour) and turns every finished block into
    a :class:`PathSample` per list. :meth:`on_trace` is a trace sink, :meth:`on_block` a
    block sink and :meth:`on_baseline` a baseline sink of the alternate-marking monitor."""

    def __init__(self, plan: PathPlan, sinks: list[PathSink] | None = None) -> None:
        self.plan = plan
        self.sinks: list[PathSink] = list(sinks or [])
        self.samples: deque[PathSample] = deque(maxlen=MAX_SAMPLES_KEPT)
        self.latest: dict[tuple[str, int, int], PathSample] = {}
        self.unmatched = 0  # reports of no measured list
        self.uncoloured = 0  # reports of a measured list without a colour
        self._tally: dict[tuple[MeasuredPath, int], _Tally] = defaultdict(_Tally)

    def on_trace(self, record: TraceRecord, lost_before: int) -> None:
        path = self.plan.match(record)
        if path is None:
            self.unmatched += 1
            return
        if record.altmark_colour is None:
            self.uncoloured += 1
            return
        tally = self._tally[(path, record.altmark_colour)]
        tally.reports += 1
        stamps = [t for t in record.timestamps_ns if t is not None]
        if len(stamps) >= 2:
            tally.delay_ns += stamps[-1] - stamps[0]
            tally.delays += 1

    def on_baseline(self, flow_mon_id: int, colour: int) -> None:
        for key in [k for k in self._tally if k[0].flow_mon_id == flow_mon_id and k[1] == colour]:
            del self._tally[key]

    def on_block(self, block: AltmarkBlock) -> None:
        for path in self.plan.paths:
            if path.flow_mon_id != block.flow_mon_id or path.start is None:
                continue
            tally = self._tally.pop((path, block.colour), _Tally())
            sample = PathSample(
                policy=path.policy,
                list_id=path.list_id,
                flow_mon_id=path.flow_mon_id,
                colour=block.colour,
                block=block.number,
                finished_at=block.finished_at,
                start=path.start,
                endpoint=path.endpoint,
                sent=block.packets.get(path.start, 0),
                received=tally.reports,
                delay_ms=tally.delay_ns / tally.delays / NS_PER_MS if tally.delays else None,
            )
            self.samples.append(sample)
            self.latest[(path.policy, path.list_id, path.flow_mon_id)] = sample
            for sink in self.sinks:
                sink(sample)
