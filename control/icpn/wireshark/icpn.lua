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

icpn.prefs.apn6_type = Pref.uint("APN6 option type", 0x13, "APN6 has no IANA codepoint")
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
