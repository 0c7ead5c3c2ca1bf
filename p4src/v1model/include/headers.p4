// Header and metadata types only v1model can express, and the v1model program's structs.
// Variable-length fields (varbit) carry what the parser does not interpret byte for byte;
// a header stack keeps the Hop-by-Hop options in their order for the deparser.
#ifndef ICPN_V1MODEL_HEADERS_P4
#define ICPN_V1MODEL_HEADERS_P4

#include "../../shared/headers.p4"

// One Hop-by-Hop option the pipeline carries but does not change, byte for byte: a TLV
// (PadN, an option skipped by length), an AltMark option (read ahead by the parser), or a run
// of 1 to 7 Pad1 options (parser.p4). One header type, not a union of one per kind: BMv2
// resets every header instance of the program on every packet (issue 17), and a union stack
// of three members per entry tripled them.
header opt_raw_t {
    varbit<2056> bytes;   // type, length and 255 octets of data at most (RFC 8200 4.2)
}

// Trace data the pipeline carries untouched (free space before this node's slot, data of
// earlier nodes).
header ioam_bytes_t {
    varbit<1952> data;    // 244 octets: an option's 255 less 10, in 4-octet words
}

header apn6_params_t {
    varbit<1976> data;    // APN parameters after the ID: len - 4 - ID octets, at most 247
}

// What a Destination Options header holds past a leading APN6 ID, or all of it when it does
// not start with a well-formed APN6 option: carried untouched (up to 2046 octets).
header doh_rest_t {
    varbit<16368> data;
}

// SRH TLVs (RFC 8754 2.1), carried untouched; or, for an SRH this node does not process
// (parser.p4), the segment list and TLVs together: up to Hdr Ext Len's 255 * 8 octets.
header srh_tlvs_t {
    varbit<16320> data;
}

struct parsed_headers_t {
    packet_out_header_t packet_out;
    packet_in_header_t packet_in;
    ethernet_t ethernet;
    // Pushed by this node's H.Encaps (emitted before everything parsed).
    ipv6_t encap_ipv6;
    ext_hdr_t encap_hbh;
    apn6_t encap_apn6;
    apn_word_t encap_apn_id;
    opt_padn0_t encap_pad0;
    altmark_t encap_altmark;
    ioam_opt_t encap_ioam_opt;
    ioam_trace_t encap_ioam_trace;
    ioam_free_1w_t encap_free_1w;
    ioam_free_2w_t encap_free_2w;
    ioam_free_4w_t encap_free_4w;
    ioam_free_8w_t encap_free_8w;
    ioam_free_16w_t encap_free_16w;
    ioam_free_32w_t encap_free_32w;
    ioam_node_t encap_ioam_node;                   // the headend's own node data
    opt_padn2_t encap_pad;
    srh_t encap_srh;
    srh_segment_t[MAX_ENCAP_SEGMENTS] encap_segments;   // H.Encaps(.Red) push at most 6
    // As parsed.
    ipv6_t ipv6;                                   // the outermost IPv6 header
    udp_t report_udp;                              // a trace report (egress clone) only
    report_t report;
    ext_hdr_t hbh;
    apn6_t apn6;
    apn_word_t[4] apn_id;
    apn6_params_t apn6_params;
    opt_raw_t[MAX_HBH_OPTIONS] hbh_opts;
    ioam_opt_t ioam_opt;                           // an IOAM trace, if the HBH has one
    ioam_trace_t ioam_trace;
    ioam_bytes_t ioam_free;
    ioam_node_t ioam_node;                         // this node's slot
    ioam_bytes_t ioam_filled;
    opt_raw_t[MAX_HBH_OPTIONS_AFTER_IOAM] hbh_post;
    ext_hdr_t doh;                                 // a Destination Options header before
    apn6_t doh_apn6;                               // the SRH: its APN6 option, if first
    apn_word_t[4] doh_apn_id;
    doh_rest_t doh_rest;
    srh_t srh;
    srh_segment_t[MAX_SRH_SEGMENTS] srh_segments;
    srh_tlvs_t srh_tlvs;
    ipv6_t inner_ipv6;                             // SRv6 payload
    ipv4_t inner_ipv4;
    l4_ports_t l4_ports;                           // the first TCP/UDP header
    udp_rest_t udp_rest;
    bth_t bth;
    icmpv6_t icmpv6;
}

struct local_metadata_t {
    bit<16> l4_src_port;   // 0 when the packet has no TCP/UDP header
    bit<16> l4_dst_port;
    bit<8> drop_reason;    // a DROP_* index; DROP_NONE while the packet is alive
    bit<128> apn_id;       // the packet's APN ID (zero-extended), 0 when it carries none
    bit<24> dest_qp;       // RoCEv2 DestQP, 0 for other traffic
    bit<16> opt_remaining; // parser: octets of HBH options not yet parsed
    bit<32> apn_params_bits;
    bit<32> srh_tlv_bits;
    bit<32> pad1_run_bits; // parser: the Pad1 run being extracted, in bits
    bool discard_option;   // an unknown option whose act bits say "discard"
    ipv6_addr_t next_sid;  // SRH: the segment Segments Left - 1 points at
    bit<8> srh_error;      // SRH carried opaquely: the DROP_* a SID of this node gives it
    bool srh_active;       // the packet arrived with an SRH whose Segments Left is not 0
    // The HBH carries alternate marking: its fields follow (kept in a report's clone, whose
    // flags carry the colour).
    @field_list(FIELD_LIST_REPORT)
    bool has_altmark;
    bit<20> flow_mon_id;
    @field_list(FIELD_LIST_REPORT)
    bit<1> altmark_l;
    bit<32> ioam_data_bits;    // parser: trace data octets * 8
    bit<32> ioam_free_bits;
    bit<32> ioam_filled_bits;
    bit<5> ioam_expected_len;  // NodeLen the Trace-Type implies
    // Kept in a trace report's clone (BMv2 resets a clone's metadata): FIELD_LIST_REPORT.
    @field_list(FIELD_LIST_REPORT)
    bool ioam_fill;            // this node writes its data into ioam_node
    @field_list(FIELD_LIST_REPORT)
    bool ioam_overflow;        // the trace has no room left for this node
    // The original packet's ingress time and port: a clone's standard_metadata starts
    // from zero, and the exporter's own node data in the report needs the real ones.
    @field_list(FIELD_LIST_REPORT)
    bit<48> report_ingress_ts;
    @field_list(FIELD_LIST_REPORT)
    bit<9> report_ingress_port;
    // ... and the port the original leaves by: the clone's own egress port is the
    // collector's, which is not the packet's egress interface (RFC 9197 4.4.2.2).
    @field_list(FIELD_LIST_REPORT)
    bit<9> report_egress_port;
    bool has_trace;            // the packet arrived with an IOAM trace (kept after decap)
    bool trace_reported;       // egress: this clone became a trace report
    bit<16> trace_namespace;
    bit<8> telemetry_profile;  // from the APN policy; 0: none
    bit<8> sketch_profile;     // from the APN policy; 0: no elephant detection
    bool sketch_on;            // the flow key below is set
    ipv6_addr_t fk_src;        // the flow key (control/sketch.p4)
    ipv6_addr_t fk_dst;
    bit<8> fk_proto;
    bit<16> fk_sport;
    bit<16> fk_dport;
    bit<24> fk_qp;
    elephant_digest_t elephant;
    // Settings a table's action hands to the code after it (the sketch profile, a tenant's
    // meter, this node's IOAM identity, ECN thresholds). Metadata rather than control locals
    // with initialisers: BMv2 zeroes metadata on arrival, while an initialiser is one more
    // primitive on every packet (issue 17), and p4c cannot see that a hit sets a local.
    bit<8> sk_key_type;
    bit<1> sk_count_bytes;
    bit<8> sk_window_log2_us;
    bit<32> sk_epoch;
    bit<32> sk_threshold;
    bit<2> qos_color;
    bit<32> qos_meter_index;
    bit<1> qos_red_drop;
    bit<6> qos_red_dscp;
    bit<3> qos_red_class;
    bit<19> qos_ecn_threshold;
    bit<24> ioam_node_id;
    bit<56> ioam_node_id_wide;
    bit<32> ioam_namespace_data;
    bit<64> ioam_namespace_data_wide;
    bit<2> ioam_ts_format;
    bit<19> ecn_threshold;
    // The telemetry profile's settings (ifit_profile), for the headend's insertion.
    bit<1> tm_altmark;
    bit<20> tm_flow_mon_id;
    bit<8> tm_period_log2_us;
    bit<8> tm_delay_log2;
    bit<1> tm_ioam;
    bit<16> tm_namespace_id;
    bit<24> tm_trace_type;
    bit<5> tm_node_len;
    bit<8> tm_free_words;
    bit<8> port_role;      // PORT_ROLE_*
    bool apn_classified;   // the classifier gave this packet its APN ID
    bit<16> sr_policy_id;  // 0: no SR policy
    bit<16> sr_list_id;    // the segment list H.Encaps pushed (its load counter)
    bit<1> apn_in_doh;     // the APN policy: the headend writes APN6 in a DOH, not the HBH
    bit<32> doh_rest_bits; // parser: the DOH past its APN6 ID, in bits
    bool encapsulated;     // this node pushed an outer header
    bool decapsulated;     // this node stripped one (End.DT6/DT4)
    bool next_hop_set;     // End.X chose the adjacency: no routing lookup
    // The header routing looks at: the pushed outer one, else the packet's own.
    ipv6_addr_t fwd_src;
    ipv6_addr_t fwd_dst;
    bit<20> fwd_flow_label;
    bit<8> fwd_next_hdr;
    // Routers that answer (control/icmp.p4): why the packet goes to the controller, and the
    // egress port's MTU (0: unchecked).
    bit<8> punt_reason;
    bit<16> egress_mtu;
    bit<2> punt_color;
}

#endif  // ICPN_V1MODEL_HEADERS_P4
