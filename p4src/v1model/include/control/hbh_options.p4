// Removing the outer packet's extension headers: Hop-by-Hop (APN6, options, the IOAM trace
// unless it is kept for a trace report), Destination Options and the SRH. Used by decapsulation and by trace
// reports.
#ifndef ICPN_V1MODEL_HBH_OPTIONS_P4
#define ICPN_V1MODEL_HBH_OPTIONS_P4

control StripOuterHeaders(inout parsed_headers_t hdr, in bool keep_trace) {
    apply {
        hdr.hbh.setInvalid();
        hdr.apn6.setInvalid();
        hdr.apn_id[0].setInvalid();
        hdr.apn_id[1].setInvalid();
        hdr.apn_id[2].setInvalid();
        hdr.apn_id[3].setInvalid();
        hdr.apn6_params.setInvalid();
        hdr.doh.setInvalid();
        hdr.doh_apn6.setInvalid();
        hdr.doh_apn_id[0].setInvalid();
        hdr.doh_apn_id[1].setInvalid();
        hdr.doh_apn_id[2].setInvalid();
        hdr.doh_apn_id[3].setInvalid();
        hdr.doh_rest.setInvalid();
        hdr.srh.setInvalid();
        hdr.srh_segments.pop_front(MAX_SRH_SEGMENTS);
        hdr.srh_tlvs.setInvalid();
        if (!keep_trace) {
            hdr.ioam_opt.setInvalid();
            hdr.ioam_trace.setInvalid();
            hdr.ioam_free.setInvalid();
            hdr.ioam_node.hop.setInvalid();
            hdr.ioam_node.ifs.setInvalid();
            hdr.ioam_node.ts_sec.setInvalid();
            hdr.ioam_node.ts_frac.setInvalid();
            hdr.ioam_node.transit_delay.setInvalid();
            hdr.ioam_node.namespace_data.setInvalid();
            hdr.ioam_node.queue_depth.setInvalid();
            hdr.ioam_node.checksum_complement.setInvalid();
            hdr.ioam_node.hop_wide.setInvalid();
            hdr.ioam_node.ifs_wide.setInvalid();
            hdr.ioam_node.namespace_data_wide.setInvalid();
            hdr.ioam_node.buffer_occupancy.setInvalid();
            hdr.ioam_filled.setInvalid();
        }
        hdr.hbh_opts.pop_front(MAX_HBH_OPTIONS);
        hdr.hbh_post.pop_front(MAX_HBH_OPTIONS_AFTER_IOAM);
    }
}

#endif  // ICPN_V1MODEL_HBH_OPTIONS_P4
