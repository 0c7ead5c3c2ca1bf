"""A fast sender of prebuilt frames: an AF_PACKET socket bound to one interface, frames sent
round-robin in batches with one sendmmsg(2) call per batch (through ctypes), paced by a token
bucket or as fast as the kernel takes them, bounded by a count and/or a duration.

The frames are copied once into one buffer, and the ``struct mmsghdr`` array is laid out once
for the whole cycle (extended by a batch so that any window wraps around): a batch starting at
frame *i* is the array from element *i*, so the send loop builds nothing per packet. With
``qdisc_bypass`` the socket sets PACKET_QDISC_BYPASS (packet(7)) and frames go straight to the
driver, skipping the qdisc layer (and with it tc egress); on this machine's veth
pairs it was no faster (``bench/sender.py`` measures both), so it is off by default.

Lost frames: sendmmsg reports what the kernel accepted. A veth hands frames to its peer's
backlog, which drops silently when full (``net.core.netdev_max_backlog``); compare with what
arrived (e.g. ``/sys/class/net/<peer>/statistics/rx_packets``, :func:`rx_packets`), as
``bench/sender.py`` does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import math
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

SOL_PACKET = 263
PACKET_QDISC_BYPASS = 20
#: sendmmsg(2) sends at most UIO_MAXIOV messages per call.
MAX_BATCH = 1024
ETH_HEADER_BYTES = 14
#: Errors after which a send is retried: the device or its queue is momentarily full.
TRANSIENT_ERRNOS = frozenset({errno.ENOBUFS, errno.EAGAIN, errno.EINTR})
#: Consecutive transient errors (without one frame accepted) after which the send gives up.
MAX_CONSECUTIVE_ERRORS = 10_000
StopReason = Literal["count", "duration", "interrupted"]


class SendError(RuntimeError):
    """The kernel refused the frames for a reason retrying will not fix."""


class _Iovec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _Msghdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.POINTER(_Iovec)),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _Mmsghdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _Msghdr), ("msg_len", ctypes.c_uint))


def _libc_sendmmsg() -> Callable[[int, int, int, int], int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fn = libc.sendmmsg
    fn.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
    fn.restype = ctypes.c_int
    call: Callable[[int, int, int, int], int] = fn
    return call


class TokenBucket:
    """Tokens accrue at ``rate`` per second up to ``burst``; a frame costs one token. The
    bucket starts full. ``now`` is any monotonic clock in seconds, passed in so that the
    arithmetic is testable without sleeping."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if not (0 < rate < math.inf):
            raise ValueError(f"rate must be > 0 and finite, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, not {burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, want: int, now: float) -> int:
        """Take up to ``want`` whole tokens; return how many were taken."""
        self._refill(now)
        got = min(want, int(self.tokens + 1e-9))  # no token lost to float rounding
        self.tokens -= got
        return max(got, 0)

    def give_back(self, n: int) -> None:
        """Return tokens for frames that were not sent after all."""
        self.tokens = min(float(self.burst), self.tokens + n)

    def wait(self, want: int, now: float) -> float:
        """Seconds from ``now`` until ``min(want, burst)`` tokens are there (0 if already)."""
        self._refill(now)
        need = min(want, self.burst) - self.tokens
        return max(0.0, need / self.rate)


def default_batch(pps: float | None) -> int:
    """Batch size: 256 flat out; paced, about 1 ms of frames (so sleeps are >= ~1 ms,
    which time.sleep honours), between 1 and 256."""
    if pps is None:
        return 256
    return max(1, min(256, int(pps / 1000)))


@dataclass(frozen=True)
class SendResult:
    sent: int  #: frames the kernel accepted
    elapsed_s: float
    errors: int  #: sendmmsg calls that failed with a transient error (retried)
    calls: int  #: sendmmsg calls made
    target_pps: float | None  #: None: as fast as possible
    stopped_by: StopReason

    @property
    def pps(self) -> float:
        """Achieved rate: frames accepted per second of sending."""
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


#: ioctl(2) request for an interface's MTU (linux/sockios.h).
SIOCGIFMTU = 0x8921


def interface_mtu(ifname: str) -> int:
    """The MTU of ``ifname`` in this process's network namespace. Asked with an ioctl on a
    socket, not read from /sys: under ``icpn net exec`` the process is in the host's
    namespace while /sys/class/net still shows the root namespace's interfaces."""
    if not 0 < len(ifname.encode()) < 16:
        raise ValueError(f"{ifname!r} is not an interface name (1..15 octets)")
    request = struct.pack("16si12x", ifname.encode(), 0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, request)
        except OSError:
            raise ValueError(f"no network interface {ifname!r}") from None
    mtu: int = struct.unpack("16si12x", answer)[1]
    return mtu


def rx_packets(ifname: str) -> int:
    """The interface's received-packets counter."""
    return int((Path("/sys/class/net") / ifname / "statistics" / "rx_packets").read_text())


def validate(
    frames: Sequence[bytes],
    *,
    pps: float | None,
    count: int | None,
    duration: float | None,
    batch: int,
    mtu: int | None = None,
) -> None:
    """Raise ValueError with the reason if these arguments cannot make a bounded send."""
    if not frames:
        raise ValueError("no frames to send")
    if count is None and duration is None:
        raise ValueError("give a count or a duration (or both): an unbounded send is refused")
    if count is not None and count < 0:
        raise ValueError(f"count must be >= 0, not {count}")
    if duration is not None and not (0 < duration < math.inf):
        raise ValueError(f"duration must be > 0 seconds and finite, not {duration}")
    if pps is not None and not (0 < pps < math.inf):
        raise ValueError(f"pps must be > 0 and finite (None: as fast as possible), not {pps}")
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be in 1..{MAX_BATCH} (sendmmsg's limit), not {batch}")
    for i, frame in enumerate(frames):
        if len(frame) < ETH_HEADER_BYTES:
            raise ValueError(f"frame {i} is {len(frame)} bytes, shorter than an Ethernet header")
        if mtu is not None and len(frame) - ETH_HEADER_BYTES > mtu:
            raise ValueError(
                f"frame {i} carries {len(frame) - ETH_HEADER_BYTES} bytes, "
                f"more than the interface MTU {mtu}: generate the trace for this link "
                f"(icpn traffic gen mice --mtu {mtu}; gen roce --link-mtu {mtu} with a smaller "
                "--mtu)"
            )


class _Ring:
    """The frames in one buffer and an mmsghdr array covering a cycle plus one batch."""

    def __init__(self, frames: Sequence[bytes], batch: int) -> None:
        self.n = len(frames)
        self.buf = ctypes.create_string_buffer(b"".join(frames), sum(map(len, frames)))
        base = ctypes.addressof(self.buf)
        self.iov = (_Iovec * self.n)()
        off = 0
        for i, frame in enumerate(frames):
            self.iov[i].iov_base = base + off
            self.iov[i].iov_len = len(frame)
            off += len(frame)
        span = self.n + batch - 1
        self.msgs = (_Mmsghdr * span)()
        for j in range(span):
            hdr = self.msgs[j].msg_hdr
            hdr.msg_iov = ctypes.pointer(self.iov[j % self.n])
            hdr.msg_iovlen = 1
        self.base = ctypes.addressof(self.msgs)
        self.stride = ctypes.sizeof(_Mmsghdr)


def open_socket(ifname: str, *, qdisc_bypass: bool = False) -> socket.socket:
    """An AF_PACKET raw socket bound to ``ifname`` for sending only (protocol 0)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, 0))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        if qdisc_bypass:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def send_frames(
    ifname: str,
    frames: Sequence[bytes],
    *,
    pps: float | None = None,
    count: int | None = None,
    duration: float | None = None,
    batch: int | None = None,
    qdisc_bypass: bool = False,
    progress: bool = True,
) -> SendResult:
    """Send ``frames`` round-robin on ``ifname`` until ``count`` frames went or ``duration``
    seconds passed (whichever first; at least one is required), at ``pps`` frames per second
    (token bucket holding up to two batches, sent a batch at a time) or, with ``pps=None``,
    as fast as possible.

    Ctrl-C stops the send and returns what was sent (``stopped_by="interrupted"``).
    """
    batch = batch if batch is not None else default_batch(pps)
    validate(frames, pps=pps, count=count, duration=duration, batch=batch)
    validate(
        frames, pps=pps, count=count, duration=duration, batch=batch, mtu=interface_mtu(ifname)
    )
    ring = _Ring(frames, batch)
    sendmmsg = _libc_sendmmsg()
    limit = count if count is not None else math.inf
    sock = open_socket(ifname, qdisc_bypass=qdisc_bypass)
    fd = sock.fileno()
    sent = errors = calls = consecutive = 0
    pos = 0
    stopped: StopReason = "count"
    bars = Progress(
        TextColumn("sending on {task.fields[ifname]}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} frames"),
        TimeElapsedColumn(),
        disable=not progress,
        transient=True,
    )
    total = count if count is not None else None
    clock = time.perf_counter
    start = clock()
    try:
        with bars:
            task = bars.add_task("send", total=total, ifname=ifname)
            start = clock()
            deadline = start + duration if duration is not None else math.inf
            # a burst of two batches absorbs sleep overshoot: the long-run rate stays on target
            bucket = TokenBucket(pps, 2 * batch, start) if pps is not None else None
            next_update = start + 0.1
            while True:
                now = clock()
                if sent >= limit:
                    stopped = "count"
                    break
                if now >= deadline:
                    stopped = "duration"
                    break
                want = int(min(batch, limit - sent))
                if bucket is not None:
                    k = bucket.take(want, now)
                    if k == 0:
                        time.sleep(min(bucket.wait(want, now), deadline - now))
                        continue
                else:
                    k = want
                calls += 1
                r = sendmmsg(fd, ring.base + pos * ring.stride, k, 0)
                if r < 0:
                    code = ctypes.get_errno()
                    if code not in TRANSIENT_ERRNOS:
                        raise SendError(f"sendmmsg on {ifname}: {os.strerror(code)}")
                    errors += 1
                    consecutive += 1
                    if consecutive >= MAX_CONSECUTIVE_ERRORS:
                        raise SendError(
                            f"sendmmsg on {ifname}: {consecutive} transient errors in a row "
                            f"({os.strerror(code)}); giving up"
                        )
                    if bucket is not None:
                        bucket.give_back(k)
                    time.sleep(50e-6)
                    continue
                consecutive = 0
                sent += r
                pos = (pos + r) % ring.n
                if bucket is not None and r < k:
                    bucket.give_back(k - r)
                if progress and now >= next_update:
                    bars.update(task, completed=sent)
                    next_update = now + 0.1
            elapsed = clock() - start
            bars.update(task, completed=sent)
    except KeyboardInterrupt:
        stopped = "interrupted"
        elapsed = clock() - start
    finally:
        sock.close()
    return SendResult(sent, elapsed, errors, calls, pps, stopped)
