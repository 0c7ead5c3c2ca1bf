"""Traffic generators: RoCEv2 queue pairs sharing one 5-tuple, and TCP/UDP mice whose sizes
follow published data-centre workloads; unmarked, app-side APN6-marked, or as the WAN core
sees them after an SRv6 headend (H.Encaps with APN6 in the outer Hop-by-Hop header).

Every generator is lazy: it yields :class:`Frame` objects (a time, the Ethernet frame as
bytes, the flow it belongs to) in time order, holding only the flows that are active, so
traces of any length stream to a pcap (:func:`icpn.traffic.pcap.write_pcap`) or into the
fast sender (:mod:`icpn.traffic.sender`). Frames come from scapy templates built with
icpn's layers and patched per packet (:mod:`icpn.traffic.frames`).

RoCEv2 (InfiniBand Architecture Specification vol. 1, Annex A17; UDP destination port 4791)
between two hosts mostly shows few 5-tuples however many queue pairs (QPs) carry it
(DESIGN.md 2.6): :func:`roce_flows` gives every QP the *same* addresses and UDP ports and
lets only the BTH DestQP differ, the case that the APN-ID/DestQP deep hash spreads. Messages
are split in path-MTU packets as an RC RDMA WRITE (FIRST, MIDDLE.., LAST, or ONLY; RETH on
the first; IBA 9.4) or sent as UD SEND ONLY (one packet per message, DETH); payloads are
padded to 4 octets with the BTH PadCnt (IBA 9.3.1).

Mice (:func:`mice`): flow sizes drawn from :mod:`icpn.traffic.workloads` (web search of DCTCP,
SIGCOMM 2010; data mining of VL2, SIGCOMM 2009); flows arrive as a Poisson process whose rate
gives the requested mean load (arrival rate = load / mean flow size, the method of e.g.
pFabric, SIGCOMM 2013, section 5); each flow sends MSS-sized segments paced at its own rate.

Frames must fit the link they are sent on: :func:`mss_for_mtu` gives the mice's MSS from the
link MTU (IPv6 and TCP/UDP headers, the APN6 Hop-by-Hop header and an SRv6 encapsulation
included: 1440 for TCP over a 1500-octet MTU, RFC 8200 and RFC 9293 3.7.1), and
:func:`roce_max_frame_bytes` the largest RoCE frame. Ethernet addresses (:class:`L2`) are
the sending host's MAC and its gateway's (the router MAC of its switch) in a lab; the
defaults are locally administered placeholders no switch accepts as its own.
"""

from __future__ import annotations

import heapq
import itertools
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Literal

import numpy as np
from scapy.contrib.roce import BTH, opcode
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from icpn.constants import UDP_PORT_ROCEV2
from icpn.packets import APN6, DETH, RETH, ApnIdTemplate, h_encaps
from icpn.traffic import workloads
from icpn.traffic.frames import Template, TemplateCache, u24

#: Path MTUs InfiniBand defines (IBA 7.7.1): the RoCE payload per packet.
IB_MTUS = (256, 512, 1024, 2048, 4096)
ETH_HEADER_BYTES = 14
#: IPv6 links carry at least this (RFC 8200 section 5); Ethernet's usual MTU.
IPV6_MIN_MTU = 1280
ETHERNET_MTU = 1500
Transport = Literal["rc-write", "ud-send"]
L4 = Literal["tcp", "udp"]

_WRITE_FIRST = opcode("RC", "RDMA_WRITE_FIRST")[0]
_WRITE_MIDDLE = opcode("RC", "RDMA_WRITE_MIDDLE")[0]
_WRITE_LAST = opcode("RC", "RDMA_WRITE_LAST")[0]
_WRITE_ONLY = opcode("RC", "RDMA_WRITE_ONLY")[0]
_UD_SEND_ONLY = opcode("UD", "SEND_ONLY")[0]
_TCP_ACK, _TCP_PSH, _TCP_FIN = 0x10, 0x08, 0x01


@dataclass(frozen=True, slots=True)
class Frame:
    """One Ethernet frame: ``time`` in seconds from the start of the trace, ``flow`` the QP
    index (RoCE) or flow index (mice) it belongs to."""

    time: float
    data: bytes
    flow: int


@dataclass(frozen=True)
class L2:
    """Ethernet addresses of every frame: in a lab, the host's MAC and its gateway's."""

    src_mac: str = "02:00:00:00:00:01"
    dst_mac: str = "02:00:00:00:00:02"

    def __post_init__(self) -> None:
        for name in ("src_mac", "dst_mac"):
            value = getattr(self, name)
            parts = value.split(":")
            if len(parts) != 6 or not all(len(p) == 2 and _is_hex(p) for p in parts):
                raise ValueError(f"{name} {value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class ApnMark:
    """An APN6 mark (draft-li-apn-header) whose APN ID is composed by ``template`` from an
    APP-Group and a USER-Group ID. With ``user_group_per_flow`` flow *i* gets USER-Group
    ``user_group + i`` (e.g. one APN per QP); otherwise every flow carries the same ID."""

    app_group: int
    user_group: int = 0
    template: ApnIdTemplate = field(default_factory=ApnIdTemplate)
    user_group_per_flow: bool = False

    def __post_init__(self) -> None:
        self.template.compose(self.app_group, self.user_group)  # raises if it does not fit

    def apn_id(self, flow: int = 0) -> int:
        user = self.user_group + flow if self.user_group_per_flow else self.user_group
        return self.template.compose(self.app_group, user % (1 << self.template.user_bits))

    def option(self, flow: int = 0) -> APN6:
        return APN6(id_type=self.template.id_type, apn_id=self.apn_id(flow))


@dataclass(frozen=True)
class SrEncap:
    """Traffic as it leaves an SRv6 headend (RFC 8986 H.Encaps, or .Red): outer IPv6 from
    ``src`` along ``segments``; an :class:`ApnMark` then goes into the outer Hop-by-Hop header
    (network-side marking) and the inner packet stays untouched."""

    src: str
    segments: tuple[str, ...]
    reduced: bool = False
    flow_label: int = 0

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("SrEncap needs at least one segment")
        for addr in (self.src, *self.segments):
            IPv6Address(addr)


def _wrap(inner: Packet, l2: L2, apn: ApnMark | None, encap: SrEncap | None, flow: int) -> Packet:
    """Ether / inner, app-side marked, or encapsulated with the mark in the outer HBH."""
    if encap is not None:
        opts = [apn.option(flow)] if apn is not None else []
        outer = h_encaps(
            inner,
            src=encap.src,
            segments=encap.segments,
            hbh_options=opts,
            reduced=encap.reduced,
            flow_label=encap.flow_label,
        )
        framed: Packet = Ether(src=l2.src_mac, dst=l2.dst_mac) / outer
        return framed
    if apn is not None:
        ip = inner.getlayer(IPv6)
        if ip is None:
            raise ValueError("app-side APN6 marking needs an IPv6 packet")
        upper = ip.payload.copy()
        inner = ip.copy()
        inner.remove_payload()
        inner = inner / IPv6ExtHdrHopByHop(options=[apn.option(flow)]) / upper
    framed = Ether(src=l2.src_mac, dst=l2.dst_mac) / inner
    return framed


def _apn_patch(tpl: Template, apn: ApnMark | None, flow: int) -> tuple[int, bytes]:
    """The patch writing flow ``flow``'s APN ID into a template built for flow 0."""
    if apn is None or tpl.apn_id_at is None:
        raise ValueError("template carries no APN6 option to patch")
    off, width = tpl.apn_id_at
    return off, apn.apn_id(flow).to_bytes(width, "big")


def _check_addr(name: str, value: str) -> None:
    try:
        IPv6Address(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {value!r} is not an IPv6 address") from exc


# --- RoCEv2 ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoceSpec:
    """Many QPs over one 5-tuple. ``qp_rate_gbps`` is each QP's rate in Gbit/s of Ethernet
    frame bytes; QPs start at random offsets within one packet time (``seed``)."""

    src: str = "2001:db8:1::10"
    dst: str = "2001:db8:2::10"
    qps: int = 16
    dest_qp_base: int = 0x100
    dest_qp_stride: int = 1
    sport: int = UDP_PORT_ROCEV2
    transport: Transport = "rc-write"
    mtu: int = 1024
    message_bytes: int = 65536
    messages_per_qp: int = 4
    qp_rate_gbps: float = 1.0
    tc: int = 0
    apn: ApnMark | None = None
    encap: SrEncap | None = None
    l2: L2 = field(default_factory=L2)
    seed: int = 0

    def __post_init__(self) -> None:
        _check_addr("src", self.src)
        _check_addr("dst", self.dst)
        if not 1 <= self.qps <= 1 << 16:
            raise ValueError(f"qps must be in 1..65536, not {self.qps}")
        if self.dest_qp_stride < 1:
            raise ValueError("dest_qp_stride must be >= 1")
        if self.dest_qp_base < 0 or self.dest_qp(self.qps - 1) >= 1 << 24:
            raise ValueError("DestQPs base + i*stride must fit 24 bits for every QP")
        if not 0 <= self.sport <= 0xFFFF:
            raise ValueError(f"sport {self.sport} is not a UDP port")
        if self.transport not in ("rc-write", "ud-send"):
            raise ValueError(f"transport must be rc-write or ud-send, not {self.transport!r}")
        if self.mtu not in IB_MTUS:
            raise ValueError(f"mtu must be an InfiniBand path MTU {IB_MTUS}, not {self.mtu}")
        if self.message_bytes < 1:
            raise ValueError("message_bytes must be >= 1")
        if self.transport == "ud-send" and self.message_bytes > self.mtu:
            raise ValueError(f"a UD message fits one packet: message_bytes <= mtu ({self.mtu})")
        if self.messages_per_qp < 1:
            raise ValueError("messages_per_qp must be >= 1")
        if not (0 < self.qp_rate_gbps < math.inf):
            raise ValueError("qp_rate_gbps must be > 0 and finite")

    def dest_qp(self, qp: int) -> int:
        return self.dest_qp_base + qp * self.dest_qp_stride

    @property
    def packets_per_message(self) -> int:
        return -(-self.message_bytes // self.mtu)

    @property
    def total_packets(self) -> int:
        return self.qps * self.messages_per_qp * self.packets_per_message


def _rc_opcode(index: int, count: int) -> int:
    if count == 1:
        return _WRITE_ONLY
    if index == 0:
        return _WRITE_FIRST
    return _WRITE_LAST if index == count - 1 else _WRITE_MIDDLE


Key = tuple[int, int]  #: (opcode or TCP flags, payload length): a template's shape


def _roce_builder(spec: RoceSpec) -> TemplateCache[Key]:
    def build(key: Key) -> Packet:
        op, length = key
        pad = (-length) % 4
        ack = int(op in (_WRITE_LAST, _WRITE_ONLY, _UD_SEND_ONLY))
        bth = BTH(opcode=op, padcount=pad, dqpn=0, psn=0, ackreq=ack, icrc=0)
        ext: Packet
        if op == _UD_SEND_ONLY:
            ext = bth / DETH(qkey=0x11111111, src_qp=0)
        elif op in (_WRITE_FIRST, _WRITE_ONLY):
            ext = bth / RETH(va=0x1000, rkey=0x1234, dma_len=spec.message_bytes)
        else:
            ext = bth
        inner = (
            IPv6(src=spec.src, dst=spec.dst, tc=spec.tc)
            / UDP(sport=spec.sport, dport=UDP_PORT_ROCEV2)
            / ext
            / Raw(b"\x00" * (length + pad))  # the BTH's ICRC field goes after it
        )
        return _wrap(inner, spec.l2, spec.apn, spec.encap, 0)  # flow 0; APN ID patched

    return TemplateCache(build)


def roce_flows(spec: RoceSpec) -> Iterator[Frame]:
    """All packets of ``spec`` in time order (a lazy merge of the QPs' packet streams)."""
    cache = _roce_builder(spec)
    rng = np.random.default_rng(spec.seed)
    offsets = rng.random(spec.qps)
    apn_per_flow = spec.apn is not None and spec.apn.user_group_per_flow

    def qp_stream(qp: int) -> Iterator[Frame]:
        dqpn = u24(spec.dest_qp(qp))
        t: float | None = None
        psn = 0
        per_msg = spec.packets_per_message
        for _msg in range(spec.messages_per_qp):
            for k in range(per_msg):
                length = min(spec.mtu, spec.message_bytes - k * spec.mtu)
                op = _UD_SEND_ONLY if spec.transport == "ud-send" else _rc_opcode(k, per_msg)
                tpl = cache.get((op, length))
                patches = [(tpl.dest_qp_off, dqpn), (tpl.psn_off, u24(psn % (1 << 24)))]
                if apn_per_flow:
                    patches.append(_apn_patch(tpl, spec.apn, qp))
                if op == _UD_SEND_ONLY:  # DETH source QP: the sender's QP, same number
                    patches.append((tpl.psn_off + 3 + 5, dqpn))
                data = tpl.render(tuple(patches))
                gap = len(data) * 8 / (spec.qp_rate_gbps * 1e9)
                if t is None:
                    t = float(offsets[qp]) * gap
                yield Frame(t, data, qp)
                t += gap
                psn += 1

    return heapq.merge(*(qp_stream(q) for q in range(spec.qps)), key=lambda f: f.time)


# --- mice ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MiceSpec:
    """``flows`` TCP or UDP flows between the given hosts (chosen uniformly per flow), sizes
    from ``workload``, Poisson arrivals at ``load_gbps`` of mean offered load, each flow's
    segments paced at ``flow_rate_gbps``. ``max_flow_bytes`` caps sizes (and so changes
    the distribution: say so when you use it)."""

    workload: workloads.Workload | str = "web-search"
    flows: int = 1000
    protocol: L4 = "tcp"
    sources: tuple[str, ...] = ("2001:db8:1::10",)
    destinations: tuple[str, ...] = ("2001:db8:2::10",)
    dport: int = 5001
    mss: int = workloads.MSS_BYTES
    #: The link MTU the frames must fit (None: not checked); see :func:`mss_for_mtu`.
    mtu: int | None = None
    load_gbps: float = 1.0
    flow_rate_gbps: float = 10.0
    max_flow_bytes: int | None = None
    apn: ApnMark | None = None
    encap: SrEncap | None = None
    l2: L2 = field(default_factory=L2)
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.workload, str):
            workloads.get_workload(self.workload)
        if not 1 <= self.flows <= 10_000_000:
            raise ValueError(f"flows must be in 1..10,000,000, not {self.flows}")
        if self.protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {self.protocol!r}")
        if not self.sources or not self.destinations:
            raise ValueError("need at least one source and one destination")
        for addr in (*self.sources, *self.destinations):
            _check_addr("host", addr)
        if not 0 <= self.dport <= 0xFFFF:
            raise ValueError(f"dport {self.dport} is not a port")
        if not 1 <= self.mss <= 9000:
            raise ValueError(f"mss must be in 1..9000, not {self.mss}")
        if self.mtu is not None:
            overhead = mice_overhead(self.protocol, self.apn, self.encap)
            if self.mss + overhead > self.mtu:
                raise ValueError(
                    f"mss {self.mss} + {overhead} octets of headers exceed the MTU {self.mtu}: "
                    f"at most {self.mtu - overhead}"
                )
        for name in ("load_gbps", "flow_rate_gbps"):
            value = getattr(self, name)
            if not (0 < value < math.inf):
                raise ValueError(f"{name} must be > 0 and finite")
        if self.max_flow_bytes is not None and self.max_flow_bytes < 1:
            raise ValueError("max_flow_bytes must be >= 1")


@dataclass(frozen=True)
class MicePlan:
    """What :func:`mice` will send: per flow its start time (s), size (bytes), hosts."""

    arrivals: np.ndarray
    sizes: np.ndarray
    src_index: np.ndarray
    dst_index: np.ndarray
    mean_flow_bytes: float
    arrival_rate_per_s: float


def mice_overhead(protocol: L4, apn: ApnMark | None = None, encap: SrEncap | None = None) -> int:
    """Octets of a mice packet besides its payload, the Ethernet header excluded: IPv6, the
    TCP (20, no options) or UDP (8) header, an app-side APN6 Hop-by-Hop header or an SRv6
    encapsulation with its own."""
    l4: Packet = TCP(flags=_TCP_ACK) if protocol == "tcp" else UDP()
    frame = _wrap(IPv6(src="::1", dst="::1") / l4, L2(), apn, encap, 0)
    return len(bytes(frame)) - ETH_HEADER_BYTES


def mss_for_mtu(
    mtu: int, protocol: L4 = "tcp", apn: ApnMark | None = None, encap: SrEncap | None = None
) -> int:
    """The largest payload per packet whose frame fits a link of ``mtu`` octets (the MSS a
    TCP stack would announce there, RFC 9293 3.7.1, less what marking adds)."""
    if not IPV6_MIN_MTU <= mtu <= 65535:
        raise ValueError(f"mtu must be in {IPV6_MIN_MTU}..65535 (RFC 8200 5), not {mtu}")
    return mtu - mice_overhead(protocol, apn, encap)


def roce_max_frame_bytes(spec: RoceSpec) -> int:
    """The largest frame :func:`roce_flows` writes for ``spec``: one message's packets
    include a full path-MTU one whenever a message is that long."""
    first = itertools.islice(roce_flows(spec), spec.packets_per_message)
    return max(len(frame.data) for frame in first)


def plan_mice(spec: MiceSpec) -> MicePlan:
    rng = np.random.default_rng(spec.seed)
    sizes = workloads.sample_flow_sizes(spec.workload, spec.flows, rng)
    if spec.max_flow_bytes is not None:
        sizes = np.minimum(sizes, spec.max_flow_bytes)
        mean = float(np.mean(sizes))
    else:
        mean = workloads.mean_flow_size(spec.workload)
    rate = spec.load_gbps * 1e9 / (8 * mean)
    arrivals = np.cumsum(rng.exponential(1.0 / rate, spec.flows))
    return MicePlan(
        arrivals=arrivals,
        sizes=sizes,
        src_index=rng.integers(0, len(spec.sources), spec.flows),
        dst_index=rng.integers(0, len(spec.destinations), spec.flows),
        mean_flow_bytes=mean,
        arrival_rate_per_s=rate,
    )


def _mice_builder(spec: MiceSpec) -> TemplateCache[Key]:
    src, dst = spec.sources[0], spec.destinations[0]

    def build(key: Key) -> Packet:
        flags, length = key
        l4: Packet
        if spec.protocol == "tcp":
            l4 = TCP(sport=49152, dport=spec.dport, seq=0, ack=1, flags=flags)
        else:
            l4 = UDP(sport=49152, dport=spec.dport)
        inner = IPv6(src=src, dst=dst) / l4 / Raw(b"\x00" * length)
        return _wrap(inner, spec.l2, spec.apn, spec.encap, 0)  # flow 0; APN ID patched

    return TemplateCache(build)


def mice(spec: MiceSpec, plan: MicePlan | None = None) -> Iterator[Frame]:
    """All packets of the mice in time order; ``plan`` defaults to :func:`plan_mice`."""
    plan = plan if plan is not None else plan_mice(spec)
    cache = _mice_builder(spec)
    src_b = [IPv6Address(a).packed for a in spec.sources]
    dst_b = [IPv6Address(a).packed for a in spec.destinations]
    isn = np.random.default_rng(spec.seed + 1).integers(0, 1 << 32, spec.flows, dtype=np.uint64)
    apn_per_flow = spec.apn is not None and spec.apn.user_group_per_flow
    n = spec.flows
    # heap of (time, flow, bytes sent so far); at most the concurrently active flows
    heap: list[tuple[float, int, int]] = []
    nxt = 0
    bound = n + int(np.sum(-(-plan.sizes // spec.mss))) + 1
    for _ in range(bound):
        if nxt < n and (not heap or plan.arrivals[nxt] <= heap[0][0]):
            heapq.heappush(heap, (float(plan.arrivals[nxt]), nxt, 0))
            nxt += 1
            continue
        if not heap:
            return
        t, f, done = heapq.heappop(heap)
        size = int(plan.sizes[f])
        length = min(spec.mss, size - done)
        last = done + length >= size
        flags = _TCP_ACK | ((_TCP_PSH | _TCP_FIN) if last else 0)
        tpl = cache.get((flags if spec.protocol == "tcp" else 0, length))
        patches = [
            (tpl.src_ip_off, src_b[int(plan.src_index[f])]),
            (tpl.dst_ip_off, dst_b[int(plan.dst_index[f])]),
            (tpl.sport_off, struct.pack("!H", 49152 + f % 16384)),
        ]
        if spec.protocol == "tcp":
            patches.append((tpl.tcp_seq_off, struct.pack("!I", (int(isn[f]) + done) & 0xFFFFFFFF)))
        if apn_per_flow:
            patches.append(_apn_patch(tpl, spec.apn, f))
        data = tpl.render(tuple(patches))
        yield Frame(t, data, f)
        if not last:
            heapq.heappush(
                heap, (t + len(data) * 8 / (spec.flow_rate_gbps * 1e9), f, done + length)
            )
    raise RuntimeError("mice: scheduling loop exceeded its bound (a bug)")
