// Header and metadata types shared by every icpn target (v1model today, TNA later).
// Layouts follow the RFCs cited beside each header; bit 0 is the most significant bit.
#ifndef ICPN_HEADERS_P4
#define ICPN_HEADERS_P4

#include "constants.p4"

typedef bit<48> mac_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<9> port_num_t;

// P4Runtime controller headers: prepended to packets exchanged with the controller.
// The 7 padding bits keep the header byte-aligned.
@controller_header("packet_in")
header packet_in_header_t {
    port_num_t ingress_port;
    bit<7> _pad;
}

@controller_header("packet_out")
header packet_out_header_t {
    port_num_t egress_port;
    bit<7> _pad;
}

header ethernet_t {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16> ether_type;
}

// RFC 8200 section 3.
header ipv6_t {
    bit<4> version;
    bit<8> traffic_class;
    bit<20> flow_label;
    bit<16> payload_len;
    bit<8> next_hdr;
    bit<8> hop_limit;
    ipv6_addr_t src_addr;
    ipv6_addr_t dst_addr;
}

// IPv4 (RFC 791): only ever an inner payload of SRv6 here (End.DT4).
header ipv4_t {
    bit<4> version;
    bit<4> ihl;
    bit<8> dscp_ecn;
    bit<16> total_len;
    bit<16> identification;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

// Hop-by-Hop / Destination options header, first two octets (RFC 8200 4.3, 4.6).
header ext_hdr_t {
    bit<8> next_hdr;
    bit<8> hdr_ext_len;   // 8-octet units, not counting the first 8
}

// One IPv6 option the pipeline does not interpret: Pad1, or any TLV (PadN, options we
// skip by length). Kept in a union stack so the deparser re-emits them in their order.
header opt_pad1_t {
    bit<8> type;
}

header opt_tlv_t {
    bit<8> type;
    bit<8> len;
    varbit<2032> data;    // at most 254 octets: an HBH header is at most 2048 octets
}

// Alternate marking (RFC 9343): FlowMonID, loss colour L, delay sample D.
header altmark_t {
    bit<8> type;
    bit<8> len;
    bit<20> flow_mon_id;
    bit<1> l;
    bit<1> d;
    bit<10> reserved;
}

header_union hbh_opt_u {
    opt_pad1_t pad1;
    opt_tlv_t tlv;
    altmark_t altmark;
}

// IOAM option container (RFC 9486 3) and pre-allocated/incremental trace header (RFC 9197
// 4.4). A trace is parsed as: free space before this node's slot | this node's slot (one
// header per Trace-Type bit) | the data earlier nodes filled.
header ioam_opt_t {
    bit<8> type;
    bit<8> len;
    bit<8> reserved;
    bit<8> ioam_type;
}

header ioam_trace_t {
    bit<16> namespace_id;
    bit<5> node_len;
    bit<1> o;
    bit<1> l;
    bit<1> a;
    bit<1> flag_rsv;
    bit<7> remaining_len;
    bit<24> trace_type;
    bit<8> reserved;
}

header ioam_bytes_t {
    varbit<1952> data;    // at most 244 octets of trace data in one option
}

// Zeroed free space a headend pre-allocates, in power-of-two chunks of 4-octet words.
header ioam_free_1w_t { bit<32> zeros; }
header ioam_free_2w_t { bit<64> zeros; }
header ioam_free_4w_t { bit<128> zeros; }
header ioam_free_8w_t { bit<256> zeros; }
header ioam_free_16w_t { bit<512> zeros; }
header ioam_free_32w_t { bit<1024> zeros; }

header ioam_hop_t { bit<8> hop_lim; bit<24> node_id; }
header ioam_ifs_t { bit<16> ingress_if; bit<16> egress_if; }
header ioam_u32_t { bit<32> value; }
header ioam_hop_wide_t { bit<8> hop_lim; bit<56> node_id; }
header ioam_ifs_wide_t { bit<32> ingress_if; bit<32> egress_if; }
header ioam_u64_t { bit<64> value; }

// One node's data, in Trace-Type bit order (RFC 9197 4.4.1): a header per bit.
struct ioam_node_t {
    ioam_hop_t hop;                 // bit 0
    ioam_ifs_t ifs;                 // bit 1
    ioam_u32_t ts_sec;              // bit 2
    ioam_u32_t ts_frac;             // bit 3
    ioam_u32_t transit_delay;       // bit 4
    ioam_u32_t namespace_data;      // bit 5
    ioam_u32_t queue_depth;         // bit 6
    ioam_u32_t checksum_complement; // bit 7
    ioam_hop_wide_t hop_wide;       // bit 8
    ioam_ifs_wide_t ifs_wide;       // bit 9
    ioam_u64_t namespace_data_wide; // bit 10
    ioam_u32_t buffer_occupancy;    // bit 11
}

// APN6 option (draft-li-apn-header), recognised as the first option of an HBH header,
// where DESIGN.md puts it (4n+2, APN header 4-aligned). The ID follows in 32-bit words.
header apn6_t {
    bit<8> type;
    bit<8> len;
    bit<8> id_type;       // 1: 32-bit ID, 2: 64-bit, 3: 128-bit
    bit<8> flags;
    bit<16> para_type;
}

header apn_word_t {
    bit<32> word;
}

header apn6_params_t {
    varbit<1952> data;    // APN parameters after the ID (len - 4 - ID octets)
}

// Segment Routing Header (RFC 8754 2): fixed part, then the segment list, then TLVs.
header srh_t {
    bit<8> next_hdr;
    bit<8> hdr_ext_len;
    bit<8> routing_type;
    bit<8> segments_left;
    bit<8> last_entry;
    bit<8> flags;
    bit<16> tag;
}

header srh_segment_t {
    ipv6_addr_t sid;
}

header srh_tlvs_t {
    varbit<2040> data;
}

// RoCEv2 Base Transport Header (IBA vol. 1, 9.2): DestQP at octet 5.
header bth_t {
    bit<8> opcode;
    bit<8> flags;         // SE, M, pad count, TVer
    bit<16> pkey;
    bit<8> fecn_becn_rsv;
    bit<24> dest_qp;
    bit<8> ack_rsv;
    bit<24> psn;
}

// Only the port words: enough for hashing and ACLs, and valid for TCP and UDP alike.
header l4_ports_t {
    bit<16> src_port;
    bit<16> dst_port;
}

header icmpv6_t {
    bit<8> type;
    bit<8> code;
    bit<16> checksum;
}

// PadN with no data: two octets of alignment before an option at 4n+2 (DESIGN.md 2.3).
header opt_padn0_t {
    bit<8> type;
    bit<8> len;
}

// PadN with two zero octets: pads the headend's HBH to 8 octets (DESIGN.md 2.2 example).
header opt_padn2_t {
    bit<8> type;
    bit<8> len;
    bit<16> zeros;
}

// icpn trace report (docs/telemetry-report.md), after IPv6/UDP: then the IOAM option as
// the packet carried it, then the inner packet's IP header and first 4 L4 octets.
header report_t {
    bit<4> version;        // 1
    bit<4> type;           // 1: IOAM trace at decapsulation
    bit<8> flags;          // 0x80: the trace had overflowed
    bit<16> reserved;
    bit<32> node_id;       // the exporting (decapsulating) node
    bit<32> seconds;       // since the switch started (BMv2 has no wall clock)
    bit<32> nanoseconds;
    bit<32> sequence;      // per exporting node: a gap means lost reports
}

header udp_t {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> len;
    bit<16> checksum;
}

header udp_rest_t {
    bit<16> len;
    bit<16> checksum;
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
    opt_padn2_t encap_pad;
    srh_t encap_srh;
    srh_segment_t[MAX_SRH_SEGMENTS] encap_segments;
    // As parsed.
    ipv6_t ipv6;                                   // the outermost IPv6 header
    udp_t report_udp;                              // a trace report (egress clone) only
    report_t report;
    ext_hdr_t hbh;
    apn6_t apn6;
    apn_word_t[4] apn_id;
    apn6_params_t apn6_params;
    hbh_opt_u[MAX_HBH_OPTIONS] hbh_opts;
    ioam_opt_t ioam_opt;                           // an IOAM trace, if the HBH has one
    ioam_trace_t ioam_trace;
    ioam_bytes_t ioam_free;
    ioam_node_t ioam_node;                         // this node's slot
    ioam_bytes_t ioam_filled;
    hbh_opt_u[MAX_HBH_OPTIONS_AFTER_IOAM] hbh_post;
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

// An elephant report to the controller: one per flow per window (control/sketch.p4).
struct elephant_digest_t {
    ipv6_addr_t src;
    ipv6_addr_t dst;
    bit<8> proto;          // 5-tuple key only, else 0
    bit<16> sport;
    bit<16> dport;
    bit<24> dest_qp;       // (SA, DA, DestQP) key only, else 0
    bit<8> key_type;       // FLOW_KEY_*
    bit<32> apn_id;
    bit<16> sr_policy_id;
    bit<32> estimate;      // packets or bytes in this window, as the sketch estimates
    bit<32> window;
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
    bool discard_option;   // an unknown option whose act bits say "discard"
    ipv6_addr_t next_sid;  // SRH: the segment Segments Left - 1 points at
    bool has_altmark;      // the HBH carries alternate marking: its fields follow
    bit<20> flow_mon_id;
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
    bool has_trace;            // the packet arrived with an IOAM trace (kept after decap)
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
    bool encapsulated;     // this node pushed an outer header
    bool decapsulated;     // this node stripped one (End.DT6/DT4)
    bool next_hop_set;     // End.X chose the adjacency: no routing lookup
    // The header routing looks at: the pushed outer one, else the packet's own.
    ipv6_addr_t fwd_src;
    ipv6_addr_t fwd_dst;
    bit<20> fwd_flow_label;
    bit<8> fwd_next_hdr;
}

#endif  // ICPN_HEADERS_P4
