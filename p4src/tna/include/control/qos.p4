// Differentiated bearing on Tofino: v1model's qos.p4 tables, keys and actions (traffic class
// from the APN ID, tenant trTCM meters, ECN per queue, counters per class). What differs,
// and why (docs/qos.md):
// - the class is the queue id ig_tm_md.qid; the traffic manager's queue priorities and
//   weights (strict or DWRR, shaping) are set by the SDE's port/queue API, not by P4;
// - Meter returns 3 for red (MeterColor_t), mapped to METER_RED for the colour counters;
// - a red drop sets drop_ctl here: the drop_reasons counter (the verdict's) does not count it,
//   the tenant's red colour counter does.
// In the icpn-qos profile only (-DWITH_QOS): the default profile has no stage left for it.
#ifndef ICPN_TNA_QOS_P4
#define ICPN_TNA_QOS_P4

control QosIngress(inout tna_ingress_headers_t hdr,
                   inout tna_ingress_metadata_t meta,
                   inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                   inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    Meter<bit<8>>(QOS_TENANT_METERS, MeterType_t.BYTES) tenant_meter;
    Counter<bit<64>, bit<10>>(QOS_COLOR_COUNTER_SIZE, CounterType_t.PACKETS_AND_BYTES)
        tenant_colors;

    bit<3> traffic_class = 0;
    bit<8> color = 0;
    bit<8> meter_index = 0;
    bit<1> red_drop = 0;
    bit<6> red_dscp = 0;
    bit<3> red_class = 0;
    bool metered = false;

    action set_traffic_class(bit<3> tc) {
        traffic_class = tc;
    }

    table qos_class {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { set_traffic_class; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_CLASS_TABLE_SIZE;
    }

    action meter_tenant(bit<8> index, bit<1> drop_red, bit<6> remark_dscp, bit<3> remark_tc) {
        meter_index = index;
        red_drop = drop_red;
        red_dscp = remark_dscp;
        red_class = remark_tc;
        metered = true;
        color = tenant_meter.execute(index);
    }

    table qos_tenant {
        key = { meta.apn_id: ternary @name("apn_id"); }
        actions = { meter_tenant; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_TENANT_TABLE_SIZE;
    }

    apply {
        qos_class.apply();
        qos_tenant.apply();
        if (metered) {
            bit<2> colour = METER_GREEN;
            if (color == MeterColor_t.RED) {
                colour = METER_RED;
            } else if (color == MeterColor_t.YELLOW) {
                colour = METER_YELLOW;
            }
            tenant_colors.count(meter_index ++ colour);
            if (colour == METER_RED) {
                if (red_drop == 1) {
                    ig_dprsr_md.drop_ctl = 1;
                } else {
                    traffic_class = red_class;
                    hdr.ipv6.traffic_class[7:2] = red_dscp;
                }
            }
        }
        ig_tm_md.qid = (QueueId_t) traffic_class;
    }
}

control QosEgress(inout tna_egress_headers_t hdr,
                  in egress_intrinsic_metadata_t eg_intr_md) {
    Counter<bit<64>, QueueId_t>(QOS_QUEUES, CounterType_t.PACKETS_AND_BYTES) class_tx;
    bit<19> threshold = 0;

    action set_queue_ecn_threshold(bit<19> queue_depth) {
        threshold = queue_depth;
    }

    table queue_ecn {
        key = {
            eg_intr_md.egress_port: exact @name("port");
            eg_intr_md.egress_qid: exact @name("queue");
        }
        actions = { set_queue_ecn_threshold; @defaultonly NoAction; }
        const default_action = NoAction();
        size = QOS_QUEUE_ECN_TABLE_SIZE;
    }

    apply {
        class_tx.count(eg_intr_md.egress_qid);
        if (hdr.ipv6.isValid()) {
            if (queue_ecn.apply().hit && eg_intr_md.deq_qdepth >= threshold) {
                // RFC 3168: ECT(0), ECT(1) become CE; hdr.ipv6 is the outermost header here.
                if (hdr.ipv6.traffic_class[1:0] != 0) {
                    hdr.ipv6.traffic_class[1:0] = 3;
                }
            }
        }
    }
}

#endif  // ICPN_TNA_QOS_P4
