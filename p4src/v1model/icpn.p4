// icpn data plane for BMv2 (v1model). One program for every node; the controller's tables
// give each switch its role. Feature controls live in include/control/<feature>.p4.
#include <core.p4>
#include <v1model.p4>

#include "../shared/headers.p4"
#include "include/parser.p4"
#include "include/control/packetio.p4"
#include "include/control/routing.p4"
#include "include/control/acl.p4"

control IcpnVerifyChecksum(inout parsed_headers_t hdr, inout local_metadata_t meta) {
    apply {}  // IPv6 has no header checksum; L4 checksums are end to end.
}

control IcpnIngress(inout parsed_headers_t hdr,
                    inout local_metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    // Packets dropped by ingress, indexed by reason (DropReason in icpn.constants).
    counter(DROP_REASON_COUNT, CounterType.packets) drop_reasons;

    PacketIoIngress() packet_io;
    Routing() routing;
    Acl() acl;

    apply {
        bool from_controller;
        packet_io.apply(hdr, standard_metadata, from_controller);
        if (!from_controller) {
            routing.apply(hdr, meta, standard_metadata);
            acl.apply(hdr, meta, standard_metadata);
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

    apply {
        packet_io.apply(hdr, standard_metadata);
    }
}

control IcpnComputeChecksum(inout parsed_headers_t hdr, inout local_metadata_t meta) {
    apply {}
}

V1Switch(IcpnParser(),
         IcpnVerifyChecksum(),
         IcpnIngress(),
         IcpnEgress(),
         IcpnComputeChecksum(),
         IcpnDeparser()) main;
