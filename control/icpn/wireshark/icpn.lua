-- icpn dissector for Wireshark/tshark 4.0+: the IPv6 options that Wireshark 4.0 does not
-- decode — APN6 (draft-li-apn-header) and alternate marking (RFC 9343).
--
-- Wireshark 4.0 has no dissector table for IPv6 options, so this is a postdissector: it
-- finds the options the IPv6 dissector already delimited (field ipv6.opt.type) and decodes
-- those whose type matches, adding an "icpn" tree with filterable fields (icpn.apn6.*,
-- icpn.altmark.*). Codepoints and the APN ID template are preferences, defaulting to
-- control/icpn/constants.py. Load with: tshark -X lua_script:icpn.lua ...
--
-- Written for the icpn project; field layouts from DESIGN.md section 2.

local icpn = Proto("icpn", "icpn: APN6 and alternate marking")

-- The default follows ICPN_APN6_OPT_TYPE, the variable that sets it for icpn's P4 and Python.
local apn6_default = tonumber(os.getenv("ICPN_APN6_OPT_TYPE") or "") or 0x13
icpn.prefs.apn6_type = Pref.uint("APN6 option type", apn6_default, "APN6 has no IANA codepoint")
icpn.prefs.altmark_type = Pref.uint("Alternate-marking option type", 0x12, "RFC 9343")
icpn.prefs.app_bits = Pref.uint("APP-Group bits", 16, "High bits of the APN ID")
icpn.prefs.user_bits = Pref.uint("USER-Group bits", 16, "Bits after the APP-Group ID")

local id_types = { [1] = "32-bit APN ID", [2] = "64-bit APN ID", [3] = "128-bit APN ID" }
local id_bytes = { [1] = 4, [2] = 8, [3] = 16 }

local f = {
    apn6 = ProtoField.none("icpn.apn6", "APN6"),
    id_type = ProtoField.uint8("icpn.apn6.id_type", "APN-ID-Type", base.DEC, id_types),
    flags = ProtoField.uint8("icpn.apn6.flags", "Flags", base.HEX),
    para_type = ProtoField.uint16("icpn.apn6.para_type", "APN-Para-Type", base.HEX),
    apn_id = ProtoField.bytes("icpn.apn6.apn_id", "APN ID"),
    app_group = ProtoField.uint64("icpn.apn6.app_group", "APP-Group ID", base.DEC),
    user_group = ProtoField.uint64("icpn.apn6.user_group", "USER-Group ID", base.DEC),
    params = ProtoField.bytes("icpn.apn6.params", "APN parameters"),
    altmark = ProtoField.none("icpn.altmark", "Alternate Marking"),
    flow_mon_id = ProtoField.uint32("icpn.altmark.flow_mon_id", "FlowMonID", base.DEC, nil,
                                    0xFFFFF000),
    loss = ProtoField.uint32("icpn.altmark.l", "L (loss colour)", base.DEC, nil, 0x00000800),
    delay = ProtoField.uint32("icpn.altmark.d", "D (delay sample)", base.DEC, nil, 0x00000400),
    reserved = ProtoField.uint32("icpn.altmark.reserved", "Reserved", base.HEX, nil, 0x000003FF),
}
icpn.fields = f

local e_bad_len = ProtoExpert.new("icpn.bad_length", "Option length does not match its format",
                                  expert.group.MALFORMED, expert.severity.ERROR)
icpn.experts = { e_bad_len }

local opt_type = Field.new("ipv6.opt.type")

-- APP/USER group of an APN ID whose leading bytes are in range r (up to 8 bytes used).
local function groups(r, width_bytes)
    local app_bits, user_bits = icpn.prefs.app_bits, icpn.prefs.user_bits
    local bits = width_bytes * 8
    if app_bits + user_bits > bits or app_bits + user_bits > 64 or app_bits == 0 then
        return nil
    end
    local lead = math.min(width_bytes, 8)
    local v = r:range(0, lead):uint64()
    local shift_total = lead * 8 - app_bits - user_bits
    local app = v:rshift(lead * 8 - app_bits)
    local user = v:rshift(shift_total):band(UInt64(1):lshift(user_bits) - 1)
    return app, user
end

local function dissect_apn6(tvb, off, len, tree)
    local sub = tree:add(f.apn6, tvb(off, len + 2))
    if len < 8 then
        sub:add_proto_expert_info(e_bad_len, "APN6 data shorter than 8 octets")
        return
    end
    local id_type = tvb(off + 2, 1):uint()
    sub:add(f.id_type, tvb(off + 2, 1))
    sub:add(f.flags, tvb(off + 3, 1))
    sub:add(f.para_type, tvb(off + 4, 2))
    local width = id_bytes[id_type]
    if width == nil or 4 + width > len then
        sub:add_proto_expert_info(e_bad_len, "APN ID type and option length disagree")
        return
    end
    local id_range = tvb(off + 6, width)
    local id_item = sub:add(f.apn_id, id_range)
    local app, user = groups(id_range, width)
    if app ~= nil then
        id_item:add(f.app_group, id_range, app)
        id_item:add(f.user_group, id_range, user)
    end
    if len > 4 + width then
        sub:add(f.params, tvb(off + 6 + width, len - 4 - width))
    end
end

local function dissect_altmark(tvb, off, len, tree)
    local sub = tree:add(f.altmark, tvb(off, len + 2))
    if len ~= 4 then
        sub:add_proto_expert_info(e_bad_len, "alternate-marking data must be 4 octets")
        return
    end
    local data = tvb(off + 2, 4)
    sub:add(f.flow_mon_id, data)
    sub:add(f.loss, data)
    sub:add(f.delay, data)
    sub:add(f.reserved, data)
end

function icpn.dissector(tvb, pinfo, tree)
    local found = nil
    for _, fi in ipairs({ opt_type() }) do
        local t, off = fi.value, fi.offset
        if (t == icpn.prefs.apn6_type or t == icpn.prefs.altmark_type)
            and off + 2 <= tvb:len() then
            local len = tvb(off + 1, 1):uint()
            if off + 2 + len <= tvb:len() then
                found = found or tree:add(icpn, tvb(off, len + 2))
                if t == icpn.prefs.apn6_type then
                    dissect_apn6(tvb, off, len, found)
                else
                    dissect_altmark(tvb, off, len, found)
                end
            end
        end
    end
end

register_postdissector(icpn)

-- ---------------------------------------------------------------------------------------
-- icpn trace report (docs/telemetry-report.md), on UDP port 50505 by default.

local report = Proto("icpn_report", "icpn trace report")
report.prefs.udp_port = Pref.uint("UDP port", 50505, "Port the collector receives reports on")

local report_types = { [1] = "IOAM trace at decapsulation" }
local ioam_types = { [0] = "Pre-allocated trace", [1] = "Incremental trace" }

local r = {
    version = ProtoField.uint8("icpn.report.version", "Version", base.DEC, nil, 0xF0),
    type = ProtoField.uint8("icpn.report.type", "Type", base.DEC, report_types, 0x0F),
    flags = ProtoField.uint8("icpn.report.flags", "Flags", base.HEX),
    overflow = ProtoField.bool("icpn.report.flags.overflow", "Trace overflowed", 8, nil, 0x80),
    altmark = ProtoField.bool("icpn.report.flags.altmark", "Alternate marking", 8, nil, 0x40),
    colour = ProtoField.uint8("icpn.report.flags.colour", "Colour (L)", base.DEC, nil, 0x20),
    reserved = ProtoField.uint16("icpn.report.reserved", "Reserved", base.HEX),
    node_id = ProtoField.uint32("icpn.report.node_id", "Exporting node ID", base.DEC),
    seconds = ProtoField.uint32("icpn.report.seconds", "Seconds", base.DEC),
    nanoseconds = ProtoField.uint32("icpn.report.nanoseconds", "Nanoseconds", base.DEC),
    sequence = ProtoField.uint32("icpn.report.sequence", "Sequence", base.DEC),
    opt_type = ProtoField.uint8("icpn.report.ioam.opt_type", "Option type", base.HEX),
    opt_len = ProtoField.uint8("icpn.report.ioam.opt_len", "Option length", base.DEC),
    ioam_type = ProtoField.uint8("icpn.report.ioam.type", "IOAM-Opt-Type", base.DEC, ioam_types),
    ns = ProtoField.uint16("icpn.report.trace.ns", "Namespace ID", base.DEC),
    nodelen = ProtoField.uint16("icpn.report.trace.nodelen", "NodeLen", base.DEC, nil, 0xF800),
    flag_o = ProtoField.bool("icpn.report.trace.flag.o", "Overflow", 16, nil, 0x0400),
    flag_l = ProtoField.bool("icpn.report.trace.flag.l", "Loopback", 16, nil, 0x0200),
    flag_a = ProtoField.bool("icpn.report.trace.flag.a", "Active", 16, nil, 0x0100),
    remlen = ProtoField.uint16("icpn.report.trace.remlen", "RemainingLen", base.DEC, nil, 0x007F),
    trace_type = ProtoField.uint24("icpn.report.trace.type", "Trace-Type", base.HEX),
    free = ProtoField.bytes("icpn.report.trace.free", "Free space"),
    node = ProtoField.none("icpn.report.node", "Node"),
    hop_lim = ProtoField.uint8("icpn.report.node.hop_lim", "Hop_Lim", base.DEC),
    id = ProtoField.uint24("icpn.report.node.id", "Node ID", base.DEC),
    ingress_if = ProtoField.uint32("icpn.report.node.ingress_if", "Ingress interface", base.DEC),
    egress_if = ProtoField.uint32("icpn.report.node.egress_if", "Egress interface", base.DEC),
    ts_sec = ProtoField.uint32("icpn.report.node.ts_sec", "Timestamp seconds", base.DEC),
    ts_frac = ProtoField.uint32("icpn.report.node.ts_frac", "Timestamp fraction", base.DEC),
    delay = ProtoField.uint32("icpn.report.node.transit_delay", "Transit delay (ns)", base.DEC),
    ns_data = ProtoField.uint32("icpn.report.node.ns_data", "Namespace data", base.HEX),
    qdepth = ProtoField.uint32("icpn.report.node.queue_depth", "Queue depth", base.DEC),
    csum = ProtoField.uint32("icpn.report.node.checksum_complement", "Checksum complement",
                             base.HEX),
    id_wide = ProtoField.uint64("icpn.report.node.id_wide", "Node ID (wide)", base.DEC),
    ns_data_wide = ProtoField.uint64("icpn.report.node.ns_data_wide", "Namespace data (wide)",
                                     base.HEX),
    buffer = ProtoField.uint32("icpn.report.node.buffer_occupancy", "Buffer occupancy", base.DEC),
    inner_src = ProtoField.ipv6("icpn.report.inner.src", "Inner source"),
    inner_dst = ProtoField.ipv6("icpn.report.inner.dst", "Inner destination"),
    inner_src4 = ProtoField.ipv4("icpn.report.inner.src4", "Inner source"),
    inner_dst4 = ProtoField.ipv4("icpn.report.inner.dst4", "Inner destination"),
    inner_proto = ProtoField.uint8("icpn.report.inner.protocol", "Inner protocol", base.DEC),
    inner_sport = ProtoField.uint16("icpn.report.inner.src_port", "Inner source port", base.DEC),
    inner_dport = ProtoField.uint16("icpn.report.inner.dst_port", "Inner destination port",
                                    base.DEC),
}
report.fields = r

local e_short = ProtoExpert.new("icpn.report.short", "Report shorter than its fields",
                                expert.group.MALFORMED, expert.severity.ERROR)
report.experts = { e_short }

-- Node data per Trace-Type bit (RFC 9197 4.4.1): mask, octets, how to add it.
local node_fields = {
    { 0x800000, 4, function(t, d) t:add(r.hop_lim, d(0, 1)); t:add(r.id, d(1, 3)) end },
    { 0x400000, 4, function(t, d) t:add(r.ingress_if, d(0, 2)); t:add(r.egress_if, d(2, 2)) end },
    { 0x200000, 4, function(t, d) t:add(r.ts_sec, d(0, 4)) end },
    { 0x100000, 4, function(t, d) t:add(r.ts_frac, d(0, 4)) end },
    { 0x080000, 4, function(t, d) t:add(r.delay, d(0, 4)) end },
    { 0x040000, 4, function(t, d) t:add(r.ns_data, d(0, 4)) end },
    { 0x020000, 4, function(t, d) t:add(r.qdepth, d(0, 4)) end },
    { 0x010000, 4, function(t, d) t:add(r.csum, d(0, 4)) end },
    { 0x008000, 8, function(t, d) t:add(r.hop_lim, d(0, 1)); t:add(r.id_wide, d(1, 7)) end },
    { 0x004000, 8, function(t, d) t:add(r.ingress_if, d(0, 4)); t:add(r.egress_if, d(4, 4)) end },
    { 0x002000, 8, function(t, d) t:add(r.ns_data_wide, d(0, 8)) end },
    { 0x001000, 4, function(t, d) t:add(r.buffer, d(0, 4)) end },
}

local function dissect_node(tvb, off, trace_type, tree, index)
    local sub = tree:add(r.node, tvb(off, 0)):set_text("Node " .. index)
    local pos = off
    for _, spec in ipairs(node_fields) do
        local mask, size, add = spec[1], spec[2], spec[3]
        if bit.band(trace_type, mask) ~= 0 then
            local base_off = pos
            add(sub, function(o, n) return tvb(base_off + o, n) end)
            pos = pos + size
        end
    end
    sub:set_len(pos - off)
end

local function dissect_trace(tvb, off, len, tree)
    if len < 10 then
        tree:add_proto_expert_info(e_short, "IOAM option shorter than a trace header")
        return
    end
    tree:add(r.ioam_type, tvb(off + 3, 1))
    local t = off + 4
    tree:add(r.ns, tvb(t, 2))
    local word = tvb(t + 2, 2)
    tree:add(r.nodelen, word)
    tree:add(r.flag_o, word)
    tree:add(r.flag_l, word)
    tree:add(r.flag_a, word)
    tree:add(r.remlen, word)
    tree:add(r.trace_type, tvb(t + 4, 3))
    local nodelen = bit.rshift(word:uint(), 11) * 4
    local remlen = bit.band(word:uint(), 0x7F) * 4
    local trace_type = tvb(t + 4, 3):uint()
    local data, data_len = t + 8, len - 10
    if remlen > data_len then
        tree:add_proto_expert_info(e_short, "RemainingLen beyond the trace data")
        return
    end
    if remlen > 0 then tree:add(r.free, tvb(data, remlen)) end
    if nodelen == 0 then return end
    local filled = data_len - remlen
    local count = math.floor(filled / nodelen)
    for i = 1, count do
        -- the list holds the last hop first; number nodes in path order
        dissect_node(tvb, data + remlen + (i - 1) * nodelen, trace_type, tree, count - i + 1)
    end
end

function report.dissector(tvb, pinfo, tree)
    if tvb:len() < 22 then return 0 end
    pinfo.cols.protocol = "icpn report"
    local sub = tree:add(report, tvb())
    sub:add(r.version, tvb(0, 1))
    sub:add(r.type, tvb(0, 1))
    local flags = sub:add(r.flags, tvb(1, 1))
    flags:add(r.overflow, tvb(1, 1))
    flags:add(r.altmark, tvb(1, 1))
    flags:add(r.colour, tvb(1, 1))
    sub:add(r.reserved, tvb(2, 2))
    sub:add(r.node_id, tvb(4, 4))
    sub:add(r.seconds, tvb(8, 4))
    sub:add(r.nanoseconds, tvb(12, 4))
    sub:add(r.sequence, tvb(16, 4))
    local opt_len = tvb(21, 1):uint()
    if 22 + opt_len > tvb:len() then
        sub:add_proto_expert_info(e_short, "IOAM option runs past the report")
        return tvb:len()
    end
    local opt = sub:add(tvb(20, opt_len + 2), "IOAM option")
    opt:add(r.opt_type, tvb(20, 1))
    opt:add(r.opt_len, tvb(21, 1))
    dissect_trace(tvb, 20, opt_len + 2, opt)
    local inner = 22 + opt_len
    local rest = tvb:len() - inner
    pinfo.cols.info = string.format("icpn trace report: node %d, sequence %d",
                                    tvb(4, 4):uint(), tvb(16, 4):uint())
    if rest >= 40 and bit.rshift(tvb(inner, 1):uint(), 4) == 6 then
        sub:add(r.inner_proto, tvb(inner + 6, 1))
        sub:add(r.inner_src, tvb(inner + 8, 16))
        sub:add(r.inner_dst, tvb(inner + 24, 16))
        inner = inner + 40
    elseif rest >= 20 and bit.rshift(tvb(inner, 1):uint(), 4) == 4 then
        sub:add(r.inner_proto, tvb(inner + 9, 1))
        sub:add(r.inner_src4, tvb(inner + 12, 4))
        sub:add(r.inner_dst4, tvb(inner + 16, 4))
        inner = inner + 20
    end
    if tvb:len() - inner >= 4 then
        sub:add(r.inner_sport, tvb(inner, 2))
        sub:add(r.inner_dport, tvb(inner + 2, 2))
    end
    return tvb:len()
end

DissectorTable.get("udp.port"):add(report.prefs.udp_port, report)
