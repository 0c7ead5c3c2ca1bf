// IPv6 routing: router-MAC check, LPM on the destination, ECMP through an action selector.
//
// The selector hashes (SA, DA, flow label, next header, L4 ports): RFC 6438 makes the flow
// label the tunnel-friendly entropy field, and the ports spread plain TCP/UDP flows too.
// BMv2 hashes the selector fields in key order with crc16 and takes it modulo the group size.
#ifndef ICPN_V1MODEL_ROUTING_P4
#define ICPN_V1MODEL_ROUTING_P4

control Routing(inout parsed_headers_t hdr,
                inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {

    action drop(bit<8> reason) {
        meta.drop_reason = reason;
    }

    action set_my_station() {}

    // Frames addressed to one of this router's MACs are routed; others are not ours.
    table my_station {
        key = { hdr.ethernet.dst_addr: exact @name("eth_dst"); }
        actions = { set_my_station; @defaultonly NoAction; }
        const default_action = NoAction();
        size = MY_STATION_TABLE_SIZE;
    }

    // Forward to a next hop: rewrite the MACs and spend one hop.
    action set_next_hop(port_num_t port, mac_addr_t smac, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
    }

    action_selector(HashAlgorithm.crc16, ECMP_SELECTOR_SIZE, 32w16) ecmp_selector;

    table routing_v6 {
        key = {
            hdr.ipv6.dst_addr: lpm @name("ipv6_dst");
            hdr.ipv6.src_addr: selector;
            hdr.ipv6.dst_addr: selector;
            hdr.ipv6.flow_label: selector;
            hdr.ipv6.next_hdr: selector;
            meta.l4_src_port: selector;
            meta.l4_dst_port: selector;
        }
        actions = { set_next_hop; @defaultonly NoAction; }
        const default_action = NoAction();
        implementation = ecmp_selector;
        size = ROUTING_V6_TABLE_SIZE;
    }

    apply {
        if (!hdr.ipv6.isValid()) {
            drop(DROP_NOT_IPV6);
        } else if (!my_station.apply().hit) {
            drop(DROP_NOT_MY_STATION);
        } else if (hdr.ipv6.hop_limit <= 1) {
            // RFC 8200: a router never forwards a packet whose hop limit would reach zero.
            drop(DROP_HOP_LIMIT);
        } else if (!routing_v6.apply().hit) {
            drop(DROP_NO_ROUTE);
        }
    }
}

#endif  // ICPN_V1MODEL_ROUTING_P4
