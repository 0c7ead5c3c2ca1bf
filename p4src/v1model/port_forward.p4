// Baseline for `make bench`: the least a P4 switch can do and still be programmable, one
// exact-match table from ingress port to egress port. Forwarding rates of the icpn program
// are reported as a ratio to this one, measured in the same run on the same machine.
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

struct headers_t { ethernet_t ethernet; }
struct metadata_t {}

parser PfParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        transition accept;
    }
}

control PfVerifyChecksum(inout headers_t hdr, inout metadata_t meta) { apply {} }

control PfIngress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    action forward(bit<9> port) { standard_metadata.egress_spec = port; }
    action drop() { mark_to_drop(standard_metadata); }

    table port_map {
        key = { standard_metadata.ingress_port: exact; }
        actions = { forward; drop; }
        const default_action = drop();
        size = 64;
    }

    apply { port_map.apply(); }
}

control PfEgress(inout headers_t hdr, inout metadata_t meta,
                 inout standard_metadata_t standard_metadata) { apply {} }

control PfComputeChecksum(inout headers_t hdr, inout metadata_t meta) { apply {} }

control PfDeparser(packet_out packet, in headers_t hdr) {
    apply { packet.emit(hdr.ethernet); }
}

V1Switch(PfParser(), PfVerifyChecksum(), PfIngress(), PfEgress(), PfComputeChecksum(),
         PfDeparser()) main;
