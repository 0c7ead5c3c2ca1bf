"""``make demo`` until the traffic studies land: one BMv2 router between two hosts.

h1 (2001:db8:1::10) ── port 1 ┤ BMv2 running icpn.p4 ├ port 2 ── h2 (2001:db8:2::10)

The hosts are network namespaces; the controller side is this module, which pushes the
pipeline and the routes through the project's P4Runtime client, then pings h2 from h1 and
reads back the switch's drop counters. Everything is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from icpn import build, netns
from icpn.bmv2 import Bmv2Options, Bmv2Switch
from icpn.constants import DropReason
from icpn.p4rt import SwitchTarget, SyncSwitchClient
from icpn.routing import DROP_COUNTER, NextHop, my_station, route

ROUTER_MAC = "00:00:00:00:aa:01"
HOSTS = {  # name: (switch port, address/prefix, gateway, routed prefix)
    "h1": (1, "2001:db8:1::10/64", "2001:db8:1::1", "2001:db8:1::/64"),
    "h2": (2, "2001:db8:2::10/64", "2001:db8:2::1", "2001:db8:2::/64"),
}


@dataclass(frozen=True)
class DemoResult:
    transmitted: int
    received: int
    rtt_avg_ms: float | None
    drops: dict[str, int]
    log_dir: str


def run(pings: int = 5, progress: Callable[[str], None] = print) -> DemoResult:
    progress("compiling p4src/v1model/icpn.p4 ...")
    art = build.compile_program("icpn")
    netns.reap_stale()
    hosts = {name: netns.Host(name) for name in HOSTS}
    with Bmv2Switch("demo", Bmv2Options(num_ports=len(HOSTS))) as switch:
        progress(f"BMv2 up: P4Runtime at {switch.grpc_address}, logs in {switch.log_dir}")
        try:
            next_hops = []
            for name, (port, address, gateway, prefix) in HOSTS.items():
                hosts[name].create()
                mac = hosts[name].attach(switch.host_interfaces[port], address, gateway, ROUTER_MAC)
                next_hops.append((prefix, NextHop(port, ROUTER_MAC, mac)))
                progress(f"host {name}: {address} on switch port {port} (MAC {mac})")
            target = SwitchTarget(
                "demo", switch.grpc_address, p4info=art.p4info, p4blob=art.json, force_pipeline=True
            )
            with SyncSwitchClient(target) as client:
                client.insert([my_station(ROUTER_MAC)] + [route(p, [nh]) for p, nh in next_hops])
                progress(
                    f"pipeline pushed, {1 + len(next_hops)} entries written; pinging h2 from h1"
                )
                h2_address = HOSTS["h2"][1].split("/")[0]
                out = hosts["h1"].run(
                    "ping", "-6", "-c", str(pings), "-i", "0.2", "-W", "2", h2_address, check=False
                )
                drops = {
                    r.name: int(client.read_counter(DROP_COUNTER, r).packet_count)
                    for r in DropReason
                    if r is not DropReason.NONE
                }
        finally:
            for host in hosts.values():
                host.delete()
    return _parse_ping(out, drops, str(switch.log_dir))


def _parse_ping(out: str, drops: dict[str, int], log_dir: str) -> DemoResult:
    counts = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    return DemoResult(
        transmitted=int(counts[1]) if counts else 0,
        received=int(counts[2]) if counts else 0,
        rtt_avg_ms=float(rtt[1]) if rtt else None,
        drops=drops,
        log_dir=log_dir,
    )
