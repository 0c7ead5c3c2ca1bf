// IFIT on Tofino (DESIGN.md 3 item 7, ECN item 8): v1model's tables, keys, actions and
// parameters, with what Tofino allows.
//
// * Alternate marking: the headend inserts AltMark with L = the colour of the current period
//   and D on one packet in 2^d per FlowMonID; every node counts packets and bytes per
//   (FlowMonID, colour). Tofino cannot shift by a table-given amount, so the colour is the
//   ingress timestamp (ns) bit period_log2_us + 10, found by a constant ternary table: periods
//   last 1.024 * 2^k us (v1model: 2^k us).
// * IOAM pre-allocated trace: a node in the trace's namespace writes its slot in egress, where
//   queue depth and transit delay are known. Ingress decides (IfitTrace) and tells egress in
//   the bridged header how many free words precede the slot; egress walks the HBH to the
//   trace. Tofino 1's egress parser reaches 160 octets into a packet, so a node fills only a
//   trace behind at most APN6 (32-bit ID), AltMark and two octets of padding, with
//   RemainingLen at most TNA_IOAM_MAX_WORDS; other traces go on untouched. Timestamps: the
//   switch's 48-bit nanosecond clock split at bit 32 (seconds field = ns >> 32, fraction =
//   ns & (2^32 - 1): together the clock's value in ns); Tofino has no divider for decimal
//   seconds.
//   Queue depth and buffer occupancy are in 80-octet cells (v1model: packets).
// * Trace export: the decapsulating node mirrors the packet as it arrived (Mirror extern,
//   I2E) and egress turns the copy into a report of type 2 (docs/telemetry-report.md): the
//   IOAM option, then the rest of the original packet from the end of the option, the inner
//   IP header `reserved` octets further.
#ifndef ICPN_TNA_IFIT_P4
#define ICPN_TNA_IFIT_P4

#if TNA_IOAM_MAX_WORDS != 8 && TNA_IOAM_MAX_WORDS != 16
#error "the free-word actions below are written for 8 or 16 words (TNA_IOAM_MAX_WORDS)"
#endif

// Zeroed free space of k words at the start of the trace data (the headend adds no data).
#define FREE_CHUNK(n) hdr.encap_ioam_free_##n.setValid(); hdr.encap_ioam_free_##n.value = 0;
#define FREE_WORDS_ACTION(k) action free_words_##k() { CHUNKS_##k(FREE_CHUNK) }

// The headend's HBH with the profile's options, for k free trace words (DESIGN.md 2.2-2.4):
// APN6 (12 with the header) [PadN(0) AltMark: 8] [IOAM: 12 + 4k] PadN(2) when 4 short of 8n.
#define HBH_OCTETS(alt, ioam, k) (12 + 8 * (alt) + (ioam) * (12 + 4 * (k)) \
                                  + (((12 + 8 * (alt) + (ioam) * (12 + 4 * (k))) % 8) == 4 ? 4 : 0))
// An entry for k free words, whose parity decides the tail padding (pad = 1: PadN(2)).
#define LAYOUT(alt, ioam, k, pad) (alt, ioam, k): layout_##alt##_##ioam##_##pad(             \
    (bit<8>) (HBH_OCTETS(alt, ioam, k) / 8 - 1), (bit<16>) (HBH_OCTETS(alt, ioam, k) - 16),   \
    (bit<8>) (10 + 4 * (k)));
#define LAYOUTS_IOAM_8(alt) LAYOUT(alt, 1, 0, 0) LAYOUT(alt, 1, 1, 1) LAYOUT(alt, 1, 2, 0)       \
    LAYOUT(alt, 1, 3, 1) LAYOUT(alt, 1, 4, 0) LAYOUT(alt, 1, 5, 1) LAYOUT(alt, 1, 6, 0)          \
    LAYOUT(alt, 1, 7, 1) LAYOUT(alt, 1, 8, 0)
#define LAYOUTS_IOAM_16(alt) LAYOUT(alt, 1, 9, 1) LAYOUT(alt, 1, 10, 0) LAYOUT(alt, 1, 11, 1)    \
    LAYOUT(alt, 1, 12, 0) LAYOUT(alt, 1, 13, 1) LAYOUT(alt, 1, 14, 0) LAYOUT(alt, 1, 15, 1)      \
    LAYOUT(alt, 1, 16, 0)
#define ALTMARK_VALID_1 hdr.encap_pad0.setValid(); hdr.encap_altmark.setValid();
#define ALTMARK_VALID_0
#define IOAM_VALID_1 hdr.encap_ioam_opt.setValid(); hdr.encap_ioam_trace.setValid();
#define IOAM_VALID_0
#define TAIL_PAD_1
#define TAIL_PAD_0 hdr.encap_pad.setInvalid();   /* the options already end at 8n */
#define LAYOUT_ACTION(alt, ioam, pad)                                                        \
    action layout_##alt##_##ioam##_##pad(bit<8> ext_len, bit<16> growth, bit<8> option_len) { \
        hdr.encap_hbh.hdr_ext_len = ext_len;                                                 \
        hbh_growth = growth;                                                                 \
        hdr.encap_ioam_opt.len = option_len;                                                 \
        ALTMARK_VALID_##alt IOAM_VALID_##ioam TAIL_PAD_##pad                                 \
    }

// The colour of the current period for period_log2_us k: bit k + 10 of the nanosecond
// timestamp, matched in its bits 16..47 (periods of at least 2^6 us; shorter ones take bit 16).
#define COLOUR(k) (k, 32w1 << ((k) + 10 - 16) &&& 32w1 << ((k) + 10 - 16)): colour_1();
#define COLOUR_SHORT(k) (k, 32w1 &&& 32w1): colour_1();
#define COLOURS_8(b) COLOUR(b) COLOUR(b + 1) COLOUR(b + 2) COLOUR(b + 3) COLOUR(b + 4) \
                     COLOUR(b + 5) COLOUR(b + 6) COLOUR(b + 7)

// What every node decides about an IOAM trace before decapsulation may strip it: whether
// egress writes this node's slot (and how many free words precede it) or sets the Overflow
// flag, and whether the layout is one the egress parser walks (a report needs it too). A
// decapsulating node takes the mark and the flags away with the outer headers.
control IfitTrace(inout tna_ingress_headers_t hdr,
                  inout tna_ingress_metadata_t meta) {
    // NodeLen past RemainingLen, saturated (no room: not zero), and the room before the slot.
    bit<8> short;
    action trace_room_step() {
        short = meta.trace_node_len |-| meta.trace_remaining;
        meta.trace_free_words = meta.trace_remaining |-| meta.trace_node_len;
    }
    STEP(trace_room)

    // This node's slot is written in egress: the bridged header says so, and the trace mark
    // in front of the option gives the egress parser the free words where it needs them.
    action fill() {
        meta.trace_compact = true;
        hdr.bridged.fill = 1;
        hdr.bridged.free_words = meta.trace_free_words;
        hdr.trace_mark.setValid();
        hdr.trace_mark.type = TNA_TRACE_MARK;
        hdr.trace_mark.free_words = meta.trace_free_words;
#ifdef WITH_TRACE_EXPORT
        meta.report_flags = 0x90;   // mirrored, fill
#endif
    }

    action overflow() {
        meta.trace_compact = true;
        hdr.bridged.overflow = 1;
#ifdef WITH_TRACE_EXPORT
        meta.report_flags = 0x88;   // mirrored, overflow
#endif
    }

    action compact() {
        meta.trace_compact = true;
    }

#define TRACE_PLANS(apn_valid, apn_len)                                                       \
    (apn_valid, apn_len, _, _, _, _, 0 &&& ~TNA_IOAM_SUPPORTED_TRACE_TYPE, 0,                 \
     8w0 &&& (8w255 - (TNA_IOAM_MAX_WORDS - 1))): fill();                                    \
    (apn_valid, apn_len, _, _, _, _, 0 &&& ~TNA_IOAM_SUPPORTED_TRACE_TYPE, 0,                 \
     TNA_IOAM_MAX_WORDS): fill();                                                             \
    (apn_valid, apn_len, _, _, _, _, 0 &&& ~TNA_IOAM_SUPPORTED_TRACE_TYPE, 0, _): compact();  \
    (apn_valid, apn_len, _, _, _, _, 0 &&& ~TNA_IOAM_SUPPORTED_TRACE_TYPE, _, _): overflow(); \
    (apn_valid, apn_len, _, _, _, _, _, _, _): compact();

    // In order: layouts the egress parser does not walk (more than APN6 with a 32-bit ID,
    // AltMark and two octets of padding in front of the trace) are left alone; a Trace-Type
    // with bits this node does not lay out goes on untouched; no room for the slot sets the
    // Overflow flag; a trace within TNA_IOAM_MAX_WORDS words gets this node's slot.
    table trace_plan {
        key = {
            hdr.apn6.isValid(): ternary @name("apn6");
            hdr.apn6.len: ternary @name("apn6_len");
            hdr.pad_a[1].isValid(): ternary @name("pad_a1");
            hdr.pad_a[2].isValid(): ternary @name("pad_a2");
            hdr.pad_b[0].isValid(): ternary @name("pad_b0");
            hdr.pad_b[1].isValid(): ternary @name("pad_b1");
            hdr.ioam_trace.trace_type: ternary @name("trace_type");
            short: ternary @name("short");
            meta.trace_remaining: ternary @name("remaining");
        }
        actions = { fill; overflow; compact; NoAction; }
        const entries = {
            (_, _, _, true, _, _, _, _, _): NoAction();
            (_, _, _, _, _, true, _, _, _): NoAction();
            (_, _, true, _, true, _, _, _, _): NoAction();
            TRACE_PLANS(false, _)
            TRACE_PLANS(true, 8)
        }
        const default_action = NoAction();
        size = 16;
    }

    apply {
        if (hdr.ioam_trace.isValid()) {
            trace_room.apply();
            trace_plan.apply();
        }
    }
}

control IfitIngress(inout tna_ingress_headers_t hdr,
                    inout tna_ingress_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Counter<bit<64>, bit<ALTMARK_SLOT_BITS + 1>>(ALTMARK_COUNTER_SIZE,
                                                 CounterType_t.PACKETS_AND_BYTES) altmark_colors;
    // Packets until the next delay sample (D) per FlowMonID slot, counting down from
    // 2^d - 1 (the profile's delay_mask): the same packets as v1model's "marked so far mod
    // 2^d == 0" (the first one, then one in 2^d), with a one-bit answer instead of the
    // 32-bit count.
    Register<bit<32>, bit<ALTMARK_SLOT_BITS>>(ALTMARK_FLOW_SLOTS) altmark_seq;
    RegisterAction<bit<32>, bit<ALTMARK_SLOT_BITS>, bit<1>>(altmark_seq) delay_sample = {
        void apply(inout bit<32> left, out bit<1> sample) {
            if (left == 0) {
                left = meta.tm_delay_mask;
                sample = 1;
            } else {
                left = left - 1;
                sample = 0;
            }
        }
    };


    // The profile's fields and the options' constants go straight into the headers pushed
    // for them, all from this action's data (a container written from several sources in
    // one action would not fit); the insertion only makes them valid. v1model's delay_log2
    // arrives as delay_mask = 2^delay_log2 - 1: Tofino cannot shift by a table-given amount.
    action set_telemetry(bit<1> altmark, bit<20> flow_mon_id, bit<8> period_log2_us,
                         bit<32> delay_mask, bit<1> ioam, bit<16> namespace_id,
                         bit<24> trace_type, bit<5> node_len, bit<8> free_words) {
        meta.tm_altmark = altmark;
        meta.tm_slot = flow_mon_id[ALTMARK_SLOT_BITS - 1:0];
        hdr.encap_altmark.flow_mon_id_hi = flow_mon_id[19:12];
        hdr.encap_altmark.flow_mon_id_mid = flow_mon_id[11:4];
        hdr.encap_altmark.lo_l_d = flow_mon_id[3:0] ++ 4w0;   // L and D: below
        hdr.encap_altmark.reserved_lo = 0;
        meta.tm_period_log2_us = period_log2_us;
        meta.tm_delay_mask = delay_mask;
        meta.tm_ioam = ioam;
        hdr.encap_ioam_opt.type = IOAM_OPT_TYPE;
        hdr.encap_ioam_opt.reserved = 0;
        hdr.encap_ioam_opt.ioam_type = IOAM_TYPE_PREALLOCATED_TRACE;
        hdr.encap_ioam_trace.namespace_id = namespace_id;
        hdr.encap_ioam_trace.node_len = node_len;
        hdr.encap_ioam_trace.o = 0;
        hdr.encap_ioam_trace.l = 0;
        hdr.encap_ioam_trace.a = 0;
        hdr.encap_ioam_trace.flag_rsv = 0;
        hdr.encap_ioam_trace.remaining_len = (bit<7>) free_words;
        hdr.encap_ioam_trace.trace_type = trace_type;
        hdr.encap_ioam_trace.reserved = 0;
        meta.tm_free_words = free_words;
        hdr.encap_pad0.type = IPV6_OPT_PADN;
        hdr.encap_pad0.len = 0;
        hdr.encap_altmark.type = ALTMARK_OPT_TYPE;
        hdr.encap_altmark.len = 4;
    }

    // Keyed as v1model's: the profile, and the segment list the encapsulation pushed (an
    // entry for one list gives it a FlowMonID of its own; the wildcard entry the others).
    table ifit_profile {
        key = {
            meta.telemetry_profile: exact @name("profile");
            meta.list_id: ternary @name("list_id");
        }
        actions = { set_telemetry; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IFIT_PROFILE_TABLE_SIZE;
    }

    // L and D go into their bits of the octet set_telemetry started (FlowMonID's last bits).
    action colour_1() { hdr.encap_altmark.lo_l_d[3:3] = 1; }
    action colour_0() { hdr.encap_altmark.lo_l_d[3:3] = 0; }
    action sample_bit_step() { hdr.encap_altmark.lo_l_d[2:2] = delay_sample.execute(meta.tm_slot); }
    STEP(sample_bit)

    // L: which half of its period the packet arrived in (a ternary match on the period's bit).
    table altmark_colour {
        key = {
            meta.tm_period_log2_us: exact @name("period_log2_us");
            ig_prsr_md.global_tstamp[47:16]: ternary @name("timestamp");
        }
        actions = { colour_1; colour_0; }
        const entries = {
            COLOUR_SHORT(0) COLOUR_SHORT(1) COLOUR_SHORT(2) COLOUR_SHORT(3) COLOUR_SHORT(4)
            COLOUR_SHORT(5) COLOUR(6) COLOUR(7) COLOURS_8(8) COLOURS_8(16) COLOURS_8(24)
            COLOUR(32) COLOUR(33) COLOUR(34) COLOUR(35) COLOUR(36) COLOUR(37)
        }
        const default_action = colour_0();
        size = 64;
    }

    bit<16> hbh_growth;
    action grow_payload_step() {
        hdr.encap_ipv6.payload_len = hdr.encap_ipv6.payload_len + hbh_growth;
    }
    STEP(grow_payload)

    Hash<bit<ALTMARK_SLOT_BITS + 1>>(HashAlgorithm_t.IDENTITY) pushed_colour_index;
    Hash<bit<ALTMARK_SLOT_BITS + 1>>(HashAlgorithm_t.IDENTITY) colour_index;

    action count_pushed() {
        altmark_colors.count(pushed_colour_index.get({ meta.tm_slot,
                                                       hdr.encap_altmark.lo_l_d[3:3] }));
    }
    action count_parsed() {
        altmark_colors.count(colour_index.get({
            hdr.altmark.flow_mon_id[ALTMARK_SLOT_BITS - 1:0], hdr.altmark.l }));
    }

    // The headend's HBH for the profile: lengths straight into the headers pushed, and the
    // options made valid (one action per shape; the lengths come from the preprocessor: a
    // Tofino action does one operation per field, and these are several).
    LAYOUT_ACTION(1, 1, 1) LAYOUT_ACTION(1, 1, 0) LAYOUT_ACTION(0, 1, 1) LAYOUT_ACTION(0, 1, 0)
    LAYOUT_ACTION(1, 0, 1) LAYOUT_ACTION(0, 0, 1)

    // A profile past the bounds (the controller refuses those) adds nothing.
    action layout_none() { hbh_growth = 0; }

    table hbh_layout {
        key = {
            meta.tm_altmark: exact @name("altmark");
            meta.tm_ioam: exact @name("ioam");
            meta.tm_free_words: exact @name("free_words");
        }
        actions = { layout_1_1_1; layout_1_1_0; layout_0_1_1; layout_0_1_0; layout_1_0_1;
                    layout_0_0_1; layout_none; }
        const entries = {
            LAYOUT(0, 0, 0, 1) LAYOUT(1, 0, 0, 1) LAYOUTS_IOAM_8(0) LAYOUTS_IOAM_8(1)
#if TNA_IOAM_MAX_WORDS > 8
            LAYOUTS_IOAM_16(0) LAYOUTS_IOAM_16(1)
#endif
        }
        const default_action = layout_none();
        size = 64;
    }

    FREE_WORDS_ACTION(0) FREE_WORDS_ACTION(1) FREE_WORDS_ACTION(2)
    FREE_WORDS_ACTION(3) FREE_WORDS_ACTION(4) FREE_WORDS_ACTION(5)
    FREE_WORDS_ACTION(6) FREE_WORDS_ACTION(7) FREE_WORDS_ACTION(8)
#if TNA_IOAM_MAX_WORDS > 8
    FREE_WORDS_ACTION(9) FREE_WORDS_ACTION(10) FREE_WORDS_ACTION(11)
    FREE_WORDS_ACTION(12) FREE_WORDS_ACTION(13) FREE_WORDS_ACTION(14)
    FREE_WORDS_ACTION(15) FREE_WORDS_ACTION(16)
#endif

    // The headend's pre-allocated space: zeroed words, as many as the profile asks.
    table ioam_free_space {
        key = {
            meta.tm_ioam: exact @name("ioam");
            meta.tm_free_words: exact @name("free_words");
        }
        actions = {
            free_words_0; free_words_1; free_words_2; free_words_3; free_words_4;
            free_words_5; free_words_6; free_words_7; free_words_8;
#if TNA_IOAM_MAX_WORDS > 8
            free_words_9; free_words_10; free_words_11; free_words_12; free_words_13;
            free_words_14; free_words_15; free_words_16;
#endif
            NoAction;
        }
        const entries = {
            (1, 0): free_words_0(); (1, 1): free_words_1(); (1, 2): free_words_2();
            (1, 3): free_words_3(); (1, 4): free_words_4(); (1, 5): free_words_5();
            (1, 6): free_words_6(); (1, 7): free_words_7();
            (1, 8): free_words_8();
#if TNA_IOAM_MAX_WORDS > 8
            (1, 9): free_words_9(); (1, 10): free_words_10(); (1, 11): free_words_11();
            (1, 12): free_words_12(); (1, 13): free_words_13(); (1, 14): free_words_14();
            (1, 15): free_words_15(); (1, 16): free_words_16();
#endif
        }
        const default_action = NoAction();
        size = 32;
    }

#ifdef WITH_TRACE_EXPORT
    // The mirror header's flags were set by the parser and IfitTrace (whether the copy gets
    // this node's data or the Overflow flag).
    action clone_to_collector(MirrorId_t session) {
        ig_dprsr_md.mirror_type = (MirrorType_t) TNA_MIRROR_REPORT;
        meta.report_session = session;
        meta.report_hbh_units = hdr.hbh.hdr_ext_len + 1;
    }

    action report_srh_units() { meta.report_srh_units = hdr.srh.hdr_ext_len + 1; }

    table ioam_export {
        key = { hdr.ioam_trace.namespace_id: exact @name("namespace_id"); }
        actions = { clone_to_collector; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }
#endif  // WITH_TRACE_EXPORT

    apply {
#ifdef WITH_TRACE_EXPORT
        // Decapsulating nodes export the traces of configured namespaces, in layouts the
        // egress parser walks.
        if (meta.decapsulated && meta.end_drop == DROP_NONE && meta.trace_compact) {
            ioam_export.apply();
            if (hdr.srh.isValid()) {
                report_srh_units();   // the egress walk of the copy needs both lengths
            }
        }
#endif  // WITH_TRACE_EXPORT
        // The profile is looked up for packets the headend encapsulates (encap_go,
        // control/srv6.p4), not after: its action writes into encap_* headers, which share
        // containers with parsed ones that only such packets lack. A packet without a
        // profile has tm_altmark = tm_ioam = 0: the layout adds nothing.
        if (meta.encap_go && meta.telemetry_profile != 0) {
            ifit_profile.apply();
        }
        // v1model's layout (ifit.p4 there): APN6 | PadN(0) AltMark | IOAM | PadN(2).
        if (meta.encapsulated) {
            hbh_layout.apply();
            ioam_free_space.apply();
        }
        if (meta.encapsulated && meta.tm_altmark == 1) {
            sample_bit.apply();
            altmark_colour.apply();
        }
        if (meta.encapsulated) {
            grow_payload.apply();
        }
        // Count the packet's colour per FlowMonID: index slot * 2 + L, as v1model, taken out
        // of the option by the hash unit. Packets a late check drops (no route) are counted
        // too: docs/tofino.md.
        // (if-else: the two must be seen to exclude each other to share the counter).
        if (meta.sanity_drop == DROP_NONE && meta.station_drop == DROP_NONE
            && hdr.encap_altmark.isValid()) {
            count_pushed();
        } else if (meta.sanity_drop == DROP_NONE && meta.station_drop == DROP_NONE
                   && hdr.altmark.isValid()) {
            count_parsed();
        }
    }
}

control IfitEgress(inout tna_egress_headers_t hdr,
                   in tna_egress_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    bit<19> ecn_threshold = 0;

    // The node's identity goes straight into the headers that carry it (a slot header not
    // parsed, or a report header not built, is invalid and not emitted). The wide identity
    // (id_wide, ns_data_wide) is for Trace-Type bits 8-10, which Tofino does not fill; the
    // parameters stay, so entries are the same for both targets.
    action set_ioam_node(bit<24> id, bit<56> id_wide, bit<32> ns_data, bit<64> ns_data_wide) {
        hdr.ioam_node.hop.node_id = id;
        hdr.ioam_node.namespace_data.value = ns_data;
#ifdef WITH_TRACE_EXPORT
        hdr.report.node_id = (bit<32>) id;
#endif
    }

    table ioam_node {
        key = { hdr.ioam_trace.namespace_id: exact @name("namespace_id"); }
        actions = { set_ioam_node; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }

    action set_ecn_threshold(bit<19> queue_depth) {
        ecn_threshold = queue_depth;
    }

    table ecn_marking {
        key = { eg_intr_md.egress_port: exact @name("port"); }
        actions = { set_ecn_threshold; @defaultonly NoAction; }
        const default_action = NoAction();
        size = PORT_TABLE_SIZE;
    }

#ifdef WITH_TRACE_EXPORT
    Register<bit<32>, bit<1>>(1) report_sequence;
    RegisterAction<bit<32>, bit<1>, bit<32>>(report_sequence) next_report = {
        void apply(inout bit<32> seq, out bit<32> previous) {
            previous = seq;
            seq = seq + 1;
        }
    };

    // The report's length: the original's payload from the IOAM option on, plus UDP and the
    // report header (a step per stage: see STEP).
    bit<16> rest = 0;
    bit<16> udp_len = 0;

    action report_rest_step() { rest = hdr.ipv6.payload_len - meta.prefix_octets; }
    STEP(report_rest)
    action report_length_step() { udp_len = rest + (8 + REPORT_HEADER_OCTETS); }
    STEP(report_length)
    // Type 2's flags: Overflow in bit 7, the octets of HBH before the option in bits 0-4
    // (bits move between positions: done by the hash unit).
    action report_flags_step() {
        @in_hash { hdr.report.flags = hdr.ioam_trace.o ++ 2w0 ++ meta.prefix_octets[4:0]; }
    }
    STEP(report_flags)
    // Whole 32-bit words, one source each (the report's fields share containers). Reserved:
    // the original's HBH and SRH lengths in 8-octet units, from which the collector finds the
    // inner IP header (docs/telemetry-report.md, type 2).
    action report_words_step() {
        @in_hash { hdr.report.seconds = (bit<32>) eg_prsr_md.global_tstamp[47:32]; }
        hdr.report.nanoseconds = eg_prsr_md.global_tstamp[31:0];
        hdr.report.reserved = hdr.report_info.hbh_units ++ hdr.report_info.srh_units;
    }
    STEP(report_words)
    action report_payload_length_step() { hdr.ipv6.payload_len = udp_len; }
    STEP(report_payload_length)
    action report_udp_length_step() { hdr.report_udp.len = udp_len; }
    STEP(report_udp_length)
    action report_sequence_number_step() { hdr.report.sequence = next_report.execute(0); }
    STEP(report_sequence_number)

    // Turn the copy into a report: IPv6/UDP to the collector, the report header, then the
    // IOAM option and the rest of the packet as they came (type 2).
    action build_report(mac_addr_t smac, mac_addr_t dmac, ipv6_addr_t src, ipv6_addr_t dst,
                        bit<16> udp_port) {
        hdr.ethernet.src_addr = smac;
        hdr.ethernet.dst_addr = dmac;
        hdr.ethernet.ether_type = ETHERTYPE_IPV6;
        // Every field of the header (a container is written whole or in one piece).
        hdr.ipv6.version = 6;
        hdr.ipv6.traffic_class = 0;
        hdr.ipv6.flow_label = 0;
        hdr.ipv6.next_hdr = IP_PROTO_UDP;
        hdr.ipv6.hop_limit = ENCAP_HOP_LIMIT;
        hdr.ipv6.src_addr = src;
        hdr.ipv6.dst_addr = dst;
        hdr.report_udp.setValid();
        hdr.report_udp.src_port = udp_port;
        hdr.report_udp.dst_port = udp_port;
        hdr.report.setValid();
        hdr.report.version = 1;
        hdr.report.type = 2;

    }

    table ioam_report {
        key = { hdr.ioam_trace.namespace_id: exact @name("namespace_id"); }
        actions = { build_report; @defaultonly NoAction; }
        const default_action = NoAction();
        size = IOAM_NAMESPACE_TABLE_SIZE;
    }

#endif  // WITH_TRACE_EXPORT

    apply {
        bool is_report = hdr.info.mirrored == 1;
        bit<48> now = eg_prsr_md.global_tstamp;
        bit<32> arrived = hdr.info.ingress_ts;
        bool in_namespace = false;
        if (hdr.ioam_trace.isValid()) {
            in_namespace = ioam_node.apply().hit;
        }
        if (in_namespace) {
            if (hdr.info.fill == 1) {
                // The arrival time in full: the clock's high bits now, one less if the low 32
                // bits wrapped since. A packet spends far less than 2^31 ns in a switch, so
                // they wrapped exactly when bit 31 went from 1 (then) to 0 (now): two bits
                // against constants, which a gateway can test.
                bit<16> high = now[47:32];
                if (arrived[31:31] == 1 && now[31:31] == 0) {
                    high = high - 1;
                }
                hdr.ioam_node.hop.hop_lim = hdr.ipv6.hop_limit;
                @in_hash { hdr.ioam_node.ifs.ingress_if = (bit<16>) hdr.info.ingress_port; }
#ifdef WITH_TRACE_EXPORT
                PortId_t out_port = eg_intr_md.egress_port;
                if (is_report) {
                    out_port = hdr.report_info.egress_port;  // the original's, not the copy's
                }
                @in_hash { hdr.ioam_node.ifs.egress_if = (bit<16>) out_port; }
#else
                @in_hash { hdr.ioam_node.ifs.egress_if = (bit<16>) eg_intr_md.egress_port; }
#endif
                @in_hash { hdr.ioam_node.ts_sec.value = (bit<32>) high; }
                hdr.ioam_node.ts_frac.value = arrived;
                hdr.ioam_node.transit_delay.value = now[31:0] - arrived;
                hdr.ioam_node.queue_depth.value = (bit<32>) eg_intr_md.deq_qdepth;
                hdr.ioam_node.checksum_complement.value = IOAM_NOT_AVAILABLE;
                hdr.ioam_node.buffer_occupancy.value = (bit<32>) eg_intr_md.enq_qdepth;
                // RemainingLen - NodeLen: the free words ingress counted (a move; a subtraction
                // would take the whole container, flag bit included).
                hdr.ioam_trace.remaining_len = (bit<7>) hdr.info.free_words;
            } else if (hdr.info.overflow == 1) {
                hdr.ioam_trace.o = 1;
            }
        }
#ifdef WITH_TRACE_EXPORT
        if (is_report) {
            report_rest.apply();
            report_length.apply();
            bool reported = false;
            if (hdr.ioam_trace.isValid()) {
                reported = ioam_report.apply().hit;
            }
            if (!reported) {
                eg_dprsr_md.drop_ctl = 1;   // no report configured: the copy goes nowhere
                return;
            }
            // The report keeps the IOAM option and what follows it, not the HBH before it.
            hdr.hbh.setInvalid();
            hdr.apn6.setInvalid();
            hdr.apn_id.setInvalid();
            hdr.pad_a[0].setInvalid();
            hdr.pad_a[1].setInvalid();
            hdr.altmark.setInvalid();
            hdr.pad_b[0].setInvalid();
            hdr.pad_b[1].setInvalid();
            report_payload_length.apply();
            report_udp_length.apply();
            report_words.apply();
            report_flags.apply();
            report_sequence_number.apply();
            return;
        }
#endif  // WITH_TRACE_EXPORT
        if (hdr.ipv6.isValid()) {
            if (ecn_marking.apply().hit && eg_intr_md.deq_qdepth >= ecn_threshold) {
                // RFC 3168: ECT(0), ECT(1) become CE; Not-ECT is left alone. hdr.ipv6 is the
                // outermost header (the one this node pushed, if it did).
                if (hdr.ipv6.traffic_class[1:0] != 0) {
                    hdr.ipv6.traffic_class[1:0] = 3;
                }
            }
        }
    }
}

#endif  // ICPN_TNA_IFIT_P4
