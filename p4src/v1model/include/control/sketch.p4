// Elephant-flow detection (DESIGN.md 3 item 4): a count-min sketch with conservative update
// at the headend, per the APN policy's sketch profile.
//
// * Flow key: (SA, DA, DestQP) or the 5-tuple (FLOW_KEY_*); unused parts are zero.
// * Hashes: keyed, so that no sender can choose keys that share a flow's cells or silence its
//   report (docs/elephants.md "Crafted traffic"; icpn.sketch_key computes the same). CRC is
//   affine over GF(2): colliding keys are solved for, not searched. Instead, three vector
//   multiply-shift hashes of the key's ten 32-bit words x_i, h = a_10 + sum(a_i * x_i) mod
//   2^64, bits 32..63, whose 64-bit a_i the controller sets at start (sketch_hash_key):
//   hash 0 gives row 0's and row 1's cells (its top bits, then the next), hash 1 row 2's
//   cell and the dedup slot, hash 2 the dedup tag (independent of every index).
// * Rows: SKETCH_DEPTH registers of SKETCH_WIDTH cells. A cell holds (window, count): a cell
//   of an older window counts as 0, so windows reset in the data plane, with no register
//   writes from the controller (BMv2's P4Runtime cannot write registers anyway).
// * Window = (ingress timestamp in us >> window_log2_us) + epoch; the controller sets both
//   (sketch_profile) and can start a fresh window at once by raising the epoch.
// * Conservative update (Estan & Varghese, SIGCOMM 2002): estimate = min of the row cells;
//   each cell becomes max(cell, estimate + increment). Counts packets or bytes.
// * Once the new estimate reaches the threshold: one digest per flow per window. A dedup
//   slot remembers (window, tag); two elephants sharing a slot in one window can each
//   report more than once, and a flow never silences another unless both slot and 32-bit
//   tag coincide (chance 2^-44 per pair for a sender that does not know the key).
#ifndef ICPN_V1MODEL_SKETCH_P4
#define ICPN_V1MODEL_SKETCH_P4

#if SKETCH_DEPTH < 1 || SKETCH_DEPTH > 3
#error "SKETCH_DEPTH must be 1 to 3"
#endif
#if SKETCH_WIDTH > 16384
#error "SKETCH_WIDTH must be at most 2^14 (rows 0 and 1 are disjoint slices of one hash)"
#endif
#if SKETCH_WIDTH_BITS + SKETCH_DEDUP_BITS > 32
#error "row 2's cell and the dedup slot are disjoint slices of one 32-bit hash"
#endif

// The keyed hash's secret: SKETCH_HASHES x (10 multipliers, 1 offset), 64 bits each.
#define SK_PARAMS(h) bit<64> k##h##_0, bit<64> k##h##_1, bit<64> k##h##_2, bit<64> k##h##_3, \
        bit<64> k##h##_4, bit<64> k##h##_5, bit<64> k##h##_6, bit<64> k##h##_7, \
        bit<64> k##h##_8, bit<64> k##h##_9, bit<64> k##h##_10
#define SK_DEFAULT(h) SKETCH_DEFAULT_KEY_##h##_0, SKETCH_DEFAULT_KEY_##h##_1, \
        SKETCH_DEFAULT_KEY_##h##_2, SKETCH_DEFAULT_KEY_##h##_3, SKETCH_DEFAULT_KEY_##h##_4, \
        SKETCH_DEFAULT_KEY_##h##_5, SKETCH_DEFAULT_KEY_##h##_6, SKETCH_DEFAULT_KEY_##h##_7, \
        SKETCH_DEFAULT_KEY_##h##_8, SKETCH_DEFAULT_KEY_##h##_9, SKETCH_DEFAULT_KEY_##h##_10
// Multiply-shift over the key's words (SA in four, DA in four, proto ++ DestQP, sport ++
// dport), modulo 2^64; bits 32..63 are the hash. Computed in the action that holds the key
// (its parameters): copying 33 key words into locals cost BMv2 33 primitives and 33 metadata
// fields per packet (issue 17).
#define SK_HASH(h) (k##h##_10 \
        + ((bit<64>) meta.fk_src[127:96]) * k##h##_0 + ((bit<64>) meta.fk_src[95:64]) * k##h##_1 \
        + ((bit<64>) meta.fk_src[63:32]) * k##h##_2 + ((bit<64>) meta.fk_src[31:0]) * k##h##_3 \
        + ((bit<64>) meta.fk_dst[127:96]) * k##h##_4 + ((bit<64>) meta.fk_dst[95:64]) * k##h##_5 \
        + ((bit<64>) meta.fk_dst[63:32]) * k##h##_6 + ((bit<64>) meta.fk_dst[31:0]) * k##h##_7 \
        + ((bit<64>) (meta.fk_proto ++ meta.fk_qp)) * k##h##_8 \
        + ((bit<64>) (meta.fk_sport ++ meta.fk_dport)) * k##h##_9)
#define SKETCH_ROW_REGISTER(i) register<bit<64>>(SKETCH_WIDTH) sketch_row##i;
// Read row i's cell (index from hash_bits); the count of an older window is 0; keep the min.
#define SKETCH_ROW_READ(i, hash_bits) \
        bit<32> index##i = (hash_bits); \
        bit<64> cell##i; \
        sketch_row##i.read(cell##i, index##i); \
        bit<32> count##i = 0; \
        if (cell##i[63:32] == window) { count##i = cell##i[31:0]; } \
        if (count##i < estimate) { estimate = count##i; }
// Conservative update: raise the cell to the new estimate, never lower it.
#define SKETCH_ROW_UPDATE(i) \
        if (count##i < updated) { count##i = updated; } \
        sketch_row##i.write(index##i, window ++ count##i);

control Sketch(inout parsed_headers_t hdr,
               inout local_metadata_t meta,
               in standard_metadata_t standard_metadata) {
    SKETCH_ROW_REGISTER(0)
#if SKETCH_DEPTH > 1
    SKETCH_ROW_REGISTER(1)
#endif
#if SKETCH_DEPTH > 2
    SKETCH_ROW_REGISTER(2)
#endif
    register<bit<64>>(SKETCH_DEDUP_SLOTS) reported;


    action set_sketch(bit<8> flow_key, bit<1> bytes, bit<8> window_log2, bit<32> window_epoch,
                      bit<32> elephant_threshold) {
        meta.sk_key_type = flow_key;
        meta.sk_count_bytes = bytes;
        meta.sk_window_log2_us = window_log2;
        meta.sk_epoch = window_epoch;
        meta.sk_threshold = elephant_threshold;
    }

    // The three hashes of the flow key (meta.fk_*), set by the key's action.
    bit<64> hash0;
    bit<64> hash1;
    bit<64> hash2;

    action set_hash_key(SK_PARAMS(0), SK_PARAMS(1), SK_PARAMS(2)) {
        hash0 = SK_HASH(0);
        hash1 = SK_HASH(1);
        hash2 = SK_HASH(2);
    }

    // The deployment's secret, the default action the controller sets at start (a MODIFY of
    // the default entry: BMv2's P4Runtime cannot write registers); until then a public key.
    table sketch_hash_key {
        actions = { set_hash_key; }
        default_action = set_hash_key(SK_DEFAULT(0), SK_DEFAULT(1), SK_DEFAULT(2));
        size = 1;
    }

    // How a sketch profile (named by APN policies) counts: flow key, unit, window, threshold.
    table sketch_profile {
        key = { meta.sketch_profile: exact @name("profile"); }
        actions = { set_sketch; @defaultonly NoAction; }
        const default_action = NoAction();
        size = SKETCH_PROFILE_TABLE_SIZE;
    }

    apply {
        // Nested, not `return`: fewer tables and primitives per packet in BMv2.
        if (meta.sketch_profile != 0) {
            if (sketch_profile.apply().hit) {
                meta.sketch_on = true;
                meta.fk_src = hdr.ipv6.src_addr;
                meta.fk_dst = hdr.ipv6.dst_addr;
                if (meta.sk_key_type == FLOW_KEY_FIVE_TUPLE) {
                    meta.fk_proto = hdr.ipv6.next_hdr;
                    meta.fk_sport = meta.l4_src_port;
                    meta.fk_dport = meta.l4_dst_port;
                } else {
                    meta.fk_qp = meta.dest_qp;
                }
                bit<32> window = (bit<32>) (standard_metadata.ingress_global_timestamp
                                            >> meta.sk_window_log2_us) + meta.sk_epoch;
                bit<32> increment = 1;
                if (meta.sk_count_bytes == 1) {
                    increment = standard_metadata.packet_length;
                }

                sketch_hash_key.apply();
                bit<32> h0 = hash0[63:32];
                bit<32> h1 = hash1[63:32];
                bit<32> cell_mask = SKETCH_WIDTH - 1;

                bit<32> estimate = 0xFFFFFFFF;
                SKETCH_ROW_READ(0, h0 >> (32 - SKETCH_WIDTH_BITS))
#if SKETCH_DEPTH > 1
                SKETCH_ROW_READ(1, (h0 >> (32 - 2 * SKETCH_WIDTH_BITS)) & cell_mask)
#endif
#if SKETCH_DEPTH > 2
                SKETCH_ROW_READ(2, h1 >> (32 - SKETCH_WIDTH_BITS))
#endif
                bit<32> updated = estimate + increment;
                SKETCH_ROW_UPDATE(0)
#if SKETCH_DEPTH > 1
                SKETCH_ROW_UPDATE(1)
#endif
#if SKETCH_DEPTH > 2
                SKETCH_ROW_UPDATE(2)
#endif

                if (updated >= meta.sk_threshold) {
                    bit<32> tag = hash2[63:32];
                    bit<32> slot = (h1 >> (32 - SKETCH_WIDTH_BITS - SKETCH_DEDUP_BITS))
                                   & (SKETCH_DEDUP_SLOTS - 1);
                    bit<64> last;
                    reported.read(last, slot);
                    if (last != window ++ tag) {
                        reported.write(slot, window ++ tag);
                        meta.elephant.src = meta.fk_src;
                        meta.elephant.dst = meta.fk_dst;
                        meta.elephant.proto = meta.fk_proto;
                        meta.elephant.sport = meta.fk_sport;
                        meta.elephant.dport = meta.fk_dport;
                        meta.elephant.dest_qp = meta.fk_qp;
                        meta.elephant.key_type = meta.sk_key_type;
                        meta.elephant.apn_id = meta.apn_id[31:0];
                        meta.elephant.sr_policy_id = meta.sr_policy_id;
                        meta.elephant.estimate = updated;
                        meta.elephant.window = window;
                        meta.elephant.ingress_port = (bit<16>) standard_metadata.ingress_port;
                        digest<elephant_digest_t>(ELEPHANT_DIGEST_RECEIVER, meta.elephant);
                    }
                }
            }
        }
    }
}

#endif  // ICPN_V1MODEL_SKETCH_P4
