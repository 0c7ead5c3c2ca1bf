"""icpn.traffic.sender: token-bucket arithmetic, argument checks, the sendmmsg ring layout,
and (as root) exactly N frames across a veth pair, in the order sent."""

from __future__ import annotations

import ctypes
import math
import os
import socket
from collections.abc import Iterator

import pytest

from icpn.targets import veth
from icpn.traffic import sender
from icpn.traffic.sender import (
    SendResult,
    TokenBucket,
    default_batch,
    rx_packets,
    send_frames,
    validate,
)

SO_RCVBUFFORCE = 33
MARK_TYPE = b"\x88\xb5"  # IEEE 802 local experimental EtherType 1


def frame(i: int, size: int = 60) -> bytes:
    head = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + MARK_TYPE
    body = i.to_bytes(4, "big")
    return head + body + b"\x00" * (size - len(head) - len(body))


# --- token bucket ----------------------------------------------------------------------------


def test_bucket_starts_full_and_refills_at_its_rate() -> None:
    b = TokenBucket(rate=1000.0, burst=50, now=10.0)
    assert b.take(80, 10.0) == 50  # full, capped at burst
    assert b.take(1, 10.0) == 0
    assert b.take(100, 10.010) == 10  # 10 ms at 1000/s
    assert b.wait(5, 10.010) == pytest.approx(0.005)
    assert b.take(100, 10.0155) == 5  # 5.5 tokens: whole ones only
    assert b.tokens == pytest.approx(0.5)


def test_bucket_never_holds_more_than_burst_and_takes_tokens_back() -> None:
    b = TokenBucket(rate=1e6, burst=64, now=0.0)
    b.take(64, 0.0)
    assert b.take(1000, 5.0) == 64  # idle 5 s: still only a burst
    b.give_back(10)
    assert b.take(1000, 5.0) == 10
    b.give_back(1000)
    assert b.tokens == 64
    assert b.wait(1000, 5.0) == 0.0  # asking more than a burst waits for a burst


def test_bucket_long_run_rate_is_the_target() -> None:
    """Simulated clock: whatever the polling, the tokens handed out over T seconds are
    rate*T + burst at most and rate*T - 1 at least."""
    b = TokenBucket(rate=12345.0, burst=100, now=0.0)
    got, now = 0, 0.0
    for step in range(20_000):
        now += 0.0001 * (1 + step % 7)  # irregular polling
        got += b.take(100, now)
    assert 12345 * now - 1 <= got <= 12345 * now + 100


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-5.0, 1), (math.inf, 1), (1.0, 0)])
def test_bucket_refuses_bad_parameters(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        TokenBucket(rate, burst, 0.0)


def test_default_batch_is_about_a_millisecond_of_frames() -> None:
    assert default_batch(None) == 256
    assert default_batch(100.0) == 1
    assert default_batch(64_000.0) == 64
    assert default_batch(10e6) == 256


def test_result_rate() -> None:
    assert SendResult(500, 0.25, 0, 3, None, "count").pps == 2000.0
    assert SendResult(0, 0.0, 0, 0, 10.0, "duration").pps == 0.0


# --- argument checks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "kw", "message"),
    [
        ([], {"count": 1}, "no frames"),
        ([frame(0)], {}, "count or a duration"),
        ([frame(0)], {"count": -1}, "count must be >= 0"),
        ([frame(0)], {"duration": 0.0}, "duration must be > 0"),
        ([frame(0)], {"duration": math.nan}, "duration must be > 0"),
        ([frame(0)], {"count": 1, "pps": 0.0}, "pps must be > 0"),
        ([frame(0)], {"count": 1, "pps": math.inf}, "pps must be > 0"),
        ([frame(0)], {"count": 1, "batch": 0}, "batch must be in 1..1024"),
        ([frame(0)], {"count": 1, "batch": 1025}, "batch must be in 1..1024"),
        ([frame(0), b"\x00" * 13], {"count": 1}, "frame 1 is 13 bytes"),
        ([frame(0, 1515)], {"count": 1, "mtu": 1500}, "frame 0 carries 1501 bytes"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(
    frames: list[bytes], kw: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"pps": None, "count": None, "duration": None, "batch": 8} | kw
    with pytest.raises(ValueError, match=message):
        validate(frames, **args)  # type: ignore[arg-type]


def test_unknown_interface_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no network interface 'icpn-nonexist'"):
        send_frames("icpn-nonexist", [frame(0)], count=1, progress=False)


def test_ring_windows_wrap_around_the_frames() -> None:
    frames = [frame(i, 60 + i) for i in range(5)]
    ring = sender._Ring(frames, batch=4)
    assert len(ring.msgs) == 5 + 4 - 1
    for start in range(5):  # a batch of 4 starting at any frame
        for j in range(4):
            hdr = sender._Mmsghdr.from_address(ring.base + (start + j) * ring.stride).msg_hdr
            iov = hdr.msg_iov.contents
            assert hdr.msg_iovlen == 1
            assert ctypes.string_at(iov.iov_base, iov.iov_len) == frames[(start + j) % 5]


# --- on a veth pair --------------------------------------------------------------------------


@pytest.fixture
def pair() -> Iterator[veth.VethPair]:
    p = veth.pair_names(os.getpid(), 0xC, 1)
    veth.create([p])
    try:
        yield p
    finally:
        veth.delete([p])
    assert p.switch_if not in veth.existing_names()


def sniffer(ifname: str) -> socket.socket:
    sock = veth.capture_socket(ifname)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
    sock.settimeout(0.5)
    return sock


def drain(sock: socket.socket, limit: int) -> list[bytes]:
    """Frames with our EtherType queued on the socket (at most ``limit`` reads)."""
    got = []
    for _ in range(limit):
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        if data[12:14] == MARK_TYPE:
            got.append(data)
    return got


@pytest.mark.netadmin
@pytest.mark.parametrize("bypass", [False, True], ids=["qdisc", "qdisc_bypass"])
def test_exactly_n_frames_arrive_in_order(pair: veth.VethPair, bypass: bool) -> None:
    frames = [frame(i, 60 + 20 * i) for i in range(7)]
    n = 3001  # not a multiple of the batch or of the frame count
    with sniffer(pair.switch_if) as sock:
        before = rx_packets(pair.switch_if)
        result = send_frames(
            pair.host_if,
            frames,
            count=n,
            pps=200_000,
            batch=64,
            qdisc_bypass=bypass,
            progress=False,
        )
        got = drain(sock, n + 100)
    assert result.sent == n and result.stopped_by == "count" and result.errors == 0
    assert rx_packets(pair.switch_if) - before == n
    assert len(got) == n
    assert got == [frames[k % 7] for k in range(n)], "round robin over the frames, in order"


@pytest.mark.netadmin
def test_flat_out_count_and_paced_duration_bounds(pair: veth.VethPair) -> None:
    result = send_frames(pair.host_if, [frame(1)], count=5000, progress=True)  # bar on
    assert result.sent == 5000 and result.stopped_by == "count" and result.target_pps is None
    pps, seconds, batch = 20_000.0, 0.3, 16
    paced = send_frames(
        pair.host_if, [frame(2)], pps=pps, duration=seconds, batch=batch, progress=False
    )
    assert paced.stopped_by == "duration"
    # the bucket hands out at most rate * elapsed + its burst (two batches)
    assert 0 < paced.sent <= pps * paced.elapsed_s + 2 * batch
