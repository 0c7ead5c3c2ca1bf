// icpn data plane for Tofino (TNA) and Tofino 2 (T2NA): the v1model program's node roles,
// tables and actions, in Tofino's two pipelines. Feature controls are in
// include/control/<feature>.p4, with the same names as under p4src/v1model/; what differs
// from v1model, and why, is in docs/tofino.md.
//
// bf-p4c -b tofino  -a tna  p4src/tna/icpn.p4   (icpn build does this, into build/tofino/)
// bf-p4c -b tofino2 -a t2na p4src/tna/icpn.p4
#include "include/defines.p4"
#include "include/headers.p4"
#include "include/parser.p4"
#include "include/control/packetio.p4"
#include "include/control/sanity.p4"
#include "include/control/hbh_options.p4"
#include "include/control/apn.p4"
#include "include/control/sketch.p4"
#include "include/control/srv6.p4"
#include "include/control/routing.p4"
#include "include/control/ifit.p4"
#include "include/control/acl.p4"

// The ingress pipeline is laid out for Tofino's stages, not as v1model's chain of checks:
// every control makes its lookups as soon as their keys are known and records what it found
// wrong in its own field (meta.*_drop); the verdict at the end picks the reason v1model would
// have stopped at, with the ACL's word last. A control that would only waste work on a packet
// a check has already condemned waits for that check when the check is early (station,
// SRH), not otherwise (docs/tofino.md lists what a dropped packet may still have touched).
//
// Conditions are flat (one per table, no nesting, no early return): on Tofino 1 a condition
// that does not share a stage with the table it guards costs a stage, and nested ones each
// cost one.
control IcpnIngress(inout tna_ingress_headers_t hdr,
                    inout tna_ingress_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    // Packets dropped by ingress, indexed by reason (DropReason in icpn.constants).
    Counter<bit<32>, bit<8>>(DROP_REASON_COUNT, CounterType_t.PACKETS) drop_reasons;

    PacketIoIngress() packet_io;
    Sanity() sanity;
    TraceLengths() trace_lengths;
    IoamSanity() ioam_sanity;
    MyStation() my_station;
    Apn() apn;
#ifndef WITHOUT_SKETCH
    SketchKey() sketch_key;
    Sketch() sketch;
    SketchReport() sketch_report;
#endif
    IfitTrace() ifit_trace;
    Srv6Endpoint() srv6_endpoint;
    Srv6EndpointRewrite() srv6_endpoint_rewrite;
    Srv6Headend() srv6_headend;
    HopLimit() hop_limit;
    Routing() routing;
    IfitIngress() ifit;
    Acl() acl;

    action take_none() { meta.drop_reason = DROP_NONE; }
    action take_sanity() { meta.drop_reason = meta.sanity_drop; }
    action take_ioam() { meta.drop_reason = meta.ioam_drop; }
    action take_not_ipv6() { meta.drop_reason = DROP_NOT_IPV6; }
    action take_station() { meta.drop_reason = meta.station_drop; }
    action take_end() { meta.drop_reason = meta.end_drop; }
    action take_encap() { meta.drop_reason = meta.encap_drop; }
    action take_route() { meta.drop_reason = meta.route_drop; }
    action acl_punt() {
        meta.drop_reason = DROP_NONE;
        ig_tm_md.ucast_egress_port = TNA_CPU_PORT;
        hdr.bridged.to_cpu = 1;
    }
    action acl_deny() { meta.drop_reason = DROP_ACL_DENY; }

    // The first reason in v1model's order (parser, IOAM lengths, not IPv6, station, End,
    // headend, routing), or the ACL's decision over all of them.
    table verdict {
        key = {
            meta.acl_verdict: ternary @name("acl");
            meta.sanity_drop: ternary @name("sanity");
            meta.ioam_drop: ternary @name("ioam");
            hdr.ipv6.isValid(): ternary @name("ipv6");
            hdr.bridged.from_cpu: ternary @name("packet_out");
            meta.station_drop: ternary @name("station");
            meta.end_drop: ternary @name("end");
            meta.encap_drop: ternary @name("encap");
            meta.route_drop: ternary @name("route");
        }
        actions = { take_none; take_sanity; take_ioam; take_not_ipv6; take_station; take_end;
                    take_encap; take_route; acl_punt; acl_deny; }
        const entries = {
            (_, _, _, _, 1, _, _, _, _): take_none();   // packet-out
            (TNA_ACL_PUNT, _, _, _, _, _, _, _, _): acl_punt();
            (TNA_ACL_DENY, _, _, _, _, _, _, _, _): acl_deny();
            (_, DROP_NONE, DROP_NONE, true, _, DROP_NONE, DROP_NONE, DROP_NONE, DROP_NONE):
                take_none();
            (_, DROP_NONE, DROP_NONE, true, _, DROP_NONE, DROP_NONE, DROP_NONE, _): take_route();
            (_, DROP_NONE, DROP_NONE, true, _, DROP_NONE, DROP_NONE, _, _): take_encap();
            (_, DROP_NONE, DROP_NONE, true, _, DROP_NONE, _, _, _): take_end();
            (_, DROP_NONE, DROP_NONE, true, _, _, _, _, _): take_station();
            (_, DROP_NONE, DROP_NONE, false, _, _, _, _, _): take_not_ipv6();
            (_, DROP_NONE, _, _, _, _, _, _, _): take_ioam();
        }
        const default_action = take_sanity();
        size = 16;
    }

    apply {
        // A packet-out has only its packet-out header parsed (nothing else applies to it) and
        // goes out of the port it names: the verdict lets it through.
        if (hdr.packet_out.isValid()) {
            packet_io.apply(hdr, ig_tm_md);
        }
        // In the order of the longest chain of stages (APN, sketch, SRv6, routing), the
        // conditional blocks off it (the IOAM trace's) after: a table after a conditional
        // block in this list cannot be placed before the block ends.
        sanity.apply(meta, ig_prsr_md);
        acl.apply(hdr, meta, ig_intr_md, ig_tm_md);
        my_station.apply(hdr, meta);
        apn.apply(hdr, meta, ig_intr_md);
#ifndef WITHOUT_SKETCH
        sketch_key.apply(hdr, meta, ig_prsr_md);
#endif
        srv6_endpoint.apply(hdr, meta, ig_tm_md);
        hop_limit.apply(hdr, meta);
        srv6_headend.apply(hdr, meta);
        routing.apply(hdr, meta, ig_tm_md);
        ifit.apply(hdr, meta, ig_intr_md, ig_prsr_md, ig_dprsr_md);
#ifndef WITHOUT_SKETCH
        sketch.apply(hdr, meta);
        sketch_report.apply(meta, ig_dprsr_md);
#endif
        trace_lengths.apply(hdr, meta);
        ioam_sanity.apply(hdr, meta);
        ifit_trace.apply(hdr, meta);
        srv6_endpoint_rewrite.apply(hdr, meta);
        verdict.apply();
        if (meta.drop_reason != DROP_NONE) {
            drop_reasons.count(meta.drop_reason);
            ig_dprsr_md.drop_ctl = 1;
        }
    }
}

control IcpnEgress(inout tna_egress_headers_t hdr,
                   inout tna_egress_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                   inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    PacketIoEgress() packet_io;
    IfitEgress() ifit;

    apply {
        if (eg_intr_md.egress_port != TNA_CPU_PORT) {
            ifit.apply(hdr, meta, eg_intr_md, eg_prsr_md, eg_dprsr_md);
        }
        packet_io.apply(hdr);
    }
}

Pipeline(IcpnIngressParser(),
         IcpnIngress(),
         IcpnIngressDeparser(),
         IcpnEgressParser(),
         IcpnEgress(),
         IcpnEgressDeparser()) pipe;

Switch(pipe) main;
