"""The ``icpn traffic`` sub-app: traces to pcap, sending a pcap, usage errors exit 2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from scapy.contrib.roce import BTH
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6ExtHdrSegmentRouting
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
