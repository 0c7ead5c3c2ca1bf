"""icpn.packets: byte-exact against DESIGN.md section 2, round trips, alignment, errors."""

from __future__ import annotations

import pytest
from scapy.compat import raw
from scapy.contrib.roce import BTH
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrSegmentRouting, PadN
from scapy.packet import Raw

from icpn.constants import APN6_OPT_TYPE, ApnIdType
from icpn.packets import (
    APN6,
    DETH,
    IOAM,
    RETH,
    AltMark,
    ApnIdTemplate,
    IOAMDex,
    IOAMNode,
    IOAMTrace,
    TraceTypeError,
    h_encaps,
    inner_packet,
    node_len_words,
    preallocated_trace,
    rocev2_ud_send,
    rocev2_write,
)


def hbh(*options: object) -> bytes:
    return raw(IPv6ExtHdrHopByHop(nh=59, options=list(options)))


# -- DESIGN.md 2.2 and 2.3 examples, byte for byte
def test_apn6_32bit_in_hbh_matches_the_design_example() -> None:
    # "3b 01 | 13 08 | 01 00 00 00 | <ID32> | 01 02 00 00" (16 octets)
    # (with the configured APN6 type in place of the default 13)
    expected = (
        bytes.fromhex("3b01")
        + bytes([APN6_OPT_TYPE, 8])
        + bytes.fromhex("01000000 a1b2c3d4 01020000")
    )
    assert hbh(APN6(apn_id=0xA1B2C3D4)) == expected


def test_minimal_altmark_hbh_matches_the_design_example() -> None:
    # "3b 00 12 04 <4 bytes>": FlowMonID (20) | L | D | reserved (10)
    assert hbh(AltMark(flow_mon_id=0xFFFFF, L=1, D=0)) == bytes.fromhex("3b00 1204 fffff800")
    assert hbh(AltMark(flow_mon_id=1, L=0, D=1)) == bytes.fromhex("3b00 1204 00001400")


@pytest.mark.parametrize(
    ("id_type", "apn_id", "optlen"),
    [
        (ApnIdType.ID32, 0x12345678, 8),
        (ApnIdType.ID64, 0x1122334455667788, 12),
        (ApnIdType.ID128, (1 << 127) | 0xABC, 20),
    ],
)
def test_apn6_id_widths_and_data_length(id_type: ApnIdType, apn_id: int, optlen: int) -> None:
    wire = hbh(APN6(id_type=id_type, apn_id=apn_id))
    assert wire[2:4] == bytes([APN6_OPT_TYPE, optlen])
    assert len(wire) % 8 == 0
    assert int.from_bytes(wire[8 : 8 + optlen - 4], "big") == apn_id
    back = IPv6ExtHdrHopByHop(wire)
    assert back[APN6].apn_id == apn_id and back[APN6].id_type == id_type


def test_apn6_header_starts_4_aligned_after_any_preceding_option() -> None:
    wire = hbh(AltMark(flow_mon_id=3), APN6(apn_id=9))
    apn_at = wire.index(bytes([APN6_OPT_TYPE, 8]))
    assert apn_at % 4 == 2  # 4n+2: the APN header (after type and length) is 4-aligned
    assert wire[apn_at - 2 : apn_at] == bytes.fromhex("0100")  # PadN, zero length


# -- IOAM (DESIGN.md 2.4)
def test_ioam_option_is_4n_aligned_with_a_zero_length_padn_first() -> None:
    wire = hbh(IOAM(data=preallocated_trace(0x800000, 2)))
    assert wire[2:4] == bytes.fromhex("0100")  # PadN of length 0
    assert wire[4] == 0x31  # option type at offset 4: 4n-aligned
    assert wire[6:8] == bytes.fromhex("0000")  # reserved, IOAM-Opt-Type 0 (pre-allocated)
    after_altmark = hbh(AltMark(), IOAM(data=preallocated_trace(0x800000, 2)))
    assert after_altmark.index(0x31) % 4 == 0


def test_ioam_trace_header_fields() -> None:
    trace = preallocated_trace(0xC00000, max_nodes=3, namespace_id=0x1234)
    wire = raw(trace)
    assert wire[:2] == bytes.fromhex("1234")
    flags_word = int.from_bytes(wire[2:4], "big")
    assert flags_word >> 11 == 2  # NodeLen: two 4-octet words
    assert flags_word & 0x7F == 6  # RemainingLen: 3 nodes x 2 words, all free
    assert wire[4:7] == bytes.fromhex("c00000") and wire[7] == 0
    assert len(wire) == 8 + 3 * 8


def test_first_node_fills_the_end_and_nodes_read_back_in_path_order() -> None:
    hops = [
        IOAMNode(hop_lim=64 - i, node_id=i + 1, ingress_if=i, egress_if=i + 10) for i in range(3)
    ]
    trace = preallocated_trace(0xC00000, max_nodes=4, nodes=hops)
    wire = raw(trace)
    # the first node's data sits in the last 8 octets
    assert wire[-8:] == bytes([64]) + (1).to_bytes(3, "big") + (0).to_bytes(2, "big") + (
        10
    ).to_bytes(2, "big")
    assert IOAMTrace(wire).remlen == 2
    assert IOAMTrace(wire).nodes() == hops


@pytest.mark.parametrize(
    ("trace_type", "words"),
    # RFC 9197 4.4.1: eight 4-octet fields (bits 0-7), three 8-octet (8-10), one 4-octet (11)
    [(0x800000, 1), (0xF00000, 4), (0xFF0000, 8), (0x008000, 2), (0xFFF000, 8 + 6 + 1)],
)
def test_node_len_follows_the_trace_type(trace_type: int, words: int) -> None:
    assert node_len_words(trace_type) == words


def test_unsupported_trace_bits_are_refused() -> None:
    with pytest.raises(TraceTypeError, match="0x000002"):
        node_len_words(0x800002)  # opaque state snapshot: variable length


def test_missing_node_fields_are_all_ones_both_ways() -> None:
    node = IOAMNode(hop_lim=5, node_id=7)  # no queue depth available
    data = node.encode(0x820000)
    assert data[4:8] == b"\xff\xff\xff\xff"
    assert IOAMNode.decode(0x820000, data).queue_depth is None
    assert IOAMNode.decode(0x820000, data).supplied() == {"hop_lim": 5, "node_id": 7}


def test_node_field_overflow_is_an_error() -> None:
    with pytest.raises(ValueError, match="node_id"):
        IOAMNode(hop_lim=1, node_id=1 << 24).encode(0x800000)


def test_too_many_nodes_for_the_preallocation() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        preallocated_trace(0x800000, 1, nodes=[IOAMNode(hop_lim=1, node_id=1)] * 2)


def test_dex_optional_fields_follow_extension_flags() -> None:
    bare = IOAM(ioam_type=4, data=IOAMDex(namespace_id=1, trace_type=0x800000))
    full = IOAM(
        ioam_type=4,
        data=IOAMDex(
            namespace_id=1, ext_flags=0xC0, trace_type=0x800000, flow_id=0xAABBCCDD, sequence=7
        ),
    )
    assert len(raw(bare)) == 2 + 2 + 8
    assert len(raw(full)) == 2 + 2 + 16
    back = IPv6ExtHdrHopByHop(hbh(full))[IOAMDex]
    assert (back.flow_id, back.sequence) == (0xAABBCCDD, 7)


# -- round trips through scapy's dissector
def test_hbh_with_every_option_round_trips() -> None:
    options = [
        APN6(id_type=ApnIdType.ID64, apn_id=0x0102030405060708),
        AltMark(flow_mon_id=77, L=1, D=1),
        IOAM(data=preallocated_trace(0xFF0000, 3, namespace_id=9)),
    ]
    wire = hbh(*options)
    parsed = IPv6ExtHdrHopByHop(wire)
    assert raw(parsed) == wire
    assert len(wire) % 8 == 0
    kinds = [type(o) for o in parsed.options if not isinstance(o, PadN)]
    assert kinds == [APN6, AltMark, IOAM]


# -- SRv6 encapsulation (RFC 8754, RFC 8986)
INNER = IPv6(src="2001:db8:1::1", dst="2001:db8:2::1") / UDP(sport=1, dport=2) / Raw(b"x")
SEGMENTS = ["fc00:1::100", "fc00:2::100", "fc00:3::d6"]


def test_h_encaps_lists_segments_reversed_and_points_at_the_first() -> None:
    pkt = IPv6(raw(h_encaps(INNER, src="2001:db8:a::1", segments=SEGMENTS, flow_label=0xABCDE)))
    assert pkt[IPv6].dst == SEGMENTS[0] and pkt[IPv6].fl == 0xABCDE
    srh = pkt[IPv6ExtHdrSegmentRouting]
    assert srh.addresses == list(reversed(SEGMENTS))
    assert (srh.segleft, srh.lastentry, srh.nh, srh.len) == (2, 2, 41, 6)
    assert raw(inner_packet(pkt)) == raw(INNER)


def test_h_encaps_red_omits_the_first_segment() -> None:
    pkt = IPv6(raw(h_encaps(INNER, src="2001:db8:a::1", segments=SEGMENTS, reduced=True)))
    srh = pkt[IPv6ExtHdrSegmentRouting]
    assert srh.addresses == list(reversed(SEGMENTS[1:]))
    assert (srh.segleft, srh.lastentry) == (2, 1)  # SL = Last Entry + 1 is legal here


def test_h_encaps_red_with_one_segment_has_no_srh() -> None:
    pkt = IPv6(
        raw(
            h_encaps(
                INNER,
                src="2001:db8:a::1",
                segments=["fc00:9::d6"],
                reduced=True,
                hbh_options=[APN6(apn_id=1)],
            )
        )
    )
    assert IPv6ExtHdrSegmentRouting not in pkt
    assert pkt[IPv6ExtHdrHopByHop].nh == 41


def test_h_encaps_carries_ipv4_with_next_header_4() -> None:
    inner4 = IP(src="192.0.2.1", dst="198.51.100.1") / UDP()
    pkt = IPv6(raw(h_encaps(inner4, src="2001:db8:a::1", segments=SEGMENTS)))
    assert pkt[IPv6ExtHdrSegmentRouting].nh == 4
    assert raw(inner_packet(pkt)) == raw(inner4)


def test_h_encaps_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one segment"):
        h_encaps(INNER, src="::1", segments=[])
    with pytest.raises(ValueError, match="IPv6 or IPv4"):
        h_encaps(Raw(b"x"), src="::1", segments=SEGMENTS)


# -- RoCEv2
def test_rocev2_write_dest_qp_sits_at_bth_offset_5() -> None:
    pkt = rocev2_write("2001:db8:1::1", "2001:db8:2::1", dest_qp=0xABCDEF)
    bth = raw(pkt[BTH])
    assert bth[5:8] == bytes.fromhex("abcdef")
    parsed = IPv6(raw(pkt))
    assert parsed[BTH].dqpn == 0xABCDEF and RETH in parsed
    assert raw(parsed) == raw(pkt)  # ICRC and UDP checksum survive the round trip


def test_rocev2_ud_send_has_deth() -> None:
    parsed = IPv6(raw(rocev2_ud_send("2001:db8:1::1", "2001:db8:2::1", dest_qp=5, src_qp=9)))
    assert parsed[DETH].src_qp == 9 and parsed[BTH].dqpn == 5


def test_rocev2_refuses_a_too_wide_qp() -> None:
    with pytest.raises(ValueError, match="24 bits"):
        rocev2_write("::1", "::2", dest_qp=1 << 24)


# -- APN ID templates
def test_template_compose_split_and_match() -> None:
    tpl = ApnIdTemplate()
    apn = tpl.compose(app_group=7, user_group=0x0102)
    assert apn == 0x00070102
    assert tpl.split(apn) == (7, 0x0102)
    assert tpl.match(app_group=7) == (0x00070000, 0xFFFF0000)
    assert tpl.match(user_group=2) == (0x00000002, 0x0000FFFF)


def test_template_with_reserved_low_bits() -> None:
    tpl = ApnIdTemplate(ApnIdType.ID64, app_bits=24, user_bits=24)
    apn = tpl.compose(0xABCDEF, 0x123456)
    assert apn == 0xABCDEF_123456_0000
    assert tpl.split(apn) == (0xABCDEF, 0x123456)


def test_template_errors() -> None:
    with pytest.raises(ValueError, match="exceed"):
        ApnIdTemplate(ApnIdType.ID32, app_bits=20, user_bits=20)
    with pytest.raises(ValueError, match="USER-Group ID"):
        ApnIdTemplate().compose(1, 1 << 16)


# -- telemetry profiles (validated before anything reaches a switch)
def test_ioam_tracing_room_is_bounded_by_one_option() -> None:
    from icpn.features.ifit import MAX_PREALLOCATED_WORDS, IoamTracing

    fits = IoamTracing(1, 0xF00000, max_nodes=MAX_PREALLOCATED_WORDS // 4)
    assert fits.node_len == 4 and fits.free_words <= MAX_PREALLOCATED_WORDS
    with pytest.raises(ValueError, match="do not fit one IOAM option"):
        IoamTracing(1, 0xF00000, max_nodes=16)
    with pytest.raises(ValueError, match="need bits within"):
        IoamTracing(1, 0x800002, max_nodes=2)


def test_telemetry_profile_must_ask_for_something() -> None:
    from icpn.features.ifit import telemetry_profile

    with pytest.raises(ValueError, match="asks for nothing"):
        telemetry_profile(1)
