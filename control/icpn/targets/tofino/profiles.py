"""The TNA program's profiles: which features one compile carries, as ``-D`` flags.

A Tofino pipeline has a fixed number of stages and PHV containers, so, as fabric-tna does,
icpn compiles its TNA program in profiles: the default carries everything the seed scenarios
use; the others trade a feature for room. ``fits`` is what the profile is built for in
``icpn build`` (and tested): the targets on which bf-p4c places it (on Tofino 2, placed but
not assembled while bf-p4c has its parser defect: docs/tofino.md). ``icpn bench`` measures
every profile on every target, including those it does not fit, and says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

#: bf-p4c's back ends and their architectures, with the ingress stages each has.
TARGETS: dict[str, str] = {"tofino": "tna", "tofino2": "t2na"}
STAGES: dict[str, int] = {"tofino": 12, "tofino2": 20}

PROGRAM = "icpn"


@dataclass(frozen=True)
class Profile:
    """One compile of ``p4src/tna/icpn.p4``."""

    name: str
    defines: tuple[str, ...]
    features: str
    #: Targets ``icpn build`` compiles it for: those bf-p4c places it on.
    fits: frozenset[str]
    #: Tables of the full program that this profile leaves out (so entities for them have no
    #: home in its P4Info).
    without_tables: frozenset[str] = frozenset()

    @property
    def flags(self) -> list[str]:
        return [f"-D{d}" for d in self.defines]


_COMMON = "APN6 parse/mark, SRv6 (H.Encaps[.Red], End, End.X, End.DT4/6), APN deep hash, "
_IFIT = "alternate marking, IOAM trace fill, ECN"
_SKETCH_TABLES = frozenset({"sketch_profile", "elephant_override"})
#: Trace export at decap (mirroring to the collector), -DWITH_TRACE_EXPORT: in no profile yet
#: (docs/tofino.md).
_EXPORT_TABLES = frozenset({"ioam_export", "ioam_report"})
#: Differentiated bearing (qos.p4), -DWITH_QOS: traffic classes, tenant meters, ECN per queue.
_QOS_TABLES = frozenset({"qos_class", "qos_tenant", "queue_ecn"})
#: Routers that answer (v1model icmp.p4: router addresses, MTU check, metered punts): in no
#: TNA profile, whose ingress has no stage left (docs/tofino.md); Tofino punts by ACL only.
_ICMP_TABLES = frozenset({"my_address", "port_mtu", "punt_policy"})

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "icpn",
            (),
            _COMMON + _IFIT + ", count-min sketch + elephant digests + override",
            fits=frozenset({"tofino", "tofino2"}),
            without_tables=_EXPORT_TABLES | _QOS_TABLES | _ICMP_TABLES,
        ),
        Profile(
            "icpn-nosketch",
            ("WITHOUT_SKETCH",),
            _COMMON + _IFIT + " (no sketch: elephants are not detected in the data plane)",
            fits=frozenset({"tofino", "tofino2"}),
            without_tables=_SKETCH_TABLES | _EXPORT_TABLES | _QOS_TABLES | _ICMP_TABLES,
        ),
        Profile(
            "icpn-qos",
            ("WITH_QOS", "WITHOUT_SKETCH"),
            _COMMON + _IFIT + ", differentiated bearing (APN traffic classes to queues, tenant "
            "trTCM meters, ECN per queue); no sketch: with 4 pushed segments the sketch and QoS "
            "together overflow sr_policy's action data bus on Tofino 1",
            fits=frozenset({"tofino"}),
            without_tables=_SKETCH_TABLES | _EXPORT_TABLES | _ICMP_TABLES,
        ),
    )
}
DEFAULT_PROFILE = "icpn"
