// Sanity: turns what the parser found wrong into a drop with a reason, so that malformed
// input is always accounted for (DropReason in icpn.constants) and never forwarded half-parsed.
#ifndef ICPN_V1MODEL_SANITY_P4
#define ICPN_V1MODEL_SANITY_P4

control Sanity(inout local_metadata_t meta, in standard_metadata_t standard_metadata) {
    apply {
        if (standard_metadata.parser_error == error.PacketTooShort) {
            meta.drop_reason = DROP_TRUNCATED;
        } else if (standard_metadata.parser_error == error.OptionOverrunsHeader
                   || standard_metadata.parser_error == error.BadApn6Length
                   || standard_metadata.parser_error == error.HeaderTooShort) {
            meta.drop_reason = DROP_BAD_OPTION;
        } else if (standard_metadata.parser_error == error.BadSrh) {
            meta.drop_reason = DROP_BAD_SRH;
        } else if (standard_metadata.parser_error == error.BadIoam) {
            meta.drop_reason = DROP_BAD_IOAM;
        } else if (standard_metadata.parser_error == error.TooManySegments
                   || standard_metadata.parser_error == error.StackOutOfBounds) {
            meta.drop_reason = DROP_TOO_MANY_HEADERS;
        } else if (standard_metadata.parser_error != error.NoError) {
            meta.drop_reason = DROP_PARSER_ERROR;
        } else if (meta.discard_option) {
            meta.drop_reason = DROP_OPTION_DISCARD;
        }
    }
}

#endif  // ICPN_V1MODEL_SANITY_P4
