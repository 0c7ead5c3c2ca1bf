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

struct parsed_headers_t {
    packet_out_header_t packet_out;
    packet_in_header_t packet_in;
    ethernet_t ethernet;
    ipv6_t ipv6;
    l4_ports_t l4_ports;
    icmpv6_t icmpv6;
}

struct local_metadata_t {
    bit<16> l4_src_port;   // 0 when the packet has no TCP/UDP header
    bit<16> l4_dst_port;
    bit<8> drop_reason;    // a DROP_* index; DROP_NONE while the packet is alive
}

#endif  // ICPN_HEADERS_P4
