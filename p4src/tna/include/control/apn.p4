// APN6 at the edge, as in v1model: port roles, network-side classification to an APN ID, the
// trust boundary for app-side marks, and the APN policy (DSCP, SR policy, telemetry and sketch
// profiles). Same tables, keys, actions and parameters.
#ifndef ICPN_TNA_APN_P4
#define ICPN_TNA_APN_P4

control Apn(inout tna_ingress_headers_t hdr,
            inout tna_ingress_metadata_t meta,
            in ingress_intrinsic_metadata_t ig_intr_md) {

    action set_port_role(bit<8> role) {
        meta.port_role = role;
    }

    table port_role {
        key = { ig_intr_md.ingress_port: exact @name("port"); }
        actions = { set_port_role; @defaultonly NoAction; }
        const default_action = NoAction();
        size = PORT_TABLE_SIZE;
    }

    // The classifier runs on every IPv6 packet, in the first stage, into class_apn_id: which
    // of that and the packet's own ID counts is decided when the port's role is known.
    action set_apn_id(bit<32> apn_id) {
        meta.class_apn_id = apn_id;
        meta.apn_classified = true;
    }

    table apn_classifier {
        key = {
            hdr.ipv6.src_addr: ternary @name("ipv6_src");
            hdr.ipv6.dst_addr: ternary @name("ipv6_dst");
            hdr.ipv6.next_hdr: ternary @name("ip_next_hdr");
            meta.l4_src_port: ternary @name("l4_src_port");
            meta.l4_dst_port: ternary @name("l4_dst_port");
            hdr.ipv6.traffic_class: ternary @name("traffic_class");
            meta.dest_qp: ternary @name("dest_qp");
        }
        actions = { set_apn_id; @defaultonly NoAction; }
        const default_action = NoAction();
        size = APN_CLASSIFIER_TABLE_SIZE;
    }

    action set_policy(bit<6> dscp, bit<16> sr_policy_id, bit<8> telemetry_profile,
                      bit<8> sketch_profile) {
        hdr.ipv6.traffic_class[7:2] = dscp;
        meta.sr_policy_id = sr_policy_id;
        meta.telemetry_profile = telemetry_profile;
        meta.sketch_profile = sketch_profile;
    }

    table apn_policy {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { set_policy; @defaultonly NoAction; }
        const default_action = NoAction();
        size = APN_POLICY_TABLE_SIZE;
    }

    // Which ID counts, by the port's role and the packet's mark (one table of constants: the
    // conditions, spelled as ifs, would take a stage each). The policy applies to a trusted
    // mark, or to what the classifier found (meta.apn_known).
    action trusted_mark() {
        meta.apn_known = true;
    }

    // No trusted mark: the network's ID counts (0 when the classifier missed, as v1model)...
    action take_class_id() {
        meta.apn_id = meta.class_apn_id;
        meta.apn_known = meta.apn_classified;
    }

    // ... and an untrusted app-side mark is overwritten with it.
    action overwrite_mark() {
        take_class_id();
        hdr.apn6.id_type = APN_ID_TYPE_32;
        hdr.apn6.flags = 0;
        hdr.apn6.para_type = 0;
        hdr.apn_id[0].word = meta.class_apn_id;
        hdr.apn_id[1].word = 0;
        hdr.apn_id[2].word = 0;
        hdr.apn_id[3].word = 0;
    }

    table apn_source {
        key = {
            meta.port_role: exact @name("role");
            hdr.apn6.isValid(): exact @name("apn6");
        }
        actions = { trusted_mark; take_class_id; overwrite_mark; NoAction; }
        const entries = {
            (PORT_ROLE_EDGE_UNTRUSTED, true): overwrite_mark();
            (PORT_ROLE_EDGE_UNTRUSTED, false): take_class_id();
            (PORT_ROLE_EDGE_TRUSTED, true): trusted_mark();
            (PORT_ROLE_EDGE_TRUSTED, false): take_class_id();
        }
        const default_action = NoAction();   // core ports classify nothing
        size = 8;
    }

    apply {
        // meta.apn_id is the packet's own APN ID, set by the parser. Tofino matches policies
        // on 32 bits (icpn's APN ID template is 32-bit): a wider ID counts by its last word
        // (v1model keeps all 128 bits).
        port_role.apply();
        if (hdr.ipv6.isValid()) {
            apn_classifier.apply();
        }
        apn_source.apply();
        if (meta.apn_known && meta.station_drop == DROP_NONE && meta.parse_drop == DROP_NONE) {
            apn_policy.apply();
        }
    }
}

#endif  // ICPN_TNA_APN_P4
