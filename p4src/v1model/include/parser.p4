// Parser and deparser for v1model. Packets from the CPU port start with the packet_out
// header; everything else starts at Ethernet. Non-IPv6 frames are accepted with only the
// Ethernet header valid so that ingress can count and drop them by reason.
#ifndef ICPN_V1MODEL_PARSER_P4
#define ICPN_V1MODEL_PARSER_P4

parser IcpnParser(packet_in packet,
                  out parsed_headers_t hdr,
                  inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        meta.l4_src_port = 0;
        meta.l4_dst_port = 0;
        meta.drop_reason = DROP_NONE;
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
        transition select(hdr.ipv6.next_hdr) {
            IP_PROTO_TCP: parse_l4_ports;
            IP_PROTO_UDP: parse_l4_ports;
            IP_PROTO_ICMPV6: parse_icmpv6;
            default: accept;
        }
    }

    state parse_l4_ports {
        packet.extract(hdr.l4_ports);
        meta.l4_src_port = hdr.l4_ports.src_port;
        meta.l4_dst_port = hdr.l4_ports.dst_port;
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
        packet.emit(hdr.ipv6);
        packet.emit(hdr.l4_ports);
        packet.emit(hdr.icmpv6);
    }
}

#endif  // ICPN_V1MODEL_PARSER_P4
