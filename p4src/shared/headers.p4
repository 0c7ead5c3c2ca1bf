// Header types shared by every icpn target (v1model and TNA), and the elephant digest whose
// layout the controller decodes on both. Layouts follow the RFCs cited beside each header;
// bit 0 is the most significant bit. What only one target can express (varbit headers and
// header unions for v1model; bridged and mirror headers for TNA) and each target's header
// and metadata structs live in p4src/<target>/include/headers.p4.
#ifndef ICPN_HEADERS_P4
#define ICPN_HEADERS_P4

#include "constants.p4"

typedef bit<48> mac_addr_t;
typedef bit<128> ipv6_addr_t;
typedef bit<9> port_num_t;

// P4Runtime controller headers: prepended to packets exchanged with the controller.
// The 7 padding bits keep the header byte-aligned.
// A packet-in says why the packet came: ``reason`` is the DropReason the pipeline would
// have dropped it for (DROP_NONE: the ACL punted it), ``mtu`` the egress MTU it exceeded
// (DROP_PACKET_TOO_BIG only), so the controller can answer (icpn.routers, RFC 4443).
@controller_header("packet_in")
header packet_in_header_t {
    port_num_t ingress_port;
    bit<7> _pad;
    bit<8> reason;
    bit<16> mtu;
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

// Pad1 (RFC 8200 4.2): one octet of padding.
header opt_pad1_t {
    bit<8> type;
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
    bit<16> ingress_port;  // where the flow entered: the manager's quotas are per port
}

#endif  // ICPN_HEADERS_P4
