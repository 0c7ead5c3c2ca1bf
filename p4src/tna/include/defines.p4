// Target selection and the TNA program's own constants. Everything both targets share comes
// from shared/constants.p4, generated from icpn.constants.
#ifndef ICPN_TNA_DEFINES_P4
#define ICPN_TNA_DEFINES_P4

#include <core.p4>
#if __TARGET_TOFINO__ == 2
#include <t2na.p4>
#define TNA_CPU_PORT TOFINO2_CPU_PORT
#else
#include <tna.p4>
#define TNA_CPU_PORT TOFINO1_CPU_PORT
#endif

#include "../../shared/constants.p4"

// What my_sid chose for a packet (the v1model program reads the action run instead; on
// Tofino the checks after the lookup are cheaper on one small field).
const bit<8> TNA_END_NONE = 0;
const bit<8> TNA_END = 1;
const bit<8> TNA_END_X = 2;
const bit<8> TNA_END_DT6 = 3;
const bit<8> TNA_END_DT4 = 4;

// What the ACL decided (control/acl.p4), applied by the verdict (icpn.p4).
const bit<8> TNA_ACL_NONE = 0;
const bit<8> TNA_ACL_PUNT = 1;
const bit<8> TNA_ACL_DENY = 2;

// trace_mark_t's type (headers.p4).
const bit<8> TNA_TRACE_MARK = 0xff;

// One step of a computation: a keyless table whose only action is name_step. A Tofino action
// does one operation per field in one stage, so a chain (a = b & c; a = a + d) is spelled as
// steps applied in order, each in its own stage.
#define STEP(name) \
    table name { actions = { name##_step; } const default_action = name##_step(); size = 1; }

#endif  // ICPN_TNA_DEFINES_P4
