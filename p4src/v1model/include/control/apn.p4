// APN6 at the edge: port roles, network-side classification to an APN ID, the trust
// boundary for app-side marking, and the APN policy that maps an APN ID (value/mask) to a
// DSCP, an SR policy, a telemetry profile and a sketch (elephant detection) profile.
//
// Trust: an APN6 option set by an application is used only on ports the controller marks
// trusted. On an untrusted edge port it is overwritten: the ID becomes the classifier's
// (0 when none matches) and APN-Para-Type is cleared, so no unverified claim travels on.
#ifndef ICPN_V1MODEL_APN_P4
#define ICPN_V1MODEL_APN_P4

control Apn(inout parsed_headers_t hdr,
            inout local_metadata_t meta,
            in standard_metadata_t standard_metadata) {

    action set_port_role(bit<8> role) {
        meta.port_role = role;
    }

    // Which ports face users or data centres, and whether their APN marks are trusted.
    table port_role {
        key = { standard_metadata.ingress_port: exact @name("port"); }
        actions = { set_port_role; @defaultonly NoAction; }
        const default_action = NoAction();
        size = PORT_TABLE_SIZE;
    }

    action set_apn_id(bit<32> apn_id) {
        meta.apn_id = (bit<128>) apn_id;
        meta.apn_classified = true;
    }

    // Network-side marking: addresses, protocol, ports, DSCP and RoCEv2 DestQP to an APN ID.
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

    // apn_in_doh: the headend's APN6 option goes in a Destination Options header instead of
    // the Hop-by-Hop header (draft-li-6man-apn-ipv6-encap allows either).
    action set_policy(bit<6> dscp, bit<16> sr_policy_id, bit<8> telemetry_profile,
                      bit<8> sketch_profile, bit<1> apn_in_doh) {
        meta.apn_in_doh = apn_in_doh;
        hdr.ipv6.traffic_class[7:2] = dscp;
        meta.sr_policy_id = sr_policy_id;
        meta.telemetry_profile = telemetry_profile;
        meta.sketch_profile = sketch_profile;
    }

    // What the network does for an application: matched by value/mask on the APN ID, so one
    // entry can cover an APP-Group or a single USER-Group (icpn.packets.ApnIdTemplate.match).
    table apn_policy {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { set_policy; @defaultonly NoAction; }
        const default_action = NoAction();
        size = APN_POLICY_TABLE_SIZE;
    }

    apply {
        // The APN ID of an APN6 option in a Destination Options header (parser.p4), when the
        // Hop-by-Hop header carries none: the HBH's is the one every node sees, so it wins.
        if (!hdr.apn6.isValid() && hdr.doh_apn6.isValid()) {
            if (hdr.doh_apn6.id_type == APN_ID_TYPE_32) {
                meta.apn_id = (bit<128>) hdr.doh_apn_id[0].word;
            } else if (hdr.doh_apn6.id_type == APN_ID_TYPE_64) {
                meta.apn_id = (bit<128>) (hdr.doh_apn_id[0].word ++ hdr.doh_apn_id[1].word);
            } else {
                meta.apn_id = hdr.doh_apn_id[0].word ++ hdr.doh_apn_id[1].word
                              ++ hdr.doh_apn_id[2].word ++ hdr.doh_apn_id[3].word;
            }
        }
        port_role.apply();
        // Edge ports only (core ports, the common case, stop at the condition). Written as
        // nested conditions, not with `return` or local flags: for BMv2 each of those is
        // one more table and primitive per packet (issue 17).
        if (meta.port_role != PORT_ROLE_CORE && hdr.ipv6.isValid()) {
            if (meta.port_role == PORT_ROLE_EDGE_TRUSTED
                && (hdr.apn6.isValid() || hdr.doh_apn6.isValid())) {
                apn_policy.apply();   // a trusted mark
            } else {
                meta.apn_id = 0;
                apn_classifier.apply();
                if (hdr.apn6.isValid()) {
                    // Untrusted app-side mark: overwrite it with what the network decided.
                    hdr.apn6.id_type = APN_ID_TYPE_32;
                    hdr.apn6.flags = 0;
                    hdr.apn6.para_type = 0;
                    hdr.apn_id[0].word = meta.apn_id[31:0];
                    hdr.apn_id[1].word = 0;
                    hdr.apn_id[2].word = 0;
                    hdr.apn_id[3].word = 0;
                }
                if (hdr.doh_apn6.isValid()) {
                    hdr.doh_apn6.id_type = APN_ID_TYPE_32;
                    hdr.doh_apn6.flags = 0;
                    hdr.doh_apn6.para_type = 0;
                    hdr.doh_apn_id[0].word = meta.apn_id[31:0];
                    hdr.doh_apn_id[1].word = 0;
                    hdr.doh_apn_id[2].word = 0;
                    hdr.doh_apn_id[3].word = 0;
                }
                if (meta.apn_classified) {
                    apn_policy.apply();
                }
            }
        }
    }
}

#endif  // ICPN_V1MODEL_APN_P4
