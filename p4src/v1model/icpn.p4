// icpn data plane for BMv2 (v1model). One program for every node; the controller's tables
// give each switch its role (edge headend, transit, SRv6 endpoint, decap). Feature controls
// live in include/control/<feature>.p4.
#include <core.p4>
#include <v1model.p4>

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
#include "include/control/qos.p4"
#include "include/control/icmp.p4"

control IcpnVerifyChecksum(inout parsed_headers_t hdr, inout local_metadata_t meta) {
    apply {}  // IPv6 has no header checksum; L4 checksums are end to end.
}

// Features can be compiled out for `bench/forwarding.py`, which measures what each costs
// BMv2 per packet: -DWITHOUT_ICMP (my-address, port MTU and punt: what routers answer),
// -DWITHOUT_APN, -DWITHOUT_SKETCH, -DWITHOUT_SRV6, -DWITHOUT_IFIT, -DWITHOUT_QOS,
// -DWITHOUT_ACL. Such builds are for measuring only: the controller expects every table.
// What is left without all of them is the parser, sanity, my-station and routing: the
// path every packet takes.
//
// BMv2 cost (issue 17): simple_switch spends per packet a little on every header instance
// and metadata field (it resets them) and much more on every parser state, table, action,
// primitive and condition the packet goes through (each builds log strings even with
// logging off). So the common path is kept to tables that must be looked up and to one
// condition per feature that a packet does not use; see docs/studies.md.
control IcpnIngress(inout parsed_headers_t hdr,
                    inout local_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    // Packets dropped by ingress, indexed by reason (DropReason in icpn.constants).
    counter(DROP_REASON_COUNT, CounterType.packets) drop_reasons;

    PacketIoIngress() packet_io;
    Sanity() sanity;
    MyStation() my_station;
#ifndef WITHOUT_APN
    Apn() apn;
#endif
#ifndef WITHOUT_SKETCH
    Sketch() sketch;
#endif
#ifndef WITHOUT_SRV6
    Srv6Endpoint() srv6_endpoint;
    Srv6Headend() srv6_headend;
    TrimEncapsulated() trim_encapsulated;
#endif
    Routing() routing;
#ifndef WITHOUT_IFIT
    IfitIngress() ifit;
#endif
#ifndef WITHOUT_ACL
    Acl() acl;
#endif
#ifndef WITHOUT_QOS
    QosIngress() qos;
#endif
#ifndef WITHOUT_ICMP
    MyAddress() my_address;
    PortMtu() port_mtu;
    Punt() punt;
#endif

    apply {
        if (hdr.packet_out.isValid()) {
            packet_io.apply(hdr, standard_metadata);   // straight out, nothing else
        } else {
            sanity.apply(hdr, meta, standard_metadata);
            if (meta.drop_reason == DROP_NONE) {
                if (!hdr.ipv6.isValid()) {
                    meta.drop_reason = DROP_NOT_IPV6;
                } else {
                    my_station.apply(hdr, meta);
                }
            }
            if (meta.drop_reason == DROP_NONE) {
#ifndef WITHOUT_ICMP
                my_address.apply(hdr, meta);
#endif
#ifndef WITHOUT_APN
                apn.apply(hdr, meta, standard_metadata);
#endif
#ifndef WITHOUT_SKETCH
                sketch.apply(hdr, meta, standard_metadata);
#endif
#ifndef WITHOUT_SRV6
                if (meta.drop_reason == DROP_NONE) {
                    srv6_endpoint.apply(hdr, meta, standard_metadata);
                }
                if (meta.drop_reason == DROP_NONE && !meta.decapsulated) {
                    srv6_headend.apply(hdr, meta, standard_metadata);
                }
#endif
                if (meta.drop_reason == DROP_NONE && !meta.next_hop_set) {
                    routing.apply(hdr, meta, standard_metadata);
                }
#ifndef WITHOUT_QOS
                if (meta.drop_reason == DROP_NONE) {
                    qos.apply(hdr, meta, standard_metadata);
                }
#endif
#ifndef WITHOUT_IFIT
                ifit.apply(hdr, meta, standard_metadata);
#endif
#ifndef WITHOUT_SRV6
                trim_encapsulated.apply(hdr, meta);
#endif
#ifndef WITHOUT_ICMP
                port_mtu.apply(hdr, meta, standard_metadata);
#endif
            }
#ifndef WITHOUT_ICMP
            // What a router answers goes to the controller instead of being dropped.
            punt.apply(meta, standard_metadata);
#endif
#ifndef WITHOUT_ACL
            acl.apply(hdr, meta, standard_metadata);
#endif
            if (meta.drop_reason != DROP_NONE) {
                drop_reasons.count((bit<32>) meta.drop_reason);
                mark_to_drop(standard_metadata);
            }
        }
    }
}

control IcpnEgress(inout parsed_headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    PacketIoEgress() packet_io;
#ifndef WITHOUT_IFIT
    IfitEgress() ifit;
#endif
#ifndef WITHOUT_QOS
    QosEgress() qos;
#endif

    apply {
        if (standard_metadata.egress_port == CPU_PORT) {
            packet_io.apply(hdr, meta, standard_metadata);
        } else {
#ifndef WITHOUT_IFIT
            ifit.apply(hdr, meta, standard_metadata);
#endif
#ifndef WITHOUT_QOS
            if (standard_metadata.instance_type != BMV2_INSTANCE_TYPE_INGRESS_CLONE) {
                qos.apply(hdr, meta, standard_metadata);
            }
#endif
        }
    }
}

control IcpnComputeChecksum(inout parsed_headers_t hdr, inout local_metadata_t meta) {
    apply {
        // Trace reports: UDP over IPv6 needs its checksum (RFC 8200 8.1), over the pseudo
        // header and everything the report carries.
        update_checksum(hdr.report_udp.isValid(),
            { hdr.ipv6.src_addr, hdr.ipv6.dst_addr, 16w0, hdr.report_udp.len, 24w0,
              IP_PROTO_UDP, hdr.report_udp.src_port, hdr.report_udp.dst_port,
              hdr.report_udp.len, hdr.report, hdr.ioam_opt, hdr.ioam_trace, hdr.ioam_free,
              hdr.ioam_node.hop, hdr.ioam_node.ifs, hdr.ioam_node.ts_sec,
              hdr.ioam_node.ts_frac, hdr.ioam_node.transit_delay,
              hdr.ioam_node.namespace_data, hdr.ioam_node.queue_depth,
              hdr.ioam_node.checksum_complement, hdr.ioam_node.hop_wide,
              hdr.ioam_node.ifs_wide, hdr.ioam_node.namespace_data_wide,
              hdr.ioam_node.buffer_occupancy, hdr.ioam_filled, hdr.inner_ipv6,
              hdr.inner_ipv4, hdr.l4_ports },
            hdr.report_udp.checksum, HashAlgorithm.csum16);
        // End.DT4 forwards the inner IPv4 packet with one TTL spent.
        update_checksum(hdr.inner_ipv4.isValid(),
            { hdr.inner_ipv4.version, hdr.inner_ipv4.ihl, hdr.inner_ipv4.dscp_ecn,
              hdr.inner_ipv4.total_len, hdr.inner_ipv4.identification, hdr.inner_ipv4.flags,
              hdr.inner_ipv4.frag_offset, hdr.inner_ipv4.ttl, hdr.inner_ipv4.protocol,
              hdr.inner_ipv4.src_addr, hdr.inner_ipv4.dst_addr },
            hdr.inner_ipv4.hdr_checksum, HashAlgorithm.csum16);
    }
}

V1Switch(IcpnParser(),
         IcpnVerifyChecksum(),
         IcpnIngress(),
         IcpnEgress(),
         IcpnComputeChecksum(),
         IcpnDeparser()) main;
