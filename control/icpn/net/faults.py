"""Faults injected into an emulated link while traffic runs (the path-degradation study).

What this kernel offers decides how: it has no ``sch_netem`` (no random loss, no delay),
no tc classifier to police with (``matchall``, ``u32``, ``flower`` are missing) and no
nftables; it has ``tbf``. So a fault is a **capacity cut**: the link's queue (the pfifo
:func:`icpn.net.emulation.emulate` puts under Mininet's HTB class ``5:1``) is swapped for a
token bucket filter of a lower rate with a short buffer; what arrives faster than the cut
rate is dropped there, before the next switch counts it. Repairing swaps the pfifo back.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

#: Mininet's HTB class on a shaped interface (TCLink), the pfifo's handle under it, and the
#: cut's handle (a new kind of qdisc cannot take the old one's handle in place).
HTB_CLASS = "5:1"
QUEUE_HANDLE = "10:"
CUT_HANDLE = "11:"


class FaultError(RuntimeError):
    """tc refused a fault; the message has its words."""


def _tc(*args: str) -> None:
    done = subprocess.run(["tc", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FaultError(f"tc {' '.join(args)}: {done.stderr.strip() or done.returncode}")


@dataclass(frozen=True)
class CapacityCut:
    """A cut of interface ``ifname`` to ``rate_kbit`` kbit/s with ``buffer_bytes`` of queue;
    :meth:`repair` gives back a pfifo of ``queue_packets``."""

    ifname: str
    rate_kbit: int
    buffer_bytes: int = 15_000
    queue_packets: int = 100

    def __post_init__(self) -> None:
        if self.rate_kbit < 8 or self.buffer_bytes < 1600 or self.queue_packets < 1:
            raise ValueError("a cut needs >= 8 kbit/s, a buffer of a frame or more, a queue")

    def inject(self) -> None:
        _tc("qdisc", "del", "dev", self.ifname, "parent", HTB_CLASS, "handle", QUEUE_HANDLE)
        _tc(
            "qdisc", "add", "dev", self.ifname, "parent", HTB_CLASS, "handle", CUT_HANDLE,
            "tbf", "rate", f"{self.rate_kbit}kbit", "burst", "3000", "limit",
            str(self.buffer_bytes),
        )  # fmt: skip

    def repair(self) -> None:
        _tc("qdisc", "del", "dev", self.ifname, "parent", HTB_CLASS, "handle", CUT_HANDLE)
        _tc(
            "qdisc", "add", "dev", self.ifname, "parent", HTB_CLASS, "handle", QUEUE_HANDLE,
            "pfifo", "limit", str(self.queue_packets),
        )  # fmt: skip
