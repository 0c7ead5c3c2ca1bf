// icpn data plane for Tofino (TNA) and Tofino 2 (T2NA): the v1model program's node roles,
// tables and actions, in Tofino's two pipelines. Feature controls are in
// include/control/<feature>.p4, with the same names as under p4src/v1model/; what differs
// from v1model, and why, is in docs/tofino.md.
//
// icpn build compiles it, per profile, into build/tofino/<target>/<profile>/, in effect:
//   bf-p4c -b tofino -a tna -I p4src -Xp4c=--disable-parse-max-depth-limit [-DWITHOUT_SKETCH]
//          p4src/tna/icpn.p4
//   bf-p4c -b tofino2 -a t2na -I p4src [-DWITHOUT_SKETCH] p4src/tna/icpn.p4
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
#ifdef WITH_QOS
#include "include/control/qos.p4"
#endif

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
    Srv6Load() srv6_load;
    HopLimit() hop_limit;
    Routing() routing;
    IfitIngress() ifit;
    Acl() acl;
#ifdef WITH_QOS
    QosIngress() qos;
#endif

    // The verdict's actions count and drop in its own stage: the counter's index is the
    // entry's action data, so every reason a check can record has an entry of its own.
    action pass() { }
    action drop(bit<8> reason) {
        drop_reasons.count(reason);
        ig_dprsr_md.drop_ctl = 1;
    }
    action acl_punt() {
        ig_tm_md.ucast_egress_port = TNA_CPU_PORT;
        hdr.bridged.to_cpu = 1;
    }

#define NO_DROP DROP_NONE
#define SANITY(r) (_, r, _, _, _, _, _, _, _): drop(r)
#define CHECKED(s, e, n, r) (_, NO_DROP, NO_DROP, true, _, s, e, n, r)
    // The first reason in v1model's order (parser, IOAM lengths, not IPv6, station, End,
    // headend, routing), or the ACL's decision over all of them. Each control's field holds
    // only the reasons listed for it.
    table verdict {
        key = {
            meta.acl_verdict: ternary @name("acl");
            meta.sanity_drop: ternary @name("sanity");
            meta.ioam_drop: ternary @name("ioam");
            meta.is_ipv6: ternary @name("ipv6");
            hdr.bridged.from_cpu: ternary @name("packet_out");
            meta.station_drop: ternary @name("station");
            meta.end_drop: ternary @name("end");
            meta.encap_drop: ternary @name("encap");
            meta.route_drop: ternary @name("route");
        }
        actions = { pass; drop; acl_punt; }
        const entries = {
            (_, _, _, _, 1, _, _, _, _): pass();   // packet-out
            (TNA_ACL_PUNT, _, _, _, _, _, _, _, _): acl_punt();
            (TNA_ACL_DENY, _, _, _, _, _, _, _, _): drop(DROP_ACL_DENY);
            CHECKED(NO_DROP, NO_DROP, NO_DROP, NO_DROP): pass();
            CHECKED(NO_DROP, NO_DROP, NO_DROP, DROP_NO_ROUTE): drop(DROP_NO_ROUTE);
            CHECKED(NO_DROP, NO_DROP, NO_DROP, DROP_HOP_LIMIT): drop(DROP_HOP_LIMIT);
            CHECKED(NO_DROP, NO_DROP, DROP_ENCAP_REFUSED, _): drop(DROP_ENCAP_REFUSED);
            CHECKED(NO_DROP, DROP_BEYOND_PARSER, _, _): drop(DROP_BEYOND_PARSER);
            CHECKED(NO_DROP, DROP_END_SL_ZERO, _, _): drop(DROP_END_SL_ZERO);
            CHECKED(NO_DROP, DROP_BAD_SRH, _, _): drop(DROP_BAD_SRH);
            CHECKED(NO_DROP, DROP_TOO_MANY_HEADERS, _, _): drop(DROP_TOO_MANY_HEADERS);
            CHECKED(NO_DROP, DROP_NO_INNER, _, _): drop(DROP_NO_INNER);
            CHECKED(DROP_NOT_MY_STATION, _, _, _): drop(DROP_NOT_MY_STATION);
            (_, NO_DROP, NO_DROP, false, _, _, _, _, _): drop(DROP_NOT_IPV6);
            (_, NO_DROP, DROP_BAD_IOAM, _, _, _, _, _, _): drop(DROP_BAD_IOAM);
            SANITY(DROP_TRUNCATED);
            SANITY(DROP_PARSER_ERROR);
            SANITY(DROP_BAD_IP_VERSION);
            SANITY(DROP_BAD_OPTION);
            SANITY(DROP_BAD_IOAM);
            SANITY(DROP_BAD_SRH);
            SANITY(DROP_TOO_MANY_HEADERS);
            SANITY(DROP_OPTION_DISCARD);
        }
        // Unreachable while every control records only its listed reasons.
        const default_action = drop(DROP_PARSER_ERROR);
        size = 32;
    }
#undef SANITY
#undef CHECKED
#undef NO_DROP

    apply {
        // A packet-out has only its packet-out header parsed (nothing else applies to it) and
        // goes out of the port it names: the verdict lets it through.
        if (hdr.packet_out.isValid()) {
            packet_io.apply(hdr, ig_tm_md);
        }
        // In the order of the longest chain of stages (APN, sketch, SRv6, IFIT, routing,
        // verdict), the conditional blocks off it (the IOAM trace's, the load counter) after:
        // bf-p4c places no table of this list before a conditional block above it is placed.
        // The verdict goes as soon as every check is in; what follows it does not read what
        // it writes (drop, the CPU port).
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
        ifit.apply(hdr, meta, ig_intr_md, ig_prsr_md, ig_dprsr_md);
        routing.apply(hdr, meta, ig_tm_md);
#ifdef WITH_TRACE_EXPORT
        meta.report_egress_port = ig_tm_md.ucast_egress_port;  // the mirror header's
#endif
        trace_lengths.apply(hdr, meta);
        ioam_sanity.apply(hdr, meta);
        verdict.apply();
#ifndef WITHOUT_SKETCH
        sketch.apply(hdr, meta);
        sketch_report.apply(meta, ig_dprsr_md);
#endif
        ifit_trace.apply(hdr, meta);
        srv6_endpoint_rewrite.apply(hdr, meta);
        srv6_load.apply(meta);
#ifdef WITH_QOS
        qos.apply(hdr, meta, ig_dprsr_md, ig_tm_md);
#endif
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
#ifdef WITH_QOS
    QosEgress() qos;
#endif

    apply {
        if (eg_intr_md.egress_port != TNA_CPU_PORT) {
            ifit.apply(hdr, meta, eg_intr_md, eg_prsr_md, eg_dprsr_md);
#ifdef WITH_QOS
            qos.apply(hdr, eg_intr_md);
#endif
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
