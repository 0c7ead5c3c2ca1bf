// Removing the Hop-by-Hop options the parser kept in union stacks (decapsulation, trace
// reports). BMv2 does not invalidate union members on pop_front, so each member goes by name.
#ifndef ICPN_V1MODEL_HBH_OPTIONS_P4
#define ICPN_V1MODEL_HBH_OPTIONS_P4

#if MAX_HBH_OPTIONS != 8 || MAX_HBH_OPTIONS_AFTER_IOAM != 2
#error "ClearHbhOptions names hbh_opts[0..7] and hbh_post[0..1]: update it with their sizes"
#endif

control ClearHbhOptions(inout parsed_headers_t hdr) {
    apply {
        hdr.hbh_opts[0].pad1.setInvalid();
        hdr.hbh_opts[0].tlv.setInvalid();
        hdr.hbh_opts[0].altmark.setInvalid();
        hdr.hbh_opts[1].pad1.setInvalid();
        hdr.hbh_opts[1].tlv.setInvalid();
        hdr.hbh_opts[1].altmark.setInvalid();
        hdr.hbh_opts[2].pad1.setInvalid();
        hdr.hbh_opts[2].tlv.setInvalid();
        hdr.hbh_opts[2].altmark.setInvalid();
        hdr.hbh_opts[3].pad1.setInvalid();
        hdr.hbh_opts[3].tlv.setInvalid();
        hdr.hbh_opts[3].altmark.setInvalid();
        hdr.hbh_opts[4].pad1.setInvalid();
        hdr.hbh_opts[4].tlv.setInvalid();
        hdr.hbh_opts[4].altmark.setInvalid();
        hdr.hbh_opts[5].pad1.setInvalid();
        hdr.hbh_opts[5].tlv.setInvalid();
        hdr.hbh_opts[5].altmark.setInvalid();
        hdr.hbh_opts[6].pad1.setInvalid();
        hdr.hbh_opts[6].tlv.setInvalid();
        hdr.hbh_opts[6].altmark.setInvalid();
        hdr.hbh_opts[7].pad1.setInvalid();
        hdr.hbh_opts[7].tlv.setInvalid();
        hdr.hbh_opts[7].altmark.setInvalid();
        hdr.hbh_post[0].pad1.setInvalid();
        hdr.hbh_post[0].tlv.setInvalid();
        hdr.hbh_post[0].altmark.setInvalid();
        hdr.hbh_post[1].pad1.setInvalid();
        hdr.hbh_post[1].tlv.setInvalid();
        hdr.hbh_post[1].altmark.setInvalid();
    }
}

#endif  // ICPN_V1MODEL_HBH_OPTIONS_P4
