// Routing: hop limit, IPv6 LPM with ECMP through an action selector, IPv4 LPM after End.DT4;
// the same tables, keys and actions as v1model.
//
// The selector hashes (SA, DA, flow label, next header, L4 ports) with CRC-16. On Tofino the
// hash is over the packet's own IPv6 header as it arrived, whichever header is looked up (the
// one a headend pushed, the packet's own, or the inner one after End.DT6): one set of fields
// for the input crossbar instead of four. Which member a value picks is the Tofino selector's
// own placement, not BMv2's "hash mod group size": the reference model does not predict
// Tofino's member.
//
// The hop limit spent is the packet's own (the outer one starts at ENCAP_HOP_LIMIT at its
// headend); after End.DT6 that is the inner header, the outer one being stripped.
#ifndef ICPN_TNA_ROUTING_P4
#define ICPN_TNA_ROUTING_P4

control MyStation(in tna_ingress_headers_t hdr, inout tna_ingress_metadata_t meta) {
    action set_my_station() {}
    action not_my_station() { meta.station_drop = DROP_NOT_MY_STATION; }

    table my_station {
        key = { hdr.ethernet.dst_addr: exact @name("eth_dst"); }
        actions = { set_my_station; @defaultonly not_my_station; }
        const default_action = not_my_station();
        size = MY_STATION_TABLE_SIZE;
    }

    apply {
        my_station.apply();
    }
}

control Routing(inout tna_ingress_headers_t hdr,
                inout tna_ingress_metadata_t meta,
                inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    action set_next_hop(PortId_t port, mac_addr_t smac, mac_addr_t dmac) {
        ig_tm_md.ucast_egress_port = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
    }

    action no_route() {
        meta.route_drop = DROP_NO_ROUTE;
    }

    Hash<bit<16>>(HashAlgorithm_t.CRC16) flow_hash;
    Hash<bit<16>>(HashAlgorithm_t.IDENTITY) selector_hash;
    ActionProfile(ECMP_SELECTOR_SIZE) ecmp_members;
    ActionSelector(ecmp_members, selector_hash, SelectorMode_t.FAIR, ECMP_MAX_GROUP_SIZE,
                   ECMP_SELECTOR_SIZE) ecmp_selector;

    // The ECMP hash is over the packet's own IPv6 header as it arrived (and its L4 ports),
    // whichever header is looked up: one set of fields for the input crossbar. It keeps a
    // flow on one path as v1model's does; which member a value picks is the selector's own
    // placement in any case. Computed with the destination, just before the lookup, so that
    // its container is not held for long.
#define FLOW_HASH                                                                            \
    meta.ecmp_hash = flow_hash.get({                                                         \
        hdr.ipv6.src_addr, hdr.ipv6.dst_addr, hdr.ipv6.flow_label, hdr.ipv6.next_hdr,        \
        meta.l4_src_port, meta.l4_dst_port });

    // Lookups use the outermost header: the one this headend pushed, the packet's own (with
    // End's next segment as its destination, already in fwd_dst: the header is rewritten at
    // the end of ingress, control/srv6.p4), or after End.DT6 the inner one.
    action route_encapsulated() { meta.fwd_dst = hdr.encap_ipv6.dst_addr; FLOW_HASH }
    action route_decapsulated() { meta.fwd_dst = hdr.inner_ipv6.dst_addr; FLOW_HASH }
    action route_packet() { meta.fwd_dst = hdr.ipv6.dst_addr; FLOW_HASH }
    action route_next_segment() { FLOW_HASH }

    table route_source {
        key = {
            meta.encapsulated: exact @name("encapsulated");
            meta.decapsulated: exact @name("decapsulated");
            meta.end_next: exact @name("next_segment");
        }
        actions = { route_encapsulated; route_decapsulated; route_packet; route_next_segment;
                    NoAction; }
        const entries = {
            (true, false, false): route_encapsulated();
            (false, true, false): route_decapsulated();
            (false, false, false): route_packet();
            (false, false, true): route_next_segment();
        }
        const default_action = NoAction();
        size = 4;
    }

    table routing_v6 {
        key = {
            meta.fwd_dst: lpm @name("ipv6_dst");
            meta.ecmp_hash: selector;
        }
        actions = { set_next_hop; @defaultonly no_route; }
        const default_action = no_route();
        implementation = ecmp_selector;
        size = ROUTING_V6_TABLE_SIZE;
    }

    action set_next_hop_v4(PortId_t port, mac_addr_t smac, mac_addr_t dmac) {
        ig_tm_md.ucast_egress_port = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.inner_ipv4.ttl = hdr.inner_ipv4.ttl - 1;
    }

    Alpm(number_partitions = 2048, subtrees_per_partition = 2) routing_v4_alpm;

    table routing_v4 {
        key = { hdr.inner_ipv4.dst_addr: lpm @name("ipv4_dst"); }
        actions = { set_next_hop_v4; @defaultonly no_route; }
        const default_action = no_route();
        size = ROUTING_V4_TABLE_SIZE;
        implementation = routing_v4_alpm;
    }

    apply {
        // Not after End.X, which chose the adjacency, nor past the hop limit (HopLimit).
        if (!meta.next_hop_set) {
            route_source.apply();
        }
        if (!meta.next_hop_set && meta.route_drop == DROP_NONE && meta.decapsulated
            && hdr.inner_ipv4.isValid()) {
            routing_v4.apply();
        } else if (!meta.next_hop_set && meta.route_drop == DROP_NONE) {
            routing_v6.apply();
        }
    }
}

// The hop limit, checked and spent apart from the lookups: it needs nothing they compute, and
// as part of Routing it would wait for everything Routing waits for.
control HopLimit(inout tna_ingress_headers_t hdr,
                 inout tna_ingress_metadata_t meta) {
    // The hop limit this node spends is the packet's own (the outer one starts at
    // ENCAP_HOP_LIMIT at its headend); after End.DT6/DT4 the inner header's (IPv4's TTL is
    // spent by set_next_hop_v4). Spent before the lookup: a packet without a route is
    // dropped anyway.
    action hop_limit_exceeded() { meta.route_drop = DROP_HOP_LIMIT; }
    action spend_hop() { hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1; }
    action spend_inner_hop() { hdr.inner_ipv6.hop_limit = hdr.inner_ipv6.hop_limit - 1; }

    table hop_limit {
        key = {
            meta.decapsulated: exact @name("decapsulated");
            hdr.inner_ipv4.isValid(): exact @name("inner_ipv4");
            hdr.ipv6.hop_limit: ternary @name("hop_limit");
            hdr.inner_ipv6.hop_limit: ternary @name("inner_hop_limit");
            hdr.inner_ipv4.ttl: ternary @name("inner_ttl");
        }
        actions = { hop_limit_exceeded; spend_hop; spend_inner_hop; NoAction; }
        const entries = {
            (true, true, _, _, 0): hop_limit_exceeded();
            (true, true, _, _, 1): hop_limit_exceeded();
            (true, true, _, _, _): NoAction();
            (true, false, _, 0, _): hop_limit_exceeded();
            (true, false, _, 1, _): hop_limit_exceeded();
            (true, false, _, _, _): spend_inner_hop();
            (false, false, 0, _, _): hop_limit_exceeded();
            (false, false, 1, _, _): hop_limit_exceeded();
            (false, false, _, _, _): spend_hop();
        }
        const default_action = NoAction();
        size = 16;
    }

    apply {
        // End.X (next_hop_set) too: it spends and checks the hop routing would have
        // (RFC 8986 4.1 S04-S05, S14), as on v1model.
        hop_limit.apply();
    }
}

#endif  // ICPN_TNA_ROUTING_P4
