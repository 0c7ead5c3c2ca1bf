// ACL: the last word in ingress, as in v1model: punt to the controller or deny. The lookup
// is made first, in parallel with everything else; what it decided is applied by the verdict
// (icpn.p4), over every other drop reason, as v1model's ACL runs last.
#ifndef ICPN_TNA_ACL_P4
#define ICPN_TNA_ACL_P4

control Acl(inout tna_ingress_headers_t hdr,
            inout tna_ingress_metadata_t meta,
            in ingress_intrinsic_metadata_t ig_intr_md,
            in ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    action punt_to_cpu() {
        meta.acl_verdict = TNA_ACL_PUNT;
    }

    action deny() {
        meta.acl_verdict = TNA_ACL_DENY;
    }

    table acl {
        key = {
            ig_intr_md.ingress_port: ternary @name("ingress_port");
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

#endif  // ICPN_TNA_ACL_P4
