"""Linux network namespaces as hosts: ``ip netns`` wrapped, named so leftovers can be reaped.

A host namespace is ``icpn-<pid>-<name>``; :func:`reap_stale` deletes those whose creating
process is gone, the same contract as :mod:`icpn.targets.veth`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

_NAME_RE = re.compile(r"^icpn-(?P<pid>\d+)-(?P<host>[\w.-]+)$")


class NetnsError(RuntimeError):
    """A command in or about a namespace failed; carries its stderr."""


def _run(cmd: Sequence[str], *, check: bool = True) -> str:
    result = subprocess.run(list(cmd), capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Host:
    """A namespace standing for one host."""

    name: str

    @property
    def netns(self) -> str:
        return f"icpn-{os.getpid()}-{self.name}"

    def run(self, *cmd: str, check: bool = True) -> str:
        """Run a command inside the host and return its stdout; with ``check``, raise
        NetnsError if it fails."""
        return _run(["ip", "netns", "exec", self.netns, *cmd], check=check)

    def create(self) -> None:
        _run(["ip", "netns", "add", self.netns])
        self.run("ip", "link", "set", "lo", "up")

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)

    def attach(self, ifname: str, address: str, gateway: str, gateway_mac: str) -> str:
        """Move ``ifname`` in, give it an IPv6 address and a default route through
        ``gateway`` (whose MAC is pinned, so no neighbour discovery is needed); return the
        interface's MAC."""
        _run(["ip", "link", "set", ifname, "netns", self.netns])
        self.run("sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=0")
        self.run("ip", "-6", "addr", "add", address, "dev", ifname, "nodad")
        self.run("ip", "link", "set", ifname, "up")
        self.run("ip", "-6", "route", "add", "default", "via", gateway, "dev", ifname)
        self.run(
            "ip",
            "-6",
            "neigh",
            "replace",
            gateway,
            "lladdr",
            gateway_mac,
            "dev",
            ifname,
            "nud",
            "permanent",
        )
        return self.run("cat", f"/sys/class/net/{ifname}/address").strip()


def connect(a: Host, a_addr: str, b: Host, b_addr: str, name: str) -> tuple[str, str]:
    """A veth between two hosts, addressed (``addr/len``) and up; returns the interface
    names in ``a`` and in ``b``. Deleting either namespace removes it."""
    a_if, b_if = f"{name}a", f"{name}b"
    _run(
        [
            "ip",
            "link",
            "add",
            a_if,
            "netns",
            a.netns,
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            b.netns,
        ]
    )
    for host, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
        host.run("ip", "-6", "addr", "add", addr, "dev", ifname, "nodad")
        host.run("ip", "link", "set", ifname, "up")
    return a_if, b_if


def existing() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def reap_stale() -> list[str]:
    """Delete icpn namespaces whose creator is dead; return their names."""
    stale = []
    for name in existing():
        match = _NAME_RE.match(name)
        if match and not os.path.exists(f"/proc/{match['pid']}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            stale.append(name)
    return stale
