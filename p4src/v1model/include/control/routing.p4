// Routing: hop limit, IPv6 LPM with ECMP through an action selector, and IPv4 LPM for
// packets End.DT4 decapsulated.
//
// Lookups use the *forwarding* header: the outer one a headend just pushed, else the
// packet's own. The selector hashes (SA, DA, flow label, next header, L4 ports) of it: RFC
// 6438 makes the flow label the entropy of tunnels, and the ports spread plain flows. BMv2
// hashes selector fields in key order with crc16, modulo the group size.
//
// The hop limit spent is always the packet's own (an encapsulated packet's inner header;
// the outer one starts at ENCAP_HOP_LIMIT at its origin, this headend).
#ifndef ICPN_V1MODEL_ROUTING_P4
#define ICPN_V1MODEL_ROUTING_P4

// Frames addressed to one of this router's MACs are routed; others are not ours (the
// drop reason says so). The miss branch hangs off the table itself: no flag to copy.
control MyStation(in parsed_headers_t hdr, inout local_metadata_t meta) {
    action set_my_station() {}

    table my_station {
        key = { hdr.ethernet.dst_addr: exact @name("eth_dst"); }
        actions = { set_my_station; @defaultonly NoAction; }
        const default_action = NoAction();
        size = MY_STATION_TABLE_SIZE;
    }

    apply {
        if (!my_station.apply().hit) {
            meta.drop_reason = DROP_NOT_MY_STATION;
        }
    }
}

control Routing(inout parsed_headers_t hdr,
                inout local_metadata_t meta,
                inout standard_metadata_t standard_metadata) {

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
            meta.fwd_dst: lpm @name("ipv6_dst");
            meta.fwd_src: selector;
            meta.fwd_dst: selector;
            meta.fwd_flow_label: selector;
            meta.fwd_next_hdr: selector;
            meta.l4_src_port: selector;
            meta.l4_dst_port: selector;
        }
        actions = { set_next_hop; }
        implementation = ecmp_selector;
        size = ROUTING_V6_TABLE_SIZE;
    }

    action set_next_hop_v4(port_num_t port, mac_addr_t smac, mac_addr_t dmac) {
        standard_metadata.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.inner_ipv4.ttl = hdr.inner_ipv4.ttl - 1;
    }

    table routing_v4 {
        key = { hdr.inner_ipv4.dst_addr: lpm @name("ipv4_dst"); }
        actions = { set_next_hop_v4; @defaultonly NoAction; }
        const default_action = NoAction();
        size = ROUTING_V4_TABLE_SIZE;
    }

    apply {
        if (hdr.ipv6.isValid()) {
            if (hdr.encap_ipv6.isValid()) {
                meta.fwd_src = hdr.encap_ipv6.src_addr;
                meta.fwd_dst = hdr.encap_ipv6.dst_addr;
                meta.fwd_flow_label = hdr.encap_ipv6.flow_label;
                meta.fwd_next_hdr = hdr.encap_ipv6.next_hdr;
            } else {
                meta.fwd_src = hdr.ipv6.src_addr;
                meta.fwd_dst = hdr.ipv6.dst_addr;
                meta.fwd_flow_label = hdr.ipv6.flow_label;
                meta.fwd_next_hdr = hdr.ipv6.next_hdr;
            }
            // RFC 8200: a router never forwards a packet whose hop limit would reach zero.
            if (hdr.ipv6.hop_limit <= 1) {
                meta.drop_reason = DROP_HOP_LIMIT;
            } else if (!routing_v6.apply().hit) {
                meta.drop_reason = DROP_NO_ROUTE;
            }
        } else if (hdr.inner_ipv4.isValid()) {
            if (hdr.inner_ipv4.ttl <= 1) {
                meta.drop_reason = DROP_HOP_LIMIT;
            } else if (!routing_v4.apply().hit) {
                meta.drop_reason = DROP_NO_ROUTE;
            }
        }
    }
}

#endif  // ICPN_V1MODEL_ROUTING_P4
