"""icpn on Tofino: the TNA program's profiles, its compilation with bf-p4c, what the compiler
says about resources, and its P4Info as the controller's entity builders see it.

There is no Tofino simulator or switch here: everything in this package works from the
compiler's own output (bfrt.json, context.json, P4Info, resource logs), never from packets.
"""
