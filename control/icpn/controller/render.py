"""From intent to entries: every P4Runtime entity each switch should hold (DESIGN.md 4).

The result is the *desired state*; :mod:`icpn.controller.reconcile` compares it with what a
switch holds and writes the difference. Rendering is pure (no switch is contacted), so a bad
intent is refused whole before anything is written.

What each switch gets:

* ``my_station`` for its router MAC, ``port_role`` for every declared port;
* local SIDs: End for ``sid``, End.DT6 for ``decap_sid``;
* IPv6 routes to every host network, prefix, remote SID and the collector, over all
  equal-latency next hops (ECMP);
* on an SR policy's headend: the policy with one segment list per path from
  :meth:`icpn.topology.Topology.sr_paths`, the APN policies that use it, their telemetry and
  sketch profiles, and the classifier rules (on any switch with an edge port);
* IOAM node identities for every namespace in use; on decapsulating nodes, the trace export
  towards the collector.

Segment lists are *node SIDs*, compressed: a waypoint is dropped when the only
least-latency route between its neighbours on the path goes through it anyway. A path whose
hop is not the only least-latency route between two nodes cannot be steered with node SIDs;
that is refused with the policy named rather than steered somewhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import finsy as fy
import networkx as nx

from icpn import apn, ifit, routing, sketch, srv6
from icpn.constants import MAX_ENCAP_SEGMENTS, ApnIdType
from icpn.elephant import ManagerSettings, PolicyPaths
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


@dataclass
class SwitchConfig:
    """The desired state of one switch and what its elephant manager needs."""

    name: str
    entities: list[Any] = field(default_factory=list)
    policies: list[PolicyPaths] = field(default_factory=list)
    detects_elephants: bool = False
    elephant_settings: ManagerSettings = field(default_factory=ManagerSettings)
    #: The sketch's hash key from the intent; None: the controller draws one at start.
    sketch_hash_key: SketchHashKey | None = None

    def tables(self) -> dict[str, list[fy.P4TableEntry]]:
        by_table: dict[str, list[fy.P4TableEntry]] = {}
        for entity in self.entities:
            if isinstance(entity, fy.P4TableEntry):
                by_table.setdefault(str(entity.table_id), []).append(entity)
        return by_table


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
            weight = round(link.latency * _NS_PER_MS)
            self.graph.add_edge(a, b, weight=weight)
            self.port[a, b], self.port[b, a] = int(pa), int(pb)
        self.distance: dict[str, dict[str, int]] = dict(
            nx.all_pairs_dijkstra_path_length(self.graph, weight="weight")
        )

    def next_hops(self, switch: str, destination: str) -> list[routing.NextHop]:
        """Every neighbour on a least-latency path to ``destination`` (ECMP)."""
        if destination not in self.distance[switch]:
            return []
        mac = self.intent.switches[switch].router_mac
        total = self.distance[switch][destination]
        hops = []
        for neighbour in sorted(self.graph.neighbors(switch)):
            weight = self.graph.edges[switch, neighbour]["weight"]
            if weight + self.distance[neighbour].get(destination, total + 1) == total:
                hops.append(
                    routing.NextHop(
                        self.port[switch, neighbour],
                        mac,
                        self.intent.switches[neighbour].router_mac,
                    )
                )
        return hops

    def only_shortest(self, a: str, b: str) -> tuple[str, ...] | None:
        """The least-latency path from ``a`` to ``b`` if there is exactly one."""
        paths = list(nx.all_shortest_paths(self.graph, a, b, weight="weight"))
        return tuple(paths[0]) if len(paths) == 1 else None

    def segments(self, path: SrPath) -> list[str]:
        """Node SIDs that steer a packet along ``path`` (the last is the endpoint's
        decapsulation SID), with waypoints dropped where routing goes there anyway."""
        nodes = path.nodes
        segments: list[str] = []
        at = 0
        while at < len(nodes) - 1:
            reach = next(
                (
                    j
                    for j in range(len(nodes) - 1, at, -1)
                    if self.only_shortest(nodes[at], nodes[j]) == nodes[at : j + 1]
                ),
                None,
            )
            if reach is None:
                raise ValueError(
                    f"hop {nodes[at]}->{nodes[at + 1]} of path {'-'.join(nodes)} is not the "
                    "only least-latency route between them, so node SIDs cannot steer it"
                )
            target = self.intent.switches[nodes[reach]]
            last = reach == len(nodes) - 1
            segments.append((target.decap_sid if last else None) or target.sid)
            at = reach
        return segments


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
    _base(intent, configs)
    _routes(intent, net, configs)
    sr_ids = _sr_policies(intent, net, configs)
    _apn(intent, sr_ids, configs)
    _elephant_rates(intent, sr_ids, configs)
    _telemetry_nodes(intent, net, configs)
    return configs


def _base(intent: Intent, configs: dict[str, SwitchConfig]) -> None:
    for name, switch in intent.switches.items():
        entities = configs[name].entities
        entities.append(routing.my_station(switch.router_mac))
        entities += [apn.port_role(port, p.port_role) for port, p in sorted(switch.ports.items())]
        entities.append(srv6.end(switch.sid))
        if switch.decap_sid is not None:
            entities.append(srv6.end_dt6(switch.decap_sid))


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
    for name, switch in sorted(intent.switches.items()):
        for sid in (switch.sid, switch.decap_sid):
            if sid is not None:
                found.append((f"switches.{name}.sid", f"{sid}/128", name, -1, None))
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
            if len(segments) > MAX_ENCAP_SEGMENTS:
                raise RenderError(
                    where,
                    f"path {'-'.join(path.nodes)} needs {len(segments)} segments, the headend "
                    f"pushes at most {MAX_ENCAP_SEGMENTS}",
                )
            list_id = next_list_id.get(policy.headend, 1)
            next_list_id[policy.headend] = list_id + 1
            weight = max(1, round(path.bottleneck_gbps / smallest))
            lists.append(srv6.SegmentList(tuple(segments), policy.reduced, min(weight, 8), list_id))
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
            else:
                configs[name].entities.append(_sketch_profile(intent, profile))
                configs[name].detects_elephants = True


def _telemetry_profile(intent: Intent, profile: int) -> fy.P4TableEntry:
    spec = intent.telemetry[profile - 1]
    altmark = (
        ifit.AltMarking(
            spec.altmark.flow_mon_id, spec.altmark.period_log2_us, spec.altmark.delay_sample_log2
        )
        if spec.altmark
        else None
    )
    ioam = (
        ifit.IoamTracing(spec.ioam.namespace, spec.ioam.trace_type, spec.ioam.max_nodes)
        if spec.ioam
        else None
    )
    try:
        return ifit.telemetry_profile(profile, altmark=altmark, ioam=ioam)
    except ValueError as exc:
        raise RenderError(f"telemetry.{profile - 1}", str(exc)) from exc


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
