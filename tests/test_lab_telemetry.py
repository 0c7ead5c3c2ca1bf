"""The lab end to end (issue 14 parts 2 and 4): ``icpn net up data-ingestion`` starts the
collector; traffic generated with the intent's hosts (``icpn traffic gen --intent
--from-host --to-host``) and sent from the source host (``icpn net exec src -- icpn traffic
send``) reaches the destination host; nftables drops every 5th packet gz2 sends towards nx1
(netdev egress hook: BMv2 reads and writes its ports with packet sockets, whose receive
taps run before any ingress hook, so the drop must be on the sending side); the
collector's per-segment-list loss equals the drops on the gz2 list and is zero on the
others, with trace reports received in the collector host's namespace. The collector host
has a route back (a ping to the destination host is answered)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icpn.net.emulation import mininet_available
from icpn.net.state import NetState, alive
from icpn.net.telemetry import summarize, telemetry_dir

pytestmark = [pytest.mark.bmv2, pytest.mark.netadmin]

ICPN = [sys.executable, "-m", "icpn.cli"]
PACKETS = 800
EVERY = 5  # nftables drops one packet in EVERY on gz2 -> nx1
TABLE = f"icpnloss{os.getpid()}"


def run(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*args], capture_output=True, text=True, timeout=timeout)


def rx_packets(host: str) -> int:
    shown = run(*ICPN, "net", "exec", host, "--", "ip", "-s", "-j", "link", "show", f"{host}-eth0")
    assert shown.returncode == 0, shown.stderr
    return int(json.loads(shown.stdout)[0]["stats64"]["rx"]["packets"])


def nft_dropped() -> int:
    listed = run("nft", "-j", "list", "table", "netdev", TABLE)
    assert listed.returncode == 0, listed.stderr
    for item in json.loads(listed.stdout)["nftables"]:
        for expr in item.get("rule", {}).get("expr", []):
            if "counter" in expr:
                return int(expr["counter"]["packets"])
    raise AssertionError(f"no counter in {listed.stdout}")


def test_collector_in_the_lab_measures_injected_loss_per_segment_list(tmp_path: Path) -> None:
    reason = mininet_available()
    if reason is not None:
        pytest.skip(f"needs Mininet: {reason}")
    if shutil.which("nft") is None:
        pytest.skip("needs nftables' nft to inject drops (Debian package nftables)")
    up = run(*ICPN, "net", "up", "data-ingestion", "--detach")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = NetState.load()
        assert state is not None and state.collector_pid is not None
        assert alive(state.collector_pid)
        # The collector host's route back: its default route is nx1's gateway address.
        route = run(*ICPN, "net", "exec", "collector", "--", "ip", "-6", "route", "show", "default")
        assert "via 2001:db8:ff::1 " in route.stdout, route.stdout + route.stderr
        ping = run(*ICPN, "net", "exec", "collector", "--", "ping", "-6", "-c", "2", "-i", "0.2",
                   "2001:db8:20::10")  # fmt: skip
        assert ping.returncode == 0, ping.stdout + ping.stderr

        pcap = tmp_path / "roce.pcap"
        gen = run(*ICPN, "traffic", "gen", "roce", str(pcap), "--intent", "data-ingestion",
                  "--from-host", "src", "--to-host", "dst", "--qps", "64", "--mtu", "256",
                  "--message-bytes", "256", "--messages", "1")  # fmt: skip
        assert gen.returncode == 0, gen.stdout + gen.stderr
        nft = ["nft", "add"]
        assert run(*nft, "table", "netdev", TABLE).returncode == 0
        chain = "{ type filter hook egress device gz2-eth2 priority 0; }"
        made = run(*nft, "chain", "netdev", TABLE, "out", chain)
        assert made.returncode == 0, made.stderr
        rule = ["numgen", "inc", "mod", str(EVERY), "==", "0", "counter", "drop"]
        assert run(*nft, "rule", "netdev", TABLE, "out", *rule).returncode == 0

        before = rx_packets("dst")
        send = run(*ICPN, "net", "exec", "src", "--", *ICPN, "traffic", "send", "src-eth0",
                   str(pcap), "--pps", "200", "--count", str(PACKETS), "--no-progress")  # fmt: skip
        assert send.returncode == 0, send.stdout + send.stderr
        assert f"sent {PACKETS} frames" in send.stdout

        out_dir = telemetry_dir(Path(state.log_dir))
        deadline = time.monotonic() + 20
        summary = summarize(out_dir)
        while time.monotonic() < deadline:  # the last blocks finish T + T/2 after the traffic
            summary = summarize(out_dir)
            if sum(item.sent for item in summary.lists) >= PACKETS:
                break
            time.sleep(0.5)
        dropped = nft_dropped()
        delivered = rx_packets("dst") - before
        by_start = {item.from_node: item for item in summary.lists}
        table = [(i.list_id, i.from_node, i.blocks, i.sent, i.lost) for i in summary.lists]
        print(f"lists {table}, dropped {dropped}, delivered {delivered}, "
              f"reports {summary.reports}, segments {summary.segments}")  # fmt: skip
        assert sum(item.sent for item in summary.lists) == PACKETS, table
        assert set(by_start) == {"gz1", "gz2", "gz3", "gz4"}, table
        assert by_start["gz2"].sent > 0 and dropped == by_start["gz2"].sent // EVERY + (
            by_start["gz2"].sent % EVERY > 0
        ), (dropped, table)
        assert by_start["gz2"].lost == dropped, (dropped, table)
        assert all(by_start[n].lost == 0 for n in ("gz1", "gz3", "gz4")), table
        assert summary.reports == PACKETS - dropped  # one report per traced packet
        assert PACKETS - dropped <= delivered <= PACKETS - dropped + 3  # + ND, if any
        telemetry = run(*ICPN, "net", "telemetry")
        assert telemetry.returncode == 0 and "gz2 → nx1" in telemetry.stdout, telemetry.stdout

        assert run("nft", "delete", "table", "netdev", TABLE).returncode == 0  # no more loss
        # Mice sized for the host's link arrive (routed, not steered: TCP to port 5001);
        # a trace made for a 9000-octet MTU is refused with the reason.
        mice = tmp_path / "mice.pcap"
        lab = ["--intent", "data-ingestion", "--from-host", "src", "--to-host", "dst"]
        gen = run(*ICPN, "traffic", "gen", "mice", str(mice), *lab, "--flows", "20",
                  "--max-flow-bytes", "20000", "--limit", "100")  # fmt: skip
        assert gen.returncode == 0, gen.stdout + gen.stderr
        before = rx_packets("dst")
        send = run(*ICPN, "net", "exec", "src", "--", *ICPN, "traffic", "send", "src-eth0",
                   str(mice), "--pps", "100", "--count", "100", "--no-progress")  # fmt: skip
        assert send.returncode == 0, send.stdout + send.stderr
        time.sleep(1)
        assert 100 <= rx_packets("dst") - before <= 103
        jumbo = tmp_path / "jumbo.pcap"
        gen = run(*ICPN, "traffic", "gen", "mice", str(jumbo), *lab, "--flows", "2", "--mtu",
                  "9000", "--limit", "5")  # fmt: skip
        assert gen.returncode == 0, gen.stdout + gen.stderr
        refused = run(*ICPN, "net", "exec", "src", "--", *ICPN, "traffic", "send", "src-eth0",
                      str(jumbo), "--count", "5", "--no-progress")  # fmt: skip
        assert refused.returncode == 2
        assert "more than the interface MTU 1500" in refused.stdout + refused.stderr
    finally:
        run("nft", "delete", "table", "netdev", TABLE)
        down = run(*ICPN, "net", "down", timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert state is not None and state.collector_pid is not None
    assert not alive(state.collector_pid)
