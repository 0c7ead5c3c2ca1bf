"""The WAN as a graph, and the SR paths a policy gets from it (DESIGN.md 4: "SR policies
computed from the topology: k shortest disjoint paths").

Paths for a policy are chosen in two steps:

1. as many link-disjoint paths as possible, up to k, of the least *total* latency: a
   min-cost flow of k units (capacity 1 per link, cost = latency). Taking the shortest path
   and removing its links, again and again, can block a second disjoint path that exists
   (the trap Suurballe's algorithm avoids; Bhandari, "Survivable Networks", 1999, ch. 3);
   the flow formulation does not.
2. if fewer than k disjoint paths exist, the next shortest simple paths, sharing links
   ("disjoint where possible").

Paths longer than the policy's latency bound are never returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice, pairwise

import networkx as nx

#: Propagation in fibre: about 5 microseconds per kilometre (refractive index ~1.47).
FIBRE_MS_PER_KM = 0.005


def latency_from_km(km: float) -> float:
    """One-way propagation latency of a fibre link, in milliseconds."""
    if km < 0:
        raise ValueError(f"a link cannot be {km} km long")
    return km * FIBRE_MS_PER_KM


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    latency_ms: float
    capacity_gbps: float

    def __post_init__(self) -> None:
        if self.a == self.b:
            raise ValueError(f"link {self.a}-{self.b} loops back to its node")
        if self.latency_ms < 0 or self.capacity_gbps <= 0:
            raise ValueError(f"link {self.a}-{self.b}: latency >= 0 and capacity > 0 needed")


@dataclass(frozen=True)
class Path:
    nodes: tuple[str, ...]
    latency_ms: float
    bottleneck_gbps: float

    @property
    def links(self) -> frozenset[frozenset[str]]:
        return frozenset(frozenset(pair) for pair in pairwise(self.nodes))


class Topology:
    """Undirected graph of nodes (switch names) and links with latency and capacity."""

    def __init__(self, links: Iterable[Link]) -> None:
        self.graph: nx.Graph = nx.Graph()
        for link in links:
            if self.graph.has_edge(link.a, link.b):
                raise ValueError(f"link {link.a}-{link.b} is given twice")
            self.graph.add_edge(
                link.a, link.b, latency=link.latency_ms, capacity=link.capacity_gbps
            )

    def path(self, nodes: Sequence[str]) -> Path:
        edges = [self.graph.edges[u, v] for u, v in pairwise(nodes)]
        return Path(
            tuple(nodes),
            sum(e["latency"] for e in edges),
            min((e["capacity"] for e in edges), default=float("inf")),
        )

    def _check(self, *nodes: str) -> None:
        for node in nodes:
            if node not in self.graph:
                raise ValueError(f"unknown node {node!r}; known: {sorted(self.graph)}")

    def sr_paths(
        self, src: str, dst: str, *, count: int, max_latency_ms: float | None = None
    ) -> list[Path]:
        """Up to ``count`` paths from ``src`` to ``dst``: link-disjoint ones of least total
        latency first, then shortest shared ones; none above ``max_latency_ms``."""
        self._check(src, dst)
        if src == dst or count < 1:
            raise ValueError("need two different nodes and count >= 1")
        bound = float("inf") if max_latency_ms is None else max_latency_ms
        chosen = [p for p in self._disjoint(src, dst, count) if p.latency_ms <= bound]
        if len(chosen) < count:
            seen = {p.nodes for p in chosen}
            shortest = nx.shortest_simple_paths(self.graph, src, dst, weight="latency")
            for nodes in islice(shortest, 64 * count):  # bounded: k shortest, k small
                path = self.path(nodes)
                if path.latency_ms > bound:
                    break  # simple paths come in order of latency
                if path.nodes not in seen:
                    chosen.append(path)
                    seen.add(path.nodes)
                if len(chosen) == count:
                    break
        if not chosen:
            raise ValueError(f"no path from {src} to {dst} within {bound} ms")
        return chosen

    def _disjoint(self, src: str, dst: str, count: int) -> list[Path]:
        """The largest k' <= count link-disjoint paths of least total latency."""
        flow_graph = nx.DiGraph()
        for u, v, data in self.graph.edges(data=True):
            cost = round(data["latency"] * 1000)  # integer costs: exact min-cost flow (us)
            flow_graph.add_edge(u, v, capacity=1, weight=cost)
            flow_graph.add_edge(v, u, capacity=1, weight=cost)
        k = min(count, nx.maximum_flow_value(flow_graph, src, dst))
        if k == 0:
            return []
        flow_graph.nodes[src]["demand"] = -k
        flow_graph.nodes[dst]["demand"] = k
        flow = nx.min_cost_flow(flow_graph)
        for u in flow:  # a link used both ways cancels out
            for v in flow[u]:
                if flow[u][v] and flow[v][u]:
                    flow[u][v] = flow[v][u] = 0
        paths = []
        for _ in range(k):
            nodes, node = [src], src
            while node != dst:
                node = next(v for v, used in flow[node].items() if used)
                flow[nodes[-1]][node] = 0
                nodes.append(node)
            paths.append(self.path(nodes))
        return sorted(paths, key=lambda p: p.latency_ms)
