"""Routers that answer through the controller (icpn.routers): what the intent renders (router
addresses, MTUs, punts and their rate, RS punts), what the responder sends for each punt
reason and where, Router Advertisements (RFC 4861), and the controller-side rate limit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import finsy as fy
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.constants import ACCESS_MTU, CORE_MTU, PUNTABLE_DROPS, DropReason
from icpn.controller.render import load_and_render
from icpn.features import icmp
from icpn.packets import APN6, h_encaps
from icpn.routers import (
    Advertising,
    RouterResponder,
    RouterSettings,
    link_local,
    router_advertisement,
)
from tests.test_controller import INTENT

ROUTER_MAC = "00:00:00:00:aa:01"
HOST_MAC = "00:00:00:00:01:10"
CORE_MAC = "00:00:00:00:aa:02"
GATEWAY = "2001:db8:1::1"
HOST = "2001:db8:1::10"
SID = "fc00:1::1"
SETTINGS = RouterSettings(
    ROUTER_MAC,
    SID,
    addresses={1: frozenset({GATEWAY, link_local(ROUTER_MAC)})},
    neighbor_macs={1: HOST_MAC, 2: CORE_MAC},
    port_mtu={1: 1500, 2: 9000},
    prefixes={1: ("2001:db8:1::/64",)},
    icmp_per_second=10,
    icmp_burst=3,
)


def render(tmp_path: Path, text: str = INTENT) -> Any:
    path = tmp_path / "intent.yaml"
    path.write_text(text)
    return load_and_render(path)[1]


def table(config: Any, name: str) -> list[Any]:
    """One table's entries (typed loosely: tests index into matches and actions)."""
    return list(config.tables().get(name, []))


def test_the_intent_gives_every_switch_addresses_mtus_and_punts(tmp_path: Path) -> None:
    configs = render(
        tmp_path, INTENT.replace("capacity_gbps: 10}", "capacity_gbps: 10, mtu: 4000}")
    )
    sh1 = configs["sh1"]
    addresses = {e.match["ipv6_dst"] for e in table(sh1, icmp.MY_ADDRESS)}
    assert addresses == {SID, GATEWAY, link_local(ROUTER_MAC)}
    mtus = {e.match["port"]: e.action.args["mtu"] for e in table(sh1, icmp.PORT_MTU)}
    # port 1: a host (access), 2 and 3: default core links, 4: the link with its own MTU
    assert mtus == {1: ACCESS_MTU, 2: CORE_MTU, 3: CORE_MTU, 4: 4000}
    reasons = {e.match["reason"] for e in table(sh1, icmp.PUNT_POLICY)}
    assert reasons == {int(r) for r in PUNTABLE_DROPS}
    meters = [e for e in sh1.entities if isinstance(e, fy.P4MeterEntry)]
    assert {m.index for m in meters if m.meter_id == icmp.PUNT_METER} == reasons
    # a core switch answers on its loopback only
    assert {e.match["ipv6_dst"] for e in table(configs["gz1"], icmp.MY_ADDRESS)} == {"fc00:2::1"}
    router = sh1.router
    assert router is not None and router.source_on(1) == GATEWAY and router.source_on(2) == SID
    assert router.neighbor_macs[1] == HOST_MAC and router.neighbor_macs[2] == CORE_MAC
    assert router.advertise is None
    # no RS punt without advertising: only the NS one
    assert len(table(sh1, "acl")) == 1


def test_icmp_off_leaves_mtus_and_punts_nothing(tmp_path: Path) -> None:
    configs = render(tmp_path, INTENT + "routers: {icmp: false}\n")
    sh1 = configs["sh1"]
    assert table(sh1, icmp.PORT_MTU)
    assert not table(sh1, icmp.MY_ADDRESS) and not table(sh1, icmp.PUNT_POLICY)


def test_advertising_punts_router_solicitations(tmp_path: Path) -> None:
    text = INTENT + "routers: {advertise: {interval_s: 30, lifetime_s: 600}}\n"
    configs = render(tmp_path, text)
    acl = table(configs["sh1"], "acl")
    assert sorted(e.match["icmp_type"] for e in acl) == [133, 135]  # RS and NS
    assert configs["sh1"].router.advertise == Advertising(30, 600)
    assert configs["sh1"].router.prefixes == {1: ("2001:db8:1::/64",)}
    assert not table(configs["gz1"], "acl")  # no hosts: nothing to advertise


class PacketIn:
    def __init__(self, payload: bytes, port: int, reason: int = 0, mtu: int = 0) -> None:
        self.payload = payload
        self.metadata = {"ingress_port": port, "_pad": 0, "reason": reason, "mtu": mtu}

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]


class FakeSwitch:
    def __init__(self, punted: list[PacketIn] | None = None) -> None:
        self.punted = punted or []
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    async def packets_in(self) -> Any:
        for packet in self.punted:
            yield packet

    async def packet_out(self, payload: bytes, **metadata: Any) -> None:
        self.sent.append((payload, metadata))


def handle(
    responder: RouterResponder, frame: bytes, port: int, reason: DropReason, mtu: int = 0
) -> bool:
    return asyncio.run(responder.handle(frame, port, reason=int(reason), mtu=mtu))


def test_time_exceeded_goes_back_out_of_the_ingress_port_from_the_gateway() -> None:
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS)
    probe = (
        Ether(src=HOST_MAC, dst=ROUTER_MAC)
        / IPv6(src=HOST, dst="2001:db8:2::10", hlim=1)
        / UDP(dport=33434)
    )
    assert handle(responder, bytes(probe), 1, DropReason.HOP_LIMIT)
    payload, metadata = switch.sent[0]
    assert metadata["egress_port"] == 1
    answer = Ether(payload)
    assert (answer.src, answer.dst) == (ROUTER_MAC, HOST_MAC)
    assert (answer[IPv6].src, answer[IPv6].dst) == (GATEWAY, HOST)
    assert ICMPv6TimeExceeded in answer
    assert responder.stats.icmp == {"hop_limit": 1}


def test_on_a_core_port_errors_come_from_the_loopback() -> None:
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS)
    transit = Ether(src=CORE_MAC, dst=ROUTER_MAC) / IPv6(src="fc00:9::1", dst="fc00:7::1") / UDP()
    assert handle(responder, bytes(transit), 2, DropReason.NO_ROUTE)
    answer = Ether(switch.sent[0][0])
    assert answer[IPv6].src == SID and answer[ICMPv6DestUnreach].code == 0
    assert answer.dst == CORE_MAC and switch.sent[0][1]["egress_port"] == 2


def test_packet_too_big_from_the_headend_reports_what_the_source_must_fit() -> None:
    """The switch punts the frame as it would have left: encapsulated, MACs rewritten to
    the next hop. The answer is about the inner packet, to its source, back to the host."""
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS)
    inner = IPv6(src=HOST, dst="2001:db8:2::10") / UDP() / Raw(b"z" * 1452)
    outer = h_encaps(
        inner, src=SID, segments=["fc00:2::1", "fc00:3::d6"], hbh_options=[APN6(apn_id=9)]
    )
    routed = Ether(src=ROUTER_MAC, dst=CORE_MAC) / IPv6(bytes(outer))
    assert handle(responder, bytes(routed), 1, DropReason.PACKET_TOO_BIG, mtu=1500)
    answer = Ether(switch.sent[0][0])
    assert answer.dst == HOST_MAC and answer[IPv6].dst == HOST
    assert answer[ICMPv6PacketTooBig].mtu == 1500 - 96


def test_pings_to_router_addresses_are_answered_and_udp_refused() -> None:
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS)
    ping = (
        Ether(src=HOST_MAC, dst=ROUTER_MAC)
        / IPv6(src=HOST, dst=GATEWAY)
        / ICMPv6EchoRequest(id=5, seq=1)
    )
    assert handle(responder, bytes(ping), 1, DropReason.TO_ROUTER)
    reply = Ether(switch.sent[0][0])
    assert reply[IPv6].src == GATEWAY and reply[ICMPv6EchoReply].id == 5
    udp = Ether(src=CORE_MAC, dst=ROUTER_MAC) / IPv6(src=HOST, dst=SID, hlim=3) / UDP(dport=33440)
    assert handle(responder, bytes(udp), 2, DropReason.TO_ROUTER)
    refused = Ether(switch.sent[1][0])
    assert refused[IPv6].src == SID and refused[ICMPv6DestUnreach].code == 4
    assert responder.stats.icmp == {"echo_reply": 1, "port_unreachable": 1}


def test_what_may_not_be_answered_is_ignored() -> None:
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS)
    an_error = Ether(src=HOST_MAC, dst=ROUTER_MAC) / IPv6(src=HOST, dst="2001:db8:2::10", hlim=1)
    an_error = an_error / ICMPv6DestUnreach() / Raw(b"q" * 48)
    assert not handle(responder, bytes(an_error), 1, DropReason.HOP_LIMIT)
    reply = Ether(src=HOST_MAC, dst=ROUTER_MAC) / IPv6(src=HOST, dst=GATEWAY) / ICMPv6EchoReply()
    assert not handle(responder, bytes(reply), 1, DropReason.TO_ROUTER)
    assert not handle(responder, b"\x00" * 20, 1, DropReason.NO_ROUTE)
    assert switch.sent == [] and responder.stats.ignored == 3


def test_the_controller_rate_limits_icmp() -> None:
    now = [0.0]
    switch = FakeSwitch()
    responder = RouterResponder(switch, SETTINGS, clock=lambda: now[0])
    probe = Ether(src=HOST_MAC, dst=ROUTER_MAC) / IPv6(src=HOST, dst="2001:db8:2::10", hlim=1)
    probe = probe / UDP()
    results = [handle(responder, bytes(probe), 1, DropReason.HOP_LIMIT) for _ in range(6)]
    assert results == [True] * 3 + [False] * 3  # the burst of 3
    assert responder.stats.rate_limited == 3
    now[0] = 0.1  # 10/s: one more token
    assert handle(responder, bytes(probe), 1, DropReason.HOP_LIMIT)


def test_the_router_advertisement() -> None:
    raw = router_advertisement(SETTINGS, 1)
    ra = Ether(raw)
    assert ra.dst == "33:33:00:00:00:01" and ra[IPv6].dst == "ff02::1"
    assert ra[IPv6].src == link_local(ROUTER_MAC) == "fe80::200:ff:fe00:aa01"
    assert ra[IPv6].hlim == 255 and ra[ICMPv6ND_RA].routerlifetime == 1800
    assert ra[ICMPv6NDOptSrcLLAddr].lladdr == ROUTER_MAC
    assert ra[ICMPv6NDOptMTU].mtu == 1500
    prefix = ra[ICMPv6NDOptPrefixInfo]
    assert (prefix.prefix, prefix.prefixlen, prefix.L, prefix.A) == ("2001:db8:1::", 64, 1, 0)
    check = Ether(raw)
    del check[ICMPv6ND_RA].cksum
    assert Ether(bytes(check))[ICMPv6ND_RA].cksum == ra[ICMPv6ND_RA].cksum


def test_solicitations_are_answered_and_advertisements_are_periodic() -> None:
    settings = RouterSettings(
        ROUTER_MAC,
        SID,
        addresses=SETTINGS.addresses,
        prefixes=SETTINGS.prefixes,
        port_mtu=SETTINGS.port_mtu,
        advertise=Advertising(interval_s=0.03, lifetime_s=300),
    )
    rs = (
        Ether(src=HOST_MAC, dst="33:33:00:00:00:02")
        / IPv6(src="fe80::1", dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
    )
    now = [100.0]
    switch = FakeSwitch()
    responder = RouterResponder(switch, settings, clock=lambda: now[0])
    assert asyncio.run(responder.handle(bytes(rs), 1))
    assert not asyncio.run(responder.handle(bytes(rs), 1))  # within 3 s of the last RA
    now[0] = 104.0
    assert asyncio.run(responder.handle(bytes(rs), 1))
    assert not asyncio.run(responder.handle(bytes(rs), 2))  # port 2 does not advertise
    assert [m["egress_port"] for _, m in switch.sent] == [1, 1]

    async def advertise_a_while() -> None:
        task = asyncio.create_task(responder.advertise_periodically())
        await asyncio.sleep(0.2)
        task.cancel()

    before = len(switch.sent)
    asyncio.run(advertise_a_while())
    periodic = switch.sent[before:]
    assert 3 <= len(periodic) <= 21, len(periodic)  # every 10 to 30 ms for 0.2 s
    assert all(ICMPv6ND_RA in Ether(p) for p, _ in periodic)


def test_the_responder_stops_advertising_when_the_stream_ends() -> None:
    """A switch that goes away ends its packet-in stream: run() returns (it does not wait
    on the periodic advertisements), having answered what came."""
    settings = RouterSettings(
        ROUTER_MAC,
        SID,
        addresses=SETTINGS.addresses,
        prefixes=SETTINGS.prefixes,
        advertise=Advertising(interval_s=60),
    )
    ping = Ether(src=HOST_MAC, dst=ROUTER_MAC) / IPv6(src=HOST, dst=GATEWAY) / ICMPv6EchoRequest()
    switch = FakeSwitch([PacketIn(bytes(ping), 1, int(DropReason.TO_ROUTER))])

    async def run_then_yield() -> None:
        responder = RouterResponder(switch, settings)
        await asyncio.wait_for(responder.run(), 5)

    asyncio.run(run_then_yield())
    # it returned (wait_for did not time out) having answered the ping
    assert any(ICMPv6EchoReply in Ether(p) for p, _ in switch.sent)
