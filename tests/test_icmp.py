"""The controller's ICMPv6 messages (icpn.icmp, RFC 4443): what an error quotes and where it
goes, when none may be sent, echo replies, the MTU a headend reports, the token bucket."""

from __future__ import annotations

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.icmp import (
    ErrorKind,
    Invoking,
    TokenBucket,
    answer_to_router,
    error,
    invoking_packet,
    may_answer_with_error,
)
from icpn.packets import APN6, h_encaps

HOST = "2001:db8:1::10"
DST = "2001:db8:2::10"
ROUTER = "fc00:1::1"


def frame(packet: IPv6, *, eth_dst: str = "00:00:00:00:aa:01") -> bytes:
    return bytes(Ether(src="00:00:00:00:01:10", dst=eth_dst) / packet)


def probe(size: int = 32, hlim: int = 1) -> IPv6:
    return IPv6(src=HOST, dst=DST, hlim=hlim) / UDP(sport=40000, dport=33434) / Raw(b"x" * size)


def checksum_ok(raw: bytes, layer: type) -> bool:
    packet = IPv6(raw)
    stored = packet[layer].cksum
    del packet[layer].cksum
    return bool(IPv6(bytes(packet))[layer].cksum == stored)


def test_time_exceeded_quotes_the_packet_and_goes_to_its_source() -> None:
    sent = probe()
    invoking = invoking_packet(frame(sent), frozenset({ROUTER}))
    assert invoking == Invoking(bytes(sent))
    raw = error(invoking, ErrorKind.HOP_LIMIT, source=ROUTER)
    answer = IPv6(raw)
    assert (answer.src, answer.dst) == (ROUTER, HOST)
    assert (answer[ICMPv6TimeExceeded].type, answer[ICMPv6TimeExceeded].code) == (3, 0)
    assert raw[48:] == bytes(sent)
    assert checksum_ok(raw, ICMPv6TimeExceeded)


def test_an_error_never_exceeds_the_minimum_mtu() -> None:
    big = probe(size=1400)
    raw = error(Invoking(bytes(big)), ErrorKind.NO_ROUTE, source=ROUTER)
    assert len(raw) == 1280
    assert IPv6(raw)[ICMPv6DestUnreach].code == 0
    assert raw[48:] == bytes(big)[: 1280 - 48]


def test_ethernet_padding_is_not_quoted() -> None:
    sent = probe(size=0)
    padded = frame(sent) + b"\x00" * 10  # a short frame padded to Ethernet's minimum
    invoking = invoking_packet(padded, frozenset())
    assert invoking is not None and invoking.packet == bytes(sent)


def test_a_packet_this_router_encapsulated_is_answered_about_the_inner_one() -> None:
    inner = probe(size=1400, hlim=30)
    outer = h_encaps(
        inner, src=ROUTER, segments=["fc00:2::1", "fc00:3::d6"], hbh_options=[APN6(apn_id=7)]
    )
    invoking = invoking_packet(frame(IPv6(bytes(outer))), frozenset({ROUTER}))
    assert invoking is not None
    assert invoking.packet == bytes(inner) and invoking.encapsulation == 96
    raw = error(invoking, ErrorKind.PACKET_TOO_BIG, source="2001:db8:1::1", mtu=1500)
    ptb = IPv6(raw)
    assert ptb.dst == HOST and ptb[ICMPv6PacketTooBig].mtu == 1500 - 96
    # another router's encapsulation is answered as it is: to the headend
    transit = invoking_packet(frame(IPv6(bytes(outer))), frozenset({"fc00:2::1"}))
    assert transit is not None and transit.encapsulation == 0
    assert transit.source.compressed == ROUTER


def test_packet_too_big_never_reports_less_than_the_minimum_mtu() -> None:
    raw = error(Invoking(bytes(probe()), 200), ErrorKind.PACKET_TOO_BIG, source=ROUTER, mtu=1300)
    assert IPv6(raw)[ICMPv6PacketTooBig].mtu == 1280


@pytest.mark.parametrize(
    ("packet", "kind", "eth_multicast", "allowed"),
    [
        (probe(), ErrorKind.HOP_LIMIT, False, True),
        # RFC 4443 2.4(e): never about an error message
        (
            IPv6(src=HOST, dst=DST) / ICMPv6DestUnreach() / Raw(b"q" * 48),
            ErrorKind.HOP_LIMIT,
            False,
            False,
        ),
        # but informational messages get errors (traceroute -I)
        (IPv6(src=HOST, dst=DST) / ICMPv6EchoRequest(), ErrorKind.HOP_LIMIT, False, True),
        (IPv6(src=HOST, dst="ff0e::1") / UDP(), ErrorKind.HOP_LIMIT, False, False),
        (IPv6(src=HOST, dst="ff0e::1") / UDP(), ErrorKind.PACKET_TOO_BIG, False, True),
        (probe(), ErrorKind.NO_ROUTE, True, False),
        (probe(), ErrorKind.PACKET_TOO_BIG, True, True),
        (IPv6(src="::", dst=DST) / UDP(), ErrorKind.NO_ROUTE, False, False),
        (IPv6(src="ff02::1", dst=DST) / UDP(), ErrorKind.NO_ROUTE, False, False),
    ],
)
def test_when_an_error_may_be_sent(
    packet: IPv6, kind: ErrorKind, eth_multicast: bool, allowed: bool
) -> None:
    assert may_answer_with_error(Invoking(bytes(packet)), kind, eth_multicast=eth_multicast) is (
        allowed
    )


def test_echo_reply_mirrors_the_request_from_the_address_pinged() -> None:
    request = IPv6(src=HOST, dst="2001:db8:1::1") / ICMPv6EchoRequest(id=77, seq=3, data=b"ab" * 20)
    raw = answer_to_router(Invoking(bytes(request)))
    assert raw is not None
    reply = IPv6(raw)
    assert (reply.src, reply.dst) == ("2001:db8:1::1", HOST)
    echo = reply[ICMPv6EchoReply]
    assert (echo.id, echo.seq, echo.data) == (77, 3, b"ab" * 20)
    assert checksum_ok(raw, ICMPv6EchoReply)


def test_udp_to_the_router_gets_port_unreachable_and_others_nothing() -> None:
    udp = IPv6(src=HOST, dst=ROUTER, hlim=3) / UDP(sport=40000, dport=33437)
    raw = answer_to_router(Invoking(bytes(udp)))
    assert raw is not None
    answer = IPv6(raw)
    assert answer.src == ROUTER and answer[ICMPv6DestUnreach].code == 4
    reply = IPv6(src=HOST, dst=ROUTER) / ICMPv6EchoReply()
    assert answer_to_router(Invoking(bytes(reply))) is None


def test_the_token_bucket_allows_the_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]
    now[0] = 0.1  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3
