// Sanity: what the parser found wrong becomes a drop with a reason, as in v1model (in
// meta.sanity_drop and meta.ioam_drop: the verdict in icpn.p4 picks the reason). The checks
// v1model's parser makes with arithmetic are made here: a Tofino parser compares packet bits
// with constants only.
//
// IOAM (RFC 9197 4.4): RemainingLen within the trace data, and, for Trace-Types a node can
// fill, NodeLen equal to what the Trace-Type implies (Linux checks it too): bits 0-7 and 11
// are 4 octets, bits 8-10 are 8. The agreeing pairs are a table's entries, which the
// preprocessor computes.
#ifndef ICPN_TNA_SANITY_P4
#define ICPN_TNA_SANITY_P4

// The NodeLen a Trace-Type implies, in 4-octet words, for bits 0-11 as v = trace_type[23:12]
// (bit 0 of the Trace-Type is v's bit 11): bits 8-10 count two words, the others one.
#define IMPLIED(v) ((((v) >> 11) & 1) + (((v) >> 10) & 1) + (((v) >> 9) & 1)                \
                    + (((v) >> 8) & 1) + (((v) >> 7) & 1) + (((v) >> 6) & 1)                 \
                    + (((v) >> 5) & 1) + (((v) >> 4) & 1) + 2 * (((v) >> 3) & 1)             \
                    + 2 * (((v) >> 2) & 1) + 2 * (((v) >> 1) & 1) + ((v) & 1))
#define NODE_LEN(v) (v, IMPLIED(v)): node_len_matches();
#define NODE_LEN_8(b) NODE_LEN(b) NODE_LEN(b + 1) NODE_LEN(b + 2) NODE_LEN(b + 3)            \
                      NODE_LEN(b + 4) NODE_LEN(b + 5) NODE_LEN(b + 6) NODE_LEN(b + 7)
#define NODE_LEN_64(b) NODE_LEN_8(b) NODE_LEN_8(b + 8) NODE_LEN_8(b + 16) NODE_LEN_8(b + 24)  \
                       NODE_LEN_8(b + 32) NODE_LEN_8(b + 40) NODE_LEN_8(b + 48) NODE_LEN_8(b + 56)
#define NODE_LEN_512(b) NODE_LEN_64(b) NODE_LEN_64(b + 64) NODE_LEN_64(b + 128)              \
                        NODE_LEN_64(b + 192) NODE_LEN_64(b + 256) NODE_LEN_64(b + 320)        \
                        NODE_LEN_64(b + 384) NODE_LEN_64(b + 448)
#define NODE_LEN_4096 NODE_LEN_512(0) NODE_LEN_512(512) NODE_LEN_512(1024) NODE_LEN_512(1536)  \
                      NODE_LEN_512(2048) NODE_LEN_512(2560) NODE_LEN_512(3072) NODE_LEN_512(3584)

control Sanity(inout tna_ingress_metadata_t meta,
               in ingress_intrinsic_metadata_from_parser_t ig_prsr_md) {
    action truncated() { meta.sanity_drop = DROP_TRUNCATED; }
    action parser_error() { meta.sanity_drop = DROP_PARSER_ERROR; }
    action parsed() { meta.sanity_drop = meta.parse_drop; }

    table parser_result {
        key = { ig_prsr_md.parser_err: ternary @name("parser_err"); }
        actions = { truncated; parser_error; parsed; }
        const entries = {
            0: parsed();
            PARSER_ERROR_PARTIAL_HDR &&& PARSER_ERROR_PARTIAL_HDR: truncated();
        }
        const default_action = parser_error();
        size = 4;
    }

    apply {
        parser_result.apply();
    }
}

// The trace's lengths as whole bytes, for IoamSanity and IfitTrace (control/ifit.p4). The
// hash unit moves NodeLen and RemainingLen to byte alignment (Tofino's ALU takes fields at
// one alignment); it works only on a table's hit path, so this is applied inline.
control TraceLengths(in tna_ingress_headers_t hdr, inout tna_ingress_metadata_t meta) {
    action trace_lengths() {
        @in_hash { meta.trace_remaining = (bit<8>) hdr.ioam_trace.remaining_len; }
        @in_hash { meta.trace_node_len = (bit<8>) hdr.ioam_trace.node_len; }
    }

    apply {
        if (hdr.ioam_trace.isValid()) {
            trace_lengths();
        }
    }
}

// The IOAM trace's lengths against each other (in meta.ioam_drop): RemainingLen within the
// data the parser counted, and for a Trace-Type this node fills, NodeLen as implied. Two
// stages: one table of (Trace-Type, NodeLen) pairs that agree (4096 constant entries, one
// per Trace-Type), and one of constants over the results.
control IoamSanity(in tna_ingress_headers_t hdr, inout tna_ingress_metadata_t meta) {
    bool node_len_ok;
    bit<8> excess_words;

    action node_len_matches() { node_len_ok = true; }
    action node_len_differs() { node_len_ok = false; }

    table node_len_check {
        key = {
            hdr.ioam_trace.trace_type[23:12]: exact @name("bits");
            hdr.ioam_trace.node_len: exact @name("node_len");
        }
        actions = { node_len_matches; node_len_differs; }
        const entries = { NODE_LEN_4096 }
        const default_action = node_len_differs();
        size = 4096;
    }

    // RemainingLen past the data (saturated: 0 when within).
    action excess_step() { excess_words = meta.trace_remaining |-| meta.trace_data_words; }
    STEP(excess)

    action bad_ioam() { meta.ioam_drop = DROP_BAD_IOAM; }

    // In order: RemainingLen past the data; a fillable Trace-Type with NodeLen 0 or not the
    // implied one; anything else is fine.
    table trace_check {
        key = {
            excess_words: ternary @name("excess");
            hdr.ioam_trace.trace_type: ternary @name("trace_type");
            hdr.ioam_trace.node_len: ternary @name("node_len");
            node_len_ok: ternary @name("node_len_ok");
        }
        actions = { bad_ioam; NoAction; }
        const entries = {
            (0, 0 &&& ~IOAM_SUPPORTED_TRACE_TYPE, 0, _): bad_ioam();
            (0, 0 &&& ~IOAM_SUPPORTED_TRACE_TYPE, _, true): NoAction();
            (0, 0 &&& ~IOAM_SUPPORTED_TRACE_TYPE, _, _): bad_ioam();
            (0, _, _, _): NoAction();
        }
        const default_action = bad_ioam();
        size = 8;
    }

    apply {
        if (hdr.ioam_trace.isValid()) {
            node_len_check.apply();
            excess.apply();
            trace_check.apply();
        }
    }
}

#endif  // ICPN_TNA_SANITY_P4
