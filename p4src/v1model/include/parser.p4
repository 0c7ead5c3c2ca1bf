// Parser and deparser for v1model.
//
// Chain: [packet_out] Ethernet -> IPv6 -> [HBH] -> [SRH] -> [IPv6 | IPv4] -> [TCP/UDP | ICMPv6]
// -> [BTH on UDP 4791]. Every loop is bounded by a header stack's size. Malformed input ends
// in `reject` with a specific error; v1model hands such packets to ingress with
// standard_metadata.parser_error set, and ingress drops and counts them by reason.
//
// HBH options: an APN6 option is recognised as the *first* option (where DESIGN.md 2.2 puts
// it); every other option is kept in `hbh_opts`, a header stack, so that the deparser
// re-emits them byte for byte and in order. Unknown options with act = 00 are skipped by
// length (RFC 8200 4.2); others are flagged for ingress to discard.
#ifndef ICPN_V1MODEL_PARSER_P4
#define ICPN_V1MODEL_PARSER_P4

error {
    BadIpVersion,           // the version nibble under the IPv6 EtherType is not 6
    OptionOverrunsHeader,   // an option's length runs past the end of its header
    BadApn6Length,          // APN6 data length too short for its ID type
    BadIoam                 // IOAM NodeLen, RemainingLen or option length inconsistent
}

parser IcpnParser(packet_in packet,
                  out parsed_headers_t hdr,
                  inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        // Metadata starts at zero: simple_switch zeroes every metadata field when a packet
        // arrives (SimpleSwitch::receive_ calls PHV::reset_metadata), so the parser sets
        // nothing here that is only ever zero. Each assignment would cost BMv2 a primitive
        // and a field export per packet (issue 17). The exception is what the parser reads
        // before it writes: an ingress clone is parsed again in a PHV from BMv2's pool,
        // whose metadata still holds the last packet's until the clone's field list is
        // copied in (after the parse).
        meta.has_trace = false;
        transition select(standard_metadata.ingress_port) {
            CPU_PORT: parse_packet_out;
            default: parse_ethernet;
        }
    }

    state parse_packet_out {
        packet.extract(hdr.packet_out);
        transition parse_ethernet;
    }

    state parse_ethernet {
        packet.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_IPV6: parse_ipv6;
            default: accept;
        }
    }

    state parse_ipv6 {
        packet.extract(hdr.ipv6);
        verify(hdr.ipv6.version == 6, error.BadIpVersion);
        transition select(hdr.ipv6.next_hdr) {
            IP_PROTO_HOPOPTS: parse_hbh;
            IP_PROTO_DSTOPTS: parse_doh;
            IP_PROTO_ROUTING: parse_routing;
            IP_PROTO_IPV6: parse_inner_ipv6;
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    // ---- Hop-by-Hop options -------------------------------------------------------------
    state parse_hbh {
        packet.extract(hdr.hbh);
        meta.opt_remaining = ((bit<16>) hdr.hbh.hdr_ext_len << 3) + 6;
        transition select(packet.lookahead<bit<8>>()) {
            APN6_OPT_TYPE: parse_apn6;
            default: parse_hbh_options;
        }
    }

    state parse_apn6 {
        packet.extract(hdr.apn6);
        verify((bit<16>) hdr.apn6.len + 2 <= meta.opt_remaining, error.OptionOverrunsHeader);
        meta.opt_remaining = meta.opt_remaining - (bit<16>) hdr.apn6.len - 2;
        transition select(hdr.apn6.id_type) {
            1: parse_apn_id32;
            2: parse_apn_id64;
            3: parse_apn_id128;
            default: reject_apn6;   // unknown ID type: we cannot know where the ID ends
        }
    }

    state reject_apn6 {
        verify(false, error.BadApn6Length);  // always fails: the parser rejects here
        transition accept;
    }

    state parse_apn_id32 {
        verify(hdr.apn6.len >= 8, error.BadApn6Length);
        packet.extract(hdr.apn_id.next);
        meta.apn_id = (bit<128>) hdr.apn_id[0].word;
        meta.apn_params_bits = ((bit<32>) hdr.apn6.len - 8) << 3;
        transition parse_apn6_params;
    }

    state parse_apn_id64 {
        verify(hdr.apn6.len >= 12, error.BadApn6Length);
        packet.extract(hdr.apn_id.next);
        packet.extract(hdr.apn_id.next);
        meta.apn_id = (bit<128>) (hdr.apn_id[0].word ++ hdr.apn_id[1].word);
        meta.apn_params_bits = ((bit<32>) hdr.apn6.len - 12) << 3;
        transition parse_apn6_params;
    }

    state parse_apn_id128 {
        verify(hdr.apn6.len >= 20, error.BadApn6Length);
        packet.extract(hdr.apn_id.next);
        packet.extract(hdr.apn_id.next);
        packet.extract(hdr.apn_id.next);
        packet.extract(hdr.apn_id.next);
        meta.apn_id = hdr.apn_id[0].word ++ hdr.apn_id[1].word ++ hdr.apn_id[2].word
                      ++ hdr.apn_id[3].word;
        meta.apn_params_bits = ((bit<32>) hdr.apn6.len - 20) << 3;
        transition parse_apn6_params;
    }

    state parse_apn6_params {
        transition select(meta.apn_params_bits) {
            0: parse_hbh_options;
            default: extract_apn6_params;
        }
    }

    state extract_apn6_params {
        packet.extract(hdr.apn6_params, meta.apn_params_bits);
        transition parse_hbh_options;
    }

    state parse_hbh_options {
        transition select(meta.opt_remaining) {
            0: parse_after_hbh;
            default: parse_hbh_option;
        }
    }

    state parse_hbh_option {
        transition select(packet.lookahead<bit<8>>()) {
            IPV6_OPT_PAD1: parse_pad1_run;
            ALTMARK_OPT_TYPE: parse_hbh_altmark;
            IOAM_OPT_TYPE: check_ioam_type;
            default: parse_hbh_tlv;
        }
    }

    state parse_hbh_altmark {
        // Fields are read ahead of the extract: the option itself is kept as raw bytes.
        bit<48> option = packet.lookahead<bit<48>>();
        verify(option[39:32] == 4, error.OptionOverrunsHeader);
        verify(6 <= meta.opt_remaining, error.OptionOverrunsHeader);
        meta.opt_remaining = meta.opt_remaining - 6;
        meta.has_altmark = true;
        meta.flow_mon_id = option[31:12];
        meta.altmark_l = option[11:11];
        // Before or after an IOAM trace (the trace's headers sit between the two stacks).
        transition select(meta.has_trace) {
            false: extract_hbh_altmark;
            true: extract_hbh_post_altmark;
        }
    }

    state extract_hbh_altmark {
        packet.extract(hdr.hbh_opts.next, 48);
        transition parse_hbh_options;
    }

    state extract_hbh_post_altmark {
        packet.extract(hdr.hbh_post.next, 48);
        transition parse_hbh_post;
    }

    // ---- Pad1 runs -----------------------------------------------------------------------
    // Consecutive Pad1 options (RFC 8200 4.2) are kept as one entry of the option stacks, up
    // to 7 of them: alignment never takes more than 7 octets, so any padding a headend puts
    // in a gap costs one entry, PadN or Pad1s alike. The run's length is read ahead within
    // the options left (a lookahead past them could run past a short packet's end).
    state parse_pad1_run {
        transition select(meta.opt_remaining) {
            1: pad1_run_1;
            2: pad1_run_within_2;
            3: pad1_run_within_3;
            4: pad1_run_within_4;
            5: pad1_run_within_5;
            6: pad1_run_within_6;
            default: pad1_run_within_7;
        }
    }

    state pad1_run_within_2 {
        transition select(packet.lookahead<bit<16>>()) {
            16w0 &&& 16w0xffff: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_within_3 {
        transition select(packet.lookahead<bit<24>>()) {
            24w0 &&& 24w0xffffff: pad1_run_3;
            24w0 &&& 24w0xffff00: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_within_4 {
        transition select(packet.lookahead<bit<32>>()) {
            32w0 &&& 32w0xffffffff: pad1_run_4;
            32w0 &&& 32w0xffffff00: pad1_run_3;
            32w0 &&& 32w0xffff0000: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_within_5 {
        transition select(packet.lookahead<bit<40>>()) {
            40w0 &&& 40w0xffffffffff: pad1_run_5;
            40w0 &&& 40w0xffffffff00: pad1_run_4;
            40w0 &&& 40w0xffffff0000: pad1_run_3;
            40w0 &&& 40w0xffff000000: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_within_6 {
        transition select(packet.lookahead<bit<48>>()) {
            48w0 &&& 48w0xffffffffffff: pad1_run_6;
            48w0 &&& 48w0xffffffffff00: pad1_run_5;
            48w0 &&& 48w0xffffffff0000: pad1_run_4;
            48w0 &&& 48w0xffffff000000: pad1_run_3;
            48w0 &&& 48w0xffff00000000: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_within_7 {
        transition select(packet.lookahead<bit<56>>()) {
            56w0 &&& 56w0xffffffffffffff: pad1_run_7;
            56w0 &&& 56w0xffffffffffff00: pad1_run_6;
            56w0 &&& 56w0xffffffffff0000: pad1_run_5;
            56w0 &&& 56w0xffffffff000000: pad1_run_4;
            56w0 &&& 56w0xffffff00000000: pad1_run_3;
            56w0 &&& 56w0xffff0000000000: pad1_run_2;
            default: pad1_run_1;
        }
    }

    state pad1_run_1 { meta.pad1_run_bits = 8; transition pad1_run_extract; }
    state pad1_run_2 { meta.pad1_run_bits = 16; transition pad1_run_extract; }
    state pad1_run_3 { meta.pad1_run_bits = 24; transition pad1_run_extract; }
    state pad1_run_4 { meta.pad1_run_bits = 32; transition pad1_run_extract; }
    state pad1_run_5 { meta.pad1_run_bits = 40; transition pad1_run_extract; }
    state pad1_run_6 { meta.pad1_run_bits = 48; transition pad1_run_extract; }
    state pad1_run_7 { meta.pad1_run_bits = 56; transition pad1_run_extract; }

    state pad1_run_extract {
        meta.opt_remaining = meta.opt_remaining - (bit<16>) (meta.pad1_run_bits >> 3);
        transition select(meta.has_trace) {
            false: extract_hbh_pad1_run;
            true: extract_hbh_post_pad1_run;
        }
    }

    state extract_hbh_pad1_run {
        packet.extract(hdr.hbh_opts.next, meta.pad1_run_bits);
        transition parse_hbh_options;
    }

    state extract_hbh_post_pad1_run {
        packet.extract(hdr.hbh_post.next, meta.pad1_run_bits);
        transition parse_hbh_post;
    }

    // Only traces (IOAM-Opt-Type 0, 1) are parsed field by field; POT, E2E and DEX
    // options are carried as opaque TLVs.
    state check_ioam_type {
        transition select(packet.lookahead<bit<32>>()[7:0]) {
            IOAM_TYPE_PREALLOCATED_TRACE: parse_ioam;
            IOAM_TYPE_INCREMENTAL_TRACE: parse_ioam;
            default: parse_hbh_tlv;
        }
    }

    // ---- IOAM trace (RFC 9197 4.4, RFC 9486) ---------------------------------------------
    state parse_ioam {
        packet.extract(hdr.ioam_opt);
        verify((bit<16>) hdr.ioam_opt.len + 2 <= meta.opt_remaining, error.OptionOverrunsHeader);
        verify(hdr.ioam_opt.len >= 10, error.BadIoam);
        meta.opt_remaining = meta.opt_remaining - (bit<16>) hdr.ioam_opt.len - 2;
        packet.extract(hdr.ioam_trace);
        meta.has_trace = true;
        meta.trace_namespace = hdr.ioam_trace.namespace_id;
        bit<24> tt = hdr.ioam_trace.trace_type;
        meta.ioam_data_bits = ((bit<32>) hdr.ioam_opt.len - 10) << 3;
        // NodeLen implied by the Trace-Type: bits 0-7 and 11 are 4 octets, 8-10 are 8.
        meta.ioam_expected_len = (bit<5>) tt[23:23] + (bit<5>) tt[22:22] + (bit<5>) tt[21:21]
            + (bit<5>) tt[20:20] + (bit<5>) tt[19:19] + (bit<5>) tt[18:18]
            + (bit<5>) tt[17:17] + (bit<5>) tt[16:16] + ((bit<5>) tt[15:15] << 1)
            + ((bit<5>) tt[14:14] << 1) + ((bit<5>) tt[13:13] << 1) + (bit<5>) tt[12:12];
        verify(meta.ioam_data_bits[4:0] == 0, error.BadIoam);
        verify(((bit<32>) hdr.ioam_trace.remaining_len << 5) <= meta.ioam_data_bits,
               error.BadIoam);
        bool fillable = (tt & ~IOAM_SUPPORTED_TRACE_TYPE) == 0;
        transition select(fillable) {
            true: parse_ioam_fillable;
            default: parse_ioam_opaque;
        }
    }

    // Bits we cannot lay out: the whole trace goes on untouched.
    state parse_ioam_opaque {
        meta.ioam_free_bits = 0;
        meta.ioam_filled_bits = meta.ioam_data_bits;
        transition parse_ioam_filled;
    }

    state parse_ioam_fillable {
        verify(hdr.ioam_trace.node_len == meta.ioam_expected_len, error.BadIoam);
        verify(hdr.ioam_trace.node_len != 0, error.BadIoam);
        meta.ioam_filled_bits = meta.ioam_data_bits
                                - ((bit<32>) hdr.ioam_trace.remaining_len << 5);
        transition select(hdr.ioam_trace.remaining_len < (bit<7>) hdr.ioam_trace.node_len) {
            true: parse_ioam_full;
            default: parse_ioam_room;
        }
    }

    // No room for us: the control sets the Overflow flag; nothing is written.
    state parse_ioam_full {
        meta.ioam_overflow = true;
        meta.ioam_free_bits = (bit<32>) hdr.ioam_trace.remaining_len << 5;
        transition parse_ioam_free_then_filled;
    }

    state parse_ioam_free_then_filled {
        transition select(meta.ioam_free_bits) {
            0: parse_ioam_filled;
            default: extract_ioam_free_then_filled;
        }
    }

    state extract_ioam_free_then_filled {
        packet.extract(hdr.ioam_free, meta.ioam_free_bits);
        transition parse_ioam_filled;
    }

    state parse_ioam_room {
        meta.ioam_free_bits = ((bit<32>) hdr.ioam_trace.remaining_len
                               - (bit<32>) hdr.ioam_trace.node_len) << 5;
        meta.ioam_fill = true;
        transition select(meta.ioam_free_bits) {
            0: ioam_node_b0;
            default: extract_ioam_free;
        }
    }

    state extract_ioam_free {
        packet.extract(hdr.ioam_free, meta.ioam_free_bits);
        transition ioam_node_b0;
    }

    // This node's slot: one header per Trace-Type bit that is set, in bit order.
    state ioam_node_b0 {
        transition select(hdr.ioam_trace.trace_type[23:23]) {
            1: extract_ioam_node_b0;
            default: ioam_node_b1;
        }
    }

    state extract_ioam_node_b0 {
        packet.extract(hdr.ioam_node.hop);
        transition ioam_node_b1;
    }

    state ioam_node_b1 {
        transition select(hdr.ioam_trace.trace_type[22:22]) {
            1: extract_ioam_node_b1;
            default: ioam_node_b2;
        }
    }

    state extract_ioam_node_b1 {
        packet.extract(hdr.ioam_node.ifs);
        transition ioam_node_b2;
    }

    state ioam_node_b2 {
        transition select(hdr.ioam_trace.trace_type[21:21]) {
            1: extract_ioam_node_b2;
            default: ioam_node_b3;
        }
    }

    state extract_ioam_node_b2 {
        packet.extract(hdr.ioam_node.ts_sec);
        transition ioam_node_b3;
    }

    state ioam_node_b3 {
        transition select(hdr.ioam_trace.trace_type[20:20]) {
            1: extract_ioam_node_b3;
            default: ioam_node_b4;
        }
    }

    state extract_ioam_node_b3 {
        packet.extract(hdr.ioam_node.ts_frac);
        transition ioam_node_b4;
    }

    state ioam_node_b4 {
        transition select(hdr.ioam_trace.trace_type[19:19]) {
            1: extract_ioam_node_b4;
            default: ioam_node_b5;
        }
    }

    state extract_ioam_node_b4 {
        packet.extract(hdr.ioam_node.transit_delay);
        transition ioam_node_b5;
    }

    state ioam_node_b5 {
        transition select(hdr.ioam_trace.trace_type[18:18]) {
            1: extract_ioam_node_b5;
            default: ioam_node_b6;
        }
    }

    state extract_ioam_node_b5 {
        packet.extract(hdr.ioam_node.namespace_data);
        transition ioam_node_b6;
    }

    state ioam_node_b6 {
        transition select(hdr.ioam_trace.trace_type[17:17]) {
            1: extract_ioam_node_b6;
            default: ioam_node_b7;
        }
    }

    state extract_ioam_node_b6 {
        packet.extract(hdr.ioam_node.queue_depth);
        transition ioam_node_b7;
    }

    state ioam_node_b7 {
        transition select(hdr.ioam_trace.trace_type[16:16]) {
            1: extract_ioam_node_b7;
            default: ioam_node_b8;
        }
    }

    state extract_ioam_node_b7 {
        packet.extract(hdr.ioam_node.checksum_complement);
        transition ioam_node_b8;
    }

    state ioam_node_b8 {
        transition select(hdr.ioam_trace.trace_type[15:15]) {
            1: extract_ioam_node_b8;
            default: ioam_node_b9;
        }
    }

    state extract_ioam_node_b8 {
        packet.extract(hdr.ioam_node.hop_wide);
        transition ioam_node_b9;
    }

    state ioam_node_b9 {
        transition select(hdr.ioam_trace.trace_type[14:14]) {
            1: extract_ioam_node_b9;
            default: ioam_node_b10;
        }
    }

    state extract_ioam_node_b9 {
        packet.extract(hdr.ioam_node.ifs_wide);
        transition ioam_node_b10;
    }

    state ioam_node_b10 {
        transition select(hdr.ioam_trace.trace_type[13:13]) {
            1: extract_ioam_node_b10;
            default: ioam_node_b11;
        }
    }

    state extract_ioam_node_b10 {
        packet.extract(hdr.ioam_node.namespace_data_wide);
        transition ioam_node_b11;
    }

    state ioam_node_b11 {
        transition select(hdr.ioam_trace.trace_type[12:12]) {
            1: extract_ioam_node_b11;
            default: ioam_node_done;
        }
    }

    state extract_ioam_node_b11 {
        packet.extract(hdr.ioam_node.buffer_occupancy);
        transition ioam_node_done;
    }

    state ioam_node_done {
        transition parse_ioam_filled;
    }

    state parse_ioam_filled {
        transition select(meta.ioam_filled_bits) {
            0: parse_hbh_post;
            default: extract_ioam_filled;
        }
    }

    state extract_ioam_filled {
        packet.extract(hdr.ioam_filled, meta.ioam_filled_bits);
        transition parse_hbh_post;
    }

    // Options after the IOAM trace (padding, AltMark, others), kept in order like the others.
    state parse_hbh_post {
        transition select(meta.opt_remaining) {
            0: parse_after_hbh;
            default: parse_hbh_post_option;
        }
    }

    state parse_hbh_post_option {
        transition select(packet.lookahead<bit<8>>()) {
            IPV6_OPT_PAD1: parse_pad1_run;
            ALTMARK_OPT_TYPE: parse_hbh_altmark;
            default: parse_hbh_post_tlv;   // a second IOAM option too: carried as it is
        }
    }

    state parse_hbh_post_tlv {
        bit<16> type_len = packet.lookahead<bit<16>>();
        verify((bit<16>) type_len[7:0] + 2 <= meta.opt_remaining, error.OptionOverrunsHeader);
        packet.extract(hdr.hbh_post.next, ((bit<32>) type_len[7:0] + 2) << 3);
        meta.opt_remaining = meta.opt_remaining - (bit<16>) type_len[7:0] - 2;
        transition select(type_len[15:14]) {
            0: parse_hbh_post;
            default: flag_discard_post_option;
        }
    }

    state flag_discard_post_option {
        meta.discard_option = true;
        transition parse_hbh_post;
    }

    state parse_hbh_tlv {
        bit<16> type_len = packet.lookahead<bit<16>>();
        verify((bit<16>) type_len[7:0] + 2 <= meta.opt_remaining, error.OptionOverrunsHeader);
        packet.extract(hdr.hbh_opts.next, ((bit<32>) type_len[7:0] + 2) << 3);
        meta.opt_remaining = meta.opt_remaining - (bit<16>) type_len[7:0] - 2;
        // RFC 8200 4.2: the two high-order bits say what a node that does not know the
        // option does; only 00 (skip) lets the packet through.
        transition select(type_len[15:14]) {
            0: parse_hbh_options;
            default: flag_discard_option;
        }
    }

    state flag_discard_option {
        meta.discard_option = true;
        transition parse_hbh_options;
    }

    state parse_after_hbh {
        transition select(hdr.hbh.next_hdr) {
            IP_PROTO_DSTOPTS: parse_doh;
            IP_PROTO_ROUTING: parse_routing;
            IP_PROTO_IPV6: parse_inner_ipv6;
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    // ---- Destination Options before the SRH (draft-li-6man-apn-ipv6-encap) --------------
    // Only an APN6 option at its start is read (as in the HBH); everything else is carried
    // untouched: a Destination Options header is the destination's business (RFC 8200 4.6),
    // so a malformed APN6 here is not a drop either, just not an APN mark.
    state parse_doh {
        packet.extract(hdr.doh);
        meta.opt_remaining = ((bit<16>) hdr.doh.hdr_ext_len << 3) + 6;
        bit<24> head = packet.lookahead<bit<24>>();   // type, length, APN-ID-Type
        bool fits = (bit<16>) head[15:8] + 2 <= meta.opt_remaining;
        bool long_enough = (head[7:0] == APN_ID_TYPE_32 && head[15:8] >= 8)
                           || (head[7:0] == APN_ID_TYPE_64 && head[15:8] >= 12)
                           || (head[7:0] == APN_ID_TYPE_128 && head[15:8] >= 20);
        transition select(head[23:16], fits && long_enough, head[7:0]) {
            (APN6_OPT_TYPE, true, APN_ID_TYPE_32): doh_apn_id32;
            (APN6_OPT_TYPE, true, APN_ID_TYPE_64): doh_apn_id64;
            (APN6_OPT_TYPE, true, APN_ID_TYPE_128): doh_apn_id128;
            default: doh_opaque;
        }
    }

    state doh_apn_id32 {
        packet.extract(hdr.doh_apn6);
        packet.extract(hdr.doh_apn_id.next);
        meta.doh_rest_bits = ((bit<32>) meta.opt_remaining - 10) << 3;
        transition doh_rest;
    }

    state doh_apn_id64 {
        packet.extract(hdr.doh_apn6);
        packet.extract(hdr.doh_apn_id.next);
        packet.extract(hdr.doh_apn_id.next);
        meta.doh_rest_bits = ((bit<32>) meta.opt_remaining - 14) << 3;
        transition doh_rest;
    }

    state doh_apn_id128 {
        packet.extract(hdr.doh_apn6);
        packet.extract(hdr.doh_apn_id.next);
        packet.extract(hdr.doh_apn_id.next);
        packet.extract(hdr.doh_apn_id.next);
        packet.extract(hdr.doh_apn_id.next);
        meta.doh_rest_bits = ((bit<32>) meta.opt_remaining - 22) << 3;
        transition doh_rest;
    }

    state doh_opaque {
        meta.doh_rest_bits = (bit<32>) meta.opt_remaining << 3;
        transition doh_rest;
    }

    state doh_rest {
        transition select(meta.doh_rest_bits) {
            0: parse_after_doh;
            default: extract_doh_rest;
        }
    }

    state extract_doh_rest {
        packet.extract(hdr.doh_rest, meta.doh_rest_bits);
        transition parse_after_doh;
    }

    state parse_after_doh {
        transition select(hdr.doh.next_hdr) {
            IP_PROTO_ROUTING: parse_routing;
            IP_PROTO_IPV6: parse_inner_ipv6;
            IP_PROTO_IPV4: parse_inner_ipv4;
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    // ---- Segment Routing Header --------------------------------------------------------
    state parse_routing {
        // Routing type is the third octet; other routing headers are left as payload.
        transition select(packet.lookahead<bit<24>>()[7:0]) {
            SRH_ROUTING_TYPE: parse_srh;
            default: accept;
        }
    }

    state parse_srh {
        packet.extract(hdr.srh);
        meta.srh_active = hdr.srh.segments_left != 0;   // for Srv6Endpoint, before End runs
        // RFC 8754 4.2: only the node that owns the destination processes the SRH; transit
        // forwards it whatever it holds. So an SRH this node could not process is not a
        // parser error: it is carried opaquely (its length is all the parser needs to go on
        // to the payload) and Srv6Endpoint drops it, under meta.srh_error, only at a SID.
        // RFC 8754 4.3.1.1: Segments Left may be Last Entry + 1 (H.Encaps.Red), no more; and
        // the header must hold the Last Entry + 1 segments it lists.
        bit<16> entries = (bit<16>) hdr.srh.last_entry + 1;
        bool consistent = (bit<16>) hdr.srh.segments_left <= entries
                          && (bit<16>) hdr.srh.hdr_ext_len >= entries << 1;
        meta.srh_tlv_bits = ((bit<32>) hdr.srh.hdr_ext_len << 6) - ((bit<32>) entries << 7);
        transition select(consistent, (bit<32>) hdr.srh.last_entry < MAX_SRH_SEGMENTS) {
            (true, true): parse_srh_segment;
            (true, false): srh_too_many_segments;
            default: srh_inconsistent;
        }
    }

    state srh_inconsistent {
        meta.srh_error = DROP_BAD_SRH;
        transition srh_opaque;
    }

    state srh_too_many_segments {
        meta.srh_error = DROP_TOO_MANY_HEADERS;
        transition srh_opaque;
    }

    // The whole segment list and TLVs as one opaque block (up to 255 * 8 octets).
    state srh_opaque {
        meta.srh_tlv_bits = (bit<32>) hdr.srh.hdr_ext_len << 6;
        transition parse_srh_tlvs;
    }

    state parse_srh_segment {
        packet.extract(hdr.srh_segments.next);
        bool is_next_sid = (bit<32>) hdr.srh.segments_left - 1
                           == hdr.srh_segments.lastIndex;
        transition select(is_next_sid) {
            true: remember_next_sid;
            default: check_last_segment;
        }
    }

    state remember_next_sid {
        meta.next_sid = hdr.srh_segments.last.sid;
        transition check_last_segment;
    }

    state check_last_segment {
        bool done = (bit<32>) hdr.srh.last_entry == hdr.srh_segments.lastIndex;
        transition select(done) {
            true: parse_srh_tlvs;
            default: parse_srh_segment;
        }
    }

    state parse_srh_tlvs {
        transition select(meta.srh_tlv_bits) {
            0: parse_after_srh;
            default: extract_srh_tlvs;
        }
    }

    state extract_srh_tlvs {
        packet.extract(hdr.srh_tlvs, meta.srh_tlv_bits);
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

    // ---- Inner packets (SRv6 payload) --------------------------------------------------
    state parse_inner_ipv6 {
        packet.extract(hdr.inner_ipv6);
        transition select(hdr.inner_ipv6.next_hdr) {
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    state parse_inner_ipv4 {
        packet.extract(hdr.inner_ipv4);
        transition select(hdr.inner_ipv4.ihl, hdr.inner_ipv4.protocol) {
            (5, IP_PROTO_TCP): parse_l4_ports;
            (5, IP_PROTO_UDP): parse_udp;
            default: accept;
        }
    }

    // ---- Transport -----------------------------------------------------------------------
    state parse_l4_ports {
        packet.extract(hdr.l4_ports);
        meta.l4_src_port = hdr.l4_ports.src_port;
        meta.l4_dst_port = hdr.l4_ports.dst_port;
        transition accept;
    }

    state parse_udp {
        packet.extract(hdr.l4_ports);
        packet.extract(hdr.udp_rest);
        meta.l4_src_port = hdr.l4_ports.src_port;
        meta.l4_dst_port = hdr.l4_ports.dst_port;
        transition select(hdr.l4_ports.dst_port) {
            UDP_PORT_ROCEV2: parse_bth;
            default: accept;
        }
    }

    state parse_bth {
        packet.extract(hdr.bth);
        meta.dest_qp = hdr.bth.dest_qp;
        transition accept;
    }

    state parse_icmpv6 {
        packet.extract(hdr.icmpv6);
        transition accept;
    }
}

control IcpnDeparser(packet_out packet, in parsed_headers_t hdr) {
    apply {
        packet.emit(hdr.packet_in);
        packet.emit(hdr.ethernet);
        packet.emit(hdr.encap_ipv6);
        packet.emit(hdr.encap_hbh);
        packet.emit(hdr.encap_apn6);
        packet.emit(hdr.encap_apn_id);
        packet.emit(hdr.encap_pad0);
        packet.emit(hdr.encap_altmark);
        packet.emit(hdr.encap_ioam_opt);
        packet.emit(hdr.encap_ioam_trace);
        packet.emit(hdr.encap_free_32w);
        packet.emit(hdr.encap_free_16w);
        packet.emit(hdr.encap_free_8w);
        packet.emit(hdr.encap_free_4w);
        packet.emit(hdr.encap_free_2w);
        packet.emit(hdr.encap_free_1w);
        packet.emit(hdr.encap_ioam_node);
        packet.emit(hdr.encap_pad);
        packet.emit(hdr.encap_srh);
        packet.emit(hdr.encap_segments);
        packet.emit(hdr.ipv6);
        packet.emit(hdr.report_udp);
        packet.emit(hdr.report);
        packet.emit(hdr.hbh);
        packet.emit(hdr.apn6);
        packet.emit(hdr.apn_id);
        packet.emit(hdr.apn6_params);
        packet.emit(hdr.hbh_opts);
        packet.emit(hdr.ioam_opt);
        packet.emit(hdr.ioam_trace);
        packet.emit(hdr.ioam_free);
        packet.emit(hdr.ioam_node);
        packet.emit(hdr.ioam_filled);
        packet.emit(hdr.hbh_post);
        packet.emit(hdr.doh);
        packet.emit(hdr.doh_apn6);
        packet.emit(hdr.doh_apn_id);
        packet.emit(hdr.doh_rest);
        packet.emit(hdr.srh);
        packet.emit(hdr.srh_segments);
        packet.emit(hdr.srh_tlvs);
        packet.emit(hdr.inner_ipv6);
        packet.emit(hdr.inner_ipv4);
        packet.emit(hdr.l4_ports);
        packet.emit(hdr.udp_rest);
        packet.emit(hdr.bth);
        packet.emit(hdr.icmpv6);
    }
}

#endif  // ICPN_V1MODEL_PARSER_P4
