"""Network intent: what the operator wants, in one YAML file, validated completely before
anything is written to a switch (DESIGN.md 4).

Every problem is reported at once, each naming the file, the line and the field
(``intent.yaml:12: links[1].a: unknown switch 'gz9'``), so a bad intent never half-applies.
The schema is pydantic; line numbers come from the YAML node tree, not from the parsed data.

What the intent holds: switches (gRPC address, device id, router MAC, SIDs, IOAM node id,
ports with their roles), links (distance or latency, capacity), prefixes, the APN ID
template and APN policies, SR policies (headend, endpoint, how many paths, latency bound;
the paths themselves are computed from the topology, :mod:`icpn.topology`), telemetry
profiles and sketch profiles.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from icpn.constants import (
    ACCESS_MTU,
    CORE_MTU,
    ELEPHANT_OVERRIDE_TABLE_SIZE,
    IPV6_MIN_MTU,
    QOS_QUEUES,
    QOS_TENANT_METERS,
    REPORT_UDP_PORT,
    FlowKeyType,
    PortRole,
)
from icpn.resteer import SteerSettings
from icpn.sketch_key import SketchHashKey
from icpn.targets.tofino.profiles import PROFILES
from icpn.topology import Link, Topology, latency_from_km

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _mac(value: str) -> str:
    if not _MAC.match(value.lower()):
        raise ValueError(f"{value!r} is not a MAC address like 00:00:00:00:aa:01")
    return value.lower()


def _ipv6(value: str) -> str:
    return str(ipaddress.IPv6Address(value))


def _prefix(value: str) -> str:
    return str(ipaddress.ip_network(value))


def _grpc(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return value


Mac = Annotated[str, AfterValidator(_mac)]
Ipv6 = Annotated[str, AfterValidator(_ipv6)]
Prefix = Annotated[str, AfterValidator(_prefix)]
GrpcAddress = Annotated[str, AfterValidator(_grpc)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z][\w.-]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: An MTU: octets of IPv6 packet a link carries (RFC 8200 5: at least 1280).
Mtu = Annotated[int, Field(ge=IPV6_MIN_MTU, le=0xFFFF)]


class PortIntent(_Strict):
    role: Literal["core", "edge_untrusted", "edge_trusted"] = "core"
    neighbor_mac: Mac | None = None
    #: What an edge port's link carries (a link's ``mtu`` sets its ends'): ACCESS_MTU if unset.
    mtu: Mtu | None = None

    @property
    def port_role(self) -> PortRole:
        return PortRole[self.role.upper()]


#: The switch targets icpn builds for, and the APIs that reach them.
Target = Literal["bmv2", "tofino", "tofino2"]
Api = Literal["p4runtime", "bfruntime"]


class SwitchIntent(_Strict):
    grpc: GrpcAddress
    device_id: int = Field(0, ge=0)
    #: BMv2 speaks P4Runtime; a Tofino switch P4Runtime (Stratum) or BfRuntime (bf_switchd).
    target: Target = "bmv2"
    api: Api = "p4runtime"
    #: The TNA build profile loaded on a Tofino switch (icpn.targets.tofino.profiles); Tofino only.
    profile: str | None = None
    router_mac: Mac
    sid: Ipv6  # End SID (and the headend's source address)
    decap_sid: Ipv6 | None = None  # End.DT6, if the switch decapsulates
    ioam_node_id: int = Field(0, ge=0, lt=1 << 24)
    ports: dict[int, PortIntent] = Field(default_factory=dict)
    #: host:port of BMv2's Thrift runtime, where the controller sets queue rates (traffic
    #: classes' rate_pps); P4Runtime has no queues. None: queue rates are not applied.
    thrift: str | None = None

    @model_validator(mode="after")
    def _target_and_api(self) -> SwitchIntent:
        if self.target == "bmv2" and self.api != "p4runtime":
            raise ValueError("api: BMv2 serves P4Runtime only (bfruntime needs a Tofino target)")
        if self.profile is not None:
            if self.target == "bmv2":
                raise ValueError("profile: a TNA build profile applies to Tofino targets only")
            if self.profile not in PROFILES:
                known = ", ".join(sorted(PROFILES))
                raise ValueError(f"profile: unknown TNA profile {self.profile!r} (known: {known})")
        return self

    @property
    def is_tofino(self) -> bool:
        return self.target != "bmv2"


class LinkIntent(_Strict):
    """A link; routing follows the least total ``metric`` (an IGP cost, 1 = 1 us), which
    defaults to the link's latency in microseconds. A metric other than the latency makes
    routing's paths differ from the least-latency ones SR policies may ask for."""

    a: str  # "switch:port"
    b: str
    km: float | None = Field(None, ge=0)
    latency_ms: float | None = Field(None, ge=0)
    capacity_gbps: float = Field(gt=0)
    metric: int | None = Field(None, ge=1)
    #: IPv6 MTU of the link: core links carry encapsulated access-MTU packets (CORE_MTU,
    #: jumbo frames, as WANs are provisioned); a packet over it is dropped and counted as
    #: PACKET_TOO_BIG, and its source told (ICMPv6 Packet Too Big).
    mtu: Mtu = CORE_MTU

    @model_validator(mode="after")
    def _one_latency(self) -> LinkIntent:
        if (self.km is None) == (self.latency_ms is None):
            raise ValueError("give exactly one of km and latency_ms")
        for end in (self.a, self.b):
            if not re.match(r"^[A-Za-z][\w.-]*:\d+$", end):
                raise ValueError(f"link end {end!r} is not switch:port")
        return self

    @property
    def latency(self) -> float:
        return self.latency_ms if self.latency_ms is not None else latency_from_km(self.km or 0)


class HostIntent(_Strict):
    """A host (a Linux namespace in the topologies) on a switch's edge port. Its network is
    routed to that port; its MAC, when given, is the port's neighbour."""

    switch: str
    port: int = Field(ge=0, lt=512)
    address: str  # IPv6 interface address with its prefix length, e.g. 2001:db8:1::10/64
    mac: Mac | None = None

    @model_validator(mode="after")
    def _address(self) -> HostIntent:
        interface = ipaddress.ip_interface(self.address)  # ValueError names the bad value
        if interface.version != 6 or interface.network.prefixlen == 128:
            raise ValueError(f"{self.address!r}: need an IPv6 address with its prefix length")
        _not_the_gateway(interface)
        return self

    @property
    def network(self) -> str:
        return str(ipaddress.ip_interface(self.address).network)

    @property
    def ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)


class CollectorIntent(_Strict):
    """Where decapsulating nodes send IOAM trace reports (docs/telemetry-report.md). The
    collector sits in ``address``'s /64, whose gateway (the first address) its switch owns."""

    address: Ipv6
    attach: str  # "switch:port" the collector hangs off
    mac: Mac
    udp_port: int = Field(REPORT_UDP_PORT, gt=0, lt=65536)

    @model_validator(mode="after")
    def _address(self) -> CollectorIntent:
        _not_the_gateway(ipaddress.IPv6Interface(f"{self.address}/64"))
        return self


def _not_the_gateway(interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
    """A host's address must not be its network's gateway (the first address, which the
    switch answers neighbour solicitations for, icpn.neighbor): the host would have no route
    back, its default route pointing at itself."""
    gateway = interface.network.network_address + 1
    if interface.ip == gateway:
        raise ValueError(
            f"{interface.ip} is the gateway address of {interface.network}, which the switch "
            f"owns; give the host another one, such as {gateway + 15}"
        )


class TlsIntent(_Strict):
    """P4Runtime over TLS: the CA that signed the switches' certificates, and optionally
    our client certificate and key (for switches that require mutual authentication).
    Relative paths are relative to the intent file."""

    ca_cert: Path
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsIntent:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both cert and key, or neither")
        return self


class RebalanceIntent(_Strict):
    """How the elephant manager rebalances pinned elephants (icpn.placement): while the
    busiest list exceeds (1 + trigger) x the balanced utilisation, up to ``max_moves`` moves
    per poll, each lowering the peak by more than ``min_gain`` (share of balanced) per flow
    moved; a flow stays ``hold_down_polls`` polls where it was put; flows move only between
    lists whose path latencies differ by less than ``max_latency_skew_ms`` (reordering);
    rates are smoothed (``smoothing``: weight of the newest measurement)."""

    trigger: float = Field(0.03, ge=0)
    min_gain: float = Field(0.01, ge=0)
    max_moves: int = Field(4, ge=0)
    hold_down_polls: int = Field(2, ge=0)
    max_latency_skew_ms: float = Field(1.0, gt=0)
    smoothing: float = Field(0.3, gt=0, le=1)


class ElephantIntent(_Strict):
    """Elephant manager settings (icpn.elephant.ManagerSettings), and the sketch's secret
    hash key (icpn.sketch_key): ``hash_key`` (hex) given here, or kept in ``hash_key_file``
    (relative to the intent file; created, readable by its owner only, the first time), or
    neither: the controller draws a fresh key each time it starts (docs/elephants.md).
    ``port_quota``/``apn_quota``: the share of the override table and of the report queue
    one ingress port / one APN ID may hold; a pin is kept only if its counter shows at least
    ``confirm_fraction`` of the sketch profile's threshold rate."""

    max_overrides: int = Field(512, ge=1, le=ELEPHANT_OVERRIDE_TABLE_SIZE)
    writes_per_second: float = Field(1000.0, gt=0)
    poll_interval_s: float = Field(1.0, gt=0)
    idle_polls: int = Field(3, ge=1)
    rebalance: RebalanceIntent = Field(default_factory=RebalanceIntent)
    port_quota: float = Field(0.5, gt=0, le=1)
    apn_quota: float = Field(1.0, gt=0, le=1)
    confirm_fraction: float = Field(0.5, gt=0, le=1)
    hash_key: str | None = None
    hash_key_file: Path | None = None

    @model_validator(mode="after")
    def _one_key(self) -> ElephantIntent:
        if self.hash_key is not None and self.hash_key_file is not None:
            raise ValueError("give hash_key or hash_key_file, not both")
        if self.hash_key is not None:
            SketchHashKey.from_hex(self.hash_key, where="hash_key")
        return self


class SteeringIntent(_Strict):
    """Telemetry-driven re-steering (icpn.steering, icpn.resteer): the controller measures
    each segment list's loss by alternate marking (profiles with ``altmark.per_list``) at
    the headend and the decapsulating node, and drains a list after ``bad_samples`` blocks
    in a row lose more than ``max_loss`` of at least ``min_packets`` packets (or whose
    delay exceeds the SR policy's ``max_latency_ms``); it comes back after ``hold_s``,
    doubled for a list that degrades again within a hold of its return (up to
    ``max_hold_s``)."""

    max_loss: float = Field(0.01, ge=0, lt=1)
    bad_samples: int = Field(1, ge=1)
    hold_s: float = Field(10.0, gt=0)
    max_hold_s: float = Field(160.0, gt=0)
    min_packets: int = Field(20, ge=1)
    #: How long after a colour switch a block is read, as a share of the period: RFC 9341
    #: reads in the middle of the next period (0.5); a path far shorter than the period
    #: (every BMv2 topology here) needs less, and every period of it delays a re-steer.
    guard_share: float = Field(0.25, gt=0, le=0.5)

    @model_validator(mode="after")
    def _holds(self) -> SteeringIntent:
        if self.max_hold_s < self.hold_s:
            raise ValueError("max_hold_s is below hold_s")
        return self

    def settings(self) -> SteerSettings:
        return SteerSettings(self.max_loss, self.bad_samples, self.hold_s, self.max_hold_s)


class EmulationIntent(_Strict):
    """How ``icpn net`` emulates the WAN on one machine: link rates are the intent's
    capacities times ``bandwidth_scale`` (BMv2 forwards ~10^4 packets/s, DESIGN.md 6), link
    delays are the intent's latencies, queues hold ``queue_packets`` packets."""

    bandwidth_scale: float = Field(1e-5, gt=0, le=1)
    queue_packets: int = Field(100, ge=1)
    host_gbps: float = Field(10.0, gt=0)  # host access links, before scaling


class PrefixIntent(_Strict):
    prefix: Prefix
    switch: str
    port: int


class ApnTemplateIntent(_Strict):
    id_bits: Literal[32, 64, 128] = 32
    app_bits: int = Field(16, ge=0)
    user_bits: int = Field(16, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> ApnTemplateIntent:
        if self.app_bits + self.user_bits > self.id_bits:
            raise ValueError(f"app_bits + user_bits exceed the {self.id_bits}-bit APN ID")
        return self


class ApnPolicyIntent(_Strict):
    name: Name
    app_group: int = Field(ge=0)
    user_group: int | None = Field(None, ge=0)
    dscp: int = Field(0, ge=0, lt=64)
    sr_policy: str | None = None
    telemetry: str | None = None
    sketch: str | None = None
    #: The traffic class (egress queue) of the APN's packets at every switch (qos.p4).
    traffic_class: str | None = None
    classify: list[dict[str, Any]] = Field(default_factory=list)  # apn.classifier_rule fields


class TrafficClassIntent(_Strict):
    """A traffic class: one egress queue per port (qos.p4). The scheduler serves the highest
    queue with a packet due first (strict priority); ``rate_pps`` paces the queue on every
    port (BMv2 queue rate, over Thrift; none: unpaced), ``ecn_queue_packets`` marks ECN-capable
    packets CE once the queue holds that many (none: no marking)."""

    name: Name
    queue: int = Field(ge=0, lt=QOS_QUEUES)
    rate_pps: int | None = Field(None, ge=1)
    ecn_queue_packets: int | None = Field(None, ge=0, lt=1 << 19)


class TenantIntent(_Strict):
    """A tenant held to its rates at the edge: an APN USER-Group (optionally within one
    APP-Group) metered by a two-rate three-colour meter (RFC 2698), rates in bytes/s and
    bursts in bytes. Red packets are dropped, or remarked to ``remark_dscp`` and sent in
    ``remark_class`` (a traffic class; none: class 0)."""

    name: Name
    user_group: int = Field(ge=0)
    app_group: int | None = Field(None, ge=0)
    cir_bytes_per_s: int = Field(gt=0)
    cbs_bytes: int = Field(gt=0)
    pir_bytes_per_s: int = Field(gt=0)
    pbs_bytes: int = Field(gt=0)
    red: Literal["drop", "remark"] = "drop"
    remark_dscp: int = Field(8, ge=0, lt=64)  # CS1, the lower-effort class (RFC 8622 uses LE=1)
    remark_class: str | None = None

    @model_validator(mode="after")
    def _rates(self) -> TenantIntent:
        if self.pir_bytes_per_s < self.cir_bytes_per_s:
            raise ValueError("pir_bytes_per_s is below cir_bytes_per_s (RFC 2698: PIR >= CIR)")
        return self


class SrPolicyIntent(_Strict):
    name: Name
    headend: str
    endpoint: str
    paths: int = Field(1, ge=1, le=8)
    max_latency_ms: float | None = Field(None, gt=0)
    reduced: bool = False


class AltMarkIntent(_Strict):
    """Alternate marking (RFC 9341). With ``per_list``, each segment list of the SR policies
    using the profile gets a FlowMonID of its own, ``flow_mon_id`` + its list id (list ids
    count from 1 per headend), so that the loss of every list is measured apart: what
    telemetry-driven re-steering acts on (docs/elephants.md)."""

    flow_mon_id: int = Field(ge=0, lt=1 << 20)
    period_log2_us: int = Field(ge=0, lt=48)
    delay_sample_log2: int = Field(0, ge=0, lt=32)
    per_list: bool = False


class IoamIntent(_Strict):
    namespace: int = Field(ge=0, lt=1 << 16)
    trace_type: int = Field(ge=1, lt=1 << 24)
    max_nodes: int = Field(ge=1)


class TelemetryIntent(_Strict):
    name: Name
    altmark: AltMarkIntent | None = None
    ioam: IoamIntent | None = None


class SketchIntent(_Strict):
    name: Name
    key: Literal["src_dst_qp", "five_tuple"] = "src_dst_qp"
    threshold: int = Field(ge=1, lt=1 << 32)
    window_log2_us: int = Field(ge=0, lt=48)
    count_bytes: bool = False

    @property
    def flow_key(self) -> FlowKeyType:
        return FlowKeyType[self.key.upper()]


class AdvertiseIntent(_Strict):
    """Router Advertisements on the edge ports with hosts (RFC 4861 6.2): every
    ``interval_s`` (MaxRtrAdvInterval, 4 to 1800 s) and in answer to solicitations, with
    ``lifetime_s`` as the default router's lifetime (0: not a default router)."""

    interval_s: float = Field(200.0, ge=4, le=1800)
    lifetime_s: int = Field(1800, ge=0, le=9000)


class RoutersIntent(_Strict):
    """Routers that answer (icpn.routers): Echo Replies for their own addresses and ICMPv6
    errors (RFC 4443) through the controller, at most ``icmp_per_second`` per reason and
    switch in the data plane (bursts of ``icmp_burst``) and per switch in the controller
    (RFC 4443 2.4(f)); ``icmp: false`` drops (and counts) what they would answer."""

    icmp: bool = True
    icmp_per_second: int = Field(100, ge=1)
    icmp_burst: int = Field(20, ge=1)
    advertise: AdvertiseIntent | None = None


class Intent(_Strict):
    switches: dict[Name, SwitchIntent]
    links: list[LinkIntent] = Field(default_factory=list)
    prefixes: list[PrefixIntent] = Field(default_factory=list)
    apn_template: ApnTemplateIntent = Field(default_factory=ApnTemplateIntent)
    apn_policies: list[ApnPolicyIntent] = Field(default_factory=list)
    sr_policies: list[SrPolicyIntent] = Field(default_factory=list)
    telemetry: list[TelemetryIntent] = Field(default_factory=list)
    sketches: list[SketchIntent] = Field(default_factory=list)
    traffic_classes: list[TrafficClassIntent] = Field(default_factory=list)
    tenants: list[TenantIntent] = Field(default_factory=list)
    hosts: dict[Name, HostIntent] = Field(default_factory=dict)
    collector: CollectorIntent | None = None
    tls: TlsIntent | None = None
    elephants: ElephantIntent = Field(default_factory=ElephantIntent)
    steering: SteeringIntent | None = None
    emulation: EmulationIntent = Field(default_factory=EmulationIntent)
    routers: RoutersIntent = Field(default_factory=RoutersIntent)

    @model_validator(mode="after")
    def _references(self) -> Intent:
        """Cross references; each error says where, as ``path: message`` for the loader."""
        errors = reference_errors(self.model_dump())
        errors += self._qos_problems()
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def _qos_problems(self) -> list[str]:
        errors = []
        queues: dict[int, str] = {}
        for i, tc in enumerate(self.traffic_classes):
            if tc.queue in queues:
                errors.append(
                    f"traffic_classes.{i}.queue: queue {tc.queue} is already {queues[tc.queue]!r}"
                )
            queues.setdefault(tc.queue, tc.name)
        classes = {c.name for c in self.traffic_classes}
        if len(self.tenants) > QOS_TENANT_METERS:
            errors.append(
                f"tenants: {len(self.tenants)} tenants, the switches meter at most "
                f"{QOS_TENANT_METERS}"
            )
        for i, tenant in enumerate(self.tenants):
            if tenant.remark_class is not None and tenant.remark_class not in classes:
                errors.append(
                    f"tenants.{i}.remark_class: unknown traffic_class {tenant.remark_class!r}"
                )
            if tenant.red == "drop" and tenant.remark_class is not None:
                errors.append(f"tenants.{i}.remark_class: red packets are dropped (red: drop)")
        return errors

    def port_mtu(self, switch: str, port: int) -> int:
        """The MTU of a switch's port: its link's, else the port's own, else ACCESS_MTU."""
        for link in self.links:
            if f"{switch}:{port}" in (link.a, link.b):
                return link.mtu
        declared = self.switches[switch].ports.get(port)
        if declared is not None and declared.mtu is not None:
            return declared.mtu
        return ACCESS_MTU

    def neighbor_mac(self, switch: str, port: int) -> str | None:
        """The MAC of what sits on a switch's edge port: the port's neighbor_mac, else the
        MAC of a host attached there."""
        port_intent = self.switches[switch].ports.get(port)
        if port_intent is not None and port_intent.neighbor_mac is not None:
            return port_intent.neighbor_mac
        return next(
            (h.mac for h in self.hosts.values() if (h.switch, h.port) == (switch, port)), None
        )

    def topology(self) -> Topology:
        return Topology(
            Link(
                link.a.partition(":")[0], link.b.partition(":")[0], link.latency, link.capacity_gbps
            )
            for link in self.links
        )


def reference_errors(data: Mapping[str, Any]) -> list[str]:
    """Cross-reference problems of an intent, as ``dotted.path: message`` lines.

    It reads the raw mapping (as loaded from YAML), not the validated model, so that an
    intent with field errors still gets its references checked in the same run: a
    reference to a switch whose MAC is malformed is not unknown, and an item too broken to
    read is skipped here (its field errors say why)."""
    errors: list[str] = []
    switches = _mapping(data.get("switches"))
    hosts = _mapping(data.get("hosts"))

    def check_switch(where: str, switch: Any) -> None:
        if isinstance(switch, str) and switch not in switches:
            errors.append(f"{where}: unknown switch {switch!r}")

    def port_of(switch: str, port: int) -> Mapping[str, Any]:
        ports = _mapping(_mapping(switches.get(switch)).get("ports"))
        return _mapping(next((v for k, v in ports.items() if _as_int(k) == port), None))

    def neighbor_known(switch: str, port: int) -> bool:
        if port_of(switch, port).get("neighbor_mac") is not None:
            return True
        return any(
            h.get("switch") == switch and _as_int(h.get("port")) == port and h.get("mac")
            for h in map(_mapping, hosts.values())
        )

    links = _items(data, "links")
    for i, link in links:
        for end in ("a", "b"):
            if isinstance(link.get(end), str):
                check_switch(f"links.{i}.{end}", link[end].partition(":")[0])
    for i, prefix in _items(data, "prefixes"):
        switch, port = prefix.get("switch"), _as_int(prefix.get("port"))
        check_switch(f"prefixes.{i}.switch", switch)
        if (
            isinstance(switch, str)
            and switch in switches
            and port is not None
            and not neighbor_known(switch, port)
        ):
            errors.append(
                f"prefixes.{i}.port: port {port} of {switch!r} has no "
                "neighbor_mac (set it under the switch's ports) and no host with a mac"
            )
    for name, host in hosts.items():
        check_switch(f"hosts.{name}.switch", _mapping(host).get("switch"))
    collector = _mapping(data.get("collector"))
    if isinstance(collector.get("attach"), str):
        check_switch("collector.attach", collector["attach"].partition(":")[0])
    for i, link in links:
        for end in ("a", "b"):
            switch, _, port_text = str(link.get(end, "")).partition(":")
            port = _as_int(port_text)
            if switch in switches and port is not None:
                role = port_of(switch, port).get("role", "core")
                if role != "core":
                    errors.append(f"links.{i}.{end}: port {port} of {switch!r} is {role}")
    known: dict[str, set[str]] = {}
    for kind, ref_field in (
        ("apn_policies", None),
        ("sr_policies", "sr_policy"),
        ("telemetry", "telemetry"),
        ("sketches", "sketch"),
        ("traffic_classes", "traffic_class"),
        ("tenants", None),
    ):
        seen: set[str] = set()
        for i, item in _items(data, kind):
            item_name = item.get("name")
            if not isinstance(item_name, str):
                continue
            if item_name in seen:
                errors.append(f"{kind}.{i}.name: {item_name!r} is defined twice")
            seen.add(item_name)
        if ref_field is not None:
            known[ref_field] = seen
    for i, policy in _items(data, "apn_policies"):
        for field, names in known.items():
            ref = policy.get(field)
            if isinstance(ref, str) and ref not in names:
                errors.append(f"apn_policies.{i}.{field}: unknown {field} {ref!r}")
    for i, sr in _items(data, "sr_policies"):
        for field in ("headend", "endpoint"):
            check_switch(f"sr_policies.{i}.{field}", sr.get(field))
        endpoint = sr.get("endpoint")
        endpoint_switch = _mapping(switches.get(endpoint)) if isinstance(endpoint, str) else None
        if endpoint_switch and endpoint_switch.get("decap_sid") is None:
            errors.append(f"sr_policies.{i}.endpoint: {endpoint!r} has no decap_sid")
    return errors


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(data: Mapping[str, Any], section: str) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, item) of a list section's items that are mappings."""
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


class IntentError(ValueError):
    """An intent file that cannot be used; ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def load_intent(path: Path) -> Intent:
    """Read and validate an intent file; raise IntentError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise IntentError([f"{path}: cannot read: {exc.strerror}"]) from exc
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise IntentError(
            [f"{path}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}"]
        ) from exc
    if not isinstance(data, dict):
        raise IntentError([f"{path}:1: the intent must be a mapping of sections"])
    try:
        intent = Intent.model_validate(data)
    except ValidationError as exc:
        problems = _describe(exc, root, path)
        if not any(_is_reference_error(e) for e in exc.errors()):
            # Field errors stop pydantic before the cross-reference validator runs; check
            # the references on the raw data so that one run reports everything.
            problems += [_located(path, root, line) for line in reference_errors(data)]
        prefix = f"{path}:"
        by_line = sorted(problems, key=lambda p: int(p.removeprefix(prefix).partition(":")[0]))
        raise IntentError(by_line) from exc
    if intent.tls is not None:
        intent = intent.model_copy(update={"tls": _resolve_tls(intent.tls, path, root)})
    key_file = intent.elephants.hash_key_file
    if key_file is not None and not key_file.is_absolute():
        elephants = intent.elephants.model_copy(update={"hash_key_file": path.parent / key_file})
        intent = intent.model_copy(update={"elephants": elephants})
    return intent


def locate(path: Path, where: str, message: str) -> str:
    """``file:line: field: message`` for a problem found after validation (``where`` is a
    dotted field path such as ``sr_policies.0``)."""
    try:
        root = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        root = None
    return _located(path, root, f"{where}: {message}")


def _resolve_tls(tls: TlsIntent, path: Path, root: yaml.Node | None) -> TlsIntent:
    """TLS file paths relative to the intent file, each checked to exist."""
    resolved: dict[str, Path | None] = {}
    problems = []
    for field in ("ca_cert", "cert", "key"):
        value: Path | None = getattr(tls, field)
        if value is not None:
            value = value if value.is_absolute() else path.parent / value
            if not value.is_file():
                line = _line_of(root, ("tls", field))
                problems.append(f"{path}:{line}: tls.{field}: no such file {value}")
        resolved[field] = value
    if problems:
        raise IntentError(problems)
    return tls.model_copy(update=resolved)


def _is_reference_error(error: Any) -> bool:
    """Whether a pydantic error is the cross-reference validator's (on the whole intent)."""
    return error["type"] == "value_error" and not error["loc"]


def _located(path: Path, root: yaml.Node | None, problem: str) -> str:
    """``file:line: where: message`` for a ``where: message`` reference problem."""
    where, _, message = problem.partition(": ")
    loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
    return f"{path}:{_line_of(root, loc)}: {where}: {message}"


def _describe(exc: ValidationError, root: yaml.Node | None, path: Path) -> list[str]:
    problems = []
    for error in exc.errors():
        messages = str(error["msg"]).removeprefix("Value error, ").split("\n")
        for message in messages:
            loc: tuple[Any, ...] = tuple(error["loc"])
            where, _, text = (
                message.partition(": ")
                if error["type"] == "value_error" and re.match(r"^[\w.]+: ", message)
                else ("", "", message)
            )
            if where:  # a cross-reference error names its own location
                loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
            line = _line_of(root, loc)
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append(f"{path}:{line}: {field}: {text or message}")
    return problems


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int:
    """1-based line of the deepest node the location reaches."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
