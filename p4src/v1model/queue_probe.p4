// Test fixture for BMv2's egress queues (qos.p4's traffic classes): the probe's class goes
// into standard_metadata.priority, exactly what qos.p4 writes, and every probe goes from
// port 1 to port 2. Egress writes the queue depth and time in queue into the probe.
//
// Why a separate program: simple_switch_grpc, the P4Runtime switch, is built here without
// Thrift, and only Thrift sets a queue's rate; without a rate no queue ever backs up (BMv2's
// ingress is its bottleneck). ptf_tests/test_qos.py runs this probe on the Thrift
// simple_switch, rates set by icpn.qos.QueueRates, to show strict priority under contention.
#include <core.p4>
#include <v1model.p4>

header ethernet_t {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header probe_t {
    bit<8> traffic_class;
    bit<32> sequence;
    bit<32> enq_qdepth;
    bit<32> deq_timedelta;  // microseconds in the queue
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
        if (standard_metadata.ingress_port == 1) {
            standard_metadata.egress_spec = 2;
            standard_metadata.priority = hdr.probe.traffic_class[2:0];
        } else {
            mark_to_drop(standard_metadata);
        }
    }
}

control ProbeEgress(inout headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    apply {
        hdr.probe.enq_qdepth = (bit<32>) standard_metadata.enq_qdepth;
        hdr.probe.deq_timedelta = standard_metadata.deq_timedelta;
    }
}

control ProbeComputeChecksum(inout headers_t hdr, inout metadata_t meta) { apply {} }

control ProbeDeparser(packet_out packet, in headers_t hdr) {
    apply {
        packet.emit(hdr.ethernet);
        packet.emit(hdr.probe);
    }
}

V1Switch(ProbeParser(), ProbeVerifyChecksum(), ProbeIngress(), ProbeEgress(),
         ProbeComputeChecksum(), ProbeDeparser()) main;
