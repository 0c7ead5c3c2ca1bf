"""Routers that answer neighbour solicitations (icpn.neighbor, RFC 4861): which addresses a
switch answers for, the advertisement it sends, what it ignores, the rate limit."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from icpn.controller.render import load_and_render
from icpn.neighbor import advertisement, router_addresses
from icpn.routers import RouterResponder, RouterSettings
from tests.test_controller import INTENT

ROUTER_MAC = "00:00:00:00:aa:01"
HOST_MAC = "00:00:00:00:01:10"
GATEWAY = "2001:db8:1::1"
HOST = "2001:db8:1::10"


def solicitation(target: str = GATEWAY, *, src: str = HOST, hlim: int = 255) -> bytes:
    """What Linux sends to resolve ``target``: to its solicited-node multicast address."""
    low = int(ipaddress.IPv6Address(target)) & 0xFFFFFF
    group = f"ff02::1:ff{low >> 16:02x}:{low & 0xFFFF:04x}"
    frame = (
        Ether(src=HOST_MAC, dst="33:33:ff:00:00:01")
        / IPv6(src=src, dst=group, hlim=hlim)
        / ICMPv6ND_NS(tgt=target)
        / ICMPv6NDOptSrcLLAddr(lladdr=HOST_MAC)
    )
    return bytes(frame)


def test_each_switch_answers_for_its_hosts_gateways(tmp_path: Path) -> None:
    path = tmp_path / "intent.yaml"
    path.write_text(INTENT)
    intent, configs = load_and_render(path)
    assert router_addresses(intent, "sh1") == {1: frozenset({"2001:db8:1::1"})}
    assert router_addresses(intent, "nx1") == {
        5: frozenset({"2001:db8:2::1"}),
        9: frozenset({"2001:db8:ff::1"}),  # the collector's /64
    }
    assert router_addresses(intent, "gz1") == {}
    acl = [e for e in configs["sh1"].entities if getattr(e, "table_id", "") == "acl"]
    assert [e.action.name for e in acl] == ["punt_to_cpu"]
    assert not [e for e in configs["gz1"].entities if getattr(e, "table_id", "") == "acl"]
    assert configs["nx1"].router_addresses == router_addresses(intent, "nx1")


def test_the_advertisement_answers_the_solicitation() -> None:
    raw = advertisement(solicitation(), frozenset({GATEWAY}), ROUTER_MAC)
    assert raw is not None
    answer = Ether(raw)
    assert (answer.src, answer.dst) == (ROUTER_MAC, HOST_MAC)
    assert (answer[IPv6].src, answer[IPv6].dst, answer[IPv6].hlim) == (GATEWAY, HOST, 255)
    na = answer[ICMPv6ND_NA]
    assert na.tgt == GATEWAY and (na.R, na.S, na.O) == (1, 1, 1)
    assert answer[ICMPv6NDOptDstLLAddr].lladdr == ROUTER_MAC
    # the checksum is right: scapy recomputes it on a copy without the stored one
    check = Ether(raw)
    del check[ICMPv6ND_NA].cksum
    assert Ether(bytes(check))[ICMPv6ND_NA].cksum == na.cksum


def test_other_targets_dad_and_forwarded_solicitations_are_ignored() -> None:
    answers = frozenset({GATEWAY})
    assert advertisement(solicitation("2001:db8:1::99"), answers, ROUTER_MAC) is None
    assert advertisement(solicitation(src="::"), answers, ROUTER_MAC) is None  # DAD
    assert advertisement(solicitation(hlim=254), answers, ROUTER_MAC) is None  # RFC 4861 7.1.1
    assert advertisement(b"\x00" * 10, answers, ROUTER_MAC) is None
    udp = bytes(Ether() / IPv6(src=HOST, dst=GATEWAY))
    assert advertisement(udp, answers, ROUTER_MAC) is None


class PacketIn:
    """A packet-in as finsy gives it: the payload, metadata by name."""

    def __init__(self, payload: bytes, port: int) -> None:
        self.payload = payload
        self.metadata = {"ingress_port": port}

    def __getitem__(self, key: str) -> Any:
        return self.metadata[key]


class FakeSwitch:
    def __init__(self, punted: list[tuple[bytes, int]]) -> None:
        self.punted = punted
        self.sent: list[tuple[bytes, dict[str, Any]]] = []

    async def packets_in(self) -> Any:
        for frame, port in self.punted:
            yield PacketIn(frame, port)

    async def packet_out(self, payload: bytes, **metadata: Any) -> None:
        self.sent.append((payload, metadata))


def test_the_responder_answers_on_the_port_and_is_rate_limited() -> None:
    punted = [(solicitation(), 1), (solicitation(), 2)] + [(solicitation(), 1)] * 10
    switch = FakeSwitch(punted)
    clock = [0.0]
    settings = RouterSettings(ROUTER_MAC, "fc00:1::1", addresses={1: frozenset({GATEWAY})})
    responder = RouterResponder(switch, settings, nd_rate=5, clock=lambda: clock[0])
    asyncio.run(responder.run())
    # port 2 has no gateway here; of the 11 on port 1, the burst of 5 is answered
    assert [m["egress_port"] for _, m in switch.sent] == [1] * 5
    assert responder.stats.ignored == 1 and responder.stats.rate_limited == 6
    clock[0] = 1.0  # a second later the bucket is full again
    assert asyncio.run(responder.handle(solicitation(), 1))
