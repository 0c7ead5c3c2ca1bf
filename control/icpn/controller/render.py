"""From intent to entries: every P4Runtime entity each switch should hold (DESIGN.md 4).

The result is the *desired state*; :mod:`icpn.controller.reconcile` compares it with what a
switch holds and writes the difference. Rendering is pure (no switch is contacted), so a bad
intent is refused whole before anything is written.

What each switch gets:

* ``my_station`` for its router MAC, ``port_role`` for every declared port; with hosts or
  the collector on its ports, an ACL entry punting neighbour solicitations (the controller
  answers for the gateway addresses, :mod:`icpn.neighbor`);
* routers that answer (``icmp.p4``, :mod:`icpn.routers`): every port's MTU; its addresses
  (SID, gateways, link-local), the punts of what a router answers and their meters, unless
  ``routers.icmp`` is off; RS punted where ``routers.advertise`` asks;
* local SIDs: End for ``sid``, End.DT6 for ``decap_sid``, End.X for each adjacency, and
  End for each neighbour's adjacency SID towards it;
* IPv6 routes to every host network, prefix, remote SID and the collector, over all
  equal-latency next hops (ECMP);
* on an SR policy's headend: the policy with one segment list per path from
  :meth:`icpn.topology.Topology.sr_paths`, the APN policies that use it, their telemetry and
  sketch profiles, and the classifier rules (on any switch with an edge port);
* IOAM node identities for every namespace in use; on decapsulating nodes, the trace export
  towards the collector;
* differentiated bearing (qos.p4): on every switch, the APN policies' traffic classes and
  ECN per queue on every port; on edge switches, the tenants' meters; queue rates (per port
  and class) for the controller to set where the switch has a Thrift runtime.

Segment lists make the packet follow the computed path exactly, with as few segments as
possible (:meth:`_Network.segments`): a node SID where the only least-cost route to that node
is the path's own stretch, an End.X adjacency SID (RFC 8986 4.2) where the path leaves a
node by a link routing would not take. Every switch gets an End.X SID per adjacency, in its
own SID's /112 (function ``0xE000 | port``, :func:`adjacency_sid`); every other switch
routes the block (/116) towards it. A headend cannot run its own End.X on a packet it
encapsulates, so for a first hop routing would not take it routes its own adjacency SID out
of that link, and the neighbour runs End on it (``my_sid``); a decapsulating node also has
an entry SID per link (function ``0xD000 | port``, End.DT6) its neighbour routes over that
link, for a last hop routing would not take. Lists longer than the SRH the headend pushes
use H.Encaps.Red (the first segment only in the DA). A list too long even so is refused
with the policy named.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import finsy as fy
import networkx as nx

from icpn import neighbor, routers
from icpn.constants import MAX_ENCAP_SEGMENTS, PUNTABLE_DROPS, ApnIdType
from icpn.elephant import ManagerSettings, PolicyPaths
from icpn.features import apn, icmp, ifit, qos, routing, sketch, srv6
from icpn.intent import Intent, IntentError, load_intent, locate
from icpn.packets.apn_id import ApnIdTemplate
from icpn.placement import PlacementSettings
from icpn.sketch_key import SketchHashKey, load_or_create
from icpn.topology import Path as SrPath

#: Clone session of the trace export (one per switch is enough: one collector).
COLLECTOR_SESSION = 1
#: Latencies are compared in integer nanoseconds so that equal-cost paths tie exactly.
_NS_PER_MS = 1_000_000


class RenderError(ValueError):
    """An intent that validates but cannot be turned into entries; ``where`` is the field
    path (``sr_policies.0``) so the caller can give the file's line."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass(frozen=True)
class SrRoute:
    """One segment list of an SR policy as the nodes its packets cross, headend first and
    endpoint last: what the collector measures per list (icpn.collector.paths)."""

    policy: str
    policy_id: int
    list_id: int
    nodes: tuple[str, ...]
    latency_ms: float


@dataclass
class SwitchConfig:
    """The desired state of one switch and what its elephant manager needs."""

    name: str
    entities: list[Any] = field(default_factory=list)
    policies: list[PolicyPaths] = field(default_factory=list)
    detects_elephants: bool = False
    elephant_settings: ManagerSettings = field(default_factory=ManagerSettings)
    #: gateway addresses per edge port, which the controller answers neighbour
    #: solicitations for (icpn.neighbor)
    router_addresses: dict[int, frozenset[str]] = field(default_factory=dict)
    #: (port, queue) -> packets/s: queue rates, which P4Runtime cannot set (icpn.features.qos).
    queue_rates: dict[tuple[int, int], int] = field(default_factory=dict)
    #: The sketch's hash key from the intent; None: the controller draws one at start.
    sketch_hash_key: SketchHashKey | None = None
    #: On a headend: its SR policies' segment lists as node paths.
    sr_routes: list[SrRoute] = field(default_factory=list)

    @property
    def list_paths(self) -> dict[int, tuple[str, ...]]:
        """On a headend: each segment list's path (list id -> switches, headend first),
        which failover needs to know the lists a dead switch takes down."""
        return {route.list_id: route.nodes for route in self.sr_routes}

    #: What the controller's responder answers for this switch (icpn.routers); rendered for
    #: every switch (None: a config built without render, with no responder).
    router: routers.RouterSettings | None = None

    def tables(self) -> dict[str, list[fy.P4TableEntry]]:
        by_table: dict[str, list[fy.P4TableEntry]] = {}
        for entity in self.entities:
            if isinstance(entity, fy.P4TableEntry):
                by_table.setdefault(str(entity.table_id), []).append(entity)
        return by_table


#: End.X SIDs: function ``ADJACENCY_FUNCTION | port`` in the /112 of the switch's SID, so
#: a switch's adjacency SIDs form one /116 block the others route towards it.
ADJACENCY_FUNCTION = 0xE000
ADJACENCY_BLOCK_LEN = 116
#: Decapsulating entry SIDs of a switch with a decap_sid: function ``ENTRY_DT6_FUNCTION |
#: port`` (its port on the link), End.DT6 there; only the neighbour routes one, over the link.
ENTRY_DT6_FUNCTION = 0xD000


def adjacency_sid(node_sid: str, port: int, function: int = ADJACENCY_FUNCTION) -> str:
    """The End.X SID of a switch's adjacency out of ``port`` (port < 4096); with
    ``ENTRY_DT6_FUNCTION``, its decapsulating entry SID from the link on ``port``."""
    base = int(ipaddress.IPv6Address(node_sid)) & ~0xFFFF
    return str(ipaddress.IPv6Address(base | function | port))


def adjacency_block(node_sid: str) -> str:
    """The /116 holding every adjacency SID of the switch whose SID is ``node_sid``."""
    return f"{adjacency_sid(node_sid, 0)}/{ADJACENCY_BLOCK_LEN}"


@dataclass(frozen=True)
class _Encoding:
    """Segments that steer from a state on the path to decapsulation, and how many of
    them are adjacency SIDs."""

    sids: tuple[str, ...]
    adjacency: int

    @property
    def cost(self) -> tuple[int, int]:
        return (len(self.sids), self.adjacency)


class _Network:
    """The intent's links as a graph with ports, for next hops and SID steering."""

    def __init__(self, intent: Intent) -> None:
        self.intent = intent
        self.graph: nx.Graph = nx.Graph()
        self.graph.add_nodes_from(intent.switches)
        self.port: dict[tuple[str, str], int] = {}  # (switch, neighbour) -> switch's port
        for link in intent.links:
            a, _, pa = link.a.partition(":")
            b, _, pb = link.b.partition(":")
            # routing cost in ns-sized units: latency in ns, or the metric (1 = 1 us)
            weight = link.metric * 1000 if link.metric else round(link.latency * _NS_PER_MS)
            self.graph.add_edge(a, b, weight=weight)
            self.port[a, b], self.port[b, a] = int(pa), int(pb)
        self.distance: dict[str, dict[str, int]] = dict(
            nx.all_pairs_dijkstra_path_length(self.graph, weight="weight")
        )
        self._only: dict[tuple[str, str], tuple[str, ...] | None] = {}

    def next_hops(self, switch: str, destination: str) -> list[routing.NextHop]:
        """Every neighbour on a least-cost path to ``destination`` (ECMP)."""
        if destination not in self.distance[switch]:
            return []
        total = self.distance[switch][destination]
        hops = []
        for neighbour in sorted(self.graph.neighbors(switch)):
            weight = self.graph.edges[switch, neighbour]["weight"]
            if weight + self.distance[neighbour].get(destination, total + 1) == total:
                hops.append(self.hop(switch, neighbour))
        return hops

    def hop(self, switch: str, neighbour: str) -> routing.NextHop:
        """The adjacency from ``switch`` to ``neighbour`` as a next hop."""
        return routing.NextHop(
            self.port[switch, neighbour],
            self.intent.switches[switch].router_mac,
            self.intent.switches[neighbour].router_mac,
        )

    def only_shortest(self, a: str, b: str) -> tuple[str, ...] | None:
        """The least-cost path from ``a`` to ``b`` if there is exactly one."""
        if (a, b) not in self._only:
            paths = list(islice(nx.all_shortest_paths(self.graph, a, b, weight="weight"), 2))
            self._only[a, b] = tuple(paths[0]) if len(paths) == 1 else None
        return self._only[a, b]

    def adjacency(self, switch: str, neighbour: str) -> str:
        return adjacency_sid(self.intent.switches[switch].sid, self.port[switch, neighbour])

    def entry_dt6(self, switch: str, neighbour: str) -> str | None:
        """The SID that ``neighbour`` routes over the link to ``switch``, which decapsulates
        it on arrival (None if ``switch`` does not decapsulate)."""
        if self.intent.switches[switch].decap_sid is None:
            return None
        port = self.port[switch, neighbour]
        return adjacency_sid(self.intent.switches[switch].sid, port, ENTRY_DT6_FUNCTION)

    def segments(self, path: SrPath) -> list[str]:
        """The shortest SID list that makes a packet from the headend follow ``path``
        exactly (its last segment is the endpoint's decapsulation SID).

        A dynamic programme over positions on the path, each in one of two states:
        *processed* (the packet is at node i, which chose the next destination address
        itself: the headend after encapsulating, a node after End) or *arrived* (the packet
        came to node i out of End.X at i-1, its destination address not processed yet, so
        it may be a SID of node i). From position i:

        * node SID of j > i (the endpoint's decapsulation SID for the last node), when the
          only least-cost route from i to j is the path's stretch i..j: to j, processed;
        * End.X SID of j towards j+1, when j = i and the packet arrived, or j > i is
          reached as above: to j+1, arrived;
        * when processed, i's own adjacency SID towards i+1, which i routes out of that
          link and i+1 runs End on: to i+1, processed; towards the endpoint, the
          endpoint's entry SID from that link, which it decapsulates: done.

        Cost: segments, then adjacency SIDs (node SIDs follow routing changes; ties
        favour them). Raises ValueError when no list exists.
        """
        nodes = path.nodes
        last = len(nodes) - 1
        switches = self.intent.switches
        endpoint = switches[nodes[last]]
        final = endpoint.decap_sid or endpoint.sid

        def reaches(i: int, j: int) -> bool:
            return self.only_shortest(nodes[i], nodes[j]) == nodes[i : j + 1]

        # best[(i, arrived)]: the cheapest encoding from that state to decapsulation
        best: dict[tuple[int, bool], _Encoding | None] = {}
        for i in range(last, -1, -1):
            for arrived in (True, False):
                options: list[_Encoding] = []
                if (arrived and i == last) or (i < last and reaches(i, last)):
                    options.append(_Encoding((final,), 0))
                for j in range(i + 1, last):
                    rest = best.get((j, False))
                    if rest is not None and reaches(i, j):
                        options.append(
                            _Encoding((switches[nodes[j]].sid, *rest.sids), rest.adjacency)
                        )
                for j in range(i, last):
                    rest = best.get((j + 1, True))
                    if rest is None or not ((j == i and arrived) or (j > i and reaches(i, j))):
                        continue
                    sid = self.adjacency(nodes[j], nodes[j + 1])
                    options.append(_Encoding((sid, *rest.sids), rest.adjacency + 1))
                if not arrived and i < last:
                    rest = best.get((i + 1, False))
                    if rest is not None:
                        sid = self.adjacency(nodes[i], nodes[i + 1])
                        options.append(_Encoding((sid, *rest.sids), rest.adjacency + 1))
                    entry = self.entry_dt6(nodes[last], nodes[i]) if i == last - 1 else None
                    if entry is not None:
                        options.append(_Encoding((entry,), 1))
                best[i, arrived] = min(options, key=lambda e: e.cost, default=None)
        found = best[0, False]
        if found is None:
            hop = f"{nodes[last - 1]}->{nodes[last]}"
            raise ValueError(
                f"path {'-'.join(nodes)} cannot be encoded: its last hop {hop} is not the only "
                f"least-cost route to {nodes[last]}, and the data plane cannot enter "
                f"{nodes[last - 1]} by End.X on this path"
            )
        return list(found.sids)


def load_and_render(path: Path) -> tuple[Intent, dict[str, SwitchConfig]]:
    """Load, validate and render an intent file; every problem is an IntentError with the
    file, line and field."""
    intent = load_intent(path)
    try:
        return intent, render(intent)
    except RenderError as exc:
        raise IntentError([locate(path, exc.where, exc.message)]) from exc


def render(intent: Intent) -> dict[str, SwitchConfig]:
    """The desired state of every switch; raises :class:`RenderError` naming the field."""
    net = _Network(intent)
    configs = {name: SwitchConfig(name) for name in intent.switches}
    elephants = intent.elephants
    rebalance = elephants.rebalance
    settings = ManagerSettings(
        max_overrides=elephants.max_overrides,
        writes_per_second=elephants.writes_per_second,
        poll_interval_s=elephants.poll_interval_s,
        idle_polls=elephants.idle_polls,
        port_quota=elephants.port_quota,
        apn_quota=elephants.apn_quota,
        confirm_fraction=elephants.confirm_fraction,
        verify_after_s=elephants.poll_interval_s,
        placement=PlacementSettings(
            trigger=rebalance.trigger,
            min_gain=rebalance.min_gain,
            max_moves=rebalance.max_moves,
            hold_down_s=rebalance.hold_down_polls * elephants.poll_interval_s,
            max_latency_skew_ms=rebalance.max_latency_skew_ms,
            smoothing=rebalance.smoothing,
        ),
    )
    hash_key = None
    if elephants.hash_key is not None:
        hash_key = SketchHashKey.from_hex(elephants.hash_key, where="elephants.hash_key")
    elif elephants.hash_key_file is not None:
        try:
            hash_key = load_or_create(elephants.hash_key_file)
        except (OSError, ValueError) as exc:
            raise RenderError("elephants.hash_key_file", str(exc)) from exc
    for config in configs.values():
        config.elephant_settings = settings
        config.sketch_hash_key = hash_key
    _base(intent, net, configs)
    _routers(intent, net, configs)
    _routes(intent, net, configs)
    sr_ids = _sr_policies(intent, net, configs)
    _apn(intent, sr_ids, configs)
    _elephant_rates(intent, sr_ids, configs)
    _telemetry_nodes(intent, net, configs)
    _qos(intent, configs)
    return configs


def _base(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> None:
    for name, switch in intent.switches.items():
        entities = configs[name].entities
        entities.append(routing.my_station(switch.router_mac))
        entities += [apn.port_role(port, p.port_role) for port, p in sorted(switch.ports.items())]
        entities.append(srv6.end(switch.sid))
        if switch.decap_sid is not None:
            entities.append(srv6.end_dt6(switch.decap_sid))
        configs[name].router_addresses = neighbor.router_addresses(intent, name)
        if configs[name].router_addresses:  # hosts resolve their gateway (RFC 4861)
            entities.append(routing.punt_neighbor_solicitations())
    _adjacencies(intent, net, configs)


def _routers(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> None:
    """Routers that answer (icmp.p4, icpn.routers): every port's MTU; with ``routers.icmp``,
    the router's addresses (loopback SID, gateways, link-local on edge ports), the punts
    of what it answers and their rate; with ``routers.advertise``, RS punted too. The
    responder's settings go with the config."""
    spec = intent.routers
    for name, switch in intent.switches.items():
        config = configs[name]
        ports = set(_ports(intent, name)) | set(config.router_addresses)
        ports |= {h.port for h in intent.hosts.values() if h.switch == name}
        mtus = {port: intent.port_mtu(name, port) for port in sorted(ports)}
        config.entities += [icmp.port_mtu(port, mtu) for port, mtu in mtus.items()]
        lladdr = routers.link_local(switch.router_mac)
        addresses = {port: gws | {lladdr} for port, gws in config.router_addresses.items()}
        prefixes: dict[int, set[str]] = {}
        for host in intent.hosts.values():
            if host.switch == name:
                prefixes.setdefault(host.port, set()).add(host.network)
        neighbours = {
            port: net.hop(name, other).neighbor_mac
            for (u, other), port in net.port.items()
            if u == name
        }
        for port in addresses:
            mac = intent.neighbor_mac(name, port)
            if mac is not None:
                neighbours[port] = mac
        advertise = spec.advertise
        config.router = routers.RouterSettings(
            router_mac=switch.router_mac,
            loopback=switch.sid,
            addresses=addresses,
            neighbor_macs=neighbours,
            port_mtu=mtus,
            prefixes={port: tuple(sorted(p)) for port, p in prefixes.items()},
            icmp_per_second=spec.icmp_per_second,
            icmp_burst=spec.icmp_burst,
            advertise=(
                routers.Advertising(advertise.interval_s, advertise.lifetime_s)
                if advertise is not None
                else None
            ),
        )
        if not spec.icmp:
            continue
        own = {switch.sid} | {a for found in addresses.values() for a in found}
        config.entities += [icmp.my_address(address) for address in sorted(own)]
        for reason in PUNTABLE_DROPS:
            config.entities.append(icmp.punt_policy(reason))
            config.entities.append(icmp.punt_rate(reason, spec.icmp_per_second, spec.icmp_burst))
        if advertise is not None and prefixes:
            config.entities.append(routing.punt_router_solicitations())


def _adjacencies(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> None:
    """Each adjacency u->v: End.X at u; at u, a route for that SID out of the link (u's own
    encapsulated packets: arriving ones meet my_sid first); End at v. The other switches
    route u's /116 block of adjacency SIDs towards u (in :func:`_destinations`). When v
    decapsulates, also its entry SID from the link: routed by u over it, End.DT6 at v."""
    owners = _sid_owners(intent)
    for u, v in sorted(net.port):
        if net.port[u, v] >= 0x1000:
            raise RenderError(
                "links", f"port {net.port[u, v]} of {u!r}: adjacency SIDs need < 4096"
            )
        sid = net.adjacency(u, v)
        if sid in owners:
            raise RenderError(
                f"switches.{u}.sid",
                f"the End.X SID {sid} of {u}'s port {net.port[u, v]} is also "
                f"{owners[sid]}; give each switch a SID of its own /112",
            )
        hop = net.hop(u, v)
        configs[u].entities.append(srv6.end_x(sid, hop.port, hop.router_mac, hop.neighbor_mac))
        configs[u].entities.append(routing.route(f"{sid}/128", [hop]))
        configs[v].entities.append(srv6.end(sid))
        entry = net.entry_dt6(v, u)
        if entry is not None:
            if entry in owners:
                raise RenderError(
                    f"switches.{v}.sid", f"the entry SID {entry} of {v} is also {owners[entry]}"
                )
            configs[u].entities.append(routing.route(f"{entry}/128", [hop]))
            configs[v].entities.append(srv6.end_dt6(entry))


def _sid_owners(intent: Intent) -> dict[str, str]:
    """Every node and decapsulation SID, and what it is, to catch an adjacency SID that
    collides with one."""
    owners: dict[str, str] = {}
    for name, switch in intent.switches.items():
        owners[switch.sid] = f"the SID of {name}"
        if switch.decap_sid is not None:
            owners[switch.decap_sid] = f"the decap_sid of {name}"
    return owners


def _destinations(intent: Intent) -> list[tuple[str, str, str, int, str | None]]:
    """(what, prefix, owning switch, port on it or -1 if local, MAC there) for every
    address that gets a route."""
    found: list[tuple[str, str, str, int, str | None]] = []
    for host_name, host in sorted(intent.hosts.items()):
        mac = intent.neighbor_mac(host.switch, host.port)
        found.append((f"hosts.{host_name}", host.network, host.switch, host.port, mac))
    for i, prefix in enumerate(intent.prefixes):
        mac = intent.neighbor_mac(prefix.switch, prefix.port)
        found.append((f"prefixes.{i}", prefix.prefix, prefix.switch, prefix.port, mac))
    linked = {link.a.partition(":")[0] for link in intent.links} | {
        link.b.partition(":")[0] for link in intent.links
    }
    for name, switch in sorted(intent.switches.items()):
        for sid in (switch.sid, switch.decap_sid):
            if sid is not None:
                found.append((f"switches.{name}.sid", f"{sid}/128", name, -1, None))
        if name in linked:  # its End.X SIDs
            found.append((f"switches.{name}.sid", adjacency_block(switch.sid), name, -1, None))
    if intent.collector is not None:
        attach, _, port = intent.collector.attach.partition(":")
        address = f"{intent.collector.address}/128"
        found.append(("collector", address, attach, int(port), intent.collector.mac))
    return found


def _routes(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for where, prefix, owner, port, mac in _destinations(intent):
        for name, switch in intent.switches.items():
            if name == owner and port < 0:
                continue  # a local SID: my_sid handles it
            if (name, prefix) in seen:
                if name == owner:
                    raise RenderError(where, f"{prefix} is already routed by {seen[name, prefix]}")
                continue
            seen[name, prefix] = where
            if name == owner:
                if mac is None:
                    raise RenderError(where, f"no MAC known for port {port} of {owner!r}")
                hops = [routing.NextHop(port, switch.router_mac, mac)]
            else:
                hops = net.next_hops(name, owner)
                if not hops:
                    continue  # unreachable from here: nothing to route
            configs[name].entities.append(routing.route(prefix, hops))


def _sr_policies(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> dict[str, int]:
    """Install SR policies on their headends; returns policy name -> SR policy id."""
    topology = intent.topology()
    ids: dict[str, int] = {}
    next_list_id: dict[str, int] = {}
    for i, policy in enumerate(intent.sr_policies):
        where = f"sr_policies.{i}"
        try:
            paths = topology.sr_paths(
                policy.headend,
                policy.endpoint,
                count=policy.paths,
                max_latency_ms=policy.max_latency_ms,
            )
        except (ValueError, nx.NetworkXException) as exc:
            raise RenderError(where, str(exc)) from exc
        if not paths:
            bound = f" within {policy.max_latency_ms} ms" if policy.max_latency_ms else ""
            raise RenderError(where, f"no path from {policy.headend} to {policy.endpoint}{bound}")
        smallest = min(p.bottleneck_gbps for p in paths)
        lists = []
        for path in paths:
            try:
                segments = net.segments(path)
            except ValueError as exc:
                raise RenderError(where, str(exc)) from exc
            most = srv6.max_segments(reduced=True)
            if len(segments) > most:
                raise RenderError(
                    where,
                    f"path {'-'.join(path.nodes)} needs {len(segments)} segments, the headend "
                    f"pushes at most {most} (H.Encaps.Red, {MAX_ENCAP_SEGMENTS} in the SRH)",
                )
            # H.Encaps.Red when asked for, or when only it fits the list (it saves a segment)
            reduced = policy.reduced or len(segments) > srv6.max_segments(reduced=False)
            list_id = next_list_id.get(policy.headend, 1)
            next_list_id[policy.headend] = list_id + 1
            weight = max(1, round(path.bottleneck_gbps / smallest))
            lists.append(srv6.SegmentList(tuple(segments), reduced, min(weight, 8), list_id))
            configs[policy.headend].sr_routes.append(
                SrRoute(policy.name, i + 1, list_id, path.nodes, path.latency_ms)
            )
        ids[policy.name] = i + 1
        headend = intent.switches[policy.headend]
        config = configs[policy.headend]
        config.entities.append(srv6.sr_policy(i + 1, headend.sid, lists))
        config.policies.append(
            PolicyPaths(
                i + 1,
                headend.sid,
                tuple(lists),
                latency_ms=tuple(p.latency_ms for p in paths),
                capacity=tuple(p.bottleneck_gbps for p in paths),
            )
        )
    return ids


def sr_routes(configs: dict[str, SwitchConfig]) -> list[SrRoute]:
    """Every SR policy's segment lists as node paths, policy by policy."""
    routes = [route for config in configs.values() for route in config.sr_routes]
    return sorted(routes, key=lambda r: (r.policy_id, r.list_id))


def _elephant_rates(
    intent: Intent, sr_ids: dict[str, int], configs: dict[str, SwitchConfig]
) -> None:
    """Each SR policy's elephant rate (threshold per window length, per second), which its
    pins must show to be kept: the lowest among the sketch profiles its APN policies name,
    and whether they count bytes (all of them must, else packets are compared)."""
    sketches = {s.name: s for s in intent.sketches}
    rates: dict[int, list[tuple[float, bool]]] = {}
    for policy in intent.apn_policies:
        if policy.sr_policy and policy.sketch:
            spec = sketches[policy.sketch]
            rate = spec.threshold / (2**spec.window_log2_us * 1e-6)
            rates.setdefault(sr_ids[policy.sr_policy], []).append((rate, spec.count_bytes))
    for config in configs.values():
        for i, paths in enumerate(config.policies):
            found = rates.get(paths.sr_policy_id)
            if not found or len({b for _, b in found}) > 1:
                continue  # no sketch, or packets and bytes mixed: not verified
            config.policies[i] = replace(
                paths, elephant_rate=min(r for r, _ in found), count_bytes=found[0][1]
            )


def _edge_switches(intent: Intent) -> list[str]:
    return [
        name
        for name, switch in intent.switches.items()
        if any(p.role != "core" for p in switch.ports.values())
    ]


def _apn(intent: Intent, sr_ids: dict[str, int], configs: dict[str, SwitchConfig]) -> None:
    id_type = {32: ApnIdType.ID32, 64: ApnIdType.ID64, 128: ApnIdType.ID128}
    tpl = intent.apn_template
    template = ApnIdTemplate(id_type[tpl.id_bits], tpl.app_bits, tpl.user_bits)
    telemetry_ids = {t.name: i + 1 for i, t in enumerate(intent.telemetry)}
    sketch_ids = {s.name: i + 1 for i, s in enumerate(intent.sketches)}
    headend_of = {p.name: p.headend for p in intent.sr_policies}
    edges = _edge_switches(intent)
    installed: dict[str, set[tuple[str, int]]] = {name: set() for name in intent.switches}
    per_list: dict[str, set[tuple[int, int]]] = {name: set() for name in intent.switches}
    for i, policy in enumerate(intent.apn_policies):
        where = f"apn_policies.{i}"
        try:
            value, mask = template.match(policy.app_group, policy.user_group)
            apn_id = template.compose(policy.app_group, policy.user_group or 0)
        except ValueError as exc:
            raise RenderError(where, str(exc)) from exc
        targets = [headend_of[policy.sr_policy]] if policy.sr_policy else edges
        telemetry = telemetry_ids.get(policy.telemetry or "", 0)
        sketch_id = sketch_ids.get(policy.sketch or "", 0)
        entry = apn.apn_policy(
            value,
            mask,
            dscp=policy.dscp,
            sr_policy_id=sr_ids.get(policy.sr_policy or "", 0),
            priority=1 + bin(mask).count("1"),
            telemetry_profile=telemetry,
            sketch_profile=sketch_id,
        )
        for name in targets:
            configs[name].entities.append(entry)
            if telemetry:
                installed[name].add(("telemetry", telemetry))
                if policy.sr_policy:
                    per_list[name].add((telemetry, sr_ids[policy.sr_policy]))
            if sketch_id:
                installed[name].add(("sketch", sketch_id))
        if policy.classify and tpl.id_bits != 32:
            raise RenderError(f"{where}.classify", "network-side marking writes 32-bit APN IDs")
        for j, rule in enumerate(policy.classify):
            try:
                entry = apn.classifier_rule(apn_id, priority=1000 - i * 16 - j, **rule)
            except (ValueError, TypeError) as exc:
                raise RenderError(f"{where}.classify.{j}", str(exc)) from exc
            for name in edges:
                configs[name].entities.append(entry)
    for name, wanted in installed.items():
        for kind, profile in sorted(wanted):
            if kind == "telemetry":
                configs[name].entities.append(_telemetry_profile(intent, profile))
                lists = [
                    sl.list_id
                    for telemetry, sr_id in sorted(per_list[name])
                    if telemetry == profile
                    for paths in configs[name].policies
                    if paths.sr_policy_id == sr_id
                    for sl in paths.lists
                ]
                configs[name].entities += _list_profiles(intent, profile, lists)
            else:
                configs[name].entities.append(_sketch_profile(intent, profile))
                configs[name].detects_elephants = True


def _template(intent: Intent) -> ApnIdTemplate:
    id_type = {32: ApnIdType.ID32, 64: ApnIdType.ID64, 128: ApnIdType.ID128}
    tpl = intent.apn_template
    return ApnIdTemplate(id_type[tpl.id_bits], tpl.app_bits, tpl.user_bits)


def _ports(intent: Intent, name: str) -> list[int]:
    """Every port of a switch the intent knows: declared ones and link ends."""
    ports = set(intent.switches[name].ports)
    for link in intent.links:
        for end in (link.a, link.b):
            switch, _, port = end.partition(":")
            if switch == name:
                ports.add(int(port))
    return sorted(ports)


def _qos(intent: Intent, configs: dict[str, SwitchConfig]) -> None:
    """Traffic classes everywhere (every hop reads the APN ID), tenant meters at the edge."""
    template = _template(intent)
    queue = {c.name: c.queue for c in intent.traffic_classes}
    for policy in intent.apn_policies:
        if policy.traffic_class is None:
            continue
        value, mask = template.match(policy.app_group, policy.user_group)
        entry = qos.traffic_class(
            value, mask, queue[policy.traffic_class], priority=1 + bin(mask).count("1")
        )
        for config in configs.values():
            config.entities.append(entry)
    edges = _edge_switches(intent)
    for index, tenant in enumerate(intent.tenants):
        where = f"tenants.{index}"
        try:
            value, mask = template.match(tenant.app_group, tenant.user_group)
        except ValueError as exc:
            raise RenderError(where, str(exc)) from exc
        red = qos.RedPolicy(
            drop=tenant.red == "drop",
            dscp=tenant.remark_dscp,
            tc=queue.get(tenant.remark_class or "", 0),
        )
        meter = qos.TrTcm(
            tenant.cir_bytes_per_s, tenant.cbs_bytes, tenant.pir_bytes_per_s, tenant.pbs_bytes
        )
        rule = qos.tenant_meter_rule(value, mask, index, red, priority=1 + bin(mask).count("1"))
        for name in edges:
            configs[name].entities += [rule, qos.meter_config(index, meter)]
    for name, config in configs.items():
        for port in _ports(intent, name):
            for tc in intent.traffic_classes:
                if tc.ecn_queue_packets is not None:
                    config.entities.append(qos.queue_ecn(port, tc.queue, tc.ecn_queue_packets))
                if tc.rate_pps is not None:
                    config.queue_rates[port, tc.queue] = tc.rate_pps


def _telemetry_profile(intent: Intent, profile: int, list_id: int | None = None) -> fy.P4TableEntry:
    """The profile's entry; with ``list_id``, its entry for that segment list alone, with the
    list's own FlowMonID (``altmark.per_list``, :func:`icpn.features.ifit.list_flow_mon_id`)."""
    spec = intent.telemetry[profile - 1]
    where = f"telemetry.{profile - 1}"
    altmark = None
    try:
        if spec.altmark:
            flow_mon_id = spec.altmark.flow_mon_id
            if list_id is not None:
                flow_mon_id = ifit.list_flow_mon_id(flow_mon_id, list_id)
            altmark = ifit.AltMarking(
                flow_mon_id, spec.altmark.period_log2_us, spec.altmark.delay_sample_log2
            )
        ioam = (
            ifit.IoamTracing(spec.ioam.namespace, spec.ioam.trace_type, spec.ioam.max_nodes)
            if spec.ioam
            else None
        )
        return ifit.telemetry_profile(profile, altmark=altmark, ioam=ioam, list_id=list_id)
    except ValueError as exc:
        raise RenderError(where, str(exc)) from exc


def _list_profiles(intent: Intent, profile: int, list_ids: list[int]) -> list[fy.P4TableEntry]:
    """With ``altmark.per_list``, the profile once per segment list, each with its own
    FlowMonID; a FlowMonID another profile already uses is refused (their counters would
    mix)."""
    spec = intent.telemetry[profile - 1]
    if spec.altmark is None or not spec.altmark.per_list:
        return []
    others = {t.altmark.flow_mon_id for t in intent.telemetry if t.altmark and t is not spec}
    entries = []
    for list_id in sorted(set(list_ids)):
        entry = _telemetry_profile(intent, profile, list_id)
        taken = ifit.list_flow_mon_id(spec.altmark.flow_mon_id, list_id)
        if taken in others:
            raise RenderError(
                f"telemetry.{profile - 1}.altmark",
                f"segment list {list_id} would take FlowMonID {taken}, which another "
                "telemetry profile uses",
            )
        entries.append(entry)
    return entries


def _sketch_profile(intent: Intent, profile: int) -> fy.P4TableEntry:
    spec = intent.sketches[profile - 1]
    settings = sketch.SketchProfile(
        spec.flow_key, spec.threshold, spec.window_log2_us, spec.count_bytes
    )
    return sketch.sketch_profile(profile, settings)


def _telemetry_nodes(intent: Intent, net: _Network, configs: dict[str, SwitchConfig]) -> None:
    namespaces = sorted({t.ioam.namespace for t in intent.telemetry if t.ioam is not None})
    for name, switch in intent.switches.items():
        entities = configs[name].entities
        entities += [ifit.ioam_node(ns, switch.ioam_node_id) for ns in namespaces]
        if switch.decap_sid is None or intent.collector is None or not namespaces:
            continue
        collector = intent.collector
        attach, _, attach_port = collector.attach.partition(":")
        if name == attach:
            port, mac = int(attach_port), collector.mac
        else:
            hops = net.next_hops(name, attach)
            if not hops:
                raise RenderError("collector.attach", f"{attach!r} is unreachable from {name!r}")
            port, mac = hops[0].port, hops[0].neighbor_mac
        entities.append(ifit.collector_session(COLLECTOR_SESSION, port))
        for ns in namespaces:
            entities.append(ifit.trace_export(ns, COLLECTOR_SESSION))
            entities.append(
                ifit.trace_report(
                    ns,
                    router_mac=switch.router_mac,
                    collector_mac=mac,
                    source=switch.sid,
                    collector=collector.address,
                    udp_port=collector.udp_port,
                )
            )
