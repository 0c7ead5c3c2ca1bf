// Test fixture for icpn.hashing: BMv2 hashes the probe's fields and writes the results back
// into the probe, which goes out where it came in. ptf_tests/test_hash_probe.py compares
// them with the Python model on random inputs. Field widths are chosen to be awkward: not
// whole octets, and the shape of the ECMP selector's key (316 bits).
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header probe_t {
    bit<20> a;
    bit<8> b;
    bit<3> c;
    bit<1> pad1;
    bit<128> src;
    bit<128> dst;
    bit<20> flow_label;
    bit<8> next_hdr;
    bit<16> sport;
    bit<16> dport;
    bit<4> pad2;
    bit<16> crc16_abc;
    bit<32> crc32_abc;
    bit<16> crc16_ecmp;
    bit<32> crc32_ecmp;
}

struct headers_t {
    ethernet_t ethernet;
    probe_t probe;
}

struct metadata_t {}

parser ProbeParser(packet_in packet, out headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    state start {
        packet.extract(hdr.ethernet);
        packet.extract(hdr.probe);
        transition accept;
    }
}

control ProbeVerifyChecksum(inout headers_t hdr, inout metadata_t meta) { apply {} }

control ProbeIngress(inout headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply {
        hash(hdr.probe.crc16_abc, HashAlgorithm.crc16, 16w0,
             { hdr.probe.a, hdr.probe.b, hdr.probe.c }, 32w65536);
        hash(hdr.probe.crc32_abc, HashAlgorithm.crc32, 32w0,
             { hdr.probe.a, hdr.probe.b, hdr.probe.c }, 64w4294967296);
        hash(hdr.probe.crc16_ecmp, HashAlgorithm.crc16, 16w0,
             { hdr.probe.src, hdr.probe.dst, hdr.probe.flow_label, hdr.probe.next_hdr,
               hdr.probe.sport, hdr.probe.dport }, 32w65536);
        hash(hdr.probe.crc32_ecmp, HashAlgorithm.crc32, 32w0,
             { hdr.probe.src, hdr.probe.dst, hdr.probe.flow_label, hdr.probe.next_hdr,
               hdr.probe.sport, hdr.probe.dport }, 64w4294967296);
        standard_metadata.egress_spec = standard_metadata.ingress_port;
    }
}

control ProbeEgress(inout headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) { apply {} }

control ProbeComputeChecksum(inout headers_t hdr, inout metadata_t meta) { apply {} }

control ProbeDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.probe);
    }
}

V1Switch(ProbeParser(), ProbeVerifyChecksum(), ProbeIngress(), ProbeEgress(),
         ProbeComputeChecksum(), ProbeDeparser()) main;
