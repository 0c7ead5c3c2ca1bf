"""The ``icpn traffic`` sub-app: traces to pcap, sending a pcap, usage errors exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scapy.contrib.roce import BTH
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap
from typer.testing import CliRunner

from icpn.packets import APN6, ApnIdTemplate
from icpn.targets import veth
from icpn.traffic.cli import app
from icpn.traffic.sender import rx_packets

runner = CliRunner()


def test_gen_roce_writes_the_qps_with_an_apn_per_qp(tmp_path: Path) -> None:
    out = tmp_path / "roce.pcap"
    args = ["gen", "roce", str(out), "--qps", "8", "--mtu", "256", "--message-bytes", "512"]
    result = runner.invoke(app, [*args, "--messages", "1", "--apn-app", "3", "--apn-per-flow"])
    assert result.exit_code == 0, result.output
    pkts = rdpcap(str(out))
    assert len(pkts) == 16
    assert {p[BTH].dqpn for p in pkts} == set(range(0x100, 0x108))
    assert {p[APN6].apn_id for p in pkts} == {ApnIdTemplate().compose(3, q) for q in range(8)}
    assert "16 packets" in result.output


def test_gen_mice_encapsulated_with_limit(tmp_path: Path) -> None:
    out = tmp_path / "mice.pcap"
    result = runner.invoke(
        app,
        ["gen", "mice", str(out), "--workload", "data-mining", "--flows", "50", "--limit", "40"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert len(rdpcap(str(out))) == 40
    enc = tmp_path / "enc.pcap"
    result = runner.invoke(
        app,
        [
            "gen", "mice", str(enc), "--flows", "3", "--max-flow-bytes", "2000",
            "--encap-src", "2001:db8:ff::1", "--segment", "2001:db8:a::1",
            "--segment", "2001:db8:b::1", "--apn-app", "9",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for p in rdpcap(str(enc)):
        assert p.haslayer(IPv6ExtHdrSegmentRouting) and p.haslayer(TCP)
        assert p[APN6].apn_id == ApnIdTemplate().compose(9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gen", "roce", "x.pcap", "--mtu", "1000"], "path MTU"),
        (["gen", "roce", "x.pcap", "--encap-src", "2001:db8::1"], "go together"),
        (["gen", "mice", "x.pcap", "--workload", "nope"], "unknown workload"),
        (["send", "icpn-nonexist", "PCAP", "--count", "1", "--no-progress"], "no network"),
        (["send", "lo", "PCAP", "--no-progress"], "count or a duration"),
        (["gen", "roce", "x.pcap", "--mtu", "4096"], "over the link MTU 1500"),
        (["gen", "mice", "x.pcap", "--mss", "1460"], "at most 1440"),
        (["gen", "mice", "x.pcap", "--mtu", "1000"], "1280..65535"),
        (["gen", "roce", "x.pcap", "--dst-mac", "00:01"], "not a MAC address"),
        (["gen", "roce", "x.pcap", "--from-host", "src"], "need --intent"),
        (["gen", "mice", "x.pcap", "--intent", "data-ingestion", "--to-host", "h9"], "no host"),
    ],
)
def test_usage_errors_exit_2_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    pcap = tmp_path / "one.pcap"
    assert (
        runner.invoke(app, ["gen", "roce", str(pcap), "--qps", "1", "--limit", "1"]).exit_code == 0
    )
    args = [str(pcap) if a == "PCAP" else str(tmp_path / a) if a == "x.pcap" else a for a in args]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_workloads_lists_both() -> None:
    result = runner.invoke(app, ["workloads"])
    assert result.exit_code == 0
    assert "web-search" in result.output and "data-mining" in result.output


@pytest.mark.netadmin
def test_send_a_pcap_over_a_veth(tmp_path: Path) -> None:
    pcap = tmp_path / "t.pcap"
    args = ["gen", "roce", str(pcap), "--qps", "4", "--mtu", "256", "--message-bytes", "256"]
    assert runner.invoke(app, [*args, "--messages", "5"]).exit_code == 0
    pair = veth.pair_names(os.getpid(), 0xD, 1)
    veth.create([pair])
    try:
        before = rx_packets(pair.switch_if)
        send = ["send", pair.host_if, str(pcap), "--count", "500", "--pps", "50000"]
        result = runner.invoke(app, [*send, "--no-progress"])
        assert result.exit_code == 0, result.output
        assert "sent 500 frames" in result.output
        assert rx_packets(pair.switch_if) - before == 500
    finally:
        veth.delete([pair])


def test_gen_resolves_addresses_and_macs_from_the_intent_hosts(tmp_path: Path) -> None:
    """Frames a lab switch accepts: the host's own MAC and address, its gateway's MAC (the
    router MAC of its switch), the peer's address (issue 14 part 4)."""
    out = tmp_path / "roce.pcap"
    lab = ["--intent", "data-ingestion", "--from-host", "src", "--to-host", "dst"]
    result = runner.invoke(app, ["gen", "roce", str(out), "--qps", "2", "--messages", "1", *lab])
    assert result.exit_code == 0, result.output
    for p in rdpcap(str(out)):
        assert (p[Ether].src, p[Ether].dst) == ("00:00:00:10:00:10", "00:00:00:00:01:01")
        assert (p[IPv6].src, p[IPv6].dst) == ("2001:db8:10::10", "2001:db8:20::10")
    explicit = ["--src-mac", "00:00:00:00:00:aa", "--dst-mac", "00:00:00:00:00:bb"]
    result = runner.invoke(app, ["gen", "mice", str(out), "--flows", "2", *lab, *explicit])
    assert result.exit_code == 0, result.output
    assert {(p[Ether].src, p[Ether].dst) for p in rdpcap(str(out))} == {
        ("00:00:00:00:00:aa", "00:00:00:00:00:bb")
    }


@pytest.mark.parametrize(("extra", "mss"), [([], 1440), (["--apn-app", "3"], 1424)])
def test_mice_fill_but_fit_the_mtu(tmp_path: Path, extra: list[str], mss: int) -> None:
    """MSS from the MTU: 1500 - 40 (IPv6) - 20 (TCP), less an APN6 HBH when marked; frames
    of 1522-1538 octets (MSS fixed at 1460) were refused by traffic send."""
    out = tmp_path / "mice.pcap"
    args = ["gen", "mice", str(out), "--flows", "5", "--max-flow-bytes", "10000", *extra]
    assert runner.invoke(app, args).exit_code == 0
    pkts = rdpcap(str(out))
    assert max(len(p) for p in pkts) == 1514
    assert max(len(p[TCP].payload) for p in pkts) == mss
