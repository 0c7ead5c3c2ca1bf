"""BMv2 (v1model): compile with p4c (:mod:`.build`), run ``simple_switch_grpc`` with
veth ports (:mod:`.switch`)."""
