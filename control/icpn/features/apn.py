"""P4Runtime entities for APN6 at the edge (``p4src/v1model/include/control/apn.p4``): port
roles, the network-side classifier, and APN policies matched by value/mask."""

from __future__ import annotations

from typing import Any

import finsy as fy

from icpn.constants import PortRole

PORT_ROLE = "port_role"
APN_CLASSIFIER = "apn_classifier"
APN_POLICY = "apn_policy"

#: Classifier fields a rule may constrain, with their P4 match-field names.
CLASSIFIER_FIELDS = (
    "ipv6_src",
    "ipv6_dst",
    "ip_next_hdr",
    "l4_src_port",
    "l4_dst_port",
    "traffic_class",
    "dest_qp",
)


def port_role(port: int, role: PortRole) -> fy.P4TableEntry:
    return fy.P4TableEntry(
        PORT_ROLE,
        match=fy.P4TableMatch(port=port),
        action=fy.P4TableAction("set_port_role", role=int(role)),
    )


def classifier_rule(apn_id: int, priority: int, **match: Any) -> fy.P4TableEntry:
    """Packets matching ``match`` (ternary values: ``x`` or ``"value/&mask"``, prefixes
    for addresses) get ``apn_id`` (32-bit, network-side marking)."""
    unknown = set(match) - set(CLASSIFIER_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown classifier field(s) {sorted(unknown)}; known: {', '.join(CLASSIFIER_FIELDS)}"
        )
    if not 0 <= apn_id < (1 << 32):
        raise ValueError(f"network-side APN IDs are 32-bit, {apn_id:#x} is not")
    return fy.P4TableEntry(
        APN_CLASSIFIER,
        match=fy.P4TableMatch(match),
        action=fy.P4TableAction("set_apn_id", apn_id=apn_id),
        priority=priority,
    )


def apn_policy(
    value: int,
    mask: int,
    *,
    dscp: int,
    sr_policy_id: int,
    priority: int,
    telemetry_profile: int = 0,
    sketch_profile: int = 0,
    apn_in_doh: bool = False,
) -> fy.P4TableEntry:
    """APN IDs with ``id & mask == value`` get ``dscp``, SR policy ``sr_policy_id`` (0:
    routed without SRv6) and telemetry profile ``telemetry_profile`` (0: none; see
    :func:`icpn.features.ifit.telemetry_profile`) and sketch profile ``sketch_profile`` (0: no
    elephant detection; :func:`icpn.features.sketch.sketch_profile`). ``apn_in_doh``: a headend
    writes the APN6 option in a Destination Options header instead of the Hop-by-Hop header
    (draft-li-6man-apn-ipv6-encap; no IFIT options then; v1model only, dropped for Tofino).
    ``ApnIdTemplate.match`` computes (value, mask)."""
    if not 0 <= dscp < 64:
        raise ValueError(f"DSCP is 6 bits, {dscp} is not")
    return fy.P4TableEntry(
        APN_POLICY,
        match=fy.P4TableMatch(apn_id=f"{value:#x}/&{mask:#x}"),
        action=fy.P4TableAction(
            "set_policy",
            dscp=dscp,
            sr_policy_id=sr_policy_id,
            telemetry_profile=telemetry_profile,
            sketch_profile=sketch_profile,
            apn_in_doh=int(apn_in_doh),
        ),
        priority=priority,
    )
