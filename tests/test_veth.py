"""veth naming and the reaping of pairs left by dead processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icpn.targets import veth


def test_names_fit_ifnamsiz_for_the_largest_pid() -> None:
    pair = veth.pair_names(owner_pid=4194304, switch_no=15, port=64)
    assert len(pair.switch_if) <= veth.IFNAMSIZ
    assert pair.switch_if.endswith("s") and pair.host_if.endswith("h")


def test_too_long_name_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        veth.pair_names(owner_pid=4194304, switch_no=0xFFFF, port=100)


@pytest.mark.netadmin
def test_create_and_delete_leave_nothing() -> None:
    pairs = [veth.pair_names(9999991, 0, p) for p in (1, 2)]
    veth.create(pairs)
    try:
        assert {p.switch_if for p in pairs} | {p.host_if for p in pairs} <= veth.existing_names()
        disabled = Path(f"/proc/sys/net/ipv6/conf/{pairs[0].host_if}/disable_ipv6").read_text()
        assert disabled.strip() == "1", "IPv6 must be off so the kernel sends nothing"
    finally:
        veth.delete(pairs)
    assert not ({p.switch_if for p in pairs} & veth.existing_names())


@pytest.mark.netadmin
def test_reap_removes_pairs_of_dead_owners_only() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    orphan = [veth.pair_names(int(child.stdout), 0, 1)]  # its owner has exited
    mine = [veth.pair_names(os.getpid(), 14, 1)]
    veth.create(orphan + mine)
    try:
        reaped = veth.reap_stale()
        assert orphan[0].switch_if in reaped
        names = veth.existing_names()
        assert orphan[0].host_if not in names
        assert mine[0].switch_if in names
    finally:
        veth.delete(orphan + mine)


def test_capture_socket_takes_its_interface_and_ethertype_only() -> None:
    """On loopback: a UDP datagram's frame arrives on an all-EtherType capture of lo, and
    not on a capture of lo for another EtherType (the socket is never open to everything)."""
    marker = b"icpn-capture-socket-test"
    with (
        veth.capture_socket("lo") as every,
        veth.capture_socket("lo", 0x88B5) as other,  # IEEE 802 local experimental
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        every.settimeout(1.0)
        other.settimeout(0.3)
        udp.sendto(marker, ("127.0.0.1", 9))
        deadline = time.monotonic() + 2.0
        seen = False
        while not seen and time.monotonic() < deadline:
            seen = marker in every.recv(65535)
        assert seen
        with pytest.raises(TimeoutError):
            other.recv(65535)
