// Elephant-flow detection on Tofino: the v1model sketch (same profile table, flow key, row
// hashes, windows, threshold and digest) with what stateful ALUs allow.
//
// * Rows: SKETCH_DEPTH registers of SKETCH_WIDTH cells of (count, window) pairs: row 0 =
//   CRC-32(key) bits 0.., row 1 = the same CRC-32's bits 16.., row 2 = CRC-16(key). v1model
//   hashes with a keyed multiply-shift the controller sets; Tofino has no 64-bit multiplier
//   in its MAUs, so here the CRC polynomials are the secret: SKETCH_CRC32_POLY and
//   SKETCH_CRC16_POLY, given per deployment to bf-p4c (icpn.sketch_key.tna_defines, from
//   ICPN_SKETCH_CRC32_POLY / ICPN_SKETCH_CRC16_POLY; docs/tofino.md). Without them they are
//   CRC-32 (zlib) and CRC-16/ARC, BMv2's, which anyone can solve collisions for.
// * Conservative update needs every row's minimum before any row is written, which one pass
//   through the stateful ALUs cannot give. Row 0 counts every packet; rows 1 and 2 are raised
//   by one only while below row 0's count after this packet (which is at least the flow's
//   true count, so every cell stays at least the true count of every flow in it: count-min's
//   guarantee). The estimate is the minimum of the rows (docs/tofino.md: "row-0-bounded
//   conservative update").
// * Bytes: a stateful ALU sees two PHV operands; a byte-counting conservative row would need
//   three (window, m, packet length), so byte profiles count plain count-min (each row adds
//   the length) and take the minimum of the rows.
// * Windows: Tofino cannot shift by a table-given amount, so a window is the ingress
//   timestamp's bits 16-47 (units of 65.536 us) under a mask the controller computes
//   (icpn.targets.tofino.p4info.window_mask): windows last 1.024 * 2^window_log2_us us, there is no
//   epoch (the controller clears the registers instead), and the digest's window field
//   numbers windows differently from v1model (not consecutively).
// * Reports: one digest per flow per window past the threshold; the dedup slot remembers
//   (window, CRC-32(key)) as in v1model. The flow key's addresses are the packet's own
//   (SA, DA), used in place (not copied into metadata: Tofino's containers are few).
#ifndef ICPN_TNA_SKETCH_P4
#define ICPN_TNA_SKETCH_P4

#ifndef SKETCH_CRC32_POLY
#define SKETCH_CRC32_POLY 32w0x04C11DB7
#endif
#ifndef SKETCH_CRC16_POLY
#define SKETCH_CRC16_POLY 16w0x8005
#endif

#if SKETCH_DEPTH != 3
#error "the TNA sketch has three rows; other depths are v1model only"
#endif
#if SKETCH_WIDTH_BITS > 14
#error "rows 0 and 1 are disjoint slices of one CRC-32: at most 2^14 cells"
#endif

struct sketch_cell_t {
    bit<32> count;
    bit<32> window;
}

struct dedup_slot_t {
    bit<32> fingerprint;
    bit<32> window;
}

// A row's cell for this packet: plain count-min (row 0, and byte profiles) ...
#define SKETCH_ROW_ADD(i)                                                                     \
    RegisterAction<sketch_cell_t, bit<SKETCH_WIDTH_BITS>, bit<32>>(sketch_row##i) row##i##_add = { \
        void apply(inout sketch_cell_t cell, out bit<32> count) {                              \
            if (cell.window != meta.window) {                                                  \
                cell.window = meta.window;                                                     \
                cell.count = OPERAND_##i;                                            \
            } else {                                                                           \
                cell.count = cell.count + OPERAND_##i;                               \
            }                                                                                  \
            count = cell.count;                                                                \
        }                                                                                      \
    };
// ... or the row-0-bounded conservative update (packet profiles): rows 1 and 2 are raised by
// one only while below row 0's count after this packet (a stateful ALU cannot return a PHV
// value, so the bound is not the running minimum; any bound at or above the flow's true count
// keeps count-min's guarantee, and row 0's count is one). Both rows wait only for row 0, so
// they share a stage.
//
// A stateful ALU reads at most two containers, and every action on its register counts: so
// a row's one operand besides the window, OPERAND_i, is row 0's count for packets (row 0's
// result lands there) and the frame's length for bytes.
#define OPERAND_0 meta.sk_operand0
#define OPERAND_1 meta.sk_operand1
#define OPERAND_2 meta.sk_operand1
#define SKETCH_ROW_CU(i)                                                                      \
    RegisterAction<sketch_cell_t, bit<SKETCH_WIDTH_BITS>, bit<32>>(sketch_row##i) row##i##_cu = { \
        void apply(inout sketch_cell_t cell, out bit<32> count) {                              \
            if (cell.window != meta.window) {                                                  \
                cell.window = meta.window;                                                     \
                cell.count = 1;                                                                \
            } else if (cell.count < OPERAND_##i) {                                                 \
                cell.count = cell.count + 1;                                                   \
            }                                                                                  \
            count = cell.count;                                                                \
        }                                                                                      \
    };

// The sketch's settings, the flow key and its hashes, as soon as the APN policy names a
// profile: the pinned-elephant lookup (control/srv6.p4) needs the key long before the rows
// are done.
control SketchKey(in tna_ingress_headers_t hdr,
                  inout tna_ingress_metadata_t meta,
                  in ingress_intrinsic_metadata_from_parser_t ig_prsr_md) {
    // Reflected CRCs of the deployment's polynomials (default: CRC-32 (zlib) and
    // CRC-16/ARC, as BMv2's crc32 and crc16); icpn.model.sketch computes the same.
    CRCPolynomial<bit<32>>(SKETCH_CRC32_POLY, true, false, false, 32w0xFFFFFFFF, 32w0xFFFFFFFF)
        crc32;
    CRCPolynomial<bit<16>>(SKETCH_CRC16_POLY, true, false, false, 16w0, 16w0) crc16;
    Hash<bit<32>>(HashAlgorithm_t.CUSTOM, crc32) key_crc32;
    Hash<bit<16>>(HashAlgorithm_t.CUSTOM, crc16) key_crc16;

    // v1model's action, with what Tofino needs in place of what it cannot compute:
    // * the flow key as masks over its fields (the controller gives all ones for the fields
    //   of the profile's key type, zeros for the others: v1model's flow_key), so that the key
    //   is ready in this action;
    // * the window as a mask, where v1model takes its length's log2 and an epoch: Tofino
    //   cannot shift by a table-given amount, and the epoch would cost a stage and a
    //   container. The controller gives window_mask = 2^32 - 2^(window_log2_us - 6) (all
    //   ones below 2^6 us), which keeps the timestamp bits (16..47) that stay the same for a
    //   whole window of 1.024 * 2^k us; where v1model starts a new epoch, the controller
    //   clears the sketch's registers.
    action set_sketch(bit<8> flow_key, bit<8> proto_mask, bit<16> port_mask, bit<24> qp_mask,
                      bit<1> bytes, bit<32> window_mask, bit<32> elephant_threshold) {
        meta.sketch_on = true;
        meta.fk_type = flow_key;
        meta.fk_proto = hdr.ipv6.next_hdr & proto_mask;
        meta.fk_sport = meta.l4_src_port & port_mask;
        meta.fk_dport = meta.l4_dst_port & port_mask;
        meta.fk_qp = meta.dest_qp & qp_mask;
        meta.sk_bytes = bytes;
        meta.window = ig_prsr_md.global_tstamp[47:16] & window_mask;
        meta.sk_threshold = elephant_threshold;
    }

    table sketch_profile {
        key = { meta.sketch_profile: exact @name("profile"); }
        actions = { set_sketch; @defaultonly NoAction; }
        const default_action = NoAction();
        size = SKETCH_PROFILE_TABLE_SIZE;
    }

    // Bytes of the frame, as v1model counts them: Ethernet and IPv6 headers, and the payload
    // (widened by the hash unit: an ALU cannot zero-extend across containers). Computed for
    // every packet, before the profile is known.
    action payload_octets() { @in_hash { meta.sk_operand0 = (bit<32>) hdr.ipv6.payload_len; } }
    action frame_bytes_step() { meta.sk_operand0 = meta.sk_operand0 + (14 + 40); }
    STEP(frame_bytes)

    // Each row's operand (the Sketch's OPERAND_i): bytes, the frame's length for every row;
    // packets, 1 for row 0 (rows 1 and 2 get row 0's count as it comes out).
    action byte_operands() { meta.sk_operand1 = meta.sk_operand0; }
    action packet_operands() { meta.sk_operand0 = 1; }

    table operands {
        key = { meta.sk_bytes: exact @name("bytes"); }
        actions = { byte_operands; packet_operands; }
        const entries = { 1: byte_operands(); 0: packet_operands(); }
        size = 2;
    }

#define SKETCH_KEY { hdr.ipv6.src_addr, hdr.ipv6.dst_addr, meta.fk_proto, meta.fk_sport, \
                    meta.fk_dport, meta.fk_qp }
    // The key's hashes, once: rows 0 and 1 index by CRC-32 bits 0.. and 16.., row 2 by
    // CRC-16; the CRC-32 is also the report's dedup fingerprint (v1model's).
    action fingerprint() { meta.sk_fingerprint = key_crc32.get(SKETCH_KEY); }
    action row2_index() { meta.sk_index2 = key_crc16.get(SKETCH_KEY); }

    apply {
        payload_octets();
        frame_bytes.apply();
        if (meta.sketch_profile != 0) {
            sketch_profile.apply();
        }
        if (meta.sketch_on) {
            operands.apply();
            fingerprint();
            row2_index();
        }
    }
}

// The rows and the estimate; whether it reached the threshold (meta.sk_short*) is reported
// by SketchReport at the end of ingress.
control Sketch(in tna_ingress_headers_t hdr, inout tna_ingress_metadata_t meta) {
    Register<sketch_cell_t, bit<SKETCH_WIDTH_BITS>>(SKETCH_WIDTH) sketch_row0;
    Register<sketch_cell_t, bit<SKETCH_WIDTH_BITS>>(SKETCH_WIDTH) sketch_row1;
    Register<sketch_cell_t, bit<SKETCH_WIDTH_BITS>>(SKETCH_WIDTH) sketch_row2;

    bit<32> count2;

    SKETCH_ROW_ADD(0)
    SKETCH_ROW_ADD(1)
    SKETCH_ROW_ADD(2)
    SKETCH_ROW_CU(1)
    SKETCH_ROW_CU(2)

#define INDEX0 meta.sk_fingerprint[SKETCH_WIDTH_BITS - 1:0]
#define INDEX1 meta.sk_fingerprint[SKETCH_WIDTH_BITS + 15:16]
#define INDEX2 meta.sk_index2[SKETCH_WIDTH_BITS - 1:0]

    // One table per row, its action chosen by the profile's unit: bytes count plain
    // count-min, packets the row-0-bounded conservative update. For bytes, rows 0 and 1's
    // counts wait in the shortfall fields until below_step (containers are scarce).
    action row0_bytes() { meta.sk_short01 = row0_add.execute(INDEX0); }
    action row0_packets() { meta.sk_operand1 = row0_add.execute(INDEX0); }
    action row1_bytes() { meta.sk_short2 = row1_add.execute(INDEX1); }
    action row1_packets() { meta.sk_operand2 = row1_cu.execute(INDEX1); }
    action row2_bytes() { count2 = row2_add.execute(INDEX2); }
    action row2_packets() { count2 = row2_cu.execute(INDEX2); }
    // Keyed by sketch_on, not applied under a condition: bf-p4c places a conditional block
    // as a unit, and tables applied before it (IFIT, routing) would wait for all of it.
#define ROW_TABLE(i)                                                                         \
    table row##i {                                                                           \
        key = {                                                                              \
            meta.sketch_on: exact @name("sketch_on");                                        \
            meta.sk_bytes: exact @name("bytes");                                             \
        }                                                                                    \
        actions = { row##i##_bytes; row##i##_packets; NoAction; }                            \
        const entries = { (true, 1): row##i##_bytes(); (true, 0): row##i##_packets(); }     \
        const default_action = NoAction();                                                   \
        size = 2;                                                                            \
    }
    ROW_TABLE(0)
    ROW_TABLE(1)
    ROW_TABLE(2)

    // The estimate reaches the threshold when every row does: rows 0-1 (their minimum) and
    // row 2 are compared apart, each as soon as it is known (threshold |-| x: 0 once reached).
    action min01_bytes() { meta.estimate = min(meta.sk_short01, meta.sk_short2); }
    action min01_packets() { meta.estimate = min(meta.sk_operand1, meta.sk_operand2); }

    table min01 {
        key = {
            meta.sketch_on: exact @name("sketch_on");
            meta.sk_bytes: exact @name("bytes");
        }
        actions = { min01_bytes; min01_packets; NoAction; }
        const entries = { (true, 1): min01_bytes(); (true, 0): min01_packets(); }
        const default_action = NoAction();
        size = 2;
    }

    action below_step() {
        meta.sk_short01 = meta.sk_threshold |-| meta.estimate;
        meta.sk_short2 = meta.sk_threshold |-| count2;
        meta.estimate = min(meta.estimate, count2);
        meta.sk_dedup_key = meta.sk_fingerprint ^ meta.window;
    }
    STEP(below)

    // (below runs for every packet: without a profile its results are zeros nobody reads.)
    apply {
        row0.apply();
        row1.apply();
        row2.apply();
        min01.apply();
        below.apply();
    }
}

// One digest per flow per window past the threshold. The dedup slot holds the flow's CRC-32
// XOR its window (one word: a stateful ALU reads two, and the second is row 2's shortfall),
// where v1model keeps the pair. Reported for packets a check drops too (a stage would be
// needed to wait for every check): docs/tofino.md.
control SketchReport(inout tna_ingress_metadata_t meta,
                     inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Register<bit<32>, bit<SKETCH_DEDUP_BITS>>(SKETCH_DEDUP_SLOTS) reported;

    // The digest type itself comes out of the stateful ALU: the first packet of the flow in
    // the window whose estimate reached the threshold gets TNA_DIGEST_ELEPHANT, others 0.
    RegisterAction<bit<32>, bit<SKETCH_DEDUP_BITS>, bit<3>>(reported) claim_report = {
        void apply(inout bit<32> slot, out bit<3> digest) {
            digest = 0;
            if (meta.sk_short2 == 0 && slot != meta.sk_dedup_key) {
                slot = meta.sk_dedup_key;
                digest = TNA_DIGEST_ELEPHANT;
            }
        }
    };

    apply {
        if (meta.sketch_on && meta.sk_short01 == 0) {
            ig_dprsr_md.digest_type =
                claim_report.execute(meta.sk_fingerprint[SKETCH_DEDUP_BITS - 1:0]);
        }
    }
}

#endif  // ICPN_TNA_SKETCH_P4
