// ACL: the last word in ingress. Punts control traffic (e.g. IPv6 neighbour discovery) to
// the controller, or denies traffic the operator filters. Runs after routing so that it can
// override a routing decision either way.
#ifndef ICPN_V1MODEL_ACL_P4
#define ICPN_V1MODEL_ACL_P4

control Acl(inout parsed_headers_t hdr,
            inout local_metadata_t meta,
            inout standard_metadata_t standard_metadata) {

    action punt_to_cpu() {
        standard_metadata.egress_spec = CPU_PORT;
        meta.drop_reason = DROP_NONE;
        meta.punt_reason = DROP_NONE;   // the packet-in's reason: the ACL's punt
    }

    action deny() {
        meta.drop_reason = DROP_ACL_DENY;
    }

    table acl {
        key = {
            standard_metadata.ingress_port: ternary @name("ingress_port");
            hdr.ethernet.dst_addr: ternary @name("eth_dst");
            hdr.ethernet.ether_type: ternary @name("eth_type");
            hdr.ipv6.next_hdr: ternary @name("ip_next_hdr");
            hdr.icmpv6.type: ternary @name("icmp_type");
            meta.l4_dst_port: ternary @name("l4_dst_port");
        }
        actions = { punt_to_cpu; deny; @defaultonly NoAction; }
        const default_action = NoAction();
        size = ACL_TABLE_SIZE;
    }

    apply {
        acl.apply();
    }
}

#endif  // ICPN_V1MODEL_ACL_P4
