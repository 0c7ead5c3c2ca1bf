// SRv6 (RFC 8754, RFC 8986): the headend's SR policies (H.Encaps, H.Encaps.Red) and the
// local SIDs (End, End.X, End.DT6, End.DT4).
//
// H.Encaps pushes an outer IPv6 header whose Hop-by-Hop header carries the APN6 option with
// the packet's APN ID (DESIGN.md 2.2 layout: APN6 at offset 2, PadN to 8 octets), then an
// SRH. The outer flow label is a 20-bit hash of (APN ID, DestQP): RDMA flows between the
// same two hosts get different labels, so transit ECMP spreads them (RFC 6438).
#ifndef ICPN_V1MODEL_SRV6_P4
#define ICPN_V1MODEL_SRV6_P4


control Srv6Headend(inout parsed_headers_t hdr,
                    inout local_metadata_t meta,
                    in standard_metadata_t standard_metadata) {

    // Traffic per segment list (the list id an SR policy gives each of its lists): what the
    // controller reads to find the least-loaded list for an elephant. Counted in apply, once
    // an action pushed the list: a count in each of the 26 actions would give each its own
    // temporary for the index (more metadata for BMv2 to reset on every packet).
    counter(SEGMENT_LIST_COUNTER_SIZE, CounterType.packets_and_bytes) segment_list_load;

    // The outer flow label, hashed in apply before the policy's table: a hash in the actions
    // would copy its inputs into temporaries of each of the 26 (BMv2 metadata reset on
    // every packet, issue 17).
    bit<20> flow_label;

    // The outer header and the HBH with APN6 (16 octets with a 32-bit ID).
    action push_outer(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t dst, bit<16> srh_octets) {
        meta.sr_list_id = list_id;   // counted in apply: see segment_list_load
        hdr.encap_ipv6.setValid();
        hdr.encap_ipv6.version = 6;
        hdr.encap_ipv6.traffic_class = hdr.ipv6.traffic_class;
        hdr.encap_ipv6.flow_label = flow_label;
        // The inner packet's own length (RFC 8200 3: its header + Payload Length), not the
        // frame's: Ethernet padding after a short packet is not part of it, and the ingress
        // pipeline cuts it off (TrimEncapsulated below).
        hdr.encap_ipv6.payload_len = hdr.ipv6.payload_len + 40 + ENCAP_HBH_OCTETS + srh_octets;
        hdr.encap_ipv6.next_hdr = IP_PROTO_HOPOPTS;
        hdr.encap_ipv6.hop_limit = ENCAP_HOP_LIMIT;
        hdr.encap_ipv6.src_addr = src;
        hdr.encap_ipv6.dst_addr = dst;

        hdr.encap_hbh.setValid();
        hdr.encap_hbh.hdr_ext_len = 1;   // 16 octets
        hdr.encap_apn6.setValid();
        hdr.encap_apn6.type = APN6_OPT_TYPE;
        hdr.encap_apn6.len = 8;
        hdr.encap_apn6.id_type = APN_ID_TYPE_32;
        hdr.encap_apn6.flags = 0;
        hdr.encap_apn6.para_type = 0;
        hdr.encap_apn_id.setValid();
        hdr.encap_apn_id.word = meta.apn_id[31:0];
        hdr.encap_pad.setValid();
        hdr.encap_pad.type = IPV6_OPT_PADN;
        hdr.encap_pad.len = 2;
        hdr.encap_pad.zeros = 0;
        meta.encapsulated = true;
    }

    action push_srh(bit<8> next_hdr, bit<8> entries, bit<8> segments_left) {
        hdr.encap_hbh.next_hdr = IP_PROTO_ROUTING;
        hdr.encap_srh.setValid();
        hdr.encap_srh.next_hdr = next_hdr;
        hdr.encap_srh.hdr_ext_len = entries << 1;
        hdr.encap_srh.routing_type = SRH_ROUTING_TYPE;
        hdr.encap_srh.segments_left = segments_left;
        hdr.encap_srh.last_entry = entries - 1;
        hdr.encap_srh.flags = 0;
        hdr.encap_srh.tag = 0;
    }

    // One action per list length: P4 actions take a fixed parameter list. Segments are in
    // path order (s1 first); the SRH lists them reversed (RFC 8754 2: list[0] is the last).
    action h_encaps_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        push_outer(list_id, src, s1, 24);
        push_srh(IP_PROTO_IPV6, 1, 0);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s1;
    }

    action h_encaps_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        push_outer(list_id, src, s1, 40);
        push_srh(IP_PROTO_IPV6, 2, 1);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s2;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s1;
    }

    action h_encaps_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                      ipv6_addr_t s3) {
        push_outer(list_id, src, s1, 56);
        push_srh(IP_PROTO_IPV6, 3, 2);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s3;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s2;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s1;
    }

    action h_encaps_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                      ipv6_addr_t s3, ipv6_addr_t s4) {
        push_outer(list_id, src, s1, 72);
        push_srh(IP_PROTO_IPV6, 4, 3);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s4;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s3;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s2;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s1;
    }

    action h_encaps_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                      ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        push_outer(list_id, src, s1, 88);
        push_srh(IP_PROTO_IPV6, 5, 4);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s5;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s4;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s3;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s2;
        hdr.encap_segments[4].setValid();
        hdr.encap_segments[4].sid = s1;
    }

    action h_encaps_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                      ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        push_outer(list_id, src, s1, 104);
        push_srh(IP_PROTO_IPV6, 6, 5);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s6;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s5;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s4;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s3;
        hdr.encap_segments[4].setValid();
        hdr.encap_segments[4].sid = s2;
        hdr.encap_segments[5].setValid();
        hdr.encap_segments[5].sid = s1;
    }

    // H.Encaps.Red (RFC 8986 5.2): the first segment only in the DA, so a list holds one
    // segment more than the SRH; one segment, no SRH.
    action h_encaps_red_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        push_outer(list_id, src, s1, 0);
        hdr.encap_hbh.next_hdr = IP_PROTO_IPV6;
    }

    action h_encaps_red_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        push_outer(list_id, src, s1, 24);
        push_srh(IP_PROTO_IPV6, 1, 1);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s2;
    }

    action h_encaps_red_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3) {
        push_outer(list_id, src, s1, 40);
        push_srh(IP_PROTO_IPV6, 2, 2);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s3;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s2;
    }

    action h_encaps_red_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3, ipv6_addr_t s4) {
        push_outer(list_id, src, s1, 56);
        push_srh(IP_PROTO_IPV6, 3, 3);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s4;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s3;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s2;
    }

    action h_encaps_red_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        push_outer(list_id, src, s1, 72);
        push_srh(IP_PROTO_IPV6, 4, 4);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s5;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s4;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s3;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s2;
    }

    action h_encaps_red_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        push_outer(list_id, src, s1, 88);
        push_srh(IP_PROTO_IPV6, 5, 5);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s6;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s5;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s4;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s3;
        hdr.encap_segments[4].setValid();
        hdr.encap_segments[4].sid = s2;
    }

    action h_encaps_red_7(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6,
                          ipv6_addr_t s7) {
        push_outer(list_id, src, s1, 104);
        push_srh(IP_PROTO_IPV6, 6, 6);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s7;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s6;
        hdr.encap_segments[2].setValid();
        hdr.encap_segments[2].sid = s5;
        hdr.encap_segments[3].setValid();
        hdr.encap_segments[3].sid = s4;
        hdr.encap_segments[4].setValid();
        hdr.encap_segments[4].sid = s3;
        hdr.encap_segments[5].setValid();
        hdr.encap_segments[5].sid = s2;
    }

    // Deep hash: segment lists of a policy are chosen by hashing the APN ID and DestQP, not
    // the 5-tuple that RDMA flows between two hosts share. CRC-32, not crc16: NICs number
    // queue pairs consecutively, and CRC-16/ARC's polynomial has the factor (x + 1), so over
    // keys differing in their low bits its low two bits take two values: 64 consecutive QPs
    // reached 2 of 4 lists. CRC-32 puts them 16/16/16/16 (icpn.hashing.sr_list_member).
    action_selector(HashAlgorithm.crc32, SR_SELECTOR_SIZE, 32w32) sr_selector;

    // Elephants the controller pinned to a segment list (icpn.elephant). The direct counter
    // tells it which entries still see traffic, so idle ones can be aged out. The table has
    // actions of its own (the same encapsulations): on Tofino a direct counter is counted by
    // every action of its table, and no other table may share those actions.
    direct_counter(CounterType.packets_and_bytes) override_hits;

    action pin_encaps_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        h_encaps_1(list_id, src, s1);
    }

    action pin_encaps_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        h_encaps_2(list_id, src, s1, s2);
    }

    action pin_encaps_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3) {
        h_encaps_3(list_id, src, s1, s2, s3);
    }

    action pin_encaps_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4) {
        h_encaps_4(list_id, src, s1, s2, s3, s4);
    }

    action pin_encaps_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        h_encaps_5(list_id, src, s1, s2, s3, s4, s5);
    }

    action pin_encaps_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        h_encaps_6(list_id, src, s1, s2, s3, s4, s5, s6);
    }

    action pin_encaps_red_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        h_encaps_red_1(list_id, src, s1);
    }

    action pin_encaps_red_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        h_encaps_red_2(list_id, src, s1, s2);
    }

    action pin_encaps_red_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3) {
        h_encaps_red_3(list_id, src, s1, s2, s3);
    }

    action pin_encaps_red_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4) {
        h_encaps_red_4(list_id, src, s1, s2, s3, s4);
    }

    action pin_encaps_red_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        h_encaps_red_5(list_id, src, s1, s2, s3, s4, s5);
    }

    action pin_encaps_red_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        h_encaps_red_6(list_id, src, s1, s2, s3, s4, s5, s6);
    }

    action pin_encaps_red_7(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6,
                            ipv6_addr_t s7) {
        h_encaps_red_7(list_id, src, s1, s2, s3, s4, s5, s6, s7);
    }

    table elephant_override {
        key = {
            meta.sr_policy_id: exact @name("sr_policy_id");
            meta.fk_src: exact @name("src");
            meta.fk_dst: exact @name("dst");
            meta.fk_proto: exact @name("proto");
            meta.fk_sport: exact @name("sport");
            meta.fk_dport: exact @name("dport");
            meta.fk_qp: exact @name("dest_qp");
        }
        actions = {
            pin_encaps_1; pin_encaps_2; pin_encaps_3; pin_encaps_4; pin_encaps_5; pin_encaps_6;
            pin_encaps_red_1; pin_encaps_red_2; pin_encaps_red_3; pin_encaps_red_4;
            pin_encaps_red_5; pin_encaps_red_6; pin_encaps_red_7;
            @defaultonly NoAction;
        }
        const default_action = NoAction();
        counters = override_hits;
        size = ELEPHANT_OVERRIDE_TABLE_SIZE;
    }

    table sr_policy {
        key = {
            meta.sr_policy_id: exact @name("sr_policy_id");
            meta.apn_id: selector;
            meta.dest_qp: selector;
        }
        actions = {
            h_encaps_1; h_encaps_2; h_encaps_3; h_encaps_4; h_encaps_5; h_encaps_6;
            h_encaps_red_1; h_encaps_red_2; h_encaps_red_3; h_encaps_red_4;
            h_encaps_red_5; h_encaps_red_6; h_encaps_red_7;
        }
        implementation = sr_selector;
        size = SR_POLICY_TABLE_SIZE;
    }

    apply {
        if (meta.sr_policy_id != 0 && hdr.ipv6.isValid()) {
            hash(flow_label, HashAlgorithm.crc32, 20w0, { meta.apn_id, meta.dest_qp },
                 32w0x100000);
            // A pinned elephant first; every other flow by the deep hash.
            if (!meta.sketch_on || !elephant_override.apply().hit) {
                sr_policy.apply();
            }
            // The APN policy asked for APN6 in a Destination Options header: the pushed
            // header (APN6, PadN: the same 16 octets) is typed DOH instead of Hop-by-Hop. A
            // DOH before the SRH is read by each segment endpoint, not by every transit node
            // (RFC 8200 4.1); IFIT's options are Hop-by-Hop options, so none go with it.
            if (meta.encapsulated) {
                segment_list_load.count((bit<32>) meta.sr_list_id);
                if (meta.apn_in_doh == 1) {
                    hdr.encap_ipv6.next_hdr = IP_PROTO_DSTOPTS;
                }
            }
        }
    }
}

control Srv6Endpoint(inout parsed_headers_t hdr,
                     inout local_metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    StripOuterHeaders() strip_outer_headers;

    // End (RFC 8986 4.1): Segments Left - 1, DA = the next segment.
    action end() {
        hdr.srh.segments_left = hdr.srh.segments_left - 1;
        hdr.ipv6.dst_addr = meta.next_sid;
    }

    // End.X (4.2): End, then to a given adjacency instead of the routing table; so it spends
    // the hop routing would have (RFC 8986 4.1 S04-S05: expiry is checked in apply).
    action end_x(port_num_t port, mac_addr_t smac, mac_addr_t dmac) {
        end();
        hdr.ipv6.hop_limit = hdr.ipv6.hop_limit - 1;
        standard_metadata.egress_spec = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        meta.next_hop_set = true;
    }

    // Decapsulation: the outer IPv6 header goes here; its extension headers (HBH with
    // APN6 and telemetry, SRH) go in apply, through StripOuterHeaders.
    action strip_outer() {
        hdr.ipv6.setInvalid();
        meta.decapsulated = true;
    }

    // End.DT6 (4.6): decapsulate and look the inner IPv6 packet up (one table here).
    action end_dt6() {
        strip_outer();
        hdr.ipv6 = hdr.inner_ipv6;
        hdr.inner_ipv6.setInvalid();
    }

    // End.DT4 (4.8): decapsulate and look the inner IPv4 packet up.
    action end_dt4() {
        strip_outer();
        hdr.ethernet.ether_type = ETHERTYPE_IPV4;
    }

    table my_sid {
        key = { hdr.ipv6.dst_addr: lpm @name("ipv6_dst"); }
        actions = { end; end_x; end_dt6; end_dt4; @defaultonly NoAction; }
        const default_action = NoAction();
        size = MY_SID_TABLE_SIZE;
    }

    // The ingress applies this to IPv6 packets only. The preconditions are those of the
    // packet as it arrived, which the actions change: whether the SRH has segments left is
    // what the parser recorded (meta.srh_active); End.DT6 moved the inner IPv6 header, valid
    // or not, into hdr.ipv6. Locals to hold them would cost BMv2 a table and four primitives
    // on every packet (issue 17), SID or not.
    apply {
        switch (my_sid.apply().action_run) {
            end: {
                if (meta.srh_error != DROP_NONE) {
                    // An SRH this node could not process (parser.p4): transit nodes forward
                    // such packets (RFC 8754 4.2), the SID's owner drops them.
                    meta.drop_reason = meta.srh_error;
                } else if (!meta.srh_active) {
                    meta.drop_reason = DROP_END_SL_ZERO;
                }
            }
            end_x: {
                if (meta.srh_error != DROP_NONE) {
                    meta.drop_reason = meta.srh_error;
                } else if (!meta.srh_active) {
                    meta.drop_reason = DROP_END_SL_ZERO;
                } else if (hdr.ipv6.hop_limit == 0 || hdr.ipv6.hop_limit == 255) {
                    // end_x spent the hop (8 bits: 1 became 0, 0 wrapped to 255): it arrived
                    // with none left to spend (RFC 8200 3; Time Exceeded, control/icmp.p4)
                    meta.drop_reason = DROP_HOP_LIMIT;
                }
            }
            end_dt6: {
                if (meta.srh_error != DROP_NONE) {
                    meta.drop_reason = meta.srh_error;
                } else if (meta.srh_active) {
                    meta.drop_reason = DROP_BAD_SRH;
                } else if (!hdr.ipv6.isValid()) {
                    meta.drop_reason = DROP_NO_INNER;
                }
            }
            end_dt4: {
                if (meta.srh_error != DROP_NONE) {
                    meta.drop_reason = meta.srh_error;
                } else if (meta.srh_active) {
                    meta.drop_reason = DROP_BAD_SRH;
                } else if (!hdr.inner_ipv4.isValid()) {
                    meta.drop_reason = DROP_NO_INNER;
                }
            }
        }
        if (meta.decapsulated) {
            strip_outer_headers.apply(hdr, false);
        }
    }
}

// An encapsulated packet ends where its outer Payload Length says: whatever the frame held
// past the inner packet (Ethernet padding of a short packet) is not carried into the tunnel.
// Applied once every header the headend pushes (SRv6, IFIT) is in place.
control TrimEncapsulated(in parsed_headers_t hdr, in local_metadata_t meta) {
    apply {
        if (meta.encapsulated) {
            truncate((bit<32>) hdr.encap_ipv6.payload_len + 54);   // Ethernet 14 + IPv6 40
        }
    }
}

#endif  // ICPN_V1MODEL_SRV6_P4
