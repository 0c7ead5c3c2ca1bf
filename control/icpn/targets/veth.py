"""veth pairs for BMv2 ports, named so that leftovers can always be found and removed.

Each pair is ``ic<pid>-<n>p<port><side>``: the creating process id (hex), a per-process
switch counter, the switch port number and the side (``s`` bound to BMv2, ``h`` used by tests
and hosts). With the owner's pid in the name, :func:`reap_stale` removes pairs whose owner has
died without cleaning up (SIGKILL, a crashed CI job), and nothing else.

IPv6 is disabled on both ends before they come up, so the kernel never sends router
solicitations or MLD reports into the switch: every packet a test sees is one it caused.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

_NAME_RE = re.compile(r"^ic(?P<pid>[0-9a-f]+)-(?P<n>[0-9a-f]+)p(?P<port>\d+)(?P<side>[sh])$")
IFNAMSIZ = 15  # Linux limit on interface names, without the terminating NUL


class LinkError(RuntimeError):
    """An ``ip`` command failed; the message carries its stderr."""


@dataclass(frozen=True)
class VethPair:
    """One switch port: ``switch_if`` is given to BMv2, ``host_if`` to the test or host."""

    port: int
    switch_if: str
    host_if: str


def pair_names(owner_pid: int, switch_no: int, port: int) -> VethPair:
    stem = f"ic{owner_pid:x}-{switch_no:x}p{port}"
    pair = VethPair(port, f"{stem}s", f"{stem}h")
    if len(pair.switch_if) > IFNAMSIZ:
        raise ValueError(f"interface name {pair.switch_if!r} exceeds {IFNAMSIZ} characters")
    return pair


def hairpin_names(owner_pid: int, switch_no: int, port_a: int, port_b: int) -> VethPair:
    """A veth whose two ends are both switch ports: a cable from ``port_a`` to ``port_b``.
    Both ends are named as switch ends, so the reaper recognises it."""
    a = pair_names(owner_pid, switch_no, port_a).switch_if
    b = pair_names(owner_pid, switch_no, port_b).switch_if
    return VethPair(port_a, a, b)


def _ip_batch(commands: list[str], *, check: bool = True) -> None:
    if not commands:
        return
    result = subprocess.run(
        ["ip", "-batch", "-"],
        input="\n".join(commands) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise LinkError(f"ip -batch failed: {result.stderr.strip()}")


def _disable_ipv6(ifname: str) -> None:
    Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")


def create(pairs: list[VethPair], *, mtu: int = 9000) -> None:
    """Create the pairs, silence IPv6 on them, bring them up. All or nothing."""
    _ip_batch([f"link add {p.switch_if} type veth peer name {p.host_if}" for p in pairs])
    try:
        for p in pairs:
            _disable_ipv6(p.switch_if)
            _disable_ipv6(p.host_if)
        _ip_batch(
            [f"link set {name} mtu {mtu} up" for p in pairs for name in (p.switch_if, p.host_if)]
        )
    except BaseException:
        delete(pairs)
        raise


def delete(pairs: list[VethPair]) -> None:
    """Delete the pairs that exist (deleting one end removes its peer)."""
    present = existing_names()
    _ip_batch([f"link del {p.switch_if}" for p in pairs if p.switch_if in present], check=False)


def existing_names() -> set[str]:
    """Names of all icpn veth ends on this host."""
    out = subprocess.run(
        ["ip", "-o", "link", "show", "type", "veth"], capture_output=True, text=True, check=False
    ).stdout
    names = set()
    for line in out.splitlines():
        # "12: ic1a2b-0p1s@ic1a2b-0p1h: <...>"
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        if _NAME_RE.match(name):
            names.add(name)
    return names


def owned_by(pid: int) -> set[str]:
    return {n for n in existing_names() if int(_NAME_RE.match(n)["pid"], 16) == pid}  # type: ignore[index]


def pid_alive(pid: int) -> bool:
    """Whether a process exists (signal 0: nothing is sent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale() -> list[str]:
    """Delete the switch ends of pairs whose owning process is gone; return their names."""
    stale = []
    for name in sorted(existing_names()):
        match = _NAME_RE.match(name)
        assert match is not None
        if match["side"] == "s" and not pid_alive(int(match["pid"], 16)):
            stale.append(name)
    _ip_batch([f"link del {name}" for name in stale], check=False)
    return stale


#: Every EtherType (linux/if_ether.h): what a capture socket takes unless told otherwise.
ETH_P_ALL = 0x0003


def capture_socket(ifname: str, ethertype: int = ETH_P_ALL) -> socket.socket:
    """An AF_PACKET raw socket that receives the ``ethertype`` frames of ``ifname`` only.

    Why not ``socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL))`` and then ``bind``: such a
    socket receives from every interface until bind() returns, so a frame from elsewhere
    (loopback gRPC between a switch and its controller, seen in CI) can wait in its queue
    and be read as the switch's. Opened with protocol 0 it receives nothing; bind() then
    sets the interface and the EtherType together (packet(7)). Python takes the EtherType
    in host order here and converts it."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((ifname, ethertype))
    except OSError:
        sock.close()
        raise
    return sock
