"""The placement policies a study compares, and the per-flow hashes they use.

* ``ecmp_5tuple``: the routing selector's ECMP over the bundle, crc16 of (SA, DA, flow
  label, next header, L4 ports) modulo the number of paths (``routing.p4``; the flow label
  of RoCE and TCP packets from the hosts is 0 here).
* ``apn_deep_hash``: the headend's SR policy selector, crc32 of (APN ID (128 bits), DestQP
  (24 bits)) modulo the number of segment lists (``srv6.p4`` table ``sr_policy``). Traffic
  without a DestQP (TCP) has DestQP 0, so all of one APN's TCP flows share one list.
* ``deep_hash_elephants``: the deep hash, plus the elephant sketch (count-min with
  conservative update, :mod:`icpn.model.sketch`) reporting flows keyed by (SA, DA, DestQP)
  and a model of :class:`icpn.elephant.ElephantManager` pinning each reported flow to the
  least-loaded list (``elephant_override``).

The hashes are :mod:`icpn.hashing`'s, vectorised over flows (``tests/test_study_policies``
checks them against :func:`icpn.hashing.ecmp_member` and :func:`icpn.hashing.sr_list_member`
flow by flow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from icpn import hashing

POLICIES: tuple[str, ...] = ("ecmp_5tuple", "apn_deep_hash", "deep_hash_elephants")

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


def be_column(values: npt.ArrayLike, width: int) -> tuple[U8, int]:
    """Integers (up to 64 bits) as a big-endian octet column for :func:`hashing.pack_columns`."""
    size = (width + 7) // 8
    octets = np.asarray(values, dtype=">u8").reshape(-1, 1).view(np.uint8)
    return np.ascontiguousarray(octets[:, 8 - size :]), width


def address_column(addresses: U8) -> tuple[U8, int]:
    """(n, 16) uint8 IPv6 addresses as a 128-bit column."""
    return np.ascontiguousarray(addresses, dtype=np.uint8), 128


@dataclass(frozen=True)
class FlowColumns:
    """Flows as columns: addresses (n, 16) and the other header fields, one row a flow."""

    src: U8
    dst: U8
    proto: npt.NDArray[np.uint8]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    dest_qp: npt.NDArray[np.uint32]
    apn_id: npt.NDArray[np.uint32]
    #: The IPv6 flow label (0 for all when None: what the study's hosts send).
    flow_label: npt.NDArray[np.uint32] | None = None

    def __len__(self) -> int:
        return int(self.src.shape[0])


def ecmp_5tuple_members(flows: FlowColumns, paths: int) -> I64:
    """Each flow's ECMP member: crc16(SA, DA, flow label, next header, sport, dport)."""
    if len(flows) == 0:
        return np.zeros(0, dtype=np.int64)
    packed = hashing.pack_columns(
        [
            address_column(flows.src),
            address_column(flows.dst),
            be_column(
                np.zeros(len(flows), dtype=np.uint64)
                if flows.flow_label is None
                else flows.flow_label,
                20,
            ),
            be_column(flows.proto, 8),
            be_column(flows.sport, 16),
            be_column(flows.dport, 16),
        ]
    )
    return (hashing.crc16_many(packed) % np.uint32(paths)).astype(np.int64)


def deep_hash_members(flows: FlowColumns, paths: int) -> I64:
    """Each flow's segment list by the deep hash: crc32(APN ID (128), DestQP (24))."""
    if len(flows) == 0:
        return np.zeros(0, dtype=np.int64)
    packed = hashing.pack_columns(
        [
            be_column(np.zeros(len(flows), dtype=np.uint64), 64),  # APN ID's upper 64 bits
            be_column(flows.apn_id, 64),
            be_column(flows.dest_qp, 24),
        ]
    )
    return (hashing.crc32_many(packed) % np.uint32(paths)).astype(np.int64)
