// Routers that answer (RFC 4443, RFC 4861): what the pipeline would drop because a router
// must answer it (a packet addressed to the router, hop-limit expiry, a route miss, a packet
// larger than its egress MTU) goes to the controller instead, which sends the Echo Reply or
// the ICMPv6 error (icpn.routers) through packet-out.
//
// * MyAddress: the router's own addresses (loopback SID, gateways, link-local). A packet to
//   one of them with nothing left to route (no SRH, or Segments Left 0: RFC 8986 4.1.1
//   lets a SID's owner process ICMPv6 itself) is dropped as DROP_TO_ROUTER, before SRv6 and
//   routing look at it.
// * PortMtu: the egress port's MTU, set by the controller from the intent; a packet whose
//   IPv6 (or, after End.DT4, IPv4) packet is larger, as it leaves ingress with everything
//   the headend pushed, is dropped as DROP_PACKET_TOO_BIG (RFC 8200 5: routers never
//   fragment).
// * Punt: each drop reason the controller asks for (punt_policy) goes to the CPU port
//   instead, rate-limited by a packet meter per reason (RFC 4443 2.4(f)); the packet-in
//   carries the reason and the MTU. Over the rate, or without a policy, the drop stands and
//   is counted under its reason as before; punts are counted per reason in ``punts``.
#ifndef ICPN_V1MODEL_ICMP_P4
#define ICPN_V1MODEL_ICMP_P4

control MyAddress(in parsed_headers_t hdr, inout local_metadata_t meta) {
    action to_router() {
        meta.drop_reason = DROP_TO_ROUTER;
    }

    table my_address {
        key = { hdr.ipv6.dst_addr: exact @name("ipv6_dst"); }
        actions = { to_router; @defaultonly NoAction; }
        const default_action = NoAction();
        size = MY_ADDRESS_TABLE_SIZE;
    }

    apply {
        if (hdr.ipv6.isValid() && (!hdr.srh.isValid() || hdr.srh.segments_left == 0)) {
            my_address.apply();
        }
    }
}

control PortMtu(in parsed_headers_t hdr,
                inout local_metadata_t meta,
                in standard_metadata_t standard_metadata) {
    action set_mtu(bit<16> mtu) {
        meta.egress_mtu = mtu;
    }

    table port_mtu {
        key = { standard_metadata.egress_spec: exact @name("port"); }
        actions = { set_mtu; @defaultonly NoAction; }
        const default_action = NoAction();
        size = PORT_TABLE_SIZE;
    }

    // meta.egress_mtu and meta.punt_reason start at 0 (DROP_NONE) on every packet:
    // simple_switch zeroes metadata on arrival, and setting them again costs BMv2 a
    // primitive per packet (issue 17; see parser.p4).
    apply {
        if (meta.drop_reason == DROP_NONE && standard_metadata.egress_spec != CPU_PORT
                && port_mtu.apply().hit) {
            // The packet as it leaves: the pushed outer header's length covers the rest.
            bit<16> length = 0;
            if (hdr.encap_ipv6.isValid()) {
                length = hdr.encap_ipv6.payload_len + 40;
            } else if (hdr.ipv6.isValid()) {
                length = hdr.ipv6.payload_len + 40;
            } else if (hdr.inner_ipv4.isValid()) {
                length = hdr.inner_ipv4.total_len;
            }
            if (length > meta.egress_mtu) {
                meta.drop_reason = DROP_PACKET_TOO_BIG;
            }
        }
    }
}

control Punt(inout local_metadata_t meta, inout standard_metadata_t standard_metadata) {
    // Packets punted to the controller, by reason (a DROP_* index).
    counter(DROP_REASON_COUNT, CounterType.packets) punts;
    // One packet meter per reason: the punt rate the controller sets (unset: no limit).
    meter(DROP_REASON_COUNT, MeterType.packets) punt_rate;

    action punt() {
        punt_rate.execute_meter<bit<2>>((bit<32>) meta.drop_reason, meta.punt_color);
    }

    table punt_policy {
        key = { meta.drop_reason: exact @name("reason"); }
        actions = { punt; @defaultonly NoAction; }
        const default_action = NoAction();
        size = DROP_REASON_COUNT;
    }

    apply {
        if (meta.drop_reason != DROP_NONE) {
            meta.punt_color = METER_RED;
            if (punt_policy.apply().hit && meta.punt_color == METER_GREEN) {
                punts.count((bit<32>) meta.drop_reason);
                meta.punt_reason = meta.drop_reason;
                meta.drop_reason = DROP_NONE;
                standard_metadata.egress_spec = CPU_PORT;
            }
        }
    }
}

#endif  // ICPN_V1MODEL_ICMP_P4
