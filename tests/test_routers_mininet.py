"""Routers that answer, in the Mininet lab (issue 16 part 2, issue 14 part 3): traceroute
lists the hops (through an SR policy as Linux does for an encapsulated packet), routers
answer pings to their addresses, full-size packets cross the core encapsulated, and a packet
that does not fit a link gets its source a Packet Too Big.

Four switches (as tests/test_srte_mininet.py's ``END_X``): routing follows the IGP metric,
tr1-tr2-tr4; the policy ``fast`` to h2 has a 5 ms bound and takes tr1-tr3-tr2-tr4 (End.X at
tr3). Every core link has the default (jumbo) MTU (tests/test_mtu_mininet.py narrows one).
The routers advertise themselves every few seconds (Router Advertisements).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from icpn.net.emulation import mininet_available

pytestmark = pytest.mark.bmv2

INTENT = """\
switches:
  tr1:
    grpc: 127.0.0.1:50431
    router_mac: 00:00:00:00:04:31
    sid: fc00:431::1
    ports: {9: {role: edge_untrusted}}
  tr2: {grpc: 127.0.0.1:50432, router_mac: 00:00:00:00:04:32, sid: fc00:432::1}
  tr3: {grpc: 127.0.0.1:50433, router_mac: 00:00:00:00:04:33, sid: fc00:433::1}
  tr4:
    grpc: 127.0.0.1:50434
    router_mac: 00:00:00:00:04:34
    sid: fc00:434::1
    decap_sid: fc00:434::d6
    ports: {9: {role: edge_untrusted}}
links:
  - {a: "tr1:1", b: "tr2:1", latency_ms: 10, capacity_gbps: 10, metric: 1}
  - {a: "tr2:2", b: "tr4:1", latency_ms: 1, capacity_gbps: 10, metric: 1}
  - {a: "tr1:2", b: "tr3:1", latency_ms: 1, capacity_gbps: 10, metric: 5}
  - {a: "tr3:2", b: "tr2:3", latency_ms: 1, capacity_gbps: 10, metric: 10}
hosts:
  h1: {switch: tr1, port: 9, address: "2001:db8:61::10/64", mac: "00:00:00:00:61:10"}
  h2: {switch: tr4, port: 9, address: "2001:db8:62::10/64", mac: "00:00:00:00:62:10"}
apn_policies:
  - name: fast
    app_group: 7
    sr_policy: fast
    classify:
      - {ipv6_dst: "2001:db8:62::/64"}
sr_policies:
  - {name: fast, headend: tr1, endpoint: tr4, max_latency_ms: 5}
routers: {advertise: {interval_s: 4, lifetime_s: 600}}
emulation: {bandwidth_scale: 0.01}
"""
GATEWAY = "2001:db8:61::1"
H2 = "2001:db8:62::10"
SIDS = {name: f"fc00:43{name[-1]}::1" for name in ("tr1", "tr2", "tr3", "tr4")}
#: outer IPv6 40 + HBH with APN6 16 + SRH with two segments 40: what tr1 pushes
ENCAP = 96

NET = [sys.executable, "-m", "icpn.cli", "net"]


def net(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NET, *args], capture_output=True, text=True, timeout=timeout)


def ping(
    destination: str,
    *,
    count: int = 2,
    interval: float = 0.3,
    wait: int = 3,
    size: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``ping -6`` from h1; with ``size``, that payload with fragmentation forbidden."""
    command = ["ping", "-6", "-c", str(count), "-i", str(interval), "-W", str(wait)]
    if size is not None:
        command += ["-M", "do", "-s", str(size)]
    return net("exec", "h1", "--", *command, destination)


def hops(output: str) -> list[str]:
    """The address of each hop in ``traceroute -n -q 1`` output ('*' for no answer)."""
    found = []
    for line in output.splitlines():
        match = re.match(r"^\s*\d+\s+(\S+)", line)
        if match:
            found.append(match.group(1))
    return found


def traceroute(destination: str) -> list[str]:
    result = net(
        "exec",
        "h1",
        "--",
        "traceroute",
        "-6",
        "-n",
        "-q",
        "1",
        "-N",
        "1",
        "-w",
        "2",
        "-m",
        "6",
        destination,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return hops(result.stdout)


@contextmanager
def running(directory: Path, intent: str) -> Iterator[Path]:
    reason = mininet_available()
    if reason is not None:
        pytest.skip(f"needs Mininet: {reason}")
    path = directory / "routers.yaml"
    path.write_text(intent)
    up = net("up", str(path), "--detach")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # h1 resolves its gateway first (neighbour discovery through the controller)
        answer = ping(GATEWAY)
        assert answer.returncode == 0, answer.stdout + answer.stderr
        yield path
    finally:
        down = net("down", timeout=60)
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if subprocess.run(["which", "traceroute"], capture_output=True).returncode != 0:
        pytest.skip("needs traceroute (Debian package traceroute; make setup installs it)")
    with running(tmp_path_factory.mktemp("routers"), INTENT) as path:
        yield path


def test_routers_answer_pings_to_their_addresses(lab: object) -> None:
    for address in (GATEWAY, SIDS["tr3"], SIDS["tr4"]):
        answer = ping(address)
        assert answer.returncode == 0 and "2 received" in answer.stdout, (
            answer.stdout + answer.stderr
        )
        assert f"from {address}" in answer.stdout.lower(), answer.stdout


def test_traceroute_lists_each_routed_hop(lab: object) -> None:
    """To tr4's own address, by routing (tr1-tr2-tr4): every router spends a hop and
    answers its expiry; tr4 answers the probe itself (Port Unreachable)."""
    assert traceroute(SIDS["tr4"]) == [GATEWAY, SIDS["tr2"], SIDS["tr4"]]


def test_traceroute_through_an_sr_policy_shows_the_tunnel_ends(lab: object) -> None:
    """To h2 through the policy (tr1-tr3-tr2-tr4): the headend spends the probe's hop, the
    tunnel's transit and End.X nodes spend only the outer header's, the decapsulating node
    the probe's again; so the hops are the headend, the tunnel's end and h2, as for a Linux
    seg6 encapsulation."""
    assert traceroute(H2) == [GATEWAY, SIDS["tr4"], H2]


def test_full_size_packets_cross_the_jumbo_core_encapsulated(lab: object) -> None:
    answer = ping(H2, count=3, size=1452)  # 1500 octets of IPv6, 1596 encapsulated
    assert answer.returncode == 0 and "3 received" in answer.stdout, answer.stdout + answer.stderr


#: In h1: sends a Router Solicitation, prints the first Router Advertisement heard within
#: the timeout (source, router lifetime, MTU, prefixes) as one line, or nothing.
RA_LISTENER = """
import sys
import time
from scapy.all import AsyncSniffer, Ether, IPv6, sendp
from scapy.layers.inet6 import (ICMPv6ND_RA, ICMPv6ND_RS, ICMPv6NDOptMTU,
                                ICMPv6NDOptPrefixInfo)
iface = sys.argv[1]
sniffer = AsyncSniffer(iface=iface, count=1, lfilter=lambda p: ICMPv6ND_RA in p)
sniffer.start()
time.sleep(0.5)
sendp(Ether(dst="33:33:00:00:00:02") / IPv6(src="fe80::61:10", dst="ff02::2", hlim=255)
      / ICMPv6ND_RS(), iface=iface, verbose=False)
sniffer.join(timeout=float(sys.argv[2]))
if sniffer.running:
    sniffer.stop()
for p in sniffer.results or []:
    options = p.getlayer(ICMPv6NDOptPrefixInfo).iterpayloads()
    prefixes = [f"{o.prefix}/{o.prefixlen}" for o in options
                if isinstance(o, ICMPv6NDOptPrefixInfo)]
    print(p[IPv6].src, p[ICMPv6ND_RA].routerlifetime, p[ICMPv6NDOptMTU].mtu, *prefixes)
"""


def test_routers_advertise_on_their_host_ports(lab: object) -> None:
    result = net("exec", "h1", "--", sys.executable, "-c", RA_LISTENER, "h1-eth0", "10", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    fields = result.stdout.split()
    # tr1's link-local (modified EUI-64 of 00:00:00:00:04:31), its lifetime, the port's MTU
    assert fields == ["fe80::200:ff:fe00:431", "600", "1500", "2001:db8:61::/64"], result.stdout
