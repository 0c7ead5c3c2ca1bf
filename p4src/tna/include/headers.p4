// Header and metadata types of the TNA program: what only Tofino needs (the bridged and mirror
// headers between ingress and egress, fixed-size chunks where v1model uses varbit) and the
// structs of its two pipelines. Header types both targets use are in shared/headers.p4.
//
// A Tofino parser extracts fixed-size headers into a fixed set of PHV containers, so every
// variable-length part has a bound (TNA_* in icpn.constants, docs/tofino.md): padding between
// the options icpn knows, APN6 parameters, IOAM trace data, SRH segments and TLVs.
#ifndef ICPN_TNA_HEADERS_P4
#define ICPN_TNA_HEADERS_P4

#include "../../shared/headers.p4"

// One octet of padding (Pad1, or a byte of PadN): the parser keeps padding as octets, in the
// order it came, so the deparser re-emits it byte for byte.
header pad_octet_t {
    bit<8> value;
}

// 32-bit words: APN6 parameters and IOAM trace data the pipeline carries untouched.
header word_t {
    bit<32> value;
}

// IOAM trace data is kept in power-of-two chunks, not one header per word: k words are the
// chunks of k's binary digits (8, 4, 2, 1, and a second 1 for a full trace), always in that
// order on the wire. Every header costs a validity bit, and Tofino 1's ingress has 256 of
// them for everything parsed and pushed.
header words2_t {
    bit<64> value;
}
header words4_t {
    bit<128> value;
}
header words8_t {
    bit<256> value;
}

// The chunks of k words, each named by its suffix for macro F: F(8) F(4) F(2) F(1) [F(1b)];
// CHUNKS_ALL: all of them.
#define CHUNKS_0(F)
#define CHUNKS_1(F) F(1)
#define CHUNKS_2(F) F(2)
#define CHUNKS_3(F) F(2) F(1)
#define CHUNKS_4(F) F(4)
#define CHUNKS_5(F) F(4) F(1)
#define CHUNKS_6(F) F(4) F(2)
#define CHUNKS_7(F) F(4) F(2) F(1)
#if TNA_IOAM_MAX_WORDS > 8
#define CHUNKS_8(F) F(8)
#define CHUNKS_ALL(F) CHUNKS_16(F)
#else
#define CHUNKS_8(F) F(4) F(2) F(1) F(1b)
#define CHUNKS_ALL(F) CHUNKS_8(F)
#endif
#define CHUNKS_9(F) F(8) F(1)
#define CHUNKS_10(F) F(8) F(2)
#define CHUNKS_11(F) F(8) F(2) F(1)
#define CHUNKS_12(F) F(8) F(4)
#define CHUNKS_13(F) F(8) F(4) F(1)
#define CHUNKS_14(F) F(8) F(4) F(2)
#define CHUNKS_15(F) F(8) F(4) F(2) F(1)
#define CHUNKS_16(F) F(8) F(4) F(2) F(1) F(1b)

// Struct members holding up to TNA_IOAM_MAX_WORDS words (`full`) or one fewer.
#if TNA_IOAM_MAX_WORDS > 8
#define WORD_CHUNKS_8(name) words8_t name##_8;
#else
#define WORD_CHUNKS_8(name)
#endif
#define WORD_CHUNKS(name) \
    WORD_CHUNKS_8(name) words4_t name##_4; words2_t name##_2; word_t name##_1;
#define WORD_CHUNKS_FULL(name) WORD_CHUNKS(name) word_t name##_1b;

// Eight octets of SRH TLVs (RFC 8754 2.1; the TLV area is a multiple of 8 octets).
header tlv_chunk_t {
    bit<64> value;
}

// The AltMark option a Tofino headend pushes: altmark_t's bits in octet-sized fields, so the
// option can sit in 8-bit containers (the program has more of those to spare).
header encap_altmark_t {
    bit<8> type;
    bit<8> len;
    bit<8> flow_mon_id_hi;       // FlowMonID bits 19..12
    bit<8> flow_mon_id_mid;      // ... 11..4
    bit<8> lo_l_d;               // FlowMonID bits 3..0, L, D, 2 reserved bits (zero)
    bit<8> reserved_lo;
}

// Ingress to egress, in front of every packet ingress forwards (TNA has no metadata shared
// between its two pipelines), and the first 8 octets of a trace report's mirror header: egress
// parses both as this header. Small on purpose: Tofino 1's egress parser reaches 160 octets
// into the packet, these included.
header egress_info_t {
    bit<1> mirrored;             // a trace report's copy (report_mirror_t)
    bit<1> to_cpu;               // packet-in: egress adds packet_in_header_t
    bit<1> from_cpu;             // packet-out: sent as it is
    bit<1> fill;                 // egress writes this node's slot of the IOAM trace
    bit<1> overflow;             // egress sets the trace's Overflow flag
    bit<3> _pad0;
    bit<8> free_words;           // 4-octet words of trace data before this node's slot
    bit<7> _pad2;
    PortId_t ingress_port;       // as in ingress_intrinsic_metadata_t: copied without a shift
    bit<32> ingress_ts;          // low 32 bits of the ingress timestamp (ns)
}

// In front of an IOAM option whose slot egress writes, from ingress to egress only (egress
// removes it): egress finds it walking the HBH, where it needs the free words, so the egress
// parser does not hold the bridged header's fields in its few match registers all the way
// there. Its type is one no HBH option reaching egress has (0xff: act 11, which ingress drops).
header trace_mark_t {
    bit<8> type;                 // TNA_TRACE_MARK
    bit<8> free_words;           // as egress_info_t's
}

// What a report's copy carries after egress_info_t: the original's extension header lengths,
// from which egress finds the inner IP header behind the IOAM option, and the port the
// original leaves by (the copy's own egress port is the collector's), for the exporter's
// egress interface in the trace (RFC 9197 4.4.2.2).
header report_info_t {
    bit<8> hbh_units;            // 8-octet units of the HBH
    bit<8> srh_units;            // ... and of the SRH (0: none)
    bit<7> _pad3;
    PortId_t egress_port;
}

// The mirror header of a trace report's copy (Mirror extern, I2E: the packet as it arrived,
// TNA 7.10): egress_info_t then report_info_t, 12 octets (TNA allows 32).
header report_mirror_t {
    bit<1> mirrored;
    bit<1> to_cpu;
    bit<1> from_cpu;
    bit<1> fill;
    bit<1> overflow;
    bit<3> _pad0;
    bit<8> free_words;
    bit<7> _pad2;
    PortId_t ingress_port;
    bit<32> ingress_ts;
    bit<8> hbh_units;
    bit<8> srh_units;
    bit<7> _pad3;
    PortId_t egress_port;
}

// The outer headers a headend pushes (encap_*) are v1model's. A Tofino headend encapsulates
// only packets without an SRH, IFIT options or a tunnel of their own (control/srv6.p4), so
// each encap_* header is never live with the parsed header it stands beside below, nor with
// what only such packets have (SRH segments and TLVs, padding after an AltMark or a trace,
// trace data, inner IPv4): they may share containers (Tofino 2 has no tagalong ones).
#define ENCAP_EXCLUSIVE(e, parsed) @pa_mutually_exclusive("ingress", e, parsed)
#define SEGMENT_EXCLUSIVE(e)                                                                 \
    ENCAP_EXCLUSIVE(e, "hdr.srh_segments[0]") ENCAP_EXCLUSIVE(e, "hdr.srh_segments[1]")     \
    ENCAP_EXCLUSIVE(e, "hdr.srh_segments[2]") ENCAP_EXCLUSIVE(e, "hdr.srh_segments[3]")     \
    ENCAP_EXCLUSIVE(e, "hdr.srh_segments[4]") ENCAP_EXCLUSIVE(e, "hdr.srh_segments[5]")     \
    ENCAP_EXCLUSIVE(e, "hdr.srh_tlvs[0]") ENCAP_EXCLUSIVE(e, "hdr.ioam_data_4")
@pa_mutually_exclusive("ingress", "hdr.encap_ipv6", "hdr.inner_ipv6")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_opt", "hdr.ioam_opt")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_trace", "hdr.ioam_trace")
@pa_mutually_exclusive("ingress", "hdr.encap_srh", "hdr.srh")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_free_4", "hdr.ioam_data_4")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_free_2", "hdr.ioam_data_2")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_free_1", "hdr.ioam_data_1")
@pa_mutually_exclusive("ingress", "hdr.encap_ioam_free_1b", "hdr.ioam_data_1b")
ENCAP_EXCLUSIVE("hdr.encap_ipv6", "hdr.inner_ipv4")
ENCAP_EXCLUSIVE("hdr.encap_altmark", "hdr.altmark")
ENCAP_EXCLUSIVE("hdr.encap_srh", "hdr.srh_tlvs[0]")
ENCAP_EXCLUSIVE("hdr.encap_ioam_trace", "hdr.srh_tlvs[0]")
ENCAP_EXCLUSIVE("hdr.encap_pad0", "hdr.pad_b[0]") ENCAP_EXCLUSIVE("hdr.encap_pad0", "hdr.pad_b[1]")
ENCAP_EXCLUSIVE("hdr.encap_altmark", "hdr.pad_b[2]")
ENCAP_EXCLUSIVE("hdr.encap_altmark", "hdr.pad_b[3]")
ENCAP_EXCLUSIVE("hdr.encap_pad", "hdr.pad_c[0]") ENCAP_EXCLUSIVE("hdr.encap_pad", "hdr.pad_c[1]")
ENCAP_EXCLUSIVE("hdr.encap_ioam_opt", "hdr.pad_c[2]")
ENCAP_EXCLUSIVE("hdr.encap_ioam_opt", "hdr.pad_c[3]")
SEGMENT_EXCLUSIVE("hdr.encap_segments[0]")
SEGMENT_EXCLUSIVE("hdr.encap_segments[1]")
SEGMENT_EXCLUSIVE("hdr.encap_segments[2]")
#if TNA_MAX_ENCAP_SEGMENTS > 3
SEGMENT_EXCLUSIVE("hdr.encap_segments[3]")
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
SEGMENT_EXCLUSIVE("hdr.encap_segments[4]")
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
SEGMENT_EXCLUSIVE("hdr.encap_segments[5]")
#endif
struct tna_ingress_headers_t {
    egress_info_t bridged;
    packet_out_header_t packet_out;
    ethernet_t ethernet;
    // Pushed by this node's H.Encaps (emitted before everything parsed), as in v1model.
    ipv6_t encap_ipv6;
    ext_hdr_t encap_hbh;
    apn6_t encap_apn6;
    apn_word_t encap_apn_id;
    opt_padn0_t encap_pad0;
    encap_altmark_t encap_altmark;
    ioam_opt_t encap_ioam_opt;
    ioam_trace_t encap_ioam_trace;
    WORD_CHUNKS_FULL(encap_ioam_free)
    opt_padn2_t encap_pad;
    srh_t encap_srh;
    srh_segment_t[TNA_MAX_ENCAP_SEGMENTS] encap_segments;
    // As parsed. Hop-by-Hop in the one order the TNA parser accepts: APN6 first, padding, an
    // AltMark option, padding, an IOAM trace, padding.
    ipv6_t ipv6;
    ext_hdr_t hbh;
    apn6_t apn6;
    apn_word_t[4] apn_id;
    word_t[TNA_APN_PARAM_WORDS] apn_params;
    pad_octet_t[TNA_PAD_OCTETS] pad_a;
    altmark_t altmark;
    pad_octet_t[TNA_PAD_OCTETS] pad_b;
    trace_mark_t trace_mark;                  // not on the wire: for egress (IfitTrace)
    ioam_opt_t ioam_opt;
    ioam_trace_t ioam_trace;
    WORD_CHUNKS_FULL(ioam_data)
    pad_octet_t[TNA_PAD_OCTETS] pad_c;
    srh_t srh;
    srh_segment_t[TNA_MAX_SRH_SEGMENTS] srh_segments;
    tlv_chunk_t[TNA_SRH_TLV_CHUNKS] srh_tlvs;
    ipv6_t inner_ipv6;                        // SRv6 payload
    ipv4_t inner_ipv4;
    l4_ports_t l4_ports;
    udp_rest_t udp_rest;
    bth_t bth;
    icmpv6_t icmpv6;
}

// One node's IOAM data on Tofino: the 4-octet fields, in Trace-Type bit order (RFC 9197
// 4.4.1; TNA_IOAM_SUPPORTED_TRACE_TYPE).
struct tna_ioam_node_t {
    ioam_hop_t hop;                 // bit 0
    ioam_ifs_t ifs;                 // bit 1
    ioam_u32_t ts_sec;              // bit 2
    ioam_u32_t ts_frac;             // bit 3
    ioam_u32_t transit_delay;       // bit 4
    ioam_u32_t namespace_data;      // bit 5
    ioam_u32_t queue_depth;         // bit 6
    ioam_u32_t checksum_complement; // bit 7
    ioam_u32_t buffer_occupancy;    // bit 11
}

// Egress parses only what egress writes: the outer IPv6 header (ECN, or a report's), and the
// IOAM trace up to this node's slot (the HBH before it in the compact layouts IfitTrace
// accepts, the free words, then the slot: one header per Trace-Type bit). The rest of the
// packet is payload.
struct tna_egress_headers_t {
    egress_info_t info;
#ifdef WITH_TRACE_EXPORT
    report_info_t report_info;
#endif
    packet_in_header_t packet_in;
    ethernet_t ethernet;
    ipv6_t ipv6;
#ifdef WITH_TRACE_EXPORT
    udp_t report_udp;
    report_t report;
#endif
    ext_hdr_t hbh;
    apn6_t apn6;
    apn_word_t apn_id;
    pad_octet_t[2] pad_a;
    altmark_t altmark;
    pad_octet_t[2] pad_b;
    trace_mark_t trace_mark;    // parsed, not emitted
    ioam_opt_t ioam_opt;
    ioam_trace_t ioam_trace;
    WORD_CHUNKS(ioam_free)      // at most RemainingLen - 1 words (NodeLen >= 1)
    tna_ioam_node_t ioam_node;
}

// An elephant report on Tofino: v1model's elephant_digest_t without the APN ID and the
// window, which do not fit Tofino's 48-octet digests (the SR policy stands for the APN policy).
struct tna_elephant_digest_t {
    ipv6_addr_t src;
    ipv6_addr_t dst;
    bit<8> proto;
    bit<16> sport;
    bit<16> dport;
    bit<24> dest_qp;
    bit<8> key_type;
    bit<16> sr_policy_id;
    bit<32> estimate;
}

// Zero at the start (@pa_auto_init_metadata): every "none" value below is 0.
@pa_auto_init_metadata
struct tna_ingress_metadata_t {
    // Drop reasons (DROP_*), one field per control that finds them, so that the controls do
    // not wait on each other: the verdict (icpn.p4) picks one, in v1model's order.
    bit<8> parse_drop;           // what the parser found wrong
    bit<8> sanity_drop;          // control/sanity.p4: the parser's
    bit<8> ioam_drop;            // ... and the IOAM trace's lengths
    bit<8> station_drop;         // not IPv6, not for this station (control/routing.p4)
    bit<8> end_drop;             // control/srv6.p4, Srv6Endpoint
    bit<8> srh_error;            // an SRH the parser did not process: the drop at a SID
    bit<8> encap_drop;           // control/srv6.p4, Srv6Headend
    bit<8> route_drop;           // control/routing.p4
    bit<8> acl_verdict;          // TNA_ACL_*
    bool beyond_parser;          // the parser stopped before the end of the headers
    bool is_ipv6;                // the packet arrived as IPv6 (the parser's word)
    bit<20> flow_label;          // a headend's outer flow label (control/srv6.p4)
    bit<16> l4_src_port;
    bit<16> l4_dst_port;
    bit<32> apn_id;              // 32-bit IDs; the last word of a wider one (control/apn.p4)
    bit<32> class_apn_id;        // what the classifier found
    bool apn_classified;
    bool apn_known;              // the APN policy applies (control/apn.p4)
    bit<24> dest_qp;
    bit<8> trace_data_words;     // 4-octet words of trace data (the parser's count)
    // What ingress decided about the trace for egress (control/ifit.p4, IfitTrace).
    bool trace_compact;          // in a layout the egress parser walks (IfitTrace)
    bit<8> trace_free_words;
    bit<8> trace_remaining;      // RemainingLen and NodeLen, byte-aligned (control/sanity.p4)
    bit<8> trace_node_len;
    bit<8> report_hbh_units;     // the original's HBH and SRH in 8-octet units (report_info_t)
    bit<8> report_srh_units;
    bit<8> port_role;
    bit<16> sr_policy_id;
    bit<16> list_id;             // the segment list H.Encaps pushed
    bit<8> telemetry_profile;
    bit<8> sketch_profile;
    bool encap_go;               // this headend encapsulates (control/srv6.p4)
    bool encapsulated;
    bool decapsulated;
    bool end_next;               // End / End.X: on to the next segment (meta.fwd_dst)
    bool next_hop_set;
    bit<8> end_behaviour;        // what my_sid chose (TNA_END_*)
    // The flow key of the sketch and of pinned elephants (control/sketch.p4).
    bool sketch_on;
    bit<8> fk_proto;
    bit<16> fk_sport;
    bit<16> fk_dport;
    bit<24> fk_qp;
    bit<8> fk_type;              // FLOW_KEY_*
    bit<32> estimate;            // the sketch's estimate for this packet's flow
    bit<1> sk_bytes;             // the profile counts bytes
    bit<32> sk_threshold;
    bit<32> sk_operand0;         // row 0's operand: 1 or the frame's length (control/sketch.p4)
    bit<32> sk_operand1;         // rows 1 and 2's: row 0's count or the frame's length
    bit<32> sk_operand2;         // row 1's count (packets), for the estimate
    bit<32> sk_fingerprint;      // CRC-32 of the flow key: rows 0 and 1, the report's dedup
    bit<16> sk_index2;           // CRC-16 of the flow key: row 2
    bit<32> sk_dedup_key;        // the report's dedup word: the CRC-32 XOR the window
    bit<32> sk_short01;          // threshold |-| min(rows 0, 1): 0 once reached
    bit<32> sk_short2;           // threshold |-| row 2
    // The telemetry profile (ifit_profile) for the headend's insertion.
    bit<1> tm_altmark;
    bit<ALTMARK_SLOT_BITS> tm_slot;   // the FlowMonID's counter slot
    bit<8> tm_period_log2_us;
    bit<32> tm_delay_mask;
    bit<1> tm_ioam;
    bit<8> tm_free_words;
    // Forwarding: the destination routing looks up, and the ECMP hash (control/routing.p4).
    // The parser puts End's next segment here first (list[Segments Left - 1]).
    ipv6_addr_t fwd_dst;
    bit<16> ecmp_hash;
    MirrorId_t report_session;
    PortId_t report_egress_port; // where the original goes: the report's trace records it
    bit<8> report_flags;         // report_mirror_t's first octet: mirrored, -, -, fill, overflow
    bit<32> window;              // sketch window of this packet
}

@pa_auto_init_metadata
struct tna_egress_metadata_t {
    bit<16> residual;            // one's complement sum of a report's payload (its UDP checksum)
    bit<16> prefix_octets;       // octets of HBH before the IOAM option (the egress walk's)
}

#endif  // ICPN_TNA_HEADERS_P4
