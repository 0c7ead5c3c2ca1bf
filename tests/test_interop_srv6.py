"""Interop with Linux SRv6 (seg6 / seg6local) in network namespaces, through BMv2.

    hA (2001:db8:1::10) -- port 1 [ BMv2 icpn.p4 ] port 2 -- hB (2001:db8:2::10)
                                   port 3 == port 4   (a cable: one switch, two hops)

1. Linux hA encapsulates (seg6 encap, segments fc00:a::1, fc00:b::d6); BMv2 runs End for
   fc00:a::1, sends the packet round the cable, runs End.DT6 for fc00:b::d6 and delivers the
   inner packet to hB.
2. BMv2 is the headend (H.Encaps with the APN6 Hop-by-Hop header); Linux router hB
   decapsulates with seg6local End.DT6 and delivers to hC (2001:db8:3::10) behind it.
Both are proven by ping: the echo request only arrives if the SRv6 handling on the way is
right, and the reply comes back plainly routed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from icpn import build, netns
from icpn.apn import apn_policy, classifier_rule, port_role
from icpn.bmv2 import Bmv2Options, Bmv2Switch
from icpn.constants import DropReason, PortRole
from icpn.p4rt import SwitchTarget, SyncSwitchClient
from icpn.routing import DROP_COUNTER, NextHop, my_station, route
from icpn.srv6 import SegmentList, end, end_dt6, sr_policy

pytestmark = pytest.mark.bmv2

ROUTER_MAC = "00:00:00:00:aa:01"
A_ADDR, B_ADDR, C_ADDR = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:3::10"
HAIRPIN = (3, 4)


@dataclass
class Lab:
    switch: Bmv2Switch
    client: SyncSwitchClient
    a: netns.Host
    b: netns.Host
    a_mac: str
    b_mac: str

    def ping(self, count: int = 3, to: str = B_ADDR) -> tuple[int, int]:
        out = self.a.run("ping", "-6", "-c", str(count), "-i", "0.2", "-W", "2", to, check=False)
        found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert found, f"unexpected ping output: {out!r}"
        return int(found[1]), int(found[2])

    def drops(self) -> dict[str, int]:
        cells = self.client.read_counters(DROP_COUNTER)
        return {DropReason(i).name: d.packet_count for i, d in cells.items() if d.packet_count}


@pytest.fixture
def lab() -> Iterator[Lab]:
    art = build.compile_program("icpn")
    netns.reap_stale()
    a, b = netns.Host("srv6-a"), netns.Host("srv6-b")
    with Bmv2Switch("interop-srv6", Bmv2Options(num_ports=4, hairpins=(HAIRPIN,))) as sw:
        try:
            a.create()
            b.create()
            a_mac = a.attach(sw.host_interfaces[1], f"{A_ADDR}/64", "2001:db8:1::1", ROUTER_MAC)
            b_mac = b.attach(sw.host_interfaces[2], f"{B_ADDR}/64", "2001:db8:2::1", ROUTER_MAC)
            target = SwitchTarget(
                "interop", sw.grpc_address, p4info=art.p4info, p4blob=art.json, force_pipeline=True
            )
            with SyncSwitchClient(target) as client:
                client.insert(
                    [
                        my_station(ROUTER_MAC),
                        route("2001:db8:1::/64", [NextHop(1, ROUTER_MAC, a_mac)]),
                        route("2001:db8:2::/64", [NextHop(2, ROUTER_MAC, b_mac)]),
                    ]
                )
                yield Lab(sw, client, a, b, a_mac, b_mac)
        finally:
            a.delete()
            b.delete()


def test_linux_encap_through_bmv2_end_and_end_dt6(lab: Lab) -> None:
    lab.client.insert(
        [
            end("fc00:a::1"),
            # round the cable: out of port 3 addressed to ourselves, back in on port 4
            route("fc00:b::/32", [NextHop(HAIRPIN[0], ROUTER_MAC, ROUTER_MAC)]),
            end_dt6("fc00:b::d6"),
        ]
    )
    ifname = lab.switch.host_interfaces[1]
    lab.a.run(
        "ip",
        "-6",
        "route",
        "add",
        "2001:db8:2::/64",
        "encap",
        "seg6",
        "mode",
        "encap",
        "segs",
        "fc00:a::1,fc00:b::d6",
        "dev",
        ifname,
        "via",
        "2001:db8:1::1",
    )
    sent, received = lab.ping()
    assert (sent, received) == (3, 3), f"drops on the switch: {lab.drops()}"
    assert lab.drops().get("NO_ROUTE", 0) == 0


def test_bmv2_headend_decapsulated_by_linux_end_dt6(lab: Lab) -> None:
    ifname = lab.switch.host_interfaces[2]
    c = netns.Host("srv6-c")
    c.create()
    try:
        _, c_if = netns.connect(lab.b, "2001:db8:3::1/64", c, f"{C_ADDR}/64", "srv6bc")
        c.run("ip", "-6", "route", "add", "default", "via", "2001:db8:3::1", "dev", c_if)
        _headend_to_linux_decap(lab, ifname)
    finally:
        c.delete()


def _headend_to_linux_decap(lab: Lab, ifname: str) -> None:
    # seg6local routes act on input only in a namespace that forwards (else the kernel
    # counts the packet in Ip6InAddrErrors and drops it).
    lab.b.run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    lab.b.run("sysctl", "-qw", "net.ipv6.conf.all.seg6_enabled=1")
    lab.b.run("sysctl", "-qw", f"net.ipv6.conf.{ifname}.seg6_enabled=1")
    lab.b.run(
        "ip",
        "-6",
        "route",
        "add",
        "fc00:b::d6/128",
        "encap",
        "seg6local",
        "action",
        "End.DT6",
        "table",
        "254",
        "dev",
        ifname,
    )
    lab.client.insert(
        [
            port_role(1, PortRole.EDGE_UNTRUSTED),
            classifier_rule(0x00070001, priority=10, ipv6_dst=f"{C_ADDR}/128"),
            apn_policy(0x00070000, 0xFFFF0000, dscp=0, sr_policy_id=1, priority=10),
            sr_policy(1, "fc00:1::1", [SegmentList(("fc00:b::d6",))]),
            route("fc00:b::/32", [NextHop(2, ROUTER_MAC, lab.b_mac)]),
        ]
    )  # no plain route to hC: only the encapsulated request can get there
    sent, received = lab.ping(to=C_ADDR)
    assert (sent, received) == (3, 3), f"drops on the switch: {lab.drops()}"
