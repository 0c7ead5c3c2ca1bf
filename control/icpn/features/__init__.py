"""The entity builders, one module per P4 feature, named as the P4 files under
``p4src/<target>/include/control/`` are: what the controller renders the intent into,
for every target (the TNA shaping is in :mod:`icpn.targets.tofino.p4info`)."""
