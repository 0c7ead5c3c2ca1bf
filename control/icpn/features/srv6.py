"""P4Runtime entities for SRv6 (``p4src/v1model/include/control/srv6.p4``): SR policies at
the headend (segment lists chosen by the deep hash), and local SIDs."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import finsy as fy

from icpn.constants import MAX_ENCAP_SEGMENTS, SEGMENT_LIST_COUNTER_SIZE

SR_POLICY = "sr_policy"
SEGMENT_LIST_LOAD = "segment_list_load"
MY_SID = "my_sid"


def max_segments(*, reduced: bool) -> int:
    """The longest segment list a headend pushes: MAX_ENCAP_SEGMENTS SRH entries, and with
    H.Encaps.Red one more (the first segment is only in the destination address)."""
    return MAX_ENCAP_SEGMENTS + 1 if reduced else MAX_ENCAP_SEGMENTS


def _ipv6(address: str) -> str:
    return str(ipaddress.IPv6Address(address))  # raises ValueError naming the bad address


@dataclass(frozen=True)
class SegmentList:
    """One path of an SR policy, segments in path order (first segment first).

    ``reduced`` selects H.Encaps.Red (first segment only in the DA); ``weight`` is the
    list's share of the policy's flows (WCMP); ``list_id`` indexes the ``segment_list_load``
    counter that measures the list's traffic (0: a shared bucket).
    """

    segments: tuple[str, ...]
    reduced: bool = False
    weight: int = 1
    list_id: int = 0

    def __post_init__(self) -> None:
        most = max_segments(reduced=self.reduced)
        if not 1 <= len(self.segments) <= most:
            kind = "an H.Encaps.Red" if self.reduced else "a"
            raise ValueError(
                f"{kind} segment list has 1 to {most} segments, not {len(self.segments)}"
            )
        if self.weight < 1:
            raise ValueError(f"segment list weight must be >= 1, not {self.weight}")
        if not 0 <= self.list_id < SEGMENT_LIST_COUNTER_SIZE:
            raise ValueError(f"list id must be 0..{SEGMENT_LIST_COUNTER_SIZE - 1}")
        for sid in self.segments:
            _ipv6(sid)

    def action(self, headend: str, *, pinned: bool = False) -> fy.P4TableAction:
        """The encapsulation onto this list: ``sr_policy``'s action, or with ``pinned`` the
        same encapsulation as the ``elephant_override`` table names it (``pin_encaps_*``:
        that table's direct counter needs actions of its own on Tofino)."""
        n = len(self.segments)
        name = f"h_encaps_red_{n}" if self.reduced else f"h_encaps_{n}"
        if pinned:
            name = f"pin_{name[2:]}"
        params = {f"s{i + 1}": _ipv6(sid) for i, sid in enumerate(self.segments)}
        return fy.P4TableAction(name, list_id=self.list_id, src=_ipv6(headend), **params)


def sr_policy(policy_id: int, headend: str, lists: Sequence[SegmentList]) -> fy.P4TableEntry:
    """An SR policy: its segment lists as a one-shot weighted group of the deep-hash
    selector (APN ID, DestQP)."""
    if not 1 <= policy_id < (1 << 16):
        raise ValueError(f"SR policy id must be 1..65535 (0 means none), not {policy_id}")
    if not lists:
        raise ValueError(f"SR policy {policy_id} has no segment list")
    return fy.P4TableEntry(
        SR_POLICY,
        match=fy.P4TableMatch(sr_policy_id=policy_id),
        action=fy.P4IndirectAction([(sl.weight, sl.action(headend)) for sl in lists]),
    )


def end(sid: str, prefix_len: int = 128) -> fy.P4TableEntry:
    """End: next segment (RFC 8986 4.1)."""
    return _local_sid(sid, prefix_len, fy.P4TableAction("end"))


def end_x(
    sid: str, port: int, router_mac: str, neighbor_mac: str, prefix_len: int = 128
) -> fy.P4TableEntry:
    """End.X: next segment, out of a given adjacency (RFC 8986 4.2)."""
    action = fy.P4TableAction("end_x", port=port, smac=router_mac, dmac=neighbor_mac)
    return _local_sid(sid, prefix_len, action)


def end_dt6(sid: str, prefix_len: int = 128) -> fy.P4TableEntry:
    """End.DT6: decapsulate, look the inner IPv6 packet up (RFC 8986 4.6)."""
    return _local_sid(sid, prefix_len, fy.P4TableAction("end_dt6"))


def end_dt4(sid: str, prefix_len: int = 128) -> fy.P4TableEntry:
    """End.DT4: decapsulate, look the inner IPv4 packet up (RFC 8986 4.8)."""
    return _local_sid(sid, prefix_len, fy.P4TableAction("end_dt4"))


def _local_sid(sid: str, prefix_len: int, action: fy.P4TableAction) -> fy.P4TableEntry:
    network = ipaddress.IPv6Network(f"{sid}/{prefix_len}", strict=False)
    return fy.P4TableEntry(MY_SID, match=fy.P4TableMatch(ipv6_dst=str(network)), action=action)
