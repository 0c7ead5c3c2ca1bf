"""Per-target toolchains and access, side by side: :mod:`.bmv2` (p4c build, the
``simple_switch_grpc`` harness) and :mod:`.tofino` (bf-p4c profiles, build, resources,
the TNA P4Info); :mod:`.toolchain` finds the tools, :mod:`.veth` and :mod:`.netns` make
the links and namespaces BMv2 switches and test hosts use."""
