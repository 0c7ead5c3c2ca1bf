"""P4Runtime entities for elephant-flow detection and pinning (``p4src/v1model/include/
control/sketch.p4`` and the override table of ``srv6.p4``), and the elephant digest decoded.

A sketch profile says how flows are counted; APN policies name one. The switch reports a
flow once per window when its estimate reaches the threshold (digest ``elephant_digest_t``);
the controller may then pin it to a segment list with an override entry.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import finsy as fy

from icpn.constants import FlowKeyType
from icpn.features.srv6 import SegmentList

SKETCH_PROFILE = "sketch_profile"
ELEPHANT_OVERRIDE = "elephant_override"
ELEPHANT_DIGEST = "elephant_digest_t"


@dataclass(frozen=True)
class SketchProfile:
    """Count flows by ``key`` in packets (or bytes), in windows of 2^``window_log2_us``
    microseconds (+ ``epoch``, raised by the controller to start a fresh window at once);
    report a flow whose estimate reaches ``threshold``."""

    key: FlowKeyType
    threshold: int
    window_log2_us: int
    count_bytes: bool = False
    epoch: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.threshold < (1 << 32):
            raise ValueError(f"threshold must be 1..2^32-1, not {self.threshold}")
        if not 0 <= self.window_log2_us < 48:
            raise ValueError(f"window_log2_us must be 0..47, not {self.window_log2_us}")
        if not 0 <= self.epoch < (1 << 32):
            raise ValueError(f"epoch must fit 32 bits, not {self.epoch}")


def sketch_profile(profile: int, settings: SketchProfile) -> fy.P4TableEntry:
    if not 1 <= profile < 256:
        raise ValueError(f"sketch profile must be 1..255 (0 means none), not {profile}")
    return fy.P4TableEntry(
        SKETCH_PROFILE,
        match=fy.P4TableMatch(profile=profile),
        action=fy.P4TableAction(
            "set_sketch",
            flow_key=int(settings.key),
            bytes=int(settings.count_bytes),
            window_log2=settings.window_log2_us,
            window_epoch=settings.epoch,
            elephant_threshold=settings.threshold,
        ),
    )


@dataclass(frozen=True)
class FlowKey:
    """A flow as the sketch keys it; the fields its key type does not use are 0."""

    src: str
    dst: str
    proto: int = 0
    sport: int = 0
    dport: int = 0
    dest_qp: int = 0

    def match(self, sr_policy_id: int) -> fy.P4TableMatch:
        return fy.P4TableMatch(
            sr_policy_id=sr_policy_id,
            src=self.src,
            dst=self.dst,
            proto=self.proto,
            sport=self.sport,
            dport=self.dport,
            dest_qp=self.dest_qp,
        )


@dataclass(frozen=True)
class ElephantReport:
    """One elephant digest: a flow whose estimate reached the threshold in a window."""

    flow: FlowKey
    key_type: FlowKeyType
    apn_id: int | None  # None from Tofino: its digest has no room for it (docs/tofino.md)
    sr_policy_id: int
    estimate: int
    window: int | None  # None from Tofino, likewise
    ingress_port: int = 0  # the switch port the flow entered by (v1model; TNA: 0)

    @classmethod
    def decode(cls, data: dict[str, Any]) -> ElephantReport:
        """From a finsy-decoded digest struct (field name → value): v1model's, or TNA's,
        which carries no APN ID and no window."""
        flow = FlowKey(
            src=str(ipaddress.IPv6Address(data["src"])),
            dst=str(ipaddress.IPv6Address(data["dst"])),
            proto=data["proto"],
            sport=data["sport"],
            dport=data["dport"],
            dest_qp=data["dest_qp"],
        )
        return cls(
            flow,
            FlowKeyType(data["key_type"]),
            data.get("apn_id"),
            data["sr_policy_id"],
            data["estimate"],
            data.get("window"),
            data.get("ingress_port", 0),
        )


def elephant_override(
    sr_policy_id: int, flow: FlowKey, headend: str, segment_list: SegmentList
) -> fy.P4TableEntry:
    """Pin ``flow`` of SR policy ``sr_policy_id`` to ``segment_list``."""
    return fy.P4TableEntry(
        ELEPHANT_OVERRIDE,
        match=flow.match(sr_policy_id),
        action=segment_list.action(headend, pinned=True),
    )
