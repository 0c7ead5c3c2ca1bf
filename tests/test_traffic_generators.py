"""icpn.traffic generators, frames and pcap: RoCE QPs on one 5-tuple, mice sized by the
published workloads, APN6 marking (app side, network side), bit-exact frames, pcap round trip."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from scapy.contrib.roce import BTH, opcode
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import rdpcap

from icpn.constants import UDP_PORT_ROCEV2, ApnIdType
from icpn.packets import APN6, DETH, RETH, ApnIdTemplate, inner_packet, rocev2_write
from icpn.traffic import workloads
from icpn.traffic.frames import Template, ones_sum, roce_icrc
from icpn.traffic.generators import (
    ApnMark,
    Frame,
    MiceSpec,
    RoceSpec,
    SrEncap,
    mice,
    plan_mice,
    roce_flows,
)
from icpn.traffic.pcap import read_frames, write_pcap

SRC, DST = "2001:db8:1::10", "2001:db8:2::10"


def rebuilt(data: bytes) -> bytes:
    """The frame rebuilt by scapy with every checksum and the ICRC recomputed (scapy cannot
    compute an ICRC with a Hop-by-Hop header before UDP: there the frame's is kept)."""
    pkt = Ether(data)
    if pkt.haslayer(BTH) and not isinstance(pkt[UDP].underlayer, IPv6ExtHdrHopByHop):
        pkt[BTH].icrc = None
    for layer in (UDP, TCP):
        if pkt.haslayer(layer):
            del pkt[layer].chksum
    return bytes(pkt)


def roce(**kw: object) -> list[Frame]:
    return list(roce_flows(RoceSpec(**kw)))  # type: ignore[arg-type]


# --- RoCEv2 ----------------------------------------------------------------------------------


def test_many_qps_share_one_five_tuple_and_differ_only_in_dest_qp() -> None:
    frames = roce(qps=32, message_bytes=2048, messages_per_qp=2, mtu=1024, dest_qp_stride=3)
    assert len(frames) == 32 * 2 * 2
    tuples = set()
    qps = defaultdict(set)
    for f in frames:
        p = Ether(f.data)
        tuples.add((p[IPv6].src, p[IPv6].dst, p[IPv6].nh, p[UDP].sport, p[UDP].dport))
        qps[f.flow].add(p[BTH].dqpn)
    assert tuples == {(SRC, DST, 17, UDP_PORT_ROCEV2, UDP_PORT_ROCEV2)}
    assert len(qps) == 32
    assert all(len(v) == 1 for v in qps.values()), "a QP keeps its DestQP"
    assert sorted(next(iter(v)) for v in qps.values()) == [0x100 + 3 * i for i in range(32)]


def test_rc_write_messages_are_split_per_mtu_with_psn_opcodes_and_padding() -> None:
    frames = roce(qps=2, mtu=256, message_bytes=600, messages_per_qp=2)  # 256 + 256 + 88
    per_qp = [[Ether(f.data) for f in frames if f.flow == q] for q in range(2)]
    names = [opcode("RC", n)[0] for n in ("RDMA_WRITE_FIRST", "RDMA_WRITE_MIDDLE")]
    first, middle, last = (*names, opcode("RC", "RDMA_WRITE_LAST")[0])
    for pkts in per_qp:
        assert [p[BTH].psn for p in pkts] == list(range(6))
        assert [p[BTH].opcode for p in pkts] == [first, middle, last] * 2
        assert [p[BTH].ackreq for p in pkts] == [0, 0, 1] * 2
        assert pkts[0][RETH].dma_len == 600 and not pkts[1].haslayer(RETH)
        assert len(pkts[2][Raw].load) == 88  # 600 - 2*256, a multiple of 4: no pad
        assert pkts[2][BTH].padcount == 0
    odd = Ether(roce(qps=1, mtu=256, message_bytes=257, messages_per_qp=1)[1].data)
    assert odd[BTH].padcount == 3 and len(odd[Raw].load) == 1 + 3


def test_every_frame_is_bit_exact_with_scapy_including_icrc_and_checksum() -> None:
    frames = roce(qps=5, mtu=512, message_bytes=1500, messages_per_qp=3, dest_qp_base=0xFFF0)
    for f in frames:
        assert f.data == rebuilt(f.data)


def test_single_packet_write_equals_the_project_builder() -> None:
    (f,) = roce(qps=1, mtu=256, message_bytes=64, messages_per_qp=1, dest_qp_base=0x42)
    ours = Ether(f.data)
    ref = Ether(src=ours.src, dst=ours.dst) / rocev2_write(
        SRC, DST, 0x42, sport=UDP_PORT_ROCEV2, payload=b"\x00" * 64
    )
    assert f.data == bytes(ref)


def test_ud_send_carries_deth_with_the_qp_and_refuses_multi_packet_messages() -> None:
    frames = roce(qps=3, transport="ud-send", mtu=1024, message_bytes=1000, messages_per_qp=2)
    for f in frames:
        p = Ether(f.data)
        assert p[BTH].opcode == opcode("UD", "SEND_ONLY")[0]
        assert p[DETH].src_qp == p[BTH].dqpn == 0x100 + f.flow
        assert f.data == rebuilt(f.data)
    with pytest.raises(ValueError, match="UD message fits one packet"):
        RoceSpec(transport="ud-send", mtu=1024, message_bytes=1025)


def test_frames_are_in_time_order_and_each_qp_keeps_its_rate() -> None:
    spec = RoceSpec(qps=8, mtu=1024, message_bytes=4096, messages_per_qp=5, qp_rate_gbps=2.5)
    frames = list(roce_flows(spec))
    times = [f.time for f in frames]
    assert times == sorted(times)
    for q in range(8):
        own = [f for f in frames if f.flow == q]
        gaps = np.diff([f.time for f in own])
        expected = np.array([len(f.data) * 8 / 2.5e9 for f in own[:-1]])
        assert np.allclose(gaps, expected, rtol=1e-9)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"mtu": 1000}, "path MTU"),
        ({"qps": 0}, "qps"),
        ({"dest_qp_base": (1 << 24) - 2, "qps": 4}, "24 bits"),
        ({"src": "10.0.0.1"}, "not an IPv6 address"),
        ({"qp_rate_gbps": 0.0}, "qp_rate_gbps"),
        ({"transport": "rc-read"}, "transport"),
    ],
)
def test_bad_roce_specs_say_why(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RoceSpec(**kw)  # type: ignore[arg-type]


# --- APN6 marking ----------------------------------------------------------------------------


def test_unmarked_traffic_has_no_hop_by_hop_header() -> None:
    for f in roce(qps=2, messages_per_qp=1):
        assert not Ether(f.data).haslayer(IPv6ExtHdrHopByHop)


def test_app_side_mark_is_an_apn6_option_per_qp_and_keeps_the_icrc() -> None:
    tpl = ApnIdTemplate(ApnIdType.ID32, app_bits=16, user_bits=16)
    mark = ApnMark(app_group=7, user_group=100, template=tpl, user_group_per_flow=True)
    kw: dict[str, object] = {"qps": 4, "mtu": 256, "message_bytes": 256, "messages_per_qp": 1}
    marked, plain = roce(apn=mark, **kw), roce(**kw)
    for m, u in zip(marked, plain, strict=True):
        p = Ether(m.data)
        opt = p[IPv6ExtHdrHopByHop].options[0]
        assert isinstance(opt, APN6)
        assert opt.apn_id == tpl.compose(7, 100 + m.flow)
        assert tpl.split(opt.apn_id) == (7, 100 + m.flow)
        assert p[BTH].dqpn == 0x100 + m.flow
        assert m.data[-4:] == u.data[-4:], "the ICRC is the unmarked packet's"
        assert m.data[-4:] == roce_icrc(u.data, 14, 14 + 40)
        assert p[IPv6ExtHdrHopByHop].nh == 17 and p[UDP].dport == UDP_PORT_ROCEV2
        assert m.data == rebuilt(m.data), "UDP checksum over the marked packet"


def test_one_apn_id_for_all_flows_without_per_flow() -> None:
    ids = {Ether(f.data)[APN6].apn_id for f in roce(qps=6, messages_per_qp=1, apn=ApnMark(3, 9))}
    assert ids == {ApnIdTemplate().compose(3, 9)}


def test_network_side_encapsulation_puts_apn6_in_the_outer_header_only() -> None:
    encap = SrEncap("2001:db8:ff::1", ("2001:db8:a::1", "2001:db8:b::1"))
    kw: dict[str, object] = {"qps": 3, "mtu": 256, "message_bytes": 256, "messages_per_qp": 1}
    wrapped, plain = roce(encap=encap, apn=ApnMark(5), **kw), roce(**kw)
    for w, u in zip(wrapped, plain, strict=True):
        p = Ether(w.data)
        assert p[IPv6].src == "2001:db8:ff::1" and p[IPv6].dst == "2001:db8:a::1"
        assert p[IPv6ExtHdrHopByHop].options[0].apn_id == ApnIdTemplate().compose(5)
        assert p[IPv6ExtHdrSegmentRouting].segleft == 1
        assert bytes(inner_packet(p)) == u.data[14:], "the inner RoCE packet is untouched"


# --- mice ------------------------------------------------------------------------------------


def test_planned_sizes_follow_the_workload_cdf() -> None:
    """Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2), here < 1e-4."""
    n, eps = 20_000, 0.016
    for name in ("web-search", "data-mining"):
        plan = plan_mice(MiceSpec(workload=name, flows=n, seed=11))
        w = workloads.get_workload(name)
        grid = np.unique(np.concatenate([w.sizes, np.geomspace(w.sizes[0], w.sizes[-1], 200)]))
        empirical = np.searchsorted(np.sort(plan.sizes), grid, side="right") / n
        assert np.max(np.abs(empirical - w.cdf_at(grid))) < eps, name


def test_arrivals_give_the_requested_load() -> None:
    spec = MiceSpec(workload="web-search", flows=20_000, load_gbps=4.0, seed=3)
    plan = plan_mice(spec)
    assert plan.mean_flow_bytes == pytest.approx(workloads.mean_flow_size("web-search"))
    assert plan.arrival_rate_per_s * plan.mean_flow_bytes * 8 == pytest.approx(4e9)
    gaps = np.diff(plan.arrivals)
    assert np.all(gaps >= 0)
    # exponential gaps: the standard error of their mean is 1/sqrt(n) = 0.7 % of it
    assert np.mean(gaps) == pytest.approx(1 / plan.arrival_rate_per_s, rel=0.05)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_mice_packets_add_up_to_the_planned_flow_sizes(protocol: str) -> None:
    spec = MiceSpec(
        workload="data-mining",
        flows=150,
        protocol=protocol,  # type: ignore[arg-type]
        sources=(SRC, "2001:db8:1::11"),
        destinations=(DST, "2001:db8:2::11", "2001:db8:2::12"),
        max_flow_bytes=40_000,
        load_gbps=5.0,
        seed=5,
    )
    plan = plan_mice(spec)
    got: Counter[int] = Counter()
    tuples: dict[int, set[tuple[str, str, int, int]]] = defaultdict(set)
    seqs: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    frames = list(mice(spec, plan))
    assert [f.time for f in frames] == sorted(f.time for f in frames)
    for f in frames:
        p = Ether(f.data)
        l4 = p[TCP] if protocol == "tcp" else p[UDP]
        load = len(l4.payload)
        got[f.flow] += load
        assert load <= spec.mss
        tuples[f.flow].add((p[IPv6].src, p[IPv6].dst, l4.sport, l4.dport))
        if protocol == "tcp":
            seqs[f.flow].append((l4.seq, load, int(l4.flags)))
        assert f.data == rebuilt(f.data)
    assert dict(got) == {i: int(s) for i, s in enumerate(plan.sizes)}
    assert all(len(t) == 1 for t in tuples.values()), "one 5-tuple per flow"
    sports = [next(iter(t))[2] for _, t in sorted(tuples.items())]
    assert len(set(sports)) == len(sports)
    hosts = {next(iter(t))[:2] for t in tuples.values()}
    assert len(hosts) > 1
    for segs in seqs.values():
        for (s0, l0, _), (s1, _, _) in itertools.pairwise(segs):
            assert s1 == (s0 + l0) % (1 << 32)
        assert segs[-1][2] & 0x01 and not any(fl & 0x01 for _, _, fl in segs[:-1]), "FIN last"


def test_mice_can_be_app_side_marked() -> None:
    spec = MiceSpec(flows=5, max_flow_bytes=3000, apn=ApnMark(2, 1, user_group_per_flow=True))
    for f in mice(spec):
        p = Ether(f.data)
        assert p[APN6].apn_id == ApnIdTemplate().compose(2, 1 + f.flow)
        assert p[IPv6ExtHdrHopByHop].nh == 6
        assert f.data == rebuilt(f.data)


def test_bad_mice_specs_say_why() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        MiceSpec(workload="cache-follower")
    with pytest.raises(ValueError, match="flows"):
        MiceSpec(flows=0)
    with pytest.raises(ValueError, match="load_gbps"):
        MiceSpec(load_gbps=float("nan"))
    with pytest.raises(ValueError, match="protocol"):
        MiceSpec(protocol="sctp")  # type: ignore[arg-type]


# --- frames and pcap -------------------------------------------------------------------------


def test_ones_sum_matches_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded)
    assert ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert ones_sum(b"\x01") == 0x0100


def test_template_needs_a_transport_header() -> None:
    with pytest.raises(ValueError, match="TCP or UDP"):
        Template.of(Ether() / IPv6(src=SRC, dst=DST))


def test_pcap_round_trip_keeps_bytes_and_times(tmp_path: Path) -> None:
    frames = roce(qps=4, mtu=256, message_bytes=512, messages_per_qp=2)
    summary = write_pcap(iter(frames), tmp_path / "sub" / "t.pcap", epoch=1_700_000_000.0)
    assert summary.packets == len(frames) == 16
    assert summary.bytes == sum(len(f.data) for f in frames)
    back = rdpcap(str(tmp_path / "sub" / "t.pcap"))
    assert [bytes(p) for p in back] == [f.data for f in frames]
    for p, f in zip(back, frames, strict=True):
        assert float(p.time) == pytest.approx(1_700_000_000.0 + f.time, abs=2e-9)
        assert p[BTH].dqpn == 0x100 + f.flow
    assert list(read_frames(tmp_path / "sub" / "t.pcap", limit=3)) == [f.data for f in frames[:3]]


def test_pcap_limit_and_empty_trace(tmp_path: Path) -> None:
    gen = roce_flows(RoceSpec(qps=64, messages_per_qp=1000))  # 4M packets if drained
    assert write_pcap(gen, tmp_path / "a.pcap", limit=10).packets == 10
    assert len(rdpcap(str(tmp_path / "a.pcap"))) == 10
    assert write_pcap(iter(()), tmp_path / "e.pcap").packets == 0
    assert len(rdpcap(str(tmp_path / "e.pcap"))) == 0
    with pytest.raises(ValueError, match="limit"):
        write_pcap(iter(()), tmp_path / "x.pcap", limit=-1)


@pytest.mark.parametrize("id_type", list(ApnIdType))
def test_per_flow_apn_ids_of_every_width_app_or_network_side(id_type: ApnIdType) -> None:
    tpl = ApnIdTemplate(id_type, app_bits=16, user_bits=16)
    mark = ApnMark(0xBEEF, 5, template=tpl, user_group_per_flow=True)
    kw: dict[str, object] = {"qps": 3, "mtu": 256, "message_bytes": 256, "messages_per_qp": 2}
    for encap in (None, SrEncap("2001:db8:ff::1", ("2001:db8:a::1",))):
        frames = roce(apn=mark, encap=encap, **kw)
        assert len(frames) == 6
        for f in frames:
            p = Ether(f.data)
            assert p[APN6].id_type == id_type
            assert p[APN6].apn_id == tpl.compose(0xBEEF, 5 + f.flow)
            assert f.data == rebuilt(f.data)
