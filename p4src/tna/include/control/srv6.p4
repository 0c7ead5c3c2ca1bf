// SRv6 on Tofino: the headend's SR policies (H.Encaps, H.Encaps.Red) and the local SIDs (End,
// End.X, End.DT6, End.DT4), with v1model's tables, keys, actions and parameters.
//
// H.Encaps pushes v1model's encap_* headers: outer IPv6 (payload length from the inner
// packet's own, so Ethernet padding is not counted), HBH with APN6, SRH. They share
// containers with the parsed headers they exclude (headers.p4), so a Tofino headend
// encapsulates only packets without an SRH, IFIT options or a tunnel of their own (what
// arrives from hosts); others are dropped as ENCAP_REFUSED. The outer flow label is
// CRC-32(APN ID, DestQP) mod 2^20, as on v1model.
//
// The deep hash: segment lists of a policy are members of an action selector whose Hash
// (CRC-16) takes the APN ID and DestQP; which member a value picks is Tofino's selector
// placement (not BMv2's hash mod group size).
//
// Decapsulation (End.DT6/DT4) invalidates the outer headers in ingress; the inner packet,
// parsed behind them, is what the deparser emits. Srv6Endpoint decides early; the headers
// change at the end of ingress (Srv6EndpointRewrite).
#ifndef ICPN_TNA_SRV6_P4
#define ICPN_TNA_SRV6_P4

control Srv6Headend(inout tna_ingress_headers_t hdr,
                    inout tna_ingress_metadata_t meta) {

    CRCPolynomial<bit<32>>(32w0x04C11DB7, true, false, false, 32w0xFFFFFFFF, 32w0xFFFFFFFF) crc32;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, crc32) flow_label_hash;

    // Over the APN ID as 128 bits, as v1model hashes it (icpn.hashing.outer_flow_label),
    // as soon as the APN ID is known: written into the header by the encapsulating action
    // itself (a later write of its own would share the header's container with it, and wait
    // for the override: a stage).
    action flow_label_step() {
        meta.flow_label = flow_label_hash.get({ 96w0, meta.apn_id, meta.dest_qp })[19:0];
    }
    STEP(flow_label)
    bit<16> inner_octets = 0;   // the packet H.Encaps wraps: its own length, not the frame's

    action inner_length_step() { inner_octets = hdr.ipv6.payload_len + 40; }
    STEP(inner_length)

    // The outer header and the HBH with APN6 (16 octets with a 32-bit ID): DESIGN.md 2.2.
    action push_outer(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t dst, bit<16> srh_octets) {
        meta.list_id = list_id;
        hdr.encap_ipv6.setValid();
        hdr.encap_ipv6.version = hdr.ipv6.version;   // 6 (the parser checked), and no
        hdr.encap_ipv6.traffic_class = hdr.ipv6.traffic_class;   // constant in this word
        hdr.encap_ipv6.flow_label = meta.flow_label;
        hdr.encap_ipv6.payload_len = inner_octets + (ENCAP_HBH_OCTETS + srh_octets);
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
        hdr.encap_apn_id.word = meta.apn_id;
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

    // One action per list length, segments in path order (s1 first); the SRH lists them
    // reversed (RFC 8754 2: list[0] is the last).
    action h_encaps_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        push_outer(list_id, src, s1, 24);
        push_srh(IP_PROTO_IPV6, 1, 0);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s1;
        hdr.encap_segments[1].setInvalid();
        hdr.encap_segments[2].setInvalid();
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }

    action h_encaps_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        push_outer(list_id, src, s1, 40);
        push_srh(IP_PROTO_IPV6, 2, 1);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s2;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s1;
        hdr.encap_segments[2].setInvalid();
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
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
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }

#if TNA_MAX_ENCAP_SEGMENTS >= 4
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
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 5
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
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 6
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
#endif

    // H.Encaps.Red (RFC 8986 5.2): the first segment only in the DA, so a list holds one
    // segment more than the SRH; one segment, no SRH.
    action h_encaps_red_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        push_outer(list_id, src, s1, 0);
        hdr.encap_hbh.next_hdr = IP_PROTO_IPV6;
        hdr.encap_srh.setInvalid();
        hdr.encap_segments[0].setInvalid();
        hdr.encap_segments[1].setInvalid();
        hdr.encap_segments[2].setInvalid();
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }

    action h_encaps_red_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        push_outer(list_id, src, s1, 24);
        push_srh(IP_PROTO_IPV6, 1, 1);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s2;
        hdr.encap_segments[1].setInvalid();
        hdr.encap_segments[2].setInvalid();
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }

    action h_encaps_red_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                          ipv6_addr_t s3) {
        push_outer(list_id, src, s1, 40);
        push_srh(IP_PROTO_IPV6, 2, 2);
        hdr.encap_segments[0].setValid();
        hdr.encap_segments[0].sid = s3;
        hdr.encap_segments[1].setValid();
        hdr.encap_segments[1].sid = s2;
        hdr.encap_segments[2].setInvalid();
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
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
#if TNA_MAX_ENCAP_SEGMENTS > 3
        hdr.encap_segments[3].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }

#if TNA_MAX_ENCAP_SEGMENTS >= 4
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
#if TNA_MAX_ENCAP_SEGMENTS > 4
        hdr.encap_segments[4].setInvalid();
#endif
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 5
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
#if TNA_MAX_ENCAP_SEGMENTS > 5
        hdr.encap_segments[5].setInvalid();
#endif
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 6
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
#endif

    // CRC-32 as on BMv2 (v1model srv6.p4 says why: consecutive QPs and CRC-16's (x + 1)).
    Hash<bit<16>>(HashAlgorithm_t.CRC32) deep_hash;
    ActionProfile(SR_SELECTOR_SIZE) sr_members;
    ActionSelector(sr_members, deep_hash, SelectorMode_t.FAIR, ECMP_MAX_GROUP_SIZE,
                   SR_POLICY_TABLE_SIZE) sr_selector;

    // Pinned elephants: their own actions, each counting the entry's direct counter (Tofino
    // requires it in every action of the table, and no other table may share them).
    DirectCounter<bit<64>>(CounterType_t.PACKETS_AND_BYTES) override_hits;

    action pin_encaps_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        override_hits.count();
        h_encaps_1(list_id, src, s1);
    }

    action pin_encaps_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        override_hits.count();
        h_encaps_2(list_id, src, s1, s2);
    }

    action pin_encaps_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3) {
        override_hits.count();
        h_encaps_3(list_id, src, s1, s2, s3);
    }

#if TNA_MAX_ENCAP_SEGMENTS >= 4
    action pin_encaps_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4) {
        override_hits.count();
        h_encaps_4(list_id, src, s1, s2, s3, s4);
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 5
    action pin_encaps_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        override_hits.count();
        h_encaps_5(list_id, src, s1, s2, s3, s4, s5);
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 6
    action pin_encaps_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                        ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        override_hits.count();
        h_encaps_6(list_id, src, s1, s2, s3, s4, s5, s6);
    }
#endif

    action pin_encaps_red_1(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1) {
        override_hits.count();
        h_encaps_red_1(list_id, src, s1);
    }

    action pin_encaps_red_2(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2) {
        override_hits.count();
        h_encaps_red_2(list_id, src, s1, s2);
    }

    action pin_encaps_red_3(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3) {
        override_hits.count();
        h_encaps_red_3(list_id, src, s1, s2, s3);
    }

    action pin_encaps_red_4(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4) {
        override_hits.count();
        h_encaps_red_4(list_id, src, s1, s2, s3, s4);
    }

#if TNA_MAX_ENCAP_SEGMENTS >= 4
    action pin_encaps_red_5(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5) {
        override_hits.count();
        h_encaps_red_5(list_id, src, s1, s2, s3, s4, s5);
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 5
    action pin_encaps_red_6(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6) {
        override_hits.count();
        h_encaps_red_6(list_id, src, s1, s2, s3, s4, s5, s6);
    }
#endif

#if TNA_MAX_ENCAP_SEGMENTS >= 6
    action pin_encaps_red_7(bit<16> list_id, ipv6_addr_t src, ipv6_addr_t s1, ipv6_addr_t s2,
                            ipv6_addr_t s3, ipv6_addr_t s4, ipv6_addr_t s5, ipv6_addr_t s6,
                            ipv6_addr_t s7) {
        override_hits.count();
        h_encaps_red_7(list_id, src, s1, s2, s3, s4, s5, s6, s7);
    }
#endif

    // Keyed by the flow key's CRC-32 (the sketch's fingerprint, control/sketch.p4) where
    // v1model matches the key's fields: 48 bits of match instead of 340, which would take
    // 37 SRAM blocks and most of a stage's crossbar. Two flows of one policy with the same
    // CRC-32 share a pin (about 1 in 2^32 per pair); icpn.targets.tofino.p4info.for_tna computes the
    // fingerprint of the controller's entries.
    table elephant_override {
        key = {
            meta.sr_policy_id: exact @name("sr_policy_id");
            meta.sk_fingerprint: exact @name("fingerprint");
        }
        actions = {
            pin_encaps_1; pin_encaps_2; pin_encaps_3;
            pin_encaps_red_1; pin_encaps_red_2; pin_encaps_red_3; pin_encaps_red_4;
#if TNA_MAX_ENCAP_SEGMENTS >= 4
            pin_encaps_4; pin_encaps_red_5;
#endif
#if TNA_MAX_ENCAP_SEGMENTS >= 5
            pin_encaps_5; pin_encaps_red_6;
#endif
#if TNA_MAX_ENCAP_SEGMENTS >= 6
            pin_encaps_6; pin_encaps_red_7;
#endif
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
            h_encaps_1; h_encaps_2; h_encaps_3;
            h_encaps_red_1; h_encaps_red_2; h_encaps_red_3; h_encaps_red_4;
#if TNA_MAX_ENCAP_SEGMENTS >= 4
            h_encaps_4; h_encaps_red_5;
#endif
#if TNA_MAX_ENCAP_SEGMENTS >= 5
            h_encaps_5; h_encaps_red_6;
#endif
#if TNA_MAX_ENCAP_SEGMENTS >= 6
            h_encaps_6; h_encaps_red_7;
#endif
        }
        implementation = sr_selector;
        size = SR_POLICY_TABLE_SIZE;
    }

    action encap_go() { meta.encap_go = true; }
    action encap_refuse() { meta.encap_drop = DROP_ENCAP_REFUSED; }

    // Whether this headend encapsulates: packets with a policy, not decapsulated here, not
    // refused by End. The encap_* headers share containers with the parsed headers below
    // (headers.p4): packets with any of them are dropped instead. One table of constants
    // (as conditions, the terms would take a chain of stages).
    table encap_check {
        key = {
            meta.sr_policy_id: ternary @name("sr_policy_id");
            meta.decapsulated: ternary @name("decapsulated");
            meta.end_drop: ternary @name("end_drop");
            meta.beyond_parser: ternary @name("beyond_parser");
            hdr.srh.isValid(): ternary @name("srh");
            hdr.inner_ipv6.isValid(): ternary @name("inner_ipv6");
            hdr.inner_ipv4.isValid(): ternary @name("inner_ipv4");
            hdr.altmark.isValid(): ternary @name("altmark");
            hdr.ioam_opt.isValid(): ternary @name("ioam");
        }
        actions = { encap_go; encap_refuse; NoAction; }
        const entries = {
            (0, _, _, _, _, _, _, _, _): NoAction();
            (_, true, _, _, _, _, _, _, _): NoAction();
            (_, false, DROP_NONE, false, false, false, false, false, false): encap_go();
            (_, false, DROP_NONE, _, _, _, _, _, _): encap_refuse();
        }
        const default_action = NoAction();   // End refused it already
        size = 8;
    }

    apply {
        inner_length.apply();
        flow_label.apply();
        encap_check.apply();
        if (meta.encap_go) {
            sr_policy.apply();
        }
#ifndef WITHOUT_SKETCH
        // Every flow by the deep hash; a pinned elephant's entry then replaces what that
        // pushed (the override's key is ready only stages later: control/sketch.p4).
        if (meta.encap_go && meta.sketch_on) {
            elephant_override.apply();
        }
#endif
    }
}

// Each segment list's load, counted at the end of ingress: not in the encapsulating actions
// (Tofino addresses an indirect counter the same way in every action of a table, and the
// override table has its direct counter), and not in Srv6Headend, where the block would hold
// back every table applied after it (routing) until the counter is placed.
control Srv6Load(in tna_ingress_metadata_t meta) {
    Counter<bit<64>, bit<16>>(SEGMENT_LIST_COUNTER_SIZE, CounterType_t.PACKETS_AND_BYTES)
        segment_list_load;

    apply {
        if (meta.encapsulated) {
            segment_list_load.count(meta.list_id);
        }
    }
}

control Srv6Endpoint(inout tna_ingress_headers_t hdr,
                     inout tna_ingress_metadata_t meta,
                     inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {

    action end() {
        meta.end_behaviour = TNA_END;
    }

    // End.X (RFC 8986 4.2): End, then to a given adjacency instead of the routing table.
    action end_x(PortId_t port, mac_addr_t smac, mac_addr_t dmac) {
        meta.end_behaviour = TNA_END_X;
        ig_tm_md.ucast_egress_port = port;
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        meta.next_hop_set = true;
    }

    action end_dt6() {
        meta.end_behaviour = TNA_END_DT6;
    }

    action end_dt4() {
        meta.end_behaviour = TNA_END_DT4;
    }

    table my_sid {
        key = { hdr.ipv6.dst_addr: lpm @name("ipv6_dst"); }
        actions = { end; end_x; end_dt6; end_dt4; @defaultonly NoAction; }
        const default_action = NoAction();
        size = MY_SID_TABLE_SIZE;
    }


    // Segments Left past Last Entry + 1 (RFC 8754 4.3.1.1), in the form a gateway can test: it
    // compares a field with a constant only, so the saturating difference is computed first.
    bit<8> sl_over_le = 0;
    action srh_excess_step() { sl_over_le = hdr.srh.segments_left |-| hdr.srh.last_entry; }
    STEP(srh_excess)

    action end_error(bit<8> reason) { meta.end_drop = reason; }
    action end_next_segment() { meta.end_next = true; }
    action end_decapsulate() { meta.decapsulated = true; }

    // What my_sid's behaviour does with this packet, v1model's checks in v1model's order:
    // RFC 8986 4.1 (End: Segments Left 0), RFC 8754 4.3.1.1 (Segments Left past Last
    // Entry + 1, "sl_over_le" 2 and more), 4.6/4.8 (End.DT6/DT4: no segments left, the inner
    // packet of the right version). One table of constants: each condition would take one.
    table end_check {
        key = {
            meta.end_behaviour: ternary @name("behaviour");
            meta.srh_error: ternary @name("srh_error");
            meta.beyond_parser: ternary @name("beyond_parser");
            hdr.srh.isValid(): ternary @name("srh");
            hdr.srh.segments_left: ternary @name("segments_left");
            sl_over_le: ternary @name("sl_over_le");
            hdr.inner_ipv6.isValid(): ternary @name("inner_ipv6");
            hdr.inner_ipv4.isValid(): ternary @name("inner_ipv4");
        }
        actions = { end_error; end_next_segment; end_decapsulate; NoAction; }
        const entries = {
            (TNA_END_NONE, _, _, _, _, _, _, _): NoAction();
            (_, DROP_BAD_SRH, _, _, _, _, _, _): end_error(DROP_BAD_SRH);
            (_, DROP_TOO_MANY_HEADERS, _, _, _, _, _, _): end_error(DROP_TOO_MANY_HEADERS);
            (_, _, true, _, _, _, _, _): end_error(DROP_BEYOND_PARSER);
            (TNA_END, _, _, false, _, _, _, _): end_error(DROP_END_SL_ZERO);
            (TNA_END_X, _, _, false, _, _, _, _): end_error(DROP_END_SL_ZERO);
            (TNA_END, _, _, _, 0, _, _, _): end_error(DROP_END_SL_ZERO);
            (TNA_END_X, _, _, _, 0, _, _, _): end_error(DROP_END_SL_ZERO);
            (TNA_END, _, _, _, _, 0, _, _): end_next_segment();
            (TNA_END, _, _, _, _, 1, _, _): end_next_segment();
            (TNA_END_X, _, _, _, _, 0, _, _): end_next_segment();
            (TNA_END_X, _, _, _, _, 1, _, _): end_next_segment();
            (TNA_END, _, _, _, _, _, _, _): end_error(DROP_BAD_SRH);
            (TNA_END_X, _, _, _, _, _, _, _): end_error(DROP_BAD_SRH);
            (TNA_END_DT6, _, _, true, 0, _, true, _): end_decapsulate();
            (TNA_END_DT6, _, _, true, 0, _, false, _): end_error(DROP_NO_INNER);
            (TNA_END_DT6, _, _, true, _, _, _, _): end_error(DROP_BAD_SRH);
            (TNA_END_DT6, _, _, false, _, _, true, _): end_decapsulate();
            (TNA_END_DT6, _, _, false, _, _, false, _): end_error(DROP_NO_INNER);
            (TNA_END_DT4, _, _, true, 0, _, _, true): end_decapsulate();
            (TNA_END_DT4, _, _, true, 0, _, _, false): end_error(DROP_NO_INNER);
            (TNA_END_DT4, _, _, true, _, _, _, _): end_error(DROP_BAD_SRH);
            (TNA_END_DT4, _, _, false, _, _, _, true): end_decapsulate();
            (TNA_END_DT4, _, _, false, _, _, _, false): end_error(DROP_NO_INNER);
        }
        const default_action = NoAction();
        size = 32;
    }

    apply {
        srh_excess.apply();
        if (hdr.ipv6.isValid()) {
            my_sid.apply();
        }
        end_check.apply();
    }
}

// What Srv6Endpoint decided, done to the headers once everything that reads the packet as it
// arrived (classifier, sketch, pinned elephants, hashes) has read it: on Tofino a write before
// those reads would hold them all back a stage or more.
control Srv6EndpointRewrite(inout tna_ingress_headers_t hdr,
                            in tna_ingress_metadata_t meta) {
    // End (RFC 8986 4.1): Segments Left - 1, DA = list[Segments Left - 1], which the parser
    // read as it went by (a Tofino action cannot index a header stack with a field).
    action next_segment() {
        hdr.srh.segments_left = hdr.srh.segments_left - 1;
        hdr.ipv6.dst_addr = meta.fwd_dst;   // the next segment (parser.p4)
    }

    // Decapsulate (End.DT6 4.6, End.DT4 4.8): the inner packet, parsed behind, is emitted.
    action decapsulate_6() {
        STRIP_OUTER_HEADERS
    }

    action decapsulate_4() {
        STRIP_OUTER_HEADERS
        hdr.ethernet.ether_type = ETHERTYPE_IPV4;
    }

    table rewrite {
        key = {
            meta.end_next: exact @name("next");
            meta.decapsulated: exact @name("decapsulated");
            meta.end_behaviour: exact @name("behaviour");
        }
        actions = { next_segment; decapsulate_6; decapsulate_4; NoAction; }
        const entries = {
            (true, false, TNA_END): next_segment();
            (true, false, TNA_END_X): next_segment();
            (false, true, TNA_END_DT6): decapsulate_6();
            (false, true, TNA_END_DT4): decapsulate_4();
        }
        const default_action = NoAction();
        size = 8;
    }

    apply {
        rewrite.apply();
    }
}

#endif  // ICPN_TNA_SRV6_P4
