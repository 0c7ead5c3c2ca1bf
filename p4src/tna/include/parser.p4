// Parsers and deparsers for TNA / T2NA.
//
// Ingress: Ethernet -> IPv6 -> [HBH] -> [SRH] -> [IPv6 | IPv4] -> [TCP/UDP | ICMPv6] -> [BTH],
// like the v1model parser, with what a Tofino parser can do: fixed-size extracts into a fixed
// set of containers, one 8-bit signed counter loaded with immediates, selects on packet bits.
//
// * Hop-by-Hop: the options icpn knows, in one order (APN6 first, padding, AltMark, padding,
//   an IOAM trace, padding), each gap holding at most TNA_PAD_OCTETS of
//   Pad1/PadN. The counter holds the octets of options left (loaded per hdr_ext_len: this
//   bf-p4c cannot load it from a field); an option running past it is BAD_OPTION.
// * Anything past a bound (an unknown option, a longer APN6 or trace, an SRH with more TLVs,
//   an HBH over 126 octets) stops the parser: `beyond_parser`. The outer header is complete,
//   so transit forwarding goes on; what needs the headers behind it drops the packet as
//   BEYOND_PARSER (docs/tofino.md).
// * What v1model's parser verifies with arithmetic (Segments Left against Last Entry, NodeLen
//   against the Trace-Type) is checked in control/sanity.p4: a Tofino parser compares only
//   packet bits with constants.
//
// Egress parses only up to what it writes: the IOAM trace up to this node's slot. Tofino 1's
// egress parser reaches 160 octets into a packet, so ingress asks for a fill only when the
// slot ends within that (control/ifit.p4, IfitTrace).
#ifndef ICPN_TNA_PARSER_P4
#define ICPN_TNA_PARSER_P4

// ---- Hop-by-Hop helpers -----------------------------------------------------------------
// Load the options counter: octets of options = 8 * hdr_ext_len + 6.
#define HBH_LEN_STATE(k) \
    state hbh_len_##k { hbh_left.set((bit<8>) (8 * k + 6)); transition hbh_first; }

// Padding in one gap between known options: Pad1, or PadN with 0 to 2 octets of data.
#define HBH_GAP_STATES(gap, back)                                                            \
    state gap##_pad1 { pkt.extract(hdr.gap.next); hbh_left.decrement(1); transition back; }  \
    state gap##_padn {                                                                       \
        transition select(pkt.lookahead<bit<16>>()[7:0]) {                                   \
            0: gap##_padn0; 1: gap##_padn1; 2: gap##_padn2;                                  \
            default: beyond_parser;                                                          \
        }                                                                                    \
    }                                                                                        \
    state gap##_padn0 {                                                                      \
        pkt.extract(hdr.gap.next); pkt.extract(hdr.gap.next);                                \
        hbh_left.decrement(2); transition back;                                              \
    }                                                                                        \
    state gap##_padn1 {                                                                      \
        pkt.extract(hdr.gap.next); pkt.extract(hdr.gap.next); pkt.extract(hdr.gap.next);     \
        hbh_left.decrement(3); transition back;                                              \
    }                                                                                        \
    state gap##_padn2 {                                                                      \
        pkt.extract(hdr.gap.next); pkt.extract(hdr.gap.next); pkt.extract(hdr.gap.next);     \
        pkt.extract(hdr.gap.next); hbh_left.decrement(4); transition back;                   \
    }

// An APN6 option with `ids` ID words and `params` parameter words (10 + 4 * ... octets).
#define APN6_STATE(name, ids, params)                                                        \
    state name {                                                                             \
        pkt.extract(hdr.apn6);                                                               \
        APN_WORDS_##ids(hdr.apn_id)                                                          \
        meta.apn_id = hdr.apn_id[ids - 1].word;   /* the last word (control/apn.p4) */       \
        APN_WORDS_##params(hdr.apn_params)                                                   \
        hbh_left.decrement((bit<8>) (6 + 4 * (ids + params)));                               \
        transition hbh_a;                                                                    \
    }
#define APN_WORDS_0(stack)
#define APN_WORDS_1(stack) pkt.extract(stack.next);
#define APN_WORDS_2(stack) APN_WORDS_1(stack) pkt.extract(stack.next);
#define APN_WORDS_4(stack) APN_WORDS_2(stack) APN_WORDS_2(stack)

// An IOAM trace with k words of node data (option length 10 + 4k).
#define TRACE_WORDS_STATE(k)                                                                 \
    state trace_words_##k {                                                                  \
        hbh_left.decrement((bit<8>) (12 + 4 * k));                                           \
        meta.trace_data_words = k;                                                           \
        CHUNKS_##k(EXTRACT_DATA)                                                             \
        transition hbh_c;                                                                    \
    }
#define EXTRACT_DATA(n) pkt.extract(hdr.ioam_data_##n);
#define EXTRACT_FREE(n) pkt.extract(hdr.ioam_free_##n);

#if TNA_IOAM_MAX_WORDS != 8 && TNA_IOAM_MAX_WORDS != 16
#error "the trace states below are written for 8 or 16 words (TNA_IOAM_MAX_WORDS)"
#endif

// The SRH segment list, one state per index i: the segment End will need (list[Segments
// Left - 1], RFC 8986 4.1) is also read into meta.fwd_dst as it goes by, so the list itself is
// never touched by the match-action stages (it only rides along to the deparser). bf-p4c
// warns that meta.fwd_dst is re-assigned (Tofino's parser ORs a second write into a field):
// srh_next_* of two indices are never on one packet's path (Segments Left picks one index),
// which the compiler's path analysis does not see.
#define SRH_SEGMENT_STATES(i, next_i)                                                        \
    state srh_seg_##i {                                                                      \
        transition select(hdr.srh.segments_left, hdr.srh.last_entry) {                       \
            (i + 1, i): srh_next_last_##i;                                                   \
            (i + 1, _): srh_next_##i;                                                        \
            (_, i): srh_last_##i;                                                            \
            default: srh_more_##i;                                                           \
        }                                                                                    \
    }                                                                                        \
    state srh_next_last_##i {                                                                \
        meta.fwd_dst = pkt.lookahead<bit<128>>();                                           \
        pkt.extract(hdr.srh_segments.next);                                                  \
        transition srh_tlvs;                                                                 \
    }                                                                                        \
    state srh_next_##i {                                                                     \
        meta.fwd_dst = pkt.lookahead<bit<128>>();                                           \
        pkt.extract(hdr.srh_segments.next);                                                  \
        transition srh_seg_##next_i;                                                         \
    }                                                                                        \
    state srh_last_##i { pkt.extract(hdr.srh_segments.next); transition srh_tlvs; }           \
    state srh_more_##i { pkt.extract(hdr.srh_segments.next); transition srh_seg_##next_i; }

// The chain's end, not reached (Last Entry is below the bound) but named by the last state.
#define SRH_CHAIN_END(n) SRH_CHAIN_END_(n)
#define SRH_CHAIN_END_(n) state srh_seg_##n { transition too_many_segments; }

// Keys of one segment count n: hdr_ext_len = 2n plus the TLV chunks; shorter is malformed.
#define SRH_CASES(n)                                                                         \
    (n - 1, 2 * n): srh_seg_0;                                                               \
    (n - 1, 2 * n + 1): srh_seg_0;                                                           \
    (n - 1, 0 .. 2 * n - 1): bad_srh;

#if (TNA_MAX_SRH_SEGMENTS != 6 && TNA_MAX_SRH_SEGMENTS != 8) || TNA_SRH_TLV_CHUNKS != 1
#error "the SRH states below are written for 6 or 8 segments and one TLV chunk"
#endif

parser IcpnIngressParser(packet_in pkt,
                         out tna_ingress_headers_t hdr,
                         out tna_ingress_metadata_t meta,
                         out ingress_intrinsic_metadata_t ig_intr_md) {
    ParserCounter() hbh_left;   // octets of Hop-by-Hop options not yet parsed

    state start {
        pkt.extract(ig_intr_md);
        pkt.advance(PORT_METADATA_SIZE);
        // What egress gets of this packet (the bridged header), set as the parser starts.
        hdr.bridged.setValid();
        hdr.bridged.mirrored = 0;
        hdr.bridged.to_cpu = 0;
        hdr.bridged.from_cpu = 0;
        hdr.bridged.fill = 0;
        hdr.bridged.overflow = 0;
        hdr.bridged._pad0 = 0;
        hdr.bridged.free_words = 0;
        hdr.bridged.ingress_port = ig_intr_md.ingress_port;
        hdr.bridged._pad2 = 0;
        hdr.bridged.ingress_ts = ig_intr_md.ingress_mac_tstamp[31:0];
#ifdef WITH_TRACE_EXPORT
        // ... and the first bits of what a trace report's copy would get (control/ifit.p4).
        meta.report_flags = 0x80;   // mirrored
#endif
        // Metadata starts at zero (@pa_auto_init_metadata): DROP_NONE, TNA_ACL_NONE,
        // PORT_ROLE_CORE, TNA_END_NONE, false.
        transition select(ig_intr_md.ingress_port) {
            TNA_CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        pkt.extract(hdr.packet_out);
        transition accept;   // sent on as it is: the rest is payload
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_ipv6 {
        pkt.extract(hdr.ipv6);
        meta.is_ipv6 = true;   // the verdict's key: decapsulation later invalidates hdr.ipv6
        transition select(hdr.ipv6.version, hdr.ipv6.next_hdr) {
            (6, IP_PROTO_HOPOPTS): parse_hbh;
            (6, IP_PROTO_ROUTING): parse_routing;
            (6, IP_PROTO_IPV6): parse_inner_ipv6;
            (6, IP_PROTO_IPV4): parse_inner_ipv4;
            (6, IP_PROTO_TCP): parse_l4_ports;
            (6, IP_PROTO_UDP): parse_udp;
            (6, IP_PROTO_ICMPV6): parse_icmpv6;
            (6, _): accept;
            default: bad_version;   // Linux counts these as Ip6InHdrErrors
        }
    }

    // ---- Hop-by-Hop options -------------------------------------------------------------
    state parse_hbh {
        pkt.extract(hdr.hbh);
        transition select(hdr.hbh.hdr_ext_len) {
            0: hbh_len_0; 1: hbh_len_1; 2: hbh_len_2; 3: hbh_len_3; 4: hbh_len_4;
            5: hbh_len_5; 6: hbh_len_6; 7: hbh_len_7; 8: hbh_len_8; 9: hbh_len_9;
            10: hbh_len_10; 11: hbh_len_11; 12: hbh_len_12; 13: hbh_len_13; 14: hbh_len_14;
            15: hbh_len_15;
            default: beyond_parser;   // over 126 octets of options: more than the counter holds
        }
    }
    HBH_LEN_STATE(0) HBH_LEN_STATE(1) HBH_LEN_STATE(2) HBH_LEN_STATE(3) HBH_LEN_STATE(4)
    HBH_LEN_STATE(5) HBH_LEN_STATE(6) HBH_LEN_STATE(7) HBH_LEN_STATE(8) HBH_LEN_STATE(9)
    HBH_LEN_STATE(10) HBH_LEN_STATE(11) HBH_LEN_STATE(12) HBH_LEN_STATE(13) HBH_LEN_STATE(14)
    HBH_LEN_STATE(15)

    // APN6 is recognised as the first option (DESIGN.md 2.2), with a 32/64/128-bit ID and up
    // to TNA_APN_PARAM_WORDS words of parameters.
    state hbh_first {
        transition select(pkt.lookahead<bit<32>>()[31:24], pkt.lookahead<bit<32>>()[23:16],
                          pkt.lookahead<bit<32>>()[15:8]) {
            (APN6_OPT_TYPE, 8, APN_ID_TYPE_32): apn6_32_0;
            (APN6_OPT_TYPE, 12, APN_ID_TYPE_32): apn6_32_1;
            (APN6_OPT_TYPE, 16, APN_ID_TYPE_32): apn6_32_2;
            (APN6_OPT_TYPE, 12, APN_ID_TYPE_64): apn6_64_0;
            (APN6_OPT_TYPE, 16, APN_ID_TYPE_64): apn6_64_1;
            (APN6_OPT_TYPE, 20, APN_ID_TYPE_64): apn6_64_2;
            (APN6_OPT_TYPE, 20, APN_ID_TYPE_128): apn6_128_0;
            (APN6_OPT_TYPE, 24, APN_ID_TYPE_128): apn6_128_1;
            (APN6_OPT_TYPE, 28, APN_ID_TYPE_128): apn6_128_2;
            (APN6_OPT_TYPE, _, _): apn6_other;
            default: hbh_a;
        }
    }
    APN6_STATE(apn6_32_0, 1, 0) APN6_STATE(apn6_32_1, 1, 1) APN6_STATE(apn6_32_2, 1, 2)
    APN6_STATE(apn6_64_0, 2, 0) APN6_STATE(apn6_64_1, 2, 1) APN6_STATE(apn6_64_2, 2, 2)
    APN6_STATE(apn6_128_0, 4, 0) APN6_STATE(apn6_128_1, 4, 1) APN6_STATE(apn6_128_2, 4, 2)

    // An APN6 option of another shape: too short for its ID type, or an unknown type (where
    // the ID ends is unknown): malformed; longer parameters: past the parser's bound.
    state apn6_other {
        transition select(pkt.lookahead<bit<32>>()[23:16], pkt.lookahead<bit<32>>()[15:8]) {
            (0 .. 7, APN_ID_TYPE_32): bad_option;
            (0 .. 11, APN_ID_TYPE_64): bad_option;
            (0 .. 19, APN_ID_TYPE_128): bad_option;
            (_, APN_ID_TYPE_32): beyond_parser;
            (_, APN_ID_TYPE_64): beyond_parser;
            (_, APN_ID_TYPE_128): beyond_parser;
            default: bad_option;
        }
    }

    // The option walk: hbh_a before an AltMark or a trace, hbh_b after an AltMark, hbh_c
    // after the trace. The counter says where HBH ends.
    state hbh_a {
        transition select(hbh_left.is_zero(), hbh_left.is_negative(), pkt.lookahead<bit<8>>()) {
            (true, _, _): parse_after_hbh;
            (_, true, _): bad_option;
            (_, _, IPV6_OPT_PAD1): pad_a_pad1;
            (_, _, IPV6_OPT_PADN): pad_a_padn;
            (_, _, ALTMARK_OPT_TYPE): parse_altmark;
            (_, _, IOAM_OPT_TYPE): parse_ioam;
            default: hbh_unknown;
        }
    }
    HBH_GAP_STATES(pad_a, hbh_a)

    state parse_altmark {
        transition select(pkt.lookahead<bit<16>>()[7:0]) {
            4: extract_altmark;
            default: bad_option;   // RFC 9343: data length 4
        }
    }

    state extract_altmark {
        pkt.extract(hdr.altmark);
        hbh_left.decrement(6);
        transition hbh_b;
    }

    state hbh_b {
        transition select(hbh_left.is_zero(), hbh_left.is_negative(), pkt.lookahead<bit<8>>()) {
            (true, _, _): parse_after_hbh;
            (_, true, _): bad_option;
            (_, _, IPV6_OPT_PAD1): pad_b_pad1;
            (_, _, IPV6_OPT_PADN): pad_b_padn;
            (_, _, IOAM_OPT_TYPE): parse_ioam;
            default: hbh_unknown;
        }
    }
    HBH_GAP_STATES(pad_b, hbh_b)

    // ---- IOAM trace (RFC 9197 4.4, RFC 9486): POT, E2E and DEX are past the parser -------
    state parse_ioam {
        transition select(pkt.lookahead<bit<32>>()[7:0]) {
            IOAM_TYPE_PREALLOCATED_TRACE: parse_trace;
            IOAM_TYPE_INCREMENTAL_TRACE: parse_trace;
            default: hbh_unknown;
        }
    }

    state parse_trace {
        pkt.extract(hdr.ioam_opt);
        pkt.extract(hdr.ioam_trace);
        transition select(hdr.ioam_opt.len) {
            10: trace_words_0; 14: trace_words_1; 18: trace_words_2; 22: trace_words_3;
            26: trace_words_4; 30: trace_words_5; 34: trace_words_6; 38: trace_words_7;
            42: trace_words_8;
#if TNA_IOAM_MAX_WORDS > 8
            46: trace_words_9; 50: trace_words_10; 54: trace_words_11;
            58: trace_words_12; 62: trace_words_13; 66: trace_words_14; 70: trace_words_15;
            74: trace_words_16;
#endif
            0 .. 9: bad_ioam;
            (11 + 4 * TNA_IOAM_MAX_WORDS) .. 255: beyond_parser;
            default: bad_ioam;   // trace data is a whole number of 4-octet words
        }
    }
    TRACE_WORDS_STATE(0) TRACE_WORDS_STATE(1) TRACE_WORDS_STATE(2) TRACE_WORDS_STATE(3)
    TRACE_WORDS_STATE(4) TRACE_WORDS_STATE(5) TRACE_WORDS_STATE(6) TRACE_WORDS_STATE(7)
    TRACE_WORDS_STATE(8)
#if TNA_IOAM_MAX_WORDS > 8
    TRACE_WORDS_STATE(9) TRACE_WORDS_STATE(10) TRACE_WORDS_STATE(11)
    TRACE_WORDS_STATE(12) TRACE_WORDS_STATE(13) TRACE_WORDS_STATE(14) TRACE_WORDS_STATE(15)
    TRACE_WORDS_STATE(16)
#endif

    // After the trace: padding only. An AltMark there (the order Linux's encapsulation may
    // produce) is past the parser: forwarded, not counted (docs/tofino.md).
    state hbh_c {
        transition select(hbh_left.is_zero(), hbh_left.is_negative(), pkt.lookahead<bit<8>>()) {
            (true, _, _): parse_after_hbh;
            (_, true, _): bad_option;
            (_, _, IPV6_OPT_PAD1): pad_c_pad1;
            (_, _, IPV6_OPT_PADN): pad_c_padn;
            default: hbh_unknown;
        }
    }
    HBH_GAP_STATES(pad_c, hbh_c)

    // RFC 8200 4.2: an unknown option with act bits 00 is skipped. The Tofino parser cannot
    // skip an arbitrary length and re-emit it, so it stops there; 01, 10, 11 say discard.
    state hbh_unknown {
        transition select(pkt.lookahead<bit<8>>()[7:6]) {
            0: beyond_parser;
            default: discard_option;
        }
    }

    state parse_after_hbh {
        transition select(hdr.hbh.next_hdr) {
            IP_PROTO_ROUTING: parse_routing;
            IP_PROTO_IPV6: parse_inner_ipv6;
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    // ---- Segment Routing Header ---------------------------------------------------------
    state parse_routing {
        transition select(pkt.lookahead<bit<24>>()[7:0]) {
            SRH_ROUTING_TYPE: parse_srh;
            default: accept;   // other routing headers are payload
        }
    }

    state parse_srh {
        pkt.extract(hdr.srh);
        transition select(hdr.srh.last_entry, hdr.srh.hdr_ext_len) {
            SRH_CASES(1) SRH_CASES(2) SRH_CASES(3) SRH_CASES(4)
            SRH_CASES(5) SRH_CASES(6)
#if TNA_MAX_SRH_SEGMENTS > 6
            SRH_CASES(7) SRH_CASES(8)
#endif
            (0 .. TNA_MAX_SRH_SEGMENTS - 1, _): beyond_parser;   // more TLVs than carried
            default: too_many_segments;
        }
    }
    SRH_SEGMENT_STATES(0, 1) SRH_SEGMENT_STATES(1, 2) SRH_SEGMENT_STATES(2, 3)
    SRH_SEGMENT_STATES(3, 4) SRH_SEGMENT_STATES(4, 5) SRH_SEGMENT_STATES(5, 6)
#if TNA_MAX_SRH_SEGMENTS > 6
    SRH_SEGMENT_STATES(6, 7) SRH_SEGMENT_STATES(7, 8)
#endif
    SRH_CHAIN_END(TNA_MAX_SRH_SEGMENTS)

    // TLVs: none, or one 8-octet chunk (hdr_ext_len = 2 * (Last Entry + 1) + chunks).
    state srh_tlvs {
        transition select(hdr.srh.hdr_ext_len[0:0]) {
            0: parse_after_srh;
            1: srh_tlv_chunk;
        }
    }

    state srh_tlv_chunk {
        pkt.extract(hdr.srh_tlvs.next);
        transition parse_after_srh;
    }

    state parse_after_srh {
        transition select(hdr.srh.next_hdr) {
            IP_PROTO_IPV6: parse_inner_ipv6;
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    // ---- Inner packets, transport --------------------------------------------------------
    state parse_inner_ipv6 {
        pkt.extract(hdr.inner_ipv6);
        transition select(hdr.inner_ipv6.next_hdr) {
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    state parse_inner_ipv4 {
        pkt.extract(hdr.inner_ipv4);
        transition select(hdr.inner_ipv4.ihl, hdr.inner_ipv4.protocol) {
            (5, IP_PROTO_TCP): parse_l4_ports;
            (5, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    state parse_l4_ports {
        pkt.extract(hdr.l4_ports);
        meta.l4_src_port = hdr.l4_ports.src_port;
        meta.l4_dst_port = hdr.l4_ports.dst_port;
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.l4_ports);
        pkt.extract(hdr.udp_rest);
        meta.l4_src_port = hdr.l4_ports.src_port;
        meta.l4_dst_port = hdr.l4_ports.dst_port;
        transition select(hdr.l4_ports.dst_port) {
            UDP_PORT_ROCEV2: parse_bth;
            default: accept;
        }
    }

    state parse_bth {
        pkt.extract(hdr.bth);
        meta.dest_qp = hdr.bth.dest_qp;
        transition accept;
    }

    state parse_icmpv6 {
        pkt.extract(hdr.icmpv6);
        transition accept;
    }

    // ---- Where the parser stops early -----------------------------------------------------
    state beyond_parser { meta.beyond_parser = true; transition accept; }
    state bad_version { meta.parse_drop = DROP_BAD_IP_VERSION; transition accept; }
    state bad_option { meta.parse_drop = DROP_BAD_OPTION; transition accept; }
    state bad_ioam { meta.parse_drop = DROP_BAD_IOAM; transition accept; }
    // An SRH this node cannot process stops the parser but is no parse error: transit nodes
    // forward it on the outer header (RFC 8754 4.2); Srv6Endpoint drops it at a local SID.
    state bad_srh { meta.srh_error = DROP_BAD_SRH; transition accept; }
    state too_many_segments { meta.srh_error = DROP_TOO_MANY_HEADERS; transition accept; }
    state discard_option { meta.parse_drop = DROP_OPTION_DISCARD; transition accept; }
}

control IcpnIngressDeparser(packet_out pkt,
                            inout tna_ingress_headers_t hdr,
                            in tna_ingress_metadata_t meta,
                            in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
#ifndef WITHOUT_SKETCH
    Digest<tna_elephant_digest_t>(TNA_DIGEST_ELEPHANT) elephant_digest;
#endif
#ifdef WITH_TRACE_EXPORT
    Mirror() report_mirror;
#endif
    Checksum() ipv4_checksum;

    apply {
#ifndef WITHOUT_SKETCH
        if (ig_dprsr_md.digest_type == TNA_DIGEST_ELEPHANT) {
            elephant_digest.pack({ hdr.ipv6.src_addr, hdr.ipv6.dst_addr, meta.fk_proto,
                                   meta.fk_sport, meta.fk_dport, meta.fk_qp, meta.fk_type,
                                   meta.sr_policy_id, meta.estimate });
        }
#endif
#ifdef WITH_TRACE_EXPORT
        if (ig_dprsr_md.mirror_type == (MirrorType_t) TNA_MIRROR_REPORT) {
            // report_mirror_t: its own first octets, the bridged header's port and time, and
            // the original's extension header lengths.
            report_mirror.emit<report_mirror_t>(meta.report_session, {
                meta.report_flags[7:7], meta.report_flags[6:6], meta.report_flags[5:5],
                meta.report_flags[4:4], meta.report_flags[3:3], meta.report_flags[2:0],
                meta.trace_free_words, hdr.bridged._pad2,
                hdr.bridged.ingress_port, hdr.bridged.ingress_ts, meta.report_hbh_units,
                meta.report_srh_units, 7w0, meta.report_egress_port });
        }
#endif
        // End.DT4 forwards the inner IPv4 packet with one TTL spent.
        if (hdr.inner_ipv4.isValid()) {
            hdr.inner_ipv4.hdr_checksum = ipv4_checksum.update({
                hdr.inner_ipv4.version, hdr.inner_ipv4.ihl, hdr.inner_ipv4.dscp_ecn,
                hdr.inner_ipv4.total_len, hdr.inner_ipv4.identification, hdr.inner_ipv4.flags,
                hdr.inner_ipv4.frag_offset, hdr.inner_ipv4.ttl, hdr.inner_ipv4.protocol,
                hdr.inner_ipv4.src_addr, hdr.inner_ipv4.dst_addr });
        }
        pkt.emit(hdr);
    }
}

// ---- Egress ------------------------------------------------------------------------------
// This node's slot: one header per Trace-Type bit that is set, in bit order (RFC 9197 4.4.1).
// Each state matches its bit within the whole octet (bits 0-7, then 8-15), so that all of
// them read the one match register the parser kept the octet in.
#define SLOT_BIT(b, bit_index, field, next_b)                                                \
    state slot_b##b {                                                                        \
        transition select(hdr.ioam_trace.trace_type[23 - 8 * ((b) / 8):16 - 8 * ((b) / 8)]) {  \
            1 << (7 - (b) % 8) &&& 1 << (7 - (b) % 8): slot_x##b;                             \
            default: next_b;                                                                 \
        }                                                                                    \
    }                                                                                        \
    state slot_x##b { pkt.extract(hdr.ioam_node.field); transition next_b; }
#define FREE_STATE(k) state free_##k { CHUNKS_##k(EXTRACT_FREE) transition slot_b0; }
// The egress walk to the trace, one state per offset x into the HBH (octets): padding before
// an AltMark (gap a, at most two octets), the AltMark, padding after it (gap b), the trace.
#define IS_PAD1 IPV6_OPT_PAD1 ++ 8w0 &&& 0xff00
#define IS_PADN0 IPV6_OPT_PADN ++ 8w0
#define IS_ALTMARK ALTMARK_OPT_TYPE ++ 8w4
#define IS_IOAM IOAM_OPT_TYPE ++ 8w0 &&& 0xff00
#define IS_MARK TNA_TRACE_MARK ++ 8w0 &&& 0xff00
#define WALK_GAP_A(x, x1, x2)                                                                \
    state gap_a_##x {                                                                        \
        transition select(pkt.lookahead<bit<16>>()) {                                        \
            IS_PAD1: pad_a1_##x; IS_PADN0: pad_a2_##x; IS_ALTMARK: alt_##x;                  \
            IS_IOAM: at_##x; IS_MARK: marked_trace;                                          \
            default: accept;                                                                 \
        }                                                                                    \
    }                                                                                        \
    state pad_a1_##x { pkt.extract(hdr.pad_a.next); transition gap_a1_##x1; }                \
    state gap_a1_##x1 {                                                                      \
        transition select(pkt.lookahead<bit<16>>()) {                                        \
            IS_PAD1: pad_a11_##x1; IS_ALTMARK: alt_##x1; IS_IOAM: at_##x1;                   \
            IS_MARK: marked_trace; default: accept;                                          \
        }                                                                                    \
    }                                                                                        \
    state pad_a11_##x1 { pkt.extract(hdr.pad_a.next); transition gap_a2_##x2; }              \
    state pad_a2_##x { pkt.extract(hdr.pad_a.next); pkt.extract(hdr.pad_a.next);             \
                       transition gap_a2_##x2; }                                             \
    state gap_a2_##x2 {                                                                      \
        transition select(pkt.lookahead<bit<16>>()) {                                        \
            IS_ALTMARK: alt_##x2; IS_IOAM: at_##x2; IS_MARK: marked_trace;                   \
            default: accept;                                                                 \
        }                                                                                    \
    }
#define WALK_ALTMARK(x, x6) \
    state alt_##x { pkt.extract(hdr.altmark); transition gap_b_##x6; }
#define WALK_GAP_B(x, x1, x2)                                                                \
    state gap_b_##x {                                                                        \
        transition select(pkt.lookahead<bit<16>>()) {                                        \
            IS_PAD1: pad_b1_##x; IS_PADN0: pad_b2_##x; IS_IOAM: at_##x;                      \
            IS_MARK: marked_trace; default: accept;                                          \
        }                                                                                    \
    }                                                                                        \
    state pad_b1_##x { pkt.extract(hdr.pad_b.next); transition gap_b1_##x1; }                \
    state gap_b1_##x1 {                                                                      \
        transition select(pkt.lookahead<bit<16>>()) {                                        \
            IS_PAD1: pad_b11_##x1; IS_IOAM: at_##x1; IS_MARK: marked_trace;                  \
            default: accept;                                                                 \
        }                                                                                    \
    }                                                                                        \
    state pad_b11_##x1 { pkt.extract(hdr.pad_b.next); transition at_##x2; }                  \
    state pad_b2_##x { pkt.extract(hdr.pad_b.next); pkt.extract(hdr.pad_b.next);             \
                       transition at_##x2; }
#define WALK_TRACE_AT(x) \
    state at_##x { meta.prefix_octets = x; transition walk_trace; }


parser IcpnEgressParser(packet_in pkt,
                        out tna_egress_headers_t hdr,
                        out tna_egress_metadata_t meta,
                        out egress_intrinsic_metadata_t eg_intr_md) {
#ifdef WITH_TRACE_EXPORT
    Checksum() report_payload;
#endif

    state start {
        pkt.extract(eg_intr_md);
        meta.residual = 0;
        meta.prefix_octets = 0;
        pkt.extract(hdr.info);
        transition select(hdr.info.mirrored, hdr.info.to_cpu, hdr.info.from_cpu) {
#ifdef WITH_TRACE_EXPORT
            (1, _, _): parse_report_info;
#endif
            (0, 0, 0): parse_ethernet;
            default: accept;   // packet-in and packet-out leave as they are
        }
    }

#ifdef WITH_TRACE_EXPORT
    state parse_report_info {
        pkt.extract(hdr.report_info);
        transition parse_ethernet;
    }
#endif

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    // A trace to fill, to flag or to report: walk the HBH to it. Ingress asks only for traces
    // behind at most APN6 (32-bit ID), AltMark and two octets of padding (IfitTrace); the
    // walk's states are per offset, so the last one knows how far into the HBH the trace is.
    state parse_ipv6 {
        pkt.extract(hdr.ipv6);
        transition select(hdr.info.fill, hdr.info.overflow, hdr.info.mirrored, hdr.ipv6.next_hdr) {
            (1, _, _, IP_PROTO_HOPOPTS): walk_hbh;
            (_, 1, _, IP_PROTO_HOPOPTS): walk_hbh;
            (_, _, 1, IP_PROTO_HOPOPTS): walk_hbh;
            default: accept;   // ECN marking needs nothing more
        }
    }

    state walk_hbh {
        pkt.extract(hdr.hbh);
        transition select(pkt.lookahead<bit<24>>()) {
            (bit<8>) APN6_OPT_TYPE ++ 8w8 ++ APN_ID_TYPE_32: walk_apn6;
            default: gap_a_2;
        }
    }

    state walk_apn6 {
        pkt.extract(hdr.apn6);
        pkt.extract(hdr.apn_id);
        transition gap_a_12;
    }
    WALK_GAP_A(2, 3, 4) WALK_GAP_A(12, 13, 14)
    WALK_ALTMARK(2, 8) WALK_ALTMARK(3, 9) WALK_ALTMARK(4, 10)
    WALK_ALTMARK(12, 18) WALK_ALTMARK(13, 19) WALK_ALTMARK(14, 20)
    WALK_GAP_B(8, 9, 10) WALK_GAP_B(9, 10, 11) WALK_GAP_B(10, 11, 12)
    WALK_GAP_B(18, 19, 20) WALK_GAP_B(19, 20, 21) WALK_GAP_B(20, 21, 22)
    WALK_TRACE_AT(2) WALK_TRACE_AT(3) WALK_TRACE_AT(4) WALK_TRACE_AT(8) WALK_TRACE_AT(9)
    WALK_TRACE_AT(10) WALK_TRACE_AT(11) WALK_TRACE_AT(12) WALK_TRACE_AT(13) WALK_TRACE_AT(14)
    WALK_TRACE_AT(18) WALK_TRACE_AT(19) WALK_TRACE_AT(20) WALK_TRACE_AT(21) WALK_TRACE_AT(22)

// To the slot after free words k.
#define FREE_CASES(k)                                                                        \
    0: free_0; 1: free_1; 2: free_2; 3: free_3; 4: free_4; 5: free_5; 6: free_6; 7: free_7;  \
    FREE_CASES_16
#if TNA_IOAM_MAX_WORDS > 8
#define FREE_CASES_16                                                                        \
    8: free_8; 9: free_9; 10: free_10; 11: free_11; 12: free_12; 13: free_13; 14: free_14;   \
    15: free_15;
#else
#define FREE_CASES_16
#endif

    // A trace this node fills: ingress put the free words in front of it.
    state marked_trace {
        pkt.extract(hdr.trace_mark);
        pkt.extract(hdr.ioam_opt);
        pkt.extract(hdr.ioam_trace);
        transition select(hdr.trace_mark.free_words) {
            FREE_CASES(k)
            default: trace_done;
        }
    }

    // A trace without a mark: one to flag as overflowed, or a report's. A report carries this
    // node's data when ingress asked for it (the mirror header's fill and free words).
    state walk_trace {
        pkt.extract(hdr.ioam_opt);
        pkt.extract(hdr.ioam_trace);
#ifdef WITH_TRACE_EXPORT
        transition select(hdr.info.fill, hdr.info.free_words) {
            (0, _): trace_done;
            (1, 0): free_0; (1, 1): free_1; (1, 2): free_2; (1, 3): free_3; (1, 4): free_4;
            (1, 5): free_5; (1, 6): free_6; (1, 7): free_7;
#if TNA_IOAM_MAX_WORDS > 8
            (1, 8): free_8; (1, 9): free_9; (1, 10): free_10; (1, 11): free_11;
            (1, 12): free_12; (1, 13): free_13; (1, 14): free_14; (1, 15): free_15;
#endif
        }
#else
        transition trace_done;
#endif
    }
    FREE_STATE(0) FREE_STATE(1) FREE_STATE(2) FREE_STATE(3) FREE_STATE(4) FREE_STATE(5)
    FREE_STATE(6) FREE_STATE(7)
#if TNA_IOAM_MAX_WORDS > 8
    FREE_STATE(8) FREE_STATE(9) FREE_STATE(10) FREE_STATE(11) FREE_STATE(12) FREE_STATE(13)
    FREE_STATE(14) FREE_STATE(15)
#endif

    SLOT_BIT(0, 23, hop, slot_b1)
    SLOT_BIT(1, 22, ifs, slot_b2)
    SLOT_BIT(2, 21, ts_sec, slot_b3)
    SLOT_BIT(3, 20, ts_frac, slot_b4)
    SLOT_BIT(4, 19, transit_delay, slot_b5)
    SLOT_BIT(5, 18, namespace_data, slot_b6)
    SLOT_BIT(6, 17, queue_depth, slot_b7)
    SLOT_BIT(7, 16, checksum_complement, slot_b11)   // bits 8-10: not filled on Tofino
    SLOT_BIT(11, 12, buffer_occupancy, trace_done)

    // The rest of the packet is payload: for a report, its checksum joins the UDP checksum.
    state trace_done {
#ifdef WITH_TRACE_EXPORT
        report_payload.subtract_all_and_deposit(meta.residual);
#endif
        transition accept;
    }
}

control IcpnEgressDeparser(packet_out pkt,
                           inout tna_egress_headers_t hdr,
                           in tna_egress_metadata_t meta,
                           in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
#ifdef WITH_TRACE_EXPORT
    Checksum() report_udp_checksum;
#endif

    apply {
#ifdef WITH_TRACE_EXPORT
        // RFC 8200 8.1: UDP over IPv6 carries a checksum, over the pseudo header, what the
        // report put in front and (as the parser's residual) the rest of the copied packet.
        if (hdr.report_udp.isValid()) {
            hdr.report_udp.checksum = report_udp_checksum.update({
                hdr.ipv6.src_addr, hdr.ipv6.dst_addr, hdr.report_udp.len, 8w0,
                hdr.ipv6.next_hdr, hdr.report_udp.src_port, hdr.report_udp.dst_port,
                hdr.report_udp.len, hdr.report, hdr.ioam_opt, hdr.ioam_trace,
#if TNA_IOAM_MAX_WORDS > 8
                hdr.ioam_free_8,
#endif
                hdr.ioam_free_4, hdr.ioam_free_2, hdr.ioam_free_1,
                hdr.ioam_node.hop, hdr.ioam_node.ifs, hdr.ioam_node.ts_sec,
                hdr.ioam_node.ts_frac, hdr.ioam_node.transit_delay,
                hdr.ioam_node.namespace_data, hdr.ioam_node.queue_depth,
                hdr.ioam_node.checksum_complement, hdr.ioam_node.buffer_occupancy,
                meta.residual }, true);
        }
#endif
        pkt.emit(hdr.packet_in);
        pkt.emit(hdr.ethernet);
        pkt.emit(hdr.ipv6);
#ifdef WITH_TRACE_EXPORT
        pkt.emit(hdr.report_udp);
        pkt.emit(hdr.report);
#endif
        pkt.emit(hdr.hbh);
        pkt.emit(hdr.apn6);
        pkt.emit(hdr.apn_id);
        pkt.emit(hdr.pad_a);
        pkt.emit(hdr.altmark);
        pkt.emit(hdr.pad_b);
        pkt.emit(hdr.ioam_opt);
        pkt.emit(hdr.ioam_trace);
#if TNA_IOAM_MAX_WORDS > 8
        pkt.emit(hdr.ioam_free_8);
#endif
        pkt.emit(hdr.ioam_free_4);
        pkt.emit(hdr.ioam_free_2);
        pkt.emit(hdr.ioam_free_1);
        pkt.emit(hdr.ioam_node);
    }
}

#endif  // ICPN_TNA_PARSER_P4
