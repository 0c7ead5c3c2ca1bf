// Packet I/O with the P4Runtime controller (Stratum on Tofino): a packet-out goes straight to
// the port it names; a packet-in carries the port the packet arrived on, added in egress from
// the bridged header (the CPU port is TNA_CPU_PORT).
#ifndef ICPN_TNA_PACKETIO_P4
#define ICPN_TNA_PACKETIO_P4

// A packet-out (the caller checks hdr.packet_out is valid): out of the port it names.
control PacketIoIngress(inout tna_ingress_headers_t hdr,
                        inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    apply {
        ig_tm_md.ucast_egress_port = hdr.packet_out.egress_port;
        hdr.packet_out.setInvalid();
        hdr.bridged.from_cpu = 1;
    }
}

control PacketIoEgress(inout tna_egress_headers_t hdr) {
    apply {
        if (hdr.info.to_cpu == 1) {
            hdr.packet_in.setValid();
            // The port's bits move (packet_in has them high), done by the hash unit.
            @in_hash { hdr.packet_in.ingress_port = hdr.info.ingress_port; }
            hdr.packet_in._pad = 0;
            // Only the ACL punts on Tofino: ICMPv6 errors are v1model's (docs/tofino.md).
            hdr.packet_in.reason = DROP_NONE;
            hdr.packet_in.mtu = 0;
        }
    }
}

#endif  // ICPN_TNA_PACKETIO_P4
