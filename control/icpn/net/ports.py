"""Who listens on a TCP port, from /proc (Linux), so that the lab refuses to start a switch
on a gRPC port another process holds and says which process that is.

Why not just start the switch: BMv2's gRPC server binds with SO_REUSEPORT, so a second
switch on a taken port starts without complaint and the kernel spreads new connections
over both; the controller may then attach to a stale switch left by an earlier run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: /proc/net/tcp's state code for LISTEN (include/net/tcp_states.h).
_LISTEN = "0A"


@dataclass(frozen=True)
class Listener:
    port: int
    pid: int | None  # None: the socket's owner is not visible to us
    command: str

    def describe(self) -> str:
        if self.pid is None:
            return f"port {self.port} is already in use (owner not visible)"
        return f"port {self.port} is already in use by pid {self.pid} ({self.command})"


def _listening_inodes(port: int, proc: Path) -> set[str]:
    found: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            if int(fields[1].rpartition(":")[2], 16) == port:
                found.add(fields[9])
    return found


def command_of(pid: int, proc: Path = Path("/proc")) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def listener(port: int, proc: Path = Path("/proc")) -> Listener | None:
    """The process listening on TCP ``port`` (any address, IPv4 or IPv6), or None."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    sockets = {f"socket:[{inode}]" for inode in inodes}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(entry / "fd" / fd) in sockets:
                    pid = int(entry.name)
                    return Listener(port, pid, command_of(pid, proc))
            except OSError:
                continue
    return Listener(port, None, "")


def port_of(address: str) -> int:
    """The port of ``host:port`` or ``[v6]:port``."""
    return int(address.rpartition(":")[2])
