"""tshark (Debian 12's 4.0, with the project's Lua dissector) decodes every header icpn
emits, field by field, with no malformed packet and no expert warning or error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

from icpn.constants import ApnIdType
from icpn.packets import (
    APN6,
    IOAM,
    AltMark,
    IOAMDex,
    IOAMNode,
    TraceReport,
    h_encaps,
    preallocated_trace,
    rocev2_ud_send,
    rocev2_write,
)
from icpn.wireshark import LUA_DISSECTOR

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None, reason="tshark not installed (`make setup` installs it)"
)

SEGMENTS = ["fc00:1::100", "fc00:2::100", "fc00:3::d6"]
ETH = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:aa:01")
HOPS = [
    IOAMNode(hop_lim=63, node_id=101, ingress_if=1, egress_if=2, ts_sec=1700000000, queue_depth=12),
    IOAMNode(hop_lim=62, node_id=102, ingress_if=3, egress_if=4, ts_sec=1700000001, queue_depth=0),
]
TRACE_TYPE = 0xE20000  # node id, interfaces, seconds, queue depth


def report_frame() -> Packet:
    """A trace report as a decapsulating node exports it (docs/telemetry-report.md)."""
    inner = bytes(IPv6(src="2001:db8:1::10", dst="2001:db8:2::10") / UDP(sport=4242, dport=4791))
    option = bytes(IOAM(data=preallocated_trace(TRACE_TYPE, 4, 0x10, HOPS)))
    return (
        ETH
        / IPv6(src="2001:db8:c0::42", dst="2001:db8:c0::1")
        / UDP(sport=50505, dport=50505)
        / TraceReport(
            node_id=42,
            flags=0x60,
            seconds=6,
            nanoseconds=1000,
            sequence=9,
            body=option + inner[:44],
        )
    )


def frames() -> list[Packet]:
    rdma = rocev2_write("2001:db8:1::1", "2001:db8:2::1", dest_qp=0xABCDE)
    return [
        ETH
        / h_encaps(
            rdma,
            src="2001:db8:a::1",
            segments=SEGMENTS,
            flow_label=0x12345,
            hbh_options=[
                APN6(apn_id=0x00070102),
                AltMark(flow_mon_id=4242, L=1, D=1),
                IOAM(data=preallocated_trace(TRACE_TYPE, 4, 0x10, HOPS)),
            ],
        ),
        ETH
        / IPv6(src="2001:db8:1::1", dst="2001:db8:2::1")
        / IPv6ExtHdrHopByHop(options=[APN6(id_type=ApnIdType.ID64, apn_id=0x0000000500000009)])
        / UDP(sport=1000, dport=2000)
        / Raw(b"x" * 16),
        ETH
        / h_encaps(
            rocev2_ud_send("2001:db8:1::1", "2001:db8:2::1", dest_qp=7, src_qp=11),
            src="2001:db8:a::1",
            segments=["fc00:9::d6"],
            reduced=True,
            hbh_options=[APN6(id_type=ApnIdType.ID128, apn_id=(0xFFFF << 112) | 1)],
        ),
        ETH
        / h_encaps(
            rdma,
            src="2001:db8:a::1",
            segments=SEGMENTS[:2],
            hbh_options=[
                IOAM(
                    ioam_type=4,
                    data=IOAMDex(
                        namespace_id=0x10,
                        ext_flags=0xC0,
                        trace_type=0x800000,
                        flow_id=99,
                        sequence=3,
                    ),
                )
            ],
        ),
        report_frame(),
    ]


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tshark") / "icpn.pcap"
    wrpcap(str(path), frames())
    return path


def tshark(pcap: Path, *args: str) -> str:
    result = subprocess.run(
        ["tshark", "-n", "-r", str(pcap), "-X", f"lua_script:{LUA_DISSECTOR}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def fields(pcap: Path, *names: str) -> list[list[str]]:
    """Per frame, the listed fields, each with every occurrence joined by commas."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,", "-E", "separator=|"]
    for name in names:
        args += ["-e", name]
    return [line.split("|") for line in tshark(pcap, *args).splitlines()]


def ints(field: str) -> list[int]:
    """A field's occurrences as integers, whatever base tshark printed them in."""
    return [int(v, 0) for v in field.split(",")] if field else []


def test_lua_dissector_ships_with_the_package() -> None:
    assert LUA_DISSECTOR.exists()


def test_no_malformed_packet_and_no_expert_warning(pcap: Path) -> None:
    report = tshark(pcap, "-q", "-z", "expert,warn")
    assert "Errors" not in report and "Warns" not in report, report
    malformed = fields(pcap, "_ws.malformed")
    assert all(row == [""] for row in malformed), malformed


def test_apn6_fields(pcap: Path) -> None:
    rows = fields(
        pcap, "icpn.apn6.id_type", "icpn.apn6.apn_id", "icpn.apn6.app_group", "icpn.apn6.user_group"
    )
    assert rows[0] == ["1", "00070102", "7", "258"]
    assert rows[1][:2] == ["2", "0000000500000009"]
    assert rows[1][2:] == ["0", "5"]  # 16/16 template over the top 32 bits
    assert rows[2][:2] == ["3", "ffff" + "0" * 27 + "1"]


def test_alternate_marking_fields(pcap: Path) -> None:
    row = fields(pcap, "icpn.altmark.flow_mon_id", "icpn.altmark.l", "icpn.altmark.d")[0]
    assert row == ["4242", "1", "1"]


def test_ioam_trace_fields(pcap: Path) -> None:
    row = fields(
        pcap,
        "ipv6.opt.ioam.trace.ns",
        "ipv6.opt.ioam.trace.remlen",
        "ipv6.opt.ioam.trace.node.id",
        "ipv6.opt.ioam.trace.node.hlim",
        "ipv6.opt.ioam.trace.node.iif",
        "ipv6.opt.ioam.trace.node.qdepth",
    )[0]
    # tshark lists nodes in wire order: the most recent hop first.
    assert [ints(v) for v in row] == [[16], [8], [102, 101], [62, 63], [3, 1], [0, 12]]


def test_srh_and_rocev2_fields(pcap: Path) -> None:
    rows = fields(
        pcap,
        "ipv6.routing.segleft",
        "ipv6.routing.srh.last_entry",
        "ipv6.routing.srh.addr",
        "infiniband.bth.destqp",
        "infiniband.deth.srcqp",
        "ipv6.flow",
    )
    assert rows[0][:3] == ["2", "2", ",".join(reversed(SEGMENTS))]
    assert ints(rows[0][3]) == [0xABCDE]
    assert ints(rows[0][5]) == [0x12345, 0]  # outer flow label, then the inner packet's
    assert rows[2][:3] == ["", "", ""]  # H.Encaps.Red with one segment: no SRH
    assert [ints(v) for v in rows[2][3:5]] == [[7], [11]]


def test_trace_report_fields(pcap: Path) -> None:
    row = fields(
        pcap,
        "icpn.report.version",
        "icpn.report.node_id",
        "icpn.report.sequence",
        "icpn.report.trace.ns",
        "icpn.report.node.id",
        "icpn.report.node.queue_depth",
        "icpn.report.inner.src",
        "icpn.report.inner.dst_port",
        "icpn.report.flags.altmark",
        "icpn.report.flags.colour",
    )[4]
    assert [ints(v) for v in row[:6]] == [[1], [42], [9], [16], [102, 101], [0, 12]]
    assert row[6:8] == ["2001:db8:1::10", "4791"]
    assert row[8] in ("1", "True") and row[9] == "1"  # marked, colour 1
