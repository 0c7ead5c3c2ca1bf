"""Constants shared by the P4 programs and the Python side: the one place they are defined.

The P4 side never spells these numbers itself: ``p4src/shared/constants.p4`` is generated
from this module by :mod:`icpn.codegen` (``make constants``) and a unit test fails when the
committed file and this module disagree. Python code imports the names from here, so a
codepoint, a port number or a drop reason cannot drift between the two.

Values that are not IANA-assigned are *configurable*: the generated P4 wraps them in
``#ifndef`` so ``p4c -DNAME=value`` overrides them at compile time.
"""

from __future__ import annotations

import enum
import hashlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class P4Const:
    """One constant as both sides see it.

    ``width`` is the P4 bit width (``const bit<width>``); ``configurable`` constants become
    ``#define``s guarded by ``#ifndef`` so a compile-time ``-D`` can replace them. ``radix``
    only chooses how the generated file spells the value (codepoints in hex, sizes in decimal);
    ``define`` makes a plain ``#define``, for sizes P4 needs as literals (header stacks).
    """

    name: str
    value: int
    width: int
    doc: str
    configurable: bool = False
    radix: int = 16
    define: bool = False


def _configurable(name: str, default: int) -> int:
    """A codepoint without an IANA assignment: ``ICPN_<NAME>`` overrides the default for
    Python, and :mod:`icpn.targets.bmv2.build` passes the same value to p4c as ``-D<NAME>``."""
    raw = os.environ.get(f"ICPN_{name}")
    if raw is None:
        return default
    try:
        value = int(raw, 0)
    except ValueError:
        raise ValueError(f"ICPN_{name}={raw!r} is not an integer (e.g. 0x1e)") from None
    if not 0 <= value <= 0xFF:
        raise ValueError(f"ICPN_{name}={raw!r} is not an 8-bit option type")
    return value


# --- Ethernet / IP numbers (IEEE and IANA registries) -------------------------------------
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD

IP_PROTO_HOPOPTS = 0
IP_PROTO_IPV4 = 4
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
IP_PROTO_IPV6 = 41
IP_PROTO_ROUTING = 43
IP_PROTO_ICMPV6 = 58
IP_PROTO_NONE = 59
IP_PROTO_DSTOPTS = 60

UDP_PORT_ROCEV2 = 4791  # IANA: RoCEv2

# --- IPv6 options (RFC 8200 4.2; DESIGN.md 2) ------------------------------------------------
IPV6_OPT_PAD1 = 0x00
IPV6_OPT_PADN = 0x01
#: APN6 (draft-li-apn-header): no IANA codepoint; 0x13 is what recent Wireshark decodes.
APN6_OPT_TYPE_DEFAULT = 0x13
APN6_OPT_TYPE = _configurable("APN6_OPT_TYPE", APN6_OPT_TYPE_DEFAULT)
#: Alternate marking (RFC 9343), IANA-assigned.
ALTMARK_OPT_TYPE = 0x12
#: IOAM (RFC 9486): 0x31 carries pre-allocated/incremental trace and POT; 0x11 E2E and DEX.
IOAM_OPT_TYPE = 0x31
IOAM_E2E_OPT_TYPE = 0x11
#: DEX lives under 0x11 per RFC 9486, but Wireshark and Linux put it under 0x31: configurable.
IOAM_DEX_OPT_TYPE_DEFAULT = 0x31
IOAM_DEX_OPT_TYPE = _configurable("IOAM_DEX_OPT_TYPE", IOAM_DEX_OPT_TYPE_DEFAULT)

# --- SRv6 (RFC 8754) --------------------------------------------------------------------------
SRH_ROUTING_TYPE = 4
SRH_TLV_PAD1 = 0
SRH_TLV_PADN = 4
SRH_TLV_HMAC = 5

ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
ICMPV6_ROUTER_SOLICITATION = 133
ICMPV6_ROUTER_ADVERTISEMENT = 134

# --- Routers that answer (icmp.p4, icpn.routers) ---------------------------------------------
#: The IPv6 minimum link MTU (RFC 8200 5): an ICMPv6 error never exceeds it (RFC 4443 2.4(c)).
IPV6_MIN_MTU = 1280
#: What a host link carries unless the intent says otherwise (Ethernet).
ACCESS_MTU = 1500
#: Core (switch-switch) links: jumbo frames, as WAN links are provisioned, so that an
#: access-MTU packet still fits with everything a headend pushes (outer IPv6, HBH with APN6
#: and an IOAM trace, an SRH: 176 octets and more with a long trace; RFC 8754 5.3 leaves the
#: SR domain's MTU to provisioning).
CORE_MTU = 9000
MY_ADDRESS_TABLE_SIZE = 256

# --- BMv2 port numbering --------------------------------------------------------------------
#: Port number of the controller (P4Runtime packet-in/out) on BMv2; passed to
#: ``simple_switch_grpc --cpu-port``. 9-bit port space, 255 is outside the data ports we use.
CPU_PORT = 255
PORT_WIDTH = 9


class DropReason(enum.IntEnum):
    """Why the ingress pipeline dropped a packet: the index of the ``drop_reasons`` counter.

    Every drop the program makes is counted under one of these, so a test (or an operator)
    can check that drops add up instead of guessing from silence on a port.
    """

    NONE = 0
    NOT_IPV6 = 1
    NOT_MY_STATION = 2
    NO_ROUTE = 3
    HOP_LIMIT = 4
    ACL_DENY = 5
    TRUNCATED = 6  # the packet ended inside a header
    BAD_OPTION = 7  # an IPv6 option runs past its header, or APN6 lengths are inconsistent
    BAD_SRH = 8  # SRH lengths, routing type or Segments Left > Last Entry + 1
    TOO_MANY_HEADERS = 9  # more options or segments than the parser's stacks hold
    OPTION_DISCARD = 10  # an unknown option whose act bits (01, 10, 11) say discard
    PARSER_ERROR = 11  # any other parser error
    END_SL_ZERO = 12  # an End/End.X SID reached with Segments Left 0 (RFC 8986 4.1)
    NO_INNER = 13  # End.DT6/DT4 reached but the payload is not IPv6/IPv4
    BAD_IOAM = 14  # IOAM trace: NodeLen, RemainingLen or the option length inconsistent
    #: TNA only: the packet needed headers past what the Tofino parser carries (TNA_* bounds
    #: below, docs/tofino.md); transit forwarding on the outer header is unaffected.
    BEYOND_PARSER = 15
    #: TNA only: an SR policy matched a packet that already carries an SRH, an IFIT option or
    #: a tunnel; the Tofino headend pushes its outer header only onto plain IPv6 packets.
    ENCAP_REFUSED = 16
    #: The IPv6 header's version nibble is not 6 under the IPv6 EtherType (Linux counts it in
    #: Ip6InHdrErrors; RFC 8200 3).
    BAD_IP_VERSION = 17
    #: The IPv6 Payload Length runs past the end of the frame (Linux: Ip6InTruncatedPkts).
    PAYLOAD_BEYOND_FRAME = 18
    #: A tenant's two-rate three-colour meter (RFC 2698) said red and its policy drops red.
    METER_RED = 19
    #: Addressed to the router itself (its loopback SID, a gateway or its link-local address),
    #: and not punted to the controller (no punt policy for it, or over its punt rate).
    TO_ROUTER = 20
    #: Larger than the egress port's MTU (port_mtu), and no Packet Too Big was signalled.
    PACKET_TOO_BIG = 21


#: Drop reasons the controller may have punted instead (table ``punt_policy``): the packet
#: goes to the controller with the reason in its packet-in, and the controller answers with an
#: Echo Reply or an ICMPv6 error (RFC 4443). Over the punt meter's rate they are dropped,
#: counted under the same reason. A packet-in with reason NONE was punted by the ACL.
PUNTABLE_DROPS = (
    DropReason.TO_ROUTER,
    DropReason.HOP_LIMIT,
    DropReason.NO_ROUTE,
    DropReason.PACKET_TOO_BIG,
)


class PortRole(enum.IntEnum):
    """What a port faces (table ``port_role``): the WAN core, or users/DCs at the edge, whose
    app-side APN marks are trusted or not."""

    CORE = 0
    EDGE_UNTRUSTED = 1
    EDGE_TRUSTED = 2


#: Hop limit of the outer header a headend pushes (RFC 8986 H.Encaps; Linux uses 64 too).
ENCAP_HOP_LIMIT = 64
#: Octets of the headend's HBH: 2 + APN6 with a 32-bit ID (10) + PadN (4).
ENCAP_HBH_OCTETS = 16


class FlowKeyType(enum.IntEnum):
    """What identifies a flow for the elephant sketch (per sketch profile). RDMA traffic
    between two hosts shares one 5-tuple, so (SA, DA, DestQP) tells its flows apart."""

    SRC_DST_QP = 0
    FIVE_TUPLE = 1


#: Count-min sketch geometry (compile-time): rows (1 to 3), cells per row (a power of two,
#: at most 2^14), 32-bit counts. 3 x 4096 x 32 bit = 48 KiB of counts.
#: Row hashes: CRC is affine over GF(2), so seeding one CRC differently per row does NOT
#: give independent rows (two flows colliding in one row would collide in all). Rows use
#: different linear maps instead: row 0 = bits 0-13 of CRC-32(key), row 1 = bits 16-29 of
#: the same CRC-32, row 2 = CRC-16/ARC(key) (another polynomial); each masked to the width.
SKETCH_DEPTH = 3
SKETCH_WIDTH = 4096
SKETCH_MAX_DEPTH = 3
SKETCH_MAX_WIDTH = 1 << 14
#: Dedup slots: one digest per flow per window; a slot remembers (window, a 32-bit tag).
SKETCH_DEDUP_SLOTS = 4096
#: The v1model sketch's keyed hash (icpn.sketch_key): the flow key as 32-bit words, and
#: SKETCH_HASHES vector multiply-shift hashes, each with SKETCH_KEY_WORDS 64-bit multipliers
#: and one 64-bit offset (hash 0: rows 0 and 1; hash 1: row 2 and the dedup slot; hash 2:
#: the dedup tag).
SKETCH_KEY_WORDS = 10
SKETCH_HASHES = 3
#: The key the program starts with, until the controller sets the deployment's secret (a
#: public value: a switch left with it is as predictable as an unkeyed CRC).
SKETCH_DEFAULT_HASH_KEY: tuple[tuple[int, ...], ...] = tuple(
    tuple(
        int.from_bytes(hashlib.sha256(f"icpn sketch key {h}.{i}".encode()).digest()[:8], "big")
        for i in range(SKETCH_KEY_WORDS + 1)
    )
    for h in range(SKETCH_HASHES)
)
SKETCH_PROFILE_TABLE_SIZE = 64
ELEPHANT_OVERRIDE_TABLE_SIZE = 1024
#: Per segment list load counters (indexed by the list id an SR policy gives each list).
SEGMENT_LIST_COUNTER_SIZE = 1024
#: v1model digest receiver id of elephant reports.
ELEPHANT_DIGEST_RECEIVER = 1

# --- Table and selector sizes ----------------------------------------------------------------
MY_STATION_TABLE_SIZE = 64
ROUTING_V6_TABLE_SIZE = 4096
ECMP_SELECTOR_SIZE = 1024
ECMP_MAX_GROUP_SIZE = 16
ACL_TABLE_SIZE = 256
PORT_TABLE_SIZE = 512
APN_CLASSIFIER_TABLE_SIZE = 1024
APN_POLICY_TABLE_SIZE = 1024
SR_POLICY_TABLE_SIZE = 1024
SR_SELECTOR_SIZE = 1024
MY_SID_TABLE_SIZE = 1024
ROUTING_V4_TABLE_SIZE = (
    16384  # customer IPv4 prefixes behind End.DT4; big enough for the 10k-entry benches
)
#: Header stack sizes: HBH options the parser walks before an IOAM trace (besides a leading
#: APN6) and after it, and SRH segments it processes. A run of up to 7 Pad1 options counts as
#: one entry, so any padding of APN6, AltMark and a trace fits (each gap's padding is one
#: entry, at most 4 gaps). More options: DropReason.TOO_MANY_HEADERS; more segments: the SRH
#: is carried opaquely (dropped only at a local SID).
MAX_HBH_OPTIONS = 8
MAX_HBH_OPTIONS_AFTER_IOAM = 4
MAX_SRH_SEGMENTS = 8
#: SRH entries a headend pushes: the longest h_encaps_* action (one P4 action per length);
#: h_encaps_red_* (H.Encaps.Red) carries one segment more, in the DA only. The Tofino
#: parser's TNA_MAX_SRH_SEGMENTS bounds it there (the pushed segments share its containers).
MAX_ENCAP_SEGMENTS = 6
#: Trace-Type bits a node can fill (RFC 9197 4.4.1 bits 0-11). Others (undefined, opaque
#: state snapshot) make the trace opaque: forwarded untouched, never filled.
IOAM_SUPPORTED_TRACE_TYPE = 0xFFF000
#: What a node writes for a field it cannot supply (RFC 9197 4.4.2).
IOAM_NOT_AVAILABLE = 0xFFFFFFFF
IOAM_NAMESPACE_TABLE_SIZE = 64
#: standard_metadata.instance_type of an ingress-to-egress clone in BMv2's simple_switch
#: (behavioral-model docs/simple_switch.md, "instance_type").
BMV2_INSTANCE_TYPE_INGRESS_CLONE = 1
#: v1model field list preserved into trace-report clones (the IOAM fill verdicts).
FIELD_LIST_REPORT = 1
#: The icpn trace report header (docs/telemetry-report.md), octets.
REPORT_HEADER_OCTETS = 20
#: Default UDP port of trace reports: unassigned, in the dynamic range (RFC 6335).
REPORT_UDP_PORT = 50505
#: BMv2 cannot divide at run time; ``(t * m) >> 68`` with ``m = ceil(2^68 / 10^6)`` equals
#: ``t // 10^6`` for every 48-bit ``t`` (Granlund & Montgomery, PLDI 1994, section 4).
US_PER_S_RECIPROCAL = -(-(1 << 68) // 1_000_000)
#: NTP counts seconds from 1900-01-01, POSIX from 1970-01-01 (RFC 5905 6): 70 years.
NTP_UNIX_EPOCH_OFFSET_S = 2_208_988_800
#: An NTP fraction from microseconds without a divider: ``(us * m) >> 34`` with
#: ``m = ceil(2^66 / 10^6)`` equals ``us * 2^32 // 10^6`` for every us below 10^6.
NTP_FRACTION_PER_US = -(-(1 << 66) // 1_000_000)
IFIT_PROFILE_TABLE_SIZE = 256
#: Alternate-marking counters: FlowMonIDs are counted modulo this many slots, two colours
#: each (counter index = slot * 2 + L).
ALTMARK_FLOW_SLOTS = 1024
ALTMARK_COUNTER_SIZE = 2 * ALTMARK_FLOW_SLOTS

# --- Differentiated bearing (qos.p4, icpn.features.qos) ----------------------------
#: Egress queues per port: BMv2 ``simple_switch --priority-queues`` (v1model's
#: ``standard_metadata.priority`` is 3 bits). Queue q is the traffic class q; BMv2 serves the
#: highest due q first. Tofino has 32 queues per port (TF1 qid 5 bits); icpn uses 8 there too.
QOS_QUEUES = 8
QOS_CLASS_TABLE_SIZE = 256
QOS_TENANT_TABLE_SIZE = 256
#: Per-tenant meters (one RFC 2698 trTCM each) and their colour counters (index tenant*4+colour).
QOS_TENANT_METERS = 256
QOS_COLOR_COUNTER_SIZE = 4 * QOS_TENANT_METERS
QOS_QUEUE_ECN_TABLE_SIZE = 1024


class MeterColor(enum.IntEnum):
    """Colours of a two-rate three-colour meter (RFC 2698) as v1model's ``execute_meter``
    returns them (Tofino's Meter extern returns 3 for red; the TNA program maps it)."""

    GREEN = 0
    YELLOW = 1
    RED = 2


# --- Tofino (TNA / T2NA) -----------------------------------------------------------------------
#: PCIe CPU port (P4Runtime packet-in/out) of the usual boards: 192 on a 32-port Tofino 1
#: (320 on 64-port ones: compile with -DTOFINO1_CPU_PORT=320), 0 on Tofino 2.
TOFINO1_CPU_PORT = 192
TOFINO2_CPU_PORT = 0
#: Bounds of the Tofino parsers, which extract fixed-size headers into a fixed set of
#: containers (no varbit): 32-bit words of IOAM trace data, SRH segments, 8-octet chunks of
#: SRH TLVs, 32-bit words of APN6 parameters, octets of padding between known options.
#: A packet past a bound is forwarded on its outer header; anything that needs the headers
#: behind it (an End.* SID, a headend) drops it as BEYOND_PARSER (docs/tofino.md). A Tofino
#: headend pre-allocates at most TNA_IOAM_MAX_WORDS words of trace. The parsers take 8 or 16
#: trace words and 6 or 8 segments (-DTNA_IOAM_MAX_WORDS=16 -DTNA_MAX_SRH_SEGMENTS=8); the
#: larger bounds cost PHV the default profile does not have (docs/tofino.md).
TNA_IOAM_MAX_WORDS = 8
#: Trace-Type bits a Tofino node fills: the 4-octet fields (RFC 9197 4.4.1 bits 0-7, 11). The
#: 8-octet ones (bits 8-10) would cost egress PHV the program does not have; traces asking for
#: them go on untouched (as traces with bits no node supports do on v1model).
TNA_IOAM_SUPPORTED_TRACE_TYPE = 0xFF1000
TNA_MAX_SRH_SEGMENTS = 6
#: SRH entries a Tofino headend pushes (H.Encaps.Red: one SID more). Pushing 6 costs PHV
#: the default profile does not have on Tofino 1 (bf-p4c: "PHV allocation was not
#: successful"); -DTNA_MAX_ENCAP_SEGMENTS=6 asks for them (docs/tofino.md).
TNA_MAX_ENCAP_SEGMENTS = 4
TNA_SRH_TLV_CHUNKS = 1
TNA_APN_PARAM_WORDS = 2
TNA_PAD_OCTETS = 4
#: Index widths of the Tofino registers and counters (log2 of their sizes above): a
#: stateful ALU takes its index straight from hash or PHV bits.
SKETCH_WIDTH_BITS = SKETCH_WIDTH.bit_length() - 1
SKETCH_DEDUP_BITS = SKETCH_DEDUP_SLOTS.bit_length() - 1
ALTMARK_SLOT_BITS = ALTMARK_FLOW_SLOTS.bit_length() - 1
#: TNA digest and mirror types (ig_dprsr_md.digest_type / mirror_type).
TNA_DIGEST_ELEPHANT = 1
TNA_MIRROR_REPORT = 1


class IoamOptionType(enum.IntEnum):
    """IOAM-Opt-Type inside the IOAM option container (RFC 9486 section 3, RFC 9326)."""

    PREALLOCATED_TRACE = 0
    INCREMENTAL_TRACE = 1
    PROOF_OF_TRANSIT = 2
    EDGE_TO_EDGE = 3
    DIRECT_EXPORT = 4


class TimestampFormat(enum.IntEnum):
    """How an IOAM namespace writes Trace-Type bits 2 and 3 (RFC 9197 4.4.2.3-4 and 5): the
    timestamp format is a property of the namespace. Values are RFC 9359's TSF codes."""

    PTP = 0  # seconds (PTP epoch, 1970 TAI) + nanoseconds
    NTP = 1  # seconds since 1900 + binary fraction (2^-32 s)
    POSIX = 2  # seconds since 1970 (UTC) + microseconds; what Linux ioam6 writes


class ApnIdType(enum.IntEnum):
    """APN-ID-Type of the APN header: the width of the APN ID (draft-li-apn-header)."""

    ID32 = 1
    ID64 = 2
    ID128 = 3


def p4_constants() -> list[P4Const]:
    """Everything the generated ``constants.p4`` defines, in file order."""
    consts = [
        P4Const("ETHERTYPE_IPV4", ETHERTYPE_IPV4, 16, "IPv4 (inner payloads only)"),
        P4Const("ETHERTYPE_ARP", ETHERTYPE_ARP, 16, "ARP (not routed: IPv6-only core)"),
        P4Const("ETHERTYPE_IPV6", ETHERTYPE_IPV6, 16, "IPv6"),
        P4Const("IP_PROTO_HOPOPTS", IP_PROTO_HOPOPTS, 8, "IPv6 Hop-by-Hop options"),
        P4Const("IP_PROTO_IPV4", IP_PROTO_IPV4, 8, "IPv4 in IPv6"),
        P4Const("IP_PROTO_TCP", IP_PROTO_TCP, 8, "TCP"),
        P4Const("IP_PROTO_UDP", IP_PROTO_UDP, 8, "UDP"),
        P4Const("IP_PROTO_IPV6", IP_PROTO_IPV6, 8, "IPv6 in IPv6"),
        P4Const("IP_PROTO_ROUTING", IP_PROTO_ROUTING, 8, "IPv6 Routing header"),
        P4Const("IP_PROTO_ICMPV6", IP_PROTO_ICMPV6, 8, "ICMPv6"),
        P4Const("IP_PROTO_DSTOPTS", IP_PROTO_DSTOPTS, 8, "IPv6 Destination options"),
        P4Const("UDP_PORT_ROCEV2", UDP_PORT_ROCEV2, 16, "RoCEv2"),
        P4Const("APN6_OPT_TYPE", APN6_OPT_TYPE_DEFAULT, 8, "APN6 option type", configurable=True),
        P4Const("ALTMARK_OPT_TYPE", ALTMARK_OPT_TYPE, 8, "alternate-marking option type"),
        P4Const("IOAM_OPT_TYPE", IOAM_OPT_TYPE, 8, "IOAM trace/POT option type"),
        P4Const(
            "IOAM_DEX_OPT_TYPE",
            IOAM_DEX_OPT_TYPE_DEFAULT,
            8,
            "IOAM DEX option type",
            configurable=True,
        ),
        P4Const("SRH_ROUTING_TYPE", SRH_ROUTING_TYPE, 8, "Segment Routing Header"),
        P4Const("CPU_PORT", CPU_PORT, PORT_WIDTH, "BMv2 --cpu-port: packet-in/out"),
        P4Const("MY_STATION_TABLE_SIZE", MY_STATION_TABLE_SIZE, 32, "router MACs", radix=10),
        P4Const("ROUTING_V6_TABLE_SIZE", ROUTING_V6_TABLE_SIZE, 32, "IPv6 LPM routes", radix=10),
        P4Const("ECMP_SELECTOR_SIZE", ECMP_SELECTOR_SIZE, 32, "action selector members", radix=10),
        P4Const("ECMP_MAX_GROUP_SIZE", ECMP_MAX_GROUP_SIZE, 32, "members per ECMP group", radix=10),
        P4Const("ACL_TABLE_SIZE", ACL_TABLE_SIZE, 32, "punt/deny rules", radix=10),
        P4Const("PORT_TABLE_SIZE", PORT_TABLE_SIZE, 32, "port roles", radix=10),
        P4Const("APN_CLASSIFIER_TABLE_SIZE", APN_CLASSIFIER_TABLE_SIZE, 32, "classifier", radix=10),
        P4Const("APN_POLICY_TABLE_SIZE", APN_POLICY_TABLE_SIZE, 32, "APN policies", radix=10),
        P4Const("SR_POLICY_TABLE_SIZE", SR_POLICY_TABLE_SIZE, 32, "SR policies", radix=10),
        P4Const("SR_SELECTOR_SIZE", SR_SELECTOR_SIZE, 32, "segment-list members", radix=10),
        P4Const("MY_SID_TABLE_SIZE", MY_SID_TABLE_SIZE, 32, "local SIDs", radix=10),
        P4Const("ROUTING_V4_TABLE_SIZE", ROUTING_V4_TABLE_SIZE, 32, "IPv4 routes", radix=10),
        P4Const("MY_ADDRESS_TABLE_SIZE", MY_ADDRESS_TABLE_SIZE, 32, "router addresses", radix=10),
        P4Const("ENCAP_HOP_LIMIT", ENCAP_HOP_LIMIT, 8, "outer hop limit", radix=10),
        P4Const("ENCAP_HBH_OCTETS", ENCAP_HBH_OCTETS, 16, "headend HBH size", radix=10),
        P4Const("SKETCH_DEPTH", SKETCH_DEPTH, 32, "sketch rows", radix=10, define=True),
        P4Const("SKETCH_WIDTH", SKETCH_WIDTH, 32, "cells per row", radix=10, define=True),
        P4Const("SKETCH_DEDUP_SLOTS", SKETCH_DEDUP_SLOTS, 32, "dedup slots", radix=10, define=True),
        P4Const("SKETCH_PROFILE_TABLE_SIZE", SKETCH_PROFILE_TABLE_SIZE, 32, "profiles", radix=10),
        *(
            P4Const(f"SKETCH_DEFAULT_KEY_{h}_{i}", value, 64, "sketch hash key until set")
            for h, row in enumerate(SKETCH_DEFAULT_HASH_KEY)
            for i, value in enumerate(row)
        ),
        P4Const(
            "ELEPHANT_OVERRIDE_TABLE_SIZE",
            ELEPHANT_OVERRIDE_TABLE_SIZE,
            32,
            "pinned elephants",
            radix=10,
        ),
        P4Const(
            "SEGMENT_LIST_COUNTER_SIZE", SEGMENT_LIST_COUNTER_SIZE, 32, "list counters", radix=10
        ),
        P4Const(
            "ELEPHANT_DIGEST_RECEIVER", ELEPHANT_DIGEST_RECEIVER, 32, "digest receiver", radix=10
        ),
        P4Const("MAX_HBH_OPTIONS", MAX_HBH_OPTIONS, 32, "HBH option stack", radix=10, define=True),
        P4Const(
            "MAX_HBH_OPTIONS_AFTER_IOAM",
            MAX_HBH_OPTIONS_AFTER_IOAM,
            32,
            "options after IOAM",
            radix=10,
            define=True,
        ),
        P4Const("IOAM_SUPPORTED_TRACE_TYPE", IOAM_SUPPORTED_TRACE_TYPE, 24, "fillable bits"),
        P4Const("IOAM_NOT_AVAILABLE", IOAM_NOT_AVAILABLE, 32, "unsupplied IOAM field"),
        P4Const(
            "TNA_IOAM_SUPPORTED_TRACE_TYPE", TNA_IOAM_SUPPORTED_TRACE_TYPE, 24, "TNA fillable bits"
        ),
        P4Const(
            "BMV2_INSTANCE_TYPE_INGRESS_CLONE",
            BMV2_INSTANCE_TYPE_INGRESS_CLONE,
            32,
            "I2E clone",
            radix=10,
        ),
        P4Const(
            "FIELD_LIST_REPORT", FIELD_LIST_REPORT, 8, "clone field list", radix=10, define=True
        ),
        P4Const("REPORT_HEADER_OCTETS", REPORT_HEADER_OCTETS, 16, "report header", radix=10),
        P4Const("US_PER_S_RECIPROCAL", US_PER_S_RECIPROCAL, 128, "ceil(2^68 / 10^6)"),
        P4Const("NTP_UNIX_EPOCH_OFFSET_S", NTP_UNIX_EPOCH_OFFSET_S, 32, "1900 to 1970"),
        P4Const("NTP_FRACTION_PER_US", NTP_FRACTION_PER_US, 128, "ceil(2^66 / 10^6)"),
        P4Const("IOAM_NAMESPACE_TABLE_SIZE", IOAM_NAMESPACE_TABLE_SIZE, 32, "namespaces", radix=10),
        P4Const("IFIT_PROFILE_TABLE_SIZE", IFIT_PROFILE_TABLE_SIZE, 32, "profiles", radix=10),
        P4Const("ALTMARK_FLOW_SLOTS", ALTMARK_FLOW_SLOTS, 32, "FlowMonID slots", radix=10),
        P4Const("ALTMARK_COUNTER_SIZE", ALTMARK_COUNTER_SIZE, 32, "colour counters", radix=10),
        P4Const(
            "MAX_SRH_SEGMENTS", MAX_SRH_SEGMENTS, 32, "SRH segment stack", radix=10, define=True
        ),
        P4Const("IPV6_OPT_PAD1", IPV6_OPT_PAD1, 8, "Pad1 option"),
        P4Const(
            "TOFINO1_CPU_PORT",
            TOFINO1_CPU_PORT,
            32,
            "Tofino 1 CPU port",
            radix=10,
            configurable=True,
        ),
        P4Const(
            "TOFINO2_CPU_PORT",
            TOFINO2_CPU_PORT,
            32,
            "Tofino 2 CPU port",
            radix=10,
            configurable=True,
        ),
        P4Const(
            "TNA_IOAM_MAX_WORDS",
            TNA_IOAM_MAX_WORDS,
            32,
            "trace words",
            radix=10,
            define=True,
            configurable=True,
        ),
        P4Const(
            "TNA_MAX_SRH_SEGMENTS",
            TNA_MAX_SRH_SEGMENTS,
            32,
            "SRH segments",
            radix=10,
            define=True,
            configurable=True,
        ),
        P4Const(
            "TNA_SRH_TLV_CHUNKS", TNA_SRH_TLV_CHUNKS, 32, "SRH TLV chunks", radix=10, define=True
        ),
        P4Const(
            "TNA_APN_PARAM_WORDS",
            TNA_APN_PARAM_WORDS,
            32,
            "APN6 param words",
            radix=10,
            define=True,
        ),
        P4Const("TNA_PAD_OCTETS", TNA_PAD_OCTETS, 32, "pad octets per gap", radix=10, define=True),
        P4Const(
            "MAX_ENCAP_SEGMENTS", MAX_ENCAP_SEGMENTS, 32, "pushed segments", radix=10, define=True
        ),
        P4Const(
            "TNA_MAX_ENCAP_SEGMENTS",
            TNA_MAX_ENCAP_SEGMENTS,
            32,
            "pushed segments",
            radix=10,
            define=True,
            configurable=True,
        ),
        P4Const("SKETCH_WIDTH_BITS", SKETCH_WIDTH_BITS, 32, "log2 cells", radix=10, define=True),
        P4Const("SKETCH_DEDUP_BITS", SKETCH_DEDUP_BITS, 32, "log2 slots", radix=10, define=True),
        P4Const("ALTMARK_SLOT_BITS", ALTMARK_SLOT_BITS, 32, "log2 slots", radix=10, define=True),
        P4Const("TNA_DIGEST_ELEPHANT", TNA_DIGEST_ELEPHANT, 3, "digest type", radix=10),
        P4Const("TNA_MIRROR_REPORT", TNA_MIRROR_REPORT, 3, "mirror type", radix=10),
        P4Const("IPV6_OPT_PADN", IPV6_OPT_PADN, 8, "PadN option"),
        P4Const("QOS_QUEUES", QOS_QUEUES, 32, "queues per port", radix=10),
        P4Const("QOS_CLASS_TABLE_SIZE", QOS_CLASS_TABLE_SIZE, 32, "class entries", radix=10),
        P4Const("QOS_TENANT_TABLE_SIZE", QOS_TENANT_TABLE_SIZE, 32, "tenant entries", radix=10),
        P4Const("QOS_TENANT_METERS", QOS_TENANT_METERS, 32, "tenant meters", radix=10),
        P4Const("QOS_COLOR_COUNTER_SIZE", QOS_COLOR_COUNTER_SIZE, 32, "colour counters", radix=10),
        P4Const("QOS_QUEUE_ECN_TABLE_SIZE", QOS_QUEUE_ECN_TABLE_SIZE, 32, "queue ECN", radix=10),
    ]
    consts += [P4Const(f"METER_{c.name}", c.value, 2, "meter colour", radix=10) for c in MeterColor]
    consts += [
        P4Const(f"DROP_{reason.name}", reason.value, 8, "drop_reasons counter index", radix=10)
        for reason in DropReason
    ]
    consts += [P4Const(f"PORT_ROLE_{r.name}", r.value, 8, "port role", radix=10) for r in PortRole]
    consts += [P4Const(f"FLOW_KEY_{k.name}", k.value, 8, "flow key", radix=10) for k in FlowKeyType]
    consts += [
        P4Const(f"APN_ID_TYPE_{t.name[2:]}", t.value, 8, "APN-ID-Type", radix=10) for t in ApnIdType
    ]
    consts += [
        P4Const(f"IOAM_TYPE_{t.name}", t.value, 8, "IOAM-Opt-Type", radix=10)
        for t in IoamOptionType
    ]
    consts += [
        P4Const(f"TS_FORMAT_{f.name}", f.value, 2, "IOAM timestamp format", radix=10)
        for f in TimestampFormat
    ]
    consts.append(P4Const("DROP_REASON_COUNT", len(DropReason), 32, "drop_reasons size", radix=10))
    return consts


def p4_overrides() -> dict[str, int]:
    """Configurable codepoints whose value here differs from the generated default: what
    p4c must be told with ``-D`` so that P4 and Python agree."""
    current = {"APN6_OPT_TYPE": APN6_OPT_TYPE, "IOAM_DEX_OPT_TYPE": IOAM_DEX_OPT_TYPE}
    return {
        c.name: current[c.name]
        for c in p4_constants()
        if c.name in current and current[c.name] != c.value
    }
