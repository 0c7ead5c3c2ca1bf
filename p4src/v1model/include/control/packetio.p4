// Packet I/O with the P4Runtime controller: packet-out goes straight to the port it names,
// packet-in carries the port the packet arrived on, and why it came (control/icmp.p4).
// The pipeline tests which applies (a packet-out header, the CPU port) so that other
// packets pay one condition each way.
#ifndef ICPN_V1MODEL_PACKETIO_P4
#define ICPN_V1MODEL_PACKETIO_P4

// For a packet from the controller (hdr.packet_out valid).
control PacketIoIngress(inout parsed_headers_t hdr,
                        inout standard_metadata_t standard_metadata) {
    apply {
        standard_metadata.egress_spec = hdr.packet_out.egress_port;
        hdr.packet_out.setInvalid();
    }
}

// For a packet to the controller (egress port CPU_PORT).
control PacketIoEgress(inout parsed_headers_t hdr,
                       in local_metadata_t meta,
                       inout standard_metadata_t standard_metadata) {
    apply {
        hdr.packet_in.setValid();
        hdr.packet_in.ingress_port = standard_metadata.ingress_port;
        hdr.packet_in._pad = 0;
        hdr.packet_in.reason = meta.punt_reason;
        hdr.packet_in.mtu = meta.egress_mtu;
    }
}

#endif  // ICPN_V1MODEL_PACKETIO_P4
