// IFIT: in-situ flow telemetry (DESIGN.md 3 item 7) and ECN (item 8).
//
// The headend inserts what the packet's telemetry profile asks for into the outer HBH it
// pushed: APN6 | PadN(0) AltMark | IOAM trace | PadN to 8 octets. The trace's last slot is
// the headend's own (encap_ioam_node): egress fills it when the headend is a node of the
// namespace (RFC 9197 4.4: the encapsulating node may add its data), so the path a collector
// decodes starts at the headend; otherwise it stays zeroed and counts as free.
//
// Alternate marking (RFC 9341/9343): inserted with L = the colour of the current period (bit k of its clock, period 2^k us) and
// D set on one packet in 2^d of each FlowMonID; every node counts packets and bytes per
// (FlowMonID, colour) in `altmark_colors`, readable over P4Runtime. Comparing the counts of
// one finished colour block at two nodes gives the loss between them.
//
// IOAM pre-allocated trace (RFC 9197): a node configured for the trace's namespace
// (`ioam_node`) writes its data into the slot the parser found (the last free one) at
// egress, where queue depth and transit delay are known, and decrements RemainingLen; with
// no room it sets the Overflow flag. Timestamps follow the namespace's format (PTP, NTP or
// POSIX; `ioam_node`) on the wall clock: BMv2 has none, so the controller sets the wall-clock
// time of the switch's start (`wall_clock`); until it does they count from the start.
#ifndef ICPN_V1MODEL_IFIT_P4
#define ICPN_V1MODEL_IFIT_P4

// A zeroed node slot for a Trace-Type: one header per bit set (RFC 9197 4.4.1 order).
control IoamEmptySlot(inout ioam_node_t node, in bit<24> tt) {
    apply {
        if (tt[23:23] == 1) { node.hop.setValid(); node.hop = { 0, 0 }; }
        if (tt[22:22] == 1) { node.ifs.setValid(); node.ifs = { 0, 0 }; }
        if (tt[21:21] == 1) { node.ts_sec.setValid(); node.ts_sec.value = 0; }
        if (tt[20:20] == 1) { node.ts_frac.setValid(); node.ts_frac.value = 0; }
        if (tt[19:19] == 1) { node.transit_delay.setValid(); node.transit_delay.value = 0; }
        if (tt[18:18] == 1) { node.namespace_data.setValid(); node.namespace_data.value = 0; }
        if (tt[17:17] == 1) { node.queue_depth.setValid(); node.queue_depth.value = 0; }
        if (tt[16:16] == 1) {
            node.checksum_complement.setValid();
            node.checksum_complement.value = 0;
        }
        if (tt[15:15] == 1) { node.hop_wide.setValid(); node.hop_wide = { 0, 0 }; }
        if (tt[14:14] == 1) { node.ifs_wide.setValid(); node.ifs_wide = { 0, 0 }; }
        if (tt[13:13] == 1) {
            node.namespace_data_wide.setValid();
            node.namespace_data_wide.value = 0;
        }
        if (tt[12:12] == 1) { node.buffer_occupancy.setValid(); node.buffer_occupancy.value = 0; }
    }
}

control IfitIngress(inout parsed_headers_t hdr,
                    inout local_metadata_t meta,
                    in standard_metadata_t standard_metadata) {
    IoamEmptySlot() headend_slot;
    counter(ALTMARK_COUNTER_SIZE, CounterType.packets_and_bytes) altmark_colors;
    // Packets marked so far per FlowMonID slot: picks the delay samples (D).
    register<bit<32>>(ALTMARK_FLOW_SLOTS) altmark_seq;

    action insert_altmark() {
        bit<32> slot = (bit<32>) meta.tm_flow_mon_id & (ALTMARK_FLOW_SLOTS - 1);
        bit<32> seq;
        altmark_seq.read(seq, slot);
        altmark_seq.write(slot, seq + 1);
        bit<48> period = standard_metadata.ingress_global_timestamp >> meta.tm_period_log2_us;
        bit<32> sample_mask = (32w1 << meta.tm_delay_log2) - 1;

        hdr.encap_pad0.setValid();
        hdr.encap_pad0.type = IPV6_OPT_PADN;
        hdr.encap_pad0.len = 0;
        hdr.encap_altmark.setValid();
        hdr.encap_altmark.type = ALTMARK_OPT_TYPE;
        hdr.encap_altmark.len = 4;
        hdr.encap_altmark.flow_mon_id = meta.tm_flow_mon_id;
        hdr.encap_altmark.l = period[0:0];
        hdr.encap_altmark.d = (bit<1>) ((seq & sample_mask) == 0);
        hdr.encap_altmark.reserved = 0;
        // PadN(0) + AltMark: 8 more octets of HBH (DESIGN.md 2.3 alignment 4n+2).
        hdr.encap_hbh.hdr_ext_len = hdr.encap_hbh.hdr_ext_len + 1;
        hdr.encap_ipv6.payload_len = hdr.encap_ipv6.payload_len + 8;

        meta.has_altmark = true;
        meta.flow_mon_id = meta.tm_flow_mon_id;
        meta.altmark_l = period[0:0];
    }

    // IOAM option + trace header + empty node slots: 12 + 4 * free_words octets, at 4n.
    action insert_ioam_trace() {
        hdr.encap_ioam_opt.setValid();
        hdr.encap_ioam_opt.type = IOAM_OPT_TYPE;
        hdr.encap_ioam_opt.len = 10 + (meta.tm_free_words << 2);
        hdr.encap_ioam_opt.reserved = 0;
        hdr.encap_ioam_opt.ioam_type = IOAM_TYPE_PREALLOCATED_TRACE;
        hdr.encap_ioam_trace.setValid();
        hdr.encap_ioam_trace.namespace_id = meta.tm_namespace_id;
        hdr.encap_ioam_trace.node_len = meta.tm_node_len;
        hdr.encap_ioam_trace.o = 0;
        hdr.encap_ioam_trace.l = 0;
        hdr.encap_ioam_trace.a = 0;
        hdr.encap_ioam_trace.flag_rsv = 0;
        hdr.encap_ioam_trace.remaining_len = (bit<7>) meta.tm_free_words;
        hdr.encap_ioam_trace.trace_type = meta.tm_trace_type;
        hdr.encap_ioam_trace.reserved = 0;
    }

    action set_telemetry(bit<1> altmark, bit<20> flow_mon_id, bit<8> period_log2_us,
                         bit<8> delay_log2, bit<1> ioam, bit<16> namespace_id,
                         bit<24> trace_type, bit<5> node_len, bit<8> free_words) {
        meta.tm_altmark = altmark;
        meta.tm_flow_mon_id = flow_mon_id;
        meta.tm_period_log2_us = period_log2_us;
        meta.tm_delay_log2 = delay_log2;
        meta.tm_ioam = ioam;
        meta.tm_namespace_id = namespace_id;
        meta.tm_trace_type = trace_type;
        meta.tm_node_len = node_len;
        meta.tm_free_words = free_words;
    }

    // What telemetry an APN policy asks for (its telemetry profile): alternate marking
    // (FlowMonID, period, delay sampling) and/or an IOAM pre-allocated trace (namespace,
    // Trace-Type, NodeLen and room, both computed by the controller). Looked up after the
    // encapsulation, with the segment list it pushed: an entry for one list (priority above
    // the profile's wildcard entry) gives that list a FlowMonID of its own, so that
    // alternate marking measures each list's loss apart (telemetry-driven re-steering).
    table ifit_profile {
        key = {
            meta.telemetry_profile: exact @name("profile");
            meta.sr_list_id: ternary @name("list_id");
        }
        actions = { set_telemetry; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IFIT_PROFILE_TABLE_SIZE;
    }

    action clone_to_collector(bit<32> session) {
        meta.report_ingress_ts = standard_metadata.ingress_global_timestamp;
        meta.report_ingress_port = standard_metadata.ingress_port;
        // Routing ran before IFIT (icpn.p4): egress_spec is where the decapsulated packet goes.
        meta.report_egress_port = standard_metadata.egress_spec;
        clone_preserving_field_list(CloneType.I2E, session, FIELD_LIST_REPORT);
    }

    // Decapsulating nodes that export the traces of a namespace, and the clone session
    // (P4Runtime CloneSessionEntry) whose port leads to the collector.
    table ioam_export {
        key = { meta.trace_namespace: exact @name("namespace_id"); }
        actions = { clone_to_collector; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }

    // One condition for a packet this node neither encapsulates nor decapsulates and that
    // carries no alternate marking: most of them (issue 17).
    apply {
        if (meta.encapsulated || meta.decapsulated || meta.has_altmark) {
            // The clone is the packet as received (BMv2 parses it again), trace included.
            if (meta.decapsulated && meta.drop_reason == DROP_NONE && meta.has_trace) {
                ioam_export.apply();
            }
            if (meta.encapsulated && meta.apn_in_doh == 0 && meta.telemetry_profile != 0) {
                if (ifit_profile.apply().hit) {
                    if (meta.tm_altmark == 1) {
                        insert_altmark();
                    }
                    if (meta.tm_ioam == 1) {
                        insert_ioam_trace();
                        // The free space before the headend's slot, zeroed, as power-of-two
                        // chunks of 4-octet words; then the slot, one zeroed header per
                        // Trace-Type bit.
                        bit<8> free = meta.tm_free_words - (bit<8>) meta.tm_node_len;
                        if (free[0:0] == 1) { hdr.encap_free_1w.setValid(); hdr.encap_free_1w.zeros = 0; }
                        if (free[1:1] == 1) { hdr.encap_free_2w.setValid(); hdr.encap_free_2w.zeros = 0; }
                        if (free[2:2] == 1) { hdr.encap_free_4w.setValid(); hdr.encap_free_4w.zeros = 0; }
                        if (free[3:3] == 1) { hdr.encap_free_8w.setValid(); hdr.encap_free_8w.zeros = 0; }
                        if (free[4:4] == 1) { hdr.encap_free_16w.setValid(); hdr.encap_free_16w.zeros = 0; }
                        if (free[5:5] == 1) { hdr.encap_free_32w.setValid(); hdr.encap_free_32w.zeros = 0; }
                        headend_slot.apply(hdr.encap_ioam_node, meta.tm_trace_type);
                        // The HBH so far is a multiple of 8 ending in a 4-octet PadN; the trace
                        // adds 12 + 4 * free_words. With an even word count that PadN is no
                        // longer needed.
                        bit<16> added = 12 + ((bit<16>) meta.tm_free_words << 2);
                        if (meta.tm_free_words[0:0] == 0) {
                            hdr.encap_pad.setInvalid();
                            added = added - 4;
                        }
                        hdr.encap_hbh.hdr_ext_len = hdr.encap_hbh.hdr_ext_len + (bit<8>) (added >> 3);
                        hdr.encap_ipv6.payload_len = hdr.encap_ipv6.payload_len + added;
                    }
                }
            }
            if (meta.has_altmark && meta.drop_reason == DROP_NONE) {
                bit<32> slot = (bit<32>) meta.flow_mon_id & (ALTMARK_FLOW_SLOTS - 1);
                altmark_colors.count((slot << 1) | (bit<32>) meta.altmark_l);
            }
        }
    }
}

// This node's data into a slot (the fields of the Trace-Type's bits are the valid ones), from
// IfitEgress's apply (now, in_port, out_port, sec, frac in scope). A macro, not an action with
// an `inout ioam_node_t`: p4c gives such an action a copy of the twelve headers per call
// site, 24 header instances more for BMv2 to reset on every packet and 24 header copies
// per filled trace (issue 17).
#define IOAM_FILL_SLOT(node, hop_limit_value) \
        node.hop.hop_lim = hop_limit_value; \
        node.hop.node_id = meta.ioam_node_id; \
        node.ifs.ingress_if = (bit<16>) in_port; \
        node.ifs.egress_if = (bit<16>) out_port; \
        node.ts_sec.value = sec; \
        node.ts_frac.value = frac; \
        node.transit_delay.value = (bit<32>) \
            ((standard_metadata.egress_global_timestamp - now) * 1000); \
        node.namespace_data.value = meta.ioam_namespace_data; \
        node.queue_depth.value = (bit<32>) standard_metadata.deq_qdepth; \
        node.checksum_complement.value = IOAM_NOT_AVAILABLE; \
        node.hop_wide.hop_lim = hop_limit_value; \
        node.hop_wide.node_id = meta.ioam_node_id_wide; \
        node.ifs_wide.ingress_if = (bit<32>) in_port; \
        node.ifs_wide.egress_if = (bit<32>) out_port; \
        node.namespace_data_wide.value = meta.ioam_namespace_data_wide; \
        node.buffer_occupancy.value = (bit<32>) standard_metadata.enq_qdepth;

control IfitEgress(inout parsed_headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    StripOuterHeaders() strip_outer_headers;

    // meta.ioam_ts_format: how the namespace writes timestamps (TS_FORMAT_*, RFC 9197 5).
    action set_ioam_node(bit<24> id, bit<56> id_wide, bit<32> ns_data, bit<64> ns_data_wide,
                         bit<2> timestamp_format) {
        meta.ioam_node_id = id;
        meta.ioam_node_id_wide = id_wide;
        meta.ioam_namespace_data = ns_data;
        meta.ioam_namespace_data_wide = ns_data_wide;
        meta.ioam_ts_format = timestamp_format;
    }

    // BMv2's clock counts microseconds from the switch's start; the controller keeps the
    // wall-clock time (POSIX seconds and microseconds) of that start here, measured with
    // clock probes (icpn.wallclock), and refreshes it as the two clocks drift.
    bit<32> start_s;    // wall_clock's default action always runs before they are read
    bit<32> start_us;

    action set_wall_clock(bit<32> seconds, bit<32> microseconds) {
        start_s = seconds;
        start_us = microseconds;
    }

    table wall_clock {
        key = {}
        actions = { set_wall_clock; }
        default_action = set_wall_clock(0, 0);
        size = 1;
    }

    // The IOAM namespaces this node takes part in, and its identity in each. Looked up for
    // the trace this node inserted (a headend's), else for the trace the packet carries.
    bit<16> trace_namespace;
    table ioam_node {
        key = { trace_namespace: exact @name("namespace_id"); }
        actions = { set_ioam_node; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }

    action set_ecn_threshold(bit<19> queue_depth) {
        meta.ecn_threshold = queue_depth;
    }

    // Ports that mark ECN-capable packets CE when their queue is this deep (packets).
    table ecn_marking {
        key = { standard_metadata.egress_port: exact @name("port"); }
        actions = { set_ecn_threshold; @defaultonly NoAction; }
        const default_action = NoAction();
        size = PORT_TABLE_SIZE;
    }

    register<bit<32>>(1) report_sequence;

    // Turn the clone into a report: IPv6/UDP to the collector, the report header, the IOAM
    // option as carried (with this node's data added), the inner IP header and L4 ports.
    action build_report(mac_addr_t smac, mac_addr_t dmac, ipv6_addr_t src, ipv6_addr_t dst,
                        bit<16> udp_port) {
        bit<32> sequence;
        report_sequence.read(sequence, 0);
        report_sequence.write(0, sequence + 1);
        bit<48> now = standard_metadata.egress_global_timestamp;
        bit<48> seconds = (bit<48>) (((bit<128>) now * US_PER_S_RECIPROCAL) >> 68);

        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ethernet.ether_type = ETHERTYPE_IPV6;
        hdr.ipv6.traffic_class = 0;
        hdr.ipv6.flow_label = 0;
        hdr.ipv6.next_hdr = IP_PROTO_UDP;
        hdr.ipv6.hop_limit = ENCAP_HOP_LIMIT;
        hdr.ipv6.src_addr = src;
        hdr.ipv6.dst_addr = dst;
        hdr.report_udp.setValid();
        hdr.report_udp.src_port = udp_port;
        hdr.report_udp.dst_port = udp_port;
        hdr.report.setValid();
        hdr.report.version = 1;
        hdr.report.type = 1;
        // Overflow, then whether the packet carried alternate marking and its colour (L):
        // the collector counts a segment list's arrivals per colour block from reports.
        hdr.report.flags = ((bit<8>) hdr.ioam_trace.o << 7)
                           | ((bit<8>) (bit<1>) meta.has_altmark << 6)
                           | ((bit<8>) meta.altmark_l << 5);
        hdr.report.reserved = 0;
        hdr.report.node_id = (bit<32>) meta.ioam_node_id;
        // On the wall clock, like the trace's stamps (PTP-style seconds and nanoseconds).
        bit<32> us = (bit<32>) (now - seconds * 1000000) + start_us;
        bit<32> sec = (bit<32>) seconds + start_s;
        if (us >= 1000000) {
            us = us - 1000000;
            sec = sec + 1;
        }
        hdr.report.seconds = sec;
        hdr.report.nanoseconds = us * 1000;
        hdr.report.sequence = sequence;
        // The inner payload goes (the outer headers but the trace go in apply).
        hdr.udp_rest.setInvalid();
        hdr.bth.setInvalid();
        hdr.icmpv6.setInvalid();
    }

    // Where this node's reports go, per namespace.
    table ioam_report {
        key = { hdr.ioam_trace.namespace_id: exact @name("namespace_id"); }
        actions = { build_report; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }

    // Everything about traces sits behind one condition, so that a packet without one (most
    // of them) costs BMv2 that condition and the ECN lookup (issue 17).
    apply {
        if (hdr.encap_ioam_trace.isValid() || hdr.ioam_trace.isValid()) {
            wall_clock.apply();   // the stamps below and a trace report's export time
            // Looked up for the trace this node inserted (a headend's), else the packet's.
            if (hdr.encap_ioam_trace.isValid()) {
                trace_namespace = hdr.encap_ioam_trace.namespace_id;
            } else {
                trace_namespace = hdr.ioam_trace.namespace_id;
            }
            if (ioam_node.apply().hit) {
                bit<48> now = standard_metadata.ingress_global_timestamp;
                bit<9> in_port = standard_metadata.ingress_port;
                bit<9> out_port = standard_metadata.egress_port;
                if (standard_metadata.instance_type == BMV2_INSTANCE_TYPE_INGRESS_CLONE) {
                    now = meta.report_ingress_ts;  // the report: the original's arrival,
                    in_port = meta.report_ingress_port;
                    out_port = meta.report_egress_port;  // and its way out, not the collector's
                }
                // The reception time in the namespace's format (RFC 9197 4.4.2.3-4, 5): the
                // switch clock plus the wall-clock time of its start, in POSIX seconds and
                // microseconds first. now / 10^6 without a divider: (now * m) >> 68 with
                // m = ceil(2^68 / 10^6) is exact for every 48-bit now (tests/test_codegen.py).
                bit<48> up_s = (bit<48>) (((bit<128>) now * US_PER_S_RECIPROCAL) >> 68);
                bit<32> us = (bit<32>) (now - up_s * 1000000) + start_us;
                bit<32> sec = (bit<32>) up_s + start_s;
                if (us >= 1000000) {
                    us = us - 1000000;
                    sec = sec + 1;
                }
                bit<32> frac = us * 1000;   // PTP: nanoseconds
                if (meta.ioam_ts_format == TS_FORMAT_POSIX) {
                    frac = us;
                } else if (meta.ioam_ts_format == TS_FORMAT_NTP) {
                    sec = sec + NTP_UNIX_EPOCH_OFFSET_S;
                    frac = (bit<32>) (((bit<128>) us * NTP_FRACTION_PER_US) >> 34);
                }
                if (hdr.encap_ioam_trace.isValid()) {
                    // The slot IfitIngress reserved: Hop_Lim is the outer header's as it leaves.
                    IOAM_FILL_SLOT(hdr.encap_ioam_node, hdr.encap_ipv6.hop_limit)
                    hdr.encap_ioam_trace.remaining_len = hdr.encap_ioam_trace.remaining_len
                                                         - (bit<7>) hdr.encap_ioam_trace.node_len;
                } else if (meta.ioam_fill) {
                    IOAM_FILL_SLOT(hdr.ioam_node, hdr.ipv6.hop_limit)
                    hdr.ioam_trace.remaining_len = hdr.ioam_trace.remaining_len
                                                   - (bit<7>) hdr.ioam_trace.node_len;
                } else if (meta.ioam_overflow) {
                    hdr.ioam_trace.o = 1;
                }
            }
            if (standard_metadata.instance_type == BMV2_INSTANCE_TYPE_INGRESS_CLONE
                && hdr.ioam_trace.isValid()) {
                if (ioam_report.apply().hit) {
                    bit<16> inner = 0;
                    if (hdr.inner_ipv6.isValid()) {
                        inner = 40;
                    } else if (hdr.inner_ipv4.isValid()) {
                        inner = 20;
                    }
                    if (hdr.l4_ports.isValid()) {
                        inner = inner + 4;
                    }
                    bit<16> udp_len = 8 + REPORT_HEADER_OCTETS + (bit<16>) hdr.ioam_opt.len + 2
                                      + inner;
                    strip_outer_headers.apply(hdr, true);
                    hdr.report_udp.len = udp_len;
                    hdr.ipv6.payload_len = udp_len;
                    truncate((bit<32>) udp_len + 54);  // Ethernet 14 + IPv6 40 + UDP and the rest
                    meta.trace_reported = true;        // a report: no ECN marking
                }
            }
        }
        if (!meta.trace_reported) {
            if (ecn_marking.apply().hit) {
                if (standard_metadata.deq_qdepth >= meta.ecn_threshold) {
                    // RFC 3168: ECT(0), ECT(1) become CE; Not-ECT is left alone. The outermost
                    // header carries the congestion signal.
                    if (hdr.encap_ipv6.isValid()) {
                        if (hdr.encap_ipv6.traffic_class[1:0] != 0) {
                            hdr.encap_ipv6.traffic_class[1:0] = 3;
                        }
                    } else if (hdr.ipv6.isValid() && hdr.ipv6.traffic_class[1:0] != 0) {
                        hdr.ipv6.traffic_class[1:0] = 3;
                    }
                }
            }
        }
    }
}

#endif  // ICPN_V1MODEL_IFIT_P4
