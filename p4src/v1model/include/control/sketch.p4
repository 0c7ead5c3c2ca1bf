// Elephant-flow detection (DESIGN.md 3 item 4): a count-min sketch with conservative update
// at the headend, per the APN policy's sketch profile.
//
// * Flow key: (SA, DA, DestQP) or the 5-tuple (FLOW_KEY_*); unused parts are zero.
// * Rows: SKETCH_DEPTH registers of SKETCH_WIDTH cells. CRC is affine over GF(2): one CRC
//   seeded differently per row gives rows whose collisions coincide, so the rows use
//   different linear maps: row 0 = CRC-32(key) bits 0.., row 1 = the same CRC-32's bits 16..,
//   row 2 = CRC-16(key), each masked to the width (icpn.model.sketch computes the same).
//   A cell holds (window, count): a cell of an older window counts as 0, so windows reset
//   in the data plane, with no register writes from the controller (BMv2's P4Runtime cannot
//   write registers anyway).
// * Window = (ingress timestamp in us >> window_log2_us) + epoch; the controller sets both
//   (sketch_profile) and can start a fresh window at once by raising the epoch.
// * Conservative update (Estan & Varghese, SIGCOMM 2002): estimate = min of the row cells;
//   each cell becomes max(cell, estimate + increment). Counts packets or bytes.
// * Once the new estimate reaches the threshold: one digest per flow per window. A dedup
//   slot (CRC-32(key) mod SKETCH_DEDUP_SLOTS) remembers (window, CRC-32(key));
//   two elephants sharing a slot in one window can each report more than once.
#ifndef ICPN_V1MODEL_SKETCH_P4
#define ICPN_V1MODEL_SKETCH_P4

#if SKETCH_DEPTH < 1 || SKETCH_DEPTH > 3
#error "SKETCH_DEPTH must be 1 to 3"
#endif
#if SKETCH_WIDTH > 16384
#error "SKETCH_WIDTH must be at most 2^14 (rows 0 and 1 are disjoint slices of one CRC-32)"
#endif

#define SKETCH_KEY { meta.fk_src, meta.fk_dst, meta.fk_proto, meta.fk_sport, meta.fk_dport, \
                     meta.fk_qp }
#define SKETCH_ROW_REGISTER(i) register<bit<64>>(SKETCH_WIDTH) sketch_row##i;
// Read row i's cell (index from hash_bits); the count of an older window is 0; keep the min.
#define SKETCH_ROW_READ(i, hash_bits) \
        bit<32> index##i = (hash_bits) & (SKETCH_WIDTH - 1); \
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

    bit<8> key_type = 0;
    bit<1> count_bytes = 0;
    bit<8> window_log2_us = 0;
    bit<32> epoch = 0;
    bit<32> threshold = 0;

    action set_sketch(bit<8> flow_key, bit<1> bytes, bit<8> window_log2, bit<32> window_epoch,
                      bit<32> elephant_threshold) {
        key_type = flow_key;
        count_bytes = bytes;
        window_log2_us = window_log2;
        epoch = window_epoch;
        threshold = elephant_threshold;
    }

    // How a sketch profile (named by APN policies) counts: flow key, unit, window, threshold.
    table sketch_profile {
        key = { meta.sketch_profile: exact @name("profile"); }
        actions = { set_sketch; @defaultonly NoAction; }
        const default_action = NoAction();
        size = SKETCH_PROFILE_TABLE_SIZE;
    }

    apply {
        if (meta.sketch_profile == 0 || !sketch_profile.apply().hit) {
            return;
        }
        meta.sketch_on = true;
        meta.fk_src = hdr.ipv6.src_addr;
        meta.fk_dst = hdr.ipv6.dst_addr;
        if (key_type == FLOW_KEY_FIVE_TUPLE) {
            meta.fk_proto = hdr.ipv6.next_hdr;
            meta.fk_sport = meta.l4_src_port;
            meta.fk_dport = meta.l4_dst_port;
        } else {
            meta.fk_qp = meta.dest_qp;
        }
        bit<32> window = (bit<32>) (standard_metadata.ingress_global_timestamp
                                    >> window_log2_us) + epoch;
        bit<32> increment = 1;
        if (count_bytes == 1) {
            increment = standard_metadata.packet_length;
        }

        bit<32> crc32_key;
        hash(crc32_key, HashAlgorithm.crc32, 32w0, SKETCH_KEY, 64w4294967296);
        bit<32> crc16_key;
        hash(crc16_key, HashAlgorithm.crc16, 32w0, SKETCH_KEY, 32w65536);

        bit<32> estimate = 0xFFFFFFFF;
        SKETCH_ROW_READ(0, crc32_key)
#if SKETCH_DEPTH > 1
        SKETCH_ROW_READ(1, crc32_key >> 16)
#endif
#if SKETCH_DEPTH > 2
        SKETCH_ROW_READ(2, crc16_key)
#endif
        bit<32> updated = estimate + increment;
        SKETCH_ROW_UPDATE(0)
#if SKETCH_DEPTH > 1
        SKETCH_ROW_UPDATE(1)
#endif
#if SKETCH_DEPTH > 2
        SKETCH_ROW_UPDATE(2)
#endif

        if (updated >= threshold) {
            bit<32> fingerprint = crc32_key;
            bit<32> slot = fingerprint & (SKETCH_DEDUP_SLOTS - 1);
            bit<64> last;
            reported.read(last, slot);
            if (last != window ++ fingerprint) {
                reported.write(slot, window ++ fingerprint);
                meta.elephant.src = meta.fk_src;
                meta.elephant.dst = meta.fk_dst;
                meta.elephant.proto = meta.fk_proto;
                meta.elephant.sport = meta.fk_sport;
                meta.elephant.dport = meta.fk_dport;
                meta.elephant.dest_qp = meta.fk_qp;
                meta.elephant.key_type = key_type;
                meta.elephant.apn_id = meta.apn_id[31:0];
                meta.elephant.sr_policy_id = meta.sr_policy_id;
                meta.elephant.estimate = updated;
                meta.elephant.window = window;
                digest<elephant_digest_t>(ELEPHANT_DIGEST_RECEIVER, meta.elephant);
            }
        }
    }
}

#endif  // ICPN_V1MODEL_SKETCH_P4
