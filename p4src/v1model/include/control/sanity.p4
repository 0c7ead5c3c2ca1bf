// Sanity: turns what the parser found wrong into a drop with a reason, so that malformed
// input is always accounted for (DropReason in icpn.constants) and never forwarded half-parsed.
#ifndef ICPN_V1MODEL_SANITY_P4
#define ICPN_V1MODEL_SANITY_P4

control Sanity(in parsed_headers_t hdr,
               inout local_metadata_t meta,
               in standard_metadata_t standard_metadata) {
    // Gated on the parser's verdict first: a well-formed packet, the common case, costs
    // BMv2 three conditions here rather than one per error (issue 17).
    apply {
        if (standard_metadata.parser_error != error.NoError) {
            if (standard_metadata.parser_error == error.BadIpVersion) {
                meta.drop_reason = DROP_BAD_IP_VERSION;
            } else if (standard_metadata.parser_error == error.PacketTooShort) {
                meta.drop_reason = DROP_TRUNCATED;
            } else if (standard_metadata.parser_error == error.OptionOverrunsHeader
                       || standard_metadata.parser_error == error.BadApn6Length) {
                meta.drop_reason = DROP_BAD_OPTION;
            } else if (standard_metadata.parser_error == error.BadIoam) {
                meta.drop_reason = DROP_BAD_IOAM;
            } else if (standard_metadata.parser_error == error.StackOutOfBounds) {
                meta.drop_reason = DROP_TOO_MANY_HEADERS;
            } else {
                meta.drop_reason = DROP_PARSER_ERROR;
            }
        } else if (hdr.ipv6.isValid()
                   && (bit<32>) hdr.ipv6.payload_len + 54 > standard_metadata.packet_length) {
            // RFC 8200 3: Payload Length counts what follows the 40-octet header; here it
            // claims more than the frame (Ethernet 14 + 40 + the rest) holds. A frame longer
            // than that is Ethernet padding, which is fine.
            meta.drop_reason = DROP_PAYLOAD_BEYOND_FRAME;
        } else if (meta.discard_option) {
            meta.drop_reason = DROP_OPTION_DISCARD;
        }
    }
}

#endif  // ICPN_V1MODEL_SANITY_P4
