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

control IcpnIngress(inout parsed_headers_t hdr,
                    inout local_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    // Packets dropped by ingress, indexed by reason (DropReason in icpn.constants).
    counter(DROP_REASON_COUNT, CounterType.packets) drop_reasons;

    PacketIoIngress() packet_io;
    Sanity() sanity;
    MyStation() my_station;
    Apn() apn;
    Sketch() sketch;
    Srv6Endpoint() srv6_endpoint;
    Srv6Headend() srv6_headend;
    Routing() routing;
    IfitIngress() ifit;
    TrimEncapsulated() trim_encapsulated;
    Acl() acl;
    QosIngress() qos;
    MyAddress() my_address;
    PortMtu() port_mtu;
    Punt() punt;

    apply {
        bool from_controller;
        packet_io.apply(hdr, standard_metadata, from_controller);
        if (from_controller) {
            return;
        }
        sanity.apply(hdr, meta, standard_metadata);
        if (meta.drop_reason == DROP_NONE) {
            bool is_mine;
            my_station.apply(hdr, is_mine);
            if (!hdr.ipv6.isValid()) {
                meta.drop_reason = DROP_NOT_IPV6;
            } else if (!is_mine) {
                meta.drop_reason = DROP_NOT_MY_STATION;
            } else {
                my_address.apply(hdr, meta);
                apn.apply(hdr, meta, standard_metadata);
                sketch.apply(hdr, meta, standard_metadata);
                if (meta.drop_reason == DROP_NONE) {
                    srv6_endpoint.apply(hdr, meta, standard_metadata);
                }
                if (meta.drop_reason == DROP_NONE && !meta.decapsulated) {
                    srv6_headend.apply(hdr, meta, standard_metadata);
                }
                if (meta.drop_reason == DROP_NONE && !meta.next_hop_set) {
                    routing.apply(hdr, meta, standard_metadata);
                }
                if (meta.drop_reason == DROP_NONE) {
                    qos.apply(hdr, meta, standard_metadata);
                }
                ifit.apply(hdr, meta, standard_metadata);
                trim_encapsulated.apply(hdr, meta);
                port_mtu.apply(hdr, meta, standard_metadata);
            }
        }
        // What a router answers goes to the controller instead of being dropped.
        punt.apply(meta, standard_metadata);
        acl.apply(hdr, meta, standard_metadata);
        if (meta.drop_reason != DROP_NONE) {
            drop_reasons.count((bit<32>) meta.drop_reason);
            mark_to_drop(standard_metadata);
        }
    }
}

control IcpnEgress(inout parsed_headers_t hdr,
                   inout local_metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    PacketIoEgress() packet_io;
    IfitEgress() ifit;
    QosEgress() qos;

    apply {
        if (standard_metadata.egress_port != CPU_PORT) {
            ifit.apply(hdr, meta, standard_metadata);
            if (standard_metadata.instance_type != BMV2_INSTANCE_TYPE_INGRESS_CLONE) {
                qos.apply(hdr, meta, standard_metadata);
            }
        }
        packet_io.apply(hdr, meta, standard_metadata);
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
