"""A one-switch lab for the elephant control loop on BMv2, shared by the end-to-end test
and ``make bench``: BMv2 as headend (port 1 edge, segment list A out of port 2, list B out
of port 3), the elephant manager on the same event loop, raw sockets for traffic.

The loop measured: the packet that makes a flow's estimate reach the threshold leaves the
sender → BMv2 digests it → the manager pins the flow to the least-loaded list → the flow's
next packets leave by that list. Latency = first packet seen on the new list's port minus
the crossing packet's send time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from scapy.layers.l2 import Ether

from icpn.constants import FlowKeyType, PortRole
from icpn.elephant import ElephantManager, ManagerSettings, PolicyPaths
from icpn.features.apn import apn_policy, classifier_rule, port_role
from icpn.features.routing import NextHop, my_station, route
from icpn.features.sketch import ELEPHANT_DIGEST, SketchProfile, sketch_profile
from icpn.features.srv6 import SegmentList, sr_policy
from icpn.hashing import sr_list_member
from icpn.p4rt import SwitchClient, SwitchTarget
from icpn.packets import rocev2_write
from icpn.placement import PlacementSettings
from icpn.targets import veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

ROUTER_MAC = "00:00:00:00:aa:01"
HOST = "2001:db8:1::10"
SERVER = "2001:db8:2::10"
HEADEND = "fc00:1::1"
APN_ID = 0x00070001
LISTS = (
    SegmentList(("fc00:2::1", "fc00:9::d6"), list_id=1),
    SegmentList(("fc00:3::1", "fc00:9::d6"), list_id=2),
)
LIST_PORT = {0: 2, 1: 3}  # list index -> switch port
THRESHOLD = 50


def hashed_list(qp: int) -> int:
    """The list the deep hash gives a QP (checked against BMv2 by the PTF suite)."""
    return sr_list_member([(APN_ID, 128), (qp, 24)], [1] * len(LISTS))


def frame(qp: int) -> bytes:
    return bytes(
        Ether(src="00:00:00:00:00:01", dst=ROUTER_MAC) / rocev2_write(HOST, SERVER, dest_qp=qp)
    )


@dataclass
class Lab:
    switch: Bmv2Switch
    client: SwitchClient
    manager: ElephantManager

    def sender(self) -> socket.socket:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sock.bind((self.switch.host_interfaces[1], 0))
        return sock

    def receiver(self, port: int) -> socket.socket:
        sock = veth.capture_socket(self.switch.host_interfaces[port])
        sock.setblocking(False)
        return sock


@contextlib.asynccontextmanager
async def elephant_lab(poll_interval_s: float = 0.1) -> AsyncIterator[Lab]:
    art = build.compile_program("icpn")
    with Bmv2Switch("elephant-lab", Bmv2Options(num_ports=3, log_level="off")) as sw:
        target = SwitchTarget(
            "elephant-lab", sw.grpc_address, p4info=art.p4info, p4blob=art.json, force_pipeline=True
        )
        async with SwitchClient(target) as client:
            await client.insert(
                [
                    my_station(ROUTER_MAC),
                    port_role(1, PortRole.EDGE_UNTRUSTED),
                    classifier_rule(APN_ID, priority=10, ipv6_dst=f"{SERVER}/128"),
                    sketch_profile(
                        1,
                        SketchProfile(
                            FlowKeyType.SRC_DST_QP, threshold=THRESHOLD, window_log2_us=47
                        ),
                    ),
                    apn_policy(
                        0x00070000,
                        0xFFFF0000,
                        dscp=0,
                        sr_policy_id=1,
                        priority=10,
                        sketch_profile=1,
                    ),
                    sr_policy(1, HEADEND, LISTS),
                    route("fc00:2::/32", [NextHop(2, ROUTER_MAC, "00:00:00:00:00:02")]),
                    route("fc00:3::/32", [NextHop(3, ROUTER_MAC, "00:00:00:00:00:03")]),
                ]
            )
            await client.configure_digest(
                ELEPHANT_DIGEST, max_list_size=1, max_timeout_ns=0, ack_timeout_ns=10**9
            )
            manager = ElephantManager(
                client,
                [PolicyPaths(1, HEADEND, LISTS)],
                ManagerSettings(
                    poll_interval_s=poll_interval_s,
                    placement=PlacementSettings(hold_down_s=2 * poll_interval_s),
                ),
            )
            running = asyncio.ensure_future(manager.run())
            try:
                yield Lab(sw, client, manager)
            finally:
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running


async def load_list(lab: Lab, index: int, packets: int, rate_pps: float = 500) -> None:
    """Background traffic on one list: mice whose QPs hash to it, below the threshold."""
    qps = [qp for qp in range(0x10000, 0x20000) if hashed_list(qp) == index][: packets // 10]
    with lab.sender() as sock:
        for i in range(packets):
            sock.send(frame(qps[i % len(qps)]))
            await asyncio.sleep(1 / rate_pps)


async def control_loop_latency_s(
    lab: Lab, qp: int, *, rate_pps: float = 500, timeout_s: float = 5.0
) -> float | None:
    """Send the elephant ``qp`` until its packets leave by another list than the hash's;
    return the time from the threshold-crossing packet to the first such packet."""
    moved_to = LIST_PORT[1 - hashed_list(qp)]
    elephant = frame(qp)
    with lab.sender() as out, lab.receiver(moved_to) as watch:
        crossing_sent = None
        deadline = time.monotonic() + timeout_s
        sent = 0
        while time.monotonic() < deadline:
            out.send(elephant)
            sent += 1
            if sent == THRESHOLD:
                crossing_sent = time.monotonic()
            if crossing_sent is not None:
                with contextlib.suppress(BlockingIOError):
                    watch.recv(65535)  # only the elephant is sent: this is it, moved
                    return time.monotonic() - crossing_sent
            await asyncio.sleep(1 / rate_pps)
    return None


async def send_elephants(lab: Lab, qps: list[int], rate_pps: float, seconds: float) -> None:
    """Each of ``qps`` at ``rate_pps``, interleaved, for ``seconds``."""
    frames = [frame(qp) for qp in qps]
    with lab.sender() as sock:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for f in frames:
                sock.send(f)
            await asyncio.sleep(1 / rate_pps)


def dest_qp(wire: bytes) -> int:
    """The DestQP of a frame :func:`frame` built, as a list's port sends it (encapsulated):
    its BTH is the 12 octets before the RETH (16), the 64-octet payload and the ICRC (4)."""
    bth = wire[-(4 + 64 + 16 + 12) :]
    return int.from_bytes(bth[5:8], "big")


def drain_qps(sock: socket.socket) -> list[int]:
    """The DestQPs of the frames waiting on a receiver socket."""
    seen = []
    while True:
        try:
            seen.append(dest_qp(sock.recv(65535)))
        except BlockingIOError:
            return seen
