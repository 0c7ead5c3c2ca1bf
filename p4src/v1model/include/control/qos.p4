// Differentiated bearing (DESIGN.md 4; issue 15): the packet's APN ID picks a traffic class,
// the class is the egress queue, and a tenant (an APN USER-Group, matched by value/mask) may
// be held to its rates by a two-rate three-colour meter (RFC 2698).
//
// Queues: BMv2 simple_switch run with --priority-queues QOS_QUEUES puts a packet in the queue
// standard_metadata.priority names and serves, among the queues whose head is due, the one
// with the highest number first (strict priority). Each queue has its own rate
// (set_queue_rate over Thrift, icpn.qos.QueueRates); BMv2 has no shared port rate and no
// weighted scheduler, so a "weight" is a queue rate (docs/qos.md).
//
// Meter: colour-blind trTCM in bytes. Green and yellow pass (yellow is counted, so a tenant
// above its committed rate shows); red is dropped (DropReason.METER_RED) or remarked: a new
// DSCP on the outermost IPv6 header and a lower class, per the tenant's entry.
#ifndef ICPN_V1MODEL_QOS_P4
#define ICPN_V1MODEL_QOS_P4

control QosIngress(inout parsed_headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    meter(QOS_TENANT_METERS, MeterType.bytes) tenant_meter;
    // Packets and bytes per (tenant meter, colour): index meter * 4 + colour.
    counter(QOS_COLOR_COUNTER_SIZE, CounterType.packets_and_bytes) tenant_colors;

    // The class is the queue: standard_metadata.priority, which BMv2 zeroes on arrival, so
    // a packet no entry classifies goes to queue 0 without a write (one primitive fewer per
    // packet, issue 17).
    action set_traffic_class(bit<3> tc) {
        standard_metadata.priority = tc;
    }

    // APN ID (value/mask) to traffic class; no entry: class 0, best effort.
    table qos_class {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { set_traffic_class; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_CLASS_TABLE_SIZE;
    }

    action meter_tenant(bit<32> index, bit<1> drop_red, bit<6> remark_dscp, bit<3> remark_tc) {
        meta.qos_meter_index = index;
        meta.qos_red_drop = drop_red;
        meta.qos_red_dscp = remark_dscp;
        meta.qos_red_class = remark_tc;
        tenant_meter.execute_meter<bit<2>>(index, meta.qos_color);
    }

    // Tenants held to their rates: the USER-Group bits of the APN ID (value/mask).
    table qos_tenant {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { meter_tenant; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_TENANT_TABLE_SIZE;
    }

    apply {
        qos_class.apply();
        if (qos_tenant.apply().hit) {
            tenant_colors.count((meta.qos_meter_index << 2) | (bit<32>) meta.qos_color);
            if (meta.qos_color == METER_RED) {
                if (meta.qos_red_drop == 1) {
                    meta.drop_reason = DROP_METER_RED;
                } else {
                    standard_metadata.priority = meta.qos_red_class;
                    if (hdr.encap_ipv6.isValid()) {
                        hdr.encap_ipv6.traffic_class[7:2] = meta.qos_red_dscp;
                    } else {
                        hdr.ipv6.traffic_class[7:2] = meta.qos_red_dscp;
                    }
                }
            }
        }
    }
}

control QosEgress(inout parsed_headers_t hdr,
                  inout local_metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    // Packets and bytes each traffic class (queue) sent, all ports together.
    counter(QOS_QUEUES, CounterType.packets_and_bytes) class_tx;

    action set_queue_ecn_threshold(bit<19> queue_depth) {
        meta.qos_ecn_threshold = queue_depth;
    }

    // ECN per queue: mark ECN-capable packets CE when the queue they left was this deep.
    table queue_ecn {
        key = {
            standard_metadata.egress_port: exact @name("port");
            standard_metadata.priority: exact @name("queue");
        }
        actions = { set_queue_ecn_threshold; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_QUEUE_ECN_TABLE_SIZE;
    }

    apply {
        class_tx.count((bit<32>) standard_metadata.priority);
        // Nested: `hit && ...` costs BMv2 two more tables per packet.
        if (queue_ecn.apply().hit) {
            if (standard_metadata.deq_qdepth >= meta.qos_ecn_threshold) {
                // RFC 3168: ECT(0) and ECT(1) become CE, Not-ECT stays; the outermost header.
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

#endif  // ICPN_V1MODEL_QOS_P4
