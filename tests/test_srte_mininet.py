"""SR-TE over paths routing does not take, on BMv2 in Mininet (issue 16, part 1).

``END_X``: four switches; routing follows the IGP metric, which prefers tp1-tp2-tp4
(11 ms); the policy asks for at most 5 ms, which excludes that path and leaves
tp1-tp3-tp2-tp4 (3 ms). tp3 routes to tp2 back through tp1 (metric 6 < 10), so the list is
tp3's End.X towards tp2, then tp4's decapsulation SID.

``ENTRY_SIDS``: routing takes tq1-tq4 directly (10 ms); the 5 ms bound leaves tq1-tq2-tq4
(2 ms), whose first hop routing does not take (tq1 reaches tq2 through tq4 and tq3) and
whose last hop neither (tq2 reaches tq4 through tq3): tq1's own adjacency SID towards tq2
(tq1 routes it over that link, tq2 ends it), then tq4's entry SID from tq2's link (tq2
routes it over that link, tq4 decapsulates it).

In both, a ping from h1 to h2 is encapsulated at the headend with an IOAM trace; the
endpoint decapsulates and reports the trace to the collector host, whose node ids must be
the path's after the headend (which does not fill its own trace), in order. The reply
takes routing's path back (it is not classified), so the ping also proves plain routing;
h1 resolves its gateway by neighbour discovery, which the controller answers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from icpn.collector.traces import decode_report
from icpn.controller.render import adjacency_sid, load_and_render
from icpn.net.emulation import mininet_available

pytestmark = pytest.mark.bmv2

END_X = """\
switches:
  tp1:
    grpc: 127.0.0.1:50401
    router_mac: 00:00:00:00:04:01
    sid: fc00:401::1
    ioam_node_id: 401
    ports: {9: {role: edge_untrusted}}
  tp2: {grpc: 127.0.0.1:50402, router_mac: 00:00:00:00:04:02, sid: fc00:402::1, ioam_node_id: 402}
  tp3: {grpc: 127.0.0.1:50403, router_mac: 00:00:00:00:04:03, sid: fc00:403::1, ioam_node_id: 403}
  tp4:
    grpc: 127.0.0.1:50404
    router_mac: 00:00:00:00:04:04
    sid: fc00:404::1
    decap_sid: fc00:404::d6
    ioam_node_id: 404
    ports: {9: {role: edge_untrusted}}
links:
  - {a: "tp1:1", b: "tp2:1", latency_ms: 10, capacity_gbps: 10, metric: 1}
  - {a: "tp2:2", b: "tp4:1", latency_ms: 1, capacity_gbps: 10, metric: 1}
  - {a: "tp1:2", b: "tp3:1", latency_ms: 1, capacity_gbps: 10, metric: 5}
  - {a: "tp3:2", b: "tp2:3", latency_ms: 1, capacity_gbps: 10, metric: 10}
hosts:
  h1: {switch: tp1, port: 9, address: "2001:db8:41::10/64", mac: "00:00:00:00:41:10"}
  h2: {switch: tp4, port: 9, address: "2001:db8:42::10/64", mac: "00:00:00:00:42:10"}
collector: {address: "2001:db8:4f::10", attach: "tp4:8", mac: "00:00:00:00:4f:01"}
apn_policies:
  - name: fast
    app_group: 7
    sr_policy: fast
    telemetry: trace
    classify:
      - {ipv6_dst: "2001:db8:42::/64"}
sr_policies:
  - {name: fast, headend: tp1, endpoint: tp4, max_latency_ms: 5}
telemetry:
  - name: trace
    ioam: {namespace: 16, trace_type: 0x800000, max_nodes: 5}
emulation: {bandwidth_scale: 0.001}
"""

ENTRY_SIDS = (
    END_X.replace("tp", "tq")
    .replace("fc00:40", "fc00:41")
    .replace(":04:0", ":04:1")
    .replace("5040", "5041")
    .replace("ioam_node_id: 40", "ioam_node_id: 41")
    .replace("2001:db8:4", "2001:db8:5")
    .replace(":00:4", ":00:5")
)
ENTRY_SIDS = (
    ENTRY_SIDS[: ENTRY_SIDS.index("links:")]
    + """\
links:
  - {a: "tq1:1", b: "tq4:2", latency_ms: 10, capacity_gbps: 10, metric: 1}
  - {a: "tq1:2", b: "tq2:1", latency_ms: 1, capacity_gbps: 10, metric: 10}
  - {a: "tq2:2", b: "tq4:1", latency_ms: 1, capacity_gbps: 10, metric: 10}
  - {a: "tq2:3", b: "tq3:1", latency_ms: 5, capacity_gbps: 10, metric: 1}
  - {a: "tq3:2", b: "tq4:3", latency_ms: 5, capacity_gbps: 10, metric: 1}
"""
    + ENTRY_SIDS[ENTRY_SIDS.index("hosts:") :]
)

#: intent, the headend's segment list, the node ids the trace must show, h2's address
SCENARIOS = {
    "end_x": (
        END_X,
        ("fc00:403::e002", "fc00:404::d6"),
        (401, 403, 402, 404),  # the headend fills its own slot first (RFC 9197 trace)
        "2001:db8:42::10",
    ),
    "entry_sids": (
        ENTRY_SIDS,
        ("fc00:411::e002", "fc00:414::d001"),
        (411, 412, 414),
        "2001:db8:52::10",
    ),
}

#: Prints each report datagram that reaches the collector host, as hex, then exits.
LISTENER = textwrap.dedent(
    """
    import socket, sys
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 50505))
    s.settimeout(float(sys.argv[1]))
    print("listening", flush=True)
    try:
        while True:
            print(s.recv(4096).hex(), flush=True)
    except socket.timeout:
        pass
    """
)


NET = [sys.executable, "-m", "icpn.cli", "net"]


def net(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NET, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_intent_encodes_the_path(tmp_path: Path, scenario: str) -> None:
    text, segments, _, _ = SCENARIOS[scenario]
    path = tmp_path / "srte.yaml"
    path.write_text(text)
    _, configs = load_and_render(path)
    headend = "tp1" if scenario == "end_x" else "tq1"
    lists = [(sl.segments, sl.reduced) for sl in configs[headend].policies[0].lists]
    assert lists == [(segments, False)]
    if scenario == "end_x":  # the End.X is tp3's adjacency towards tp2 (its port 2)
        assert segments[0] == adjacency_sid("fc00:403::1", 2)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_ping_follows_the_policy_path_hop_by_hop(tmp_path: Path, scenario: str) -> None:
    reason = mininet_available()
    if reason is not None:
        pytest.skip(f"needs Mininet: {reason}")
    text, _, nodes, h2 = SCENARIOS[scenario]
    path = tmp_path / f"srte-{scenario}.yaml"
    path.write_text(text)
    up = net("up", str(path), "--detach", "--no-collector")  # the listener below is it
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        listener = subprocess.Popen(
            [
                *NET,
                "exec",
                "collector",
                "--",
                sys.executable,
                "-c",
                LISTENER,
                "8",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert listener.stdout is not None
            assert listener.stdout.readline().strip() == "listening"
            ping = net("exec", "h1", "--", "ping", "-6", "-c", "3", "-i", "0.3", h2)
            assert ping.returncode == 0 and "3 received" in ping.stdout, ping.stdout + ping.stderr
            # h1 resolved its gateway by neighbour discovery, answered by the controller
            gateway = h2.replace("2::10", "1::1")
            neigh = net("exec", "h1", "--", "ip", "-6", "neigh", "show", gateway)
            router_mac = "00:00:00:00:04:01" if scenario == "end_x" else "00:00:00:00:04:11"
            assert f"lladdr {router_mac}" in neigh.stdout, neigh.stdout + neigh.stderr
            assert "PERMANENT" not in neigh.stdout, neigh.stdout
            out, err = listener.communicate(timeout=30)
        finally:
            if listener.poll() is None:
                listener.kill()
                listener.wait(timeout=10)
        reports = [bytes.fromhex(line) for line in out.split() if line]
        assert reports, f"no trace report reached the collector: {err}"
        paths = {decode_report(data).path for data in reports}
        assert paths == {nodes}, paths
    finally:
        down = net("down", timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
