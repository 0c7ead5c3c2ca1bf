// Removing the outer packet's extension headers at decapsulation (End.DT6/DT4): the Hop-by-Hop
// header with everything parsed in it, and the SRH. On Tofino this happens in ingress, where
// every header was parsed; a trace report is made from the ingress mirror copy, which is the
// packet as it arrived (TNA 7.10), so nothing needs keeping for it.
#ifndef ICPN_TNA_HBH_OPTIONS_P4
#define ICPN_TNA_HBH_OPTIONS_P4

#if TNA_PAD_OCTETS != 4 || TNA_APN_PARAM_WORDS != 2 || TNA_SRH_TLV_CHUNKS != 1
#error "STRIP_OUTER_HEADERS names pad_*[0..3], apn_params[0..1], srh_tlvs[0]: update it"
#endif

#define INVALIDATE_PADS(gap) \
    hdr.gap[0].setInvalid(); hdr.gap[1].setInvalid(); hdr.gap[2].setInvalid(); \
    hdr.gap[3].setInvalid();
#define INVALIDATE_DATA(n) hdr.ioam_data_##n.setInvalid();

#if TNA_MAX_SRH_SEGMENTS > 6
#define INVALIDATE_SEGMENTS_6_7 hdr.srh_segments[6].setInvalid(); hdr.srh_segments[7].setInvalid();
#else
#define INVALIDATE_SEGMENTS_6_7
#endif

// The statements of the action that decapsulates (a macro, not a control: Tofino does them
// in one table only if they are in one action). The trace mark and the bridged trace flags
// go too: the trace they were for is gone.
#define STRIP_OUTER_HEADERS                                                                  \
    hdr.ipv6.setInvalid();                                                                   \
    hdr.hbh.setInvalid();                                                                    \
    hdr.apn6.setInvalid();                                                                   \
    hdr.apn_id[0].setInvalid(); hdr.apn_id[1].setInvalid();                                  \
    hdr.apn_id[2].setInvalid(); hdr.apn_id[3].setInvalid();                                  \
    hdr.apn_params[0].setInvalid(); hdr.apn_params[1].setInvalid();                          \
    INVALIDATE_PADS(pad_a)                                                                   \
    hdr.altmark.setInvalid();                                                                \
    INVALIDATE_PADS(pad_b)                                                                   \
    hdr.trace_mark.setInvalid();                                                             \
    hdr.bridged.fill = 0;                                                                    \
    hdr.bridged.overflow = 0;                                                                \
    hdr.ioam_opt.setInvalid();                                                               \
    hdr.ioam_trace.setInvalid();                                                             \
    CHUNKS_ALL(INVALIDATE_DATA)                                                              \
    INVALIDATE_PADS(pad_c)                                                                   \
    hdr.srh.setInvalid();                                                                    \
    hdr.srh_segments[0].setInvalid(); hdr.srh_segments[1].setInvalid();                      \
    hdr.srh_segments[2].setInvalid(); hdr.srh_segments[3].setInvalid();                      \
    hdr.srh_segments[4].setInvalid(); hdr.srh_segments[5].setInvalid();                      \
    INVALIDATE_SEGMENTS_6_7                                                                  \
    hdr.srh_tlvs[0].setInvalid();

#endif  // ICPN_TNA_HBH_OPTIONS_P4
