"""``icpn study NAME --trace FILE``: captures decoded as documented (pcap, pcapng, gzip,
truncated records, tags, IPv4 and IPv6, RoCEv2 QPs), the policies run on them, and a
capture larger than this test's memory budget streamed (generated on disk, never held)."""

from __future__ import annotations

import gzip
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scapy.layers.l2 import Ether
from scapy.utils import PcapNgWriter, RawPcapReader
from typer.testing import CliRunner

from icpn.study import model_backend, trace
from icpn.study.scenarios import get_scenario
from tests.pcap_gen import MICE_PORTS, ROCE_DST, ROCE_QPS, ROCE_SRC, write_pcap
from tests.test_study_cli import _mounted

REPO = Path(__file__).resolve().parent.parent


def test_a_capture_is_summarised_as_it_was_written(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    written = write_pcap(path, 20_000, frame=400)
    s = trace.summarise(path)
    assert s.records_read == written["records"] == 20_000
    assert s.skipped == written["arp"] > 0
    assert s.packets == 20_000 - written["arp"]
    assert s.octets == written["ip_octets"]
    assert s.roce_keys == len(ROCE_QPS)  # tagged and untagged RoCE: same keys
    assert len(s.key_rows) == len(ROCE_QPS) + 1  # + the one IPv4 host pair (DestQP 0)
    assert s.duration_s == pytest.approx(19_999e-6 + 1e-6)


def test_fields_of_ipv6_roce_and_ipv4_tcp(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    write_pcap(path, 3_000, frame=200)
    batch = next(trace.read_batches(path))
    roce = batch.dport == 4791
    tcp = batch.proto == 6
    assert roce.sum() + tcp.sum() == len(batch)
    assert {bytes(a) for a in batch.src[roce]} == {ROCE_SRC}
    assert {bytes(a) for a in batch.dst[roce]} == {ROCE_DST}
    assert set(batch.dest_qp[roce].tolist()) == set(ROCE_QPS)
    assert set(batch.flow_label[roce].tolist()) == {0x12345}
    assert set(batch.sport[roce].tolist()) == {49152}
    mapped = bytes(10) + b"\xff\xff"
    assert {bytes(a) for a in batch.src[tcp]} == {mapped + bytes((10, 0, 0, 1))}
    assert {bytes(a) for a in batch.dst[tcp]} == {mapped + bytes((10, 0, 1, 1))}
    assert set(batch.dport[tcp].tolist()) == {443}
    assert 1 < len(set(batch.sport[tcp].tolist())) <= MICE_PORTS
    assert not batch.dest_qp[tcp].any() and not batch.flow_label[tcp].any()
    assert set(batch.length.tolist()) == {200}


def test_pcapng_gzip_and_truncated_records_read_the_same(tmp_path: Path) -> None:
    plain = tmp_path / "t.pcap"
    write_pcap(plain, 2_000, frame=300)
    want = trace.summarise(plain)
    gz = tmp_path / "t.pcap.gz"
    with plain.open("rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    ng = tmp_path / "t.pcapng"
    with RawPcapReader(str(plain)) as reader, PcapNgWriter(str(ng)) as writer:
        for data, meta in reader:
            packet = Ether(data)
            packet.time = meta.sec + meta.usec / 1e6
            writer.write(packet)
    cut = tmp_path / "cut.pcap"
    write_pcap(cut, 2_000, frame=300, snaplen=96)  # BTH cut: DestQP reads 0
    for path in (gz, ng):
        got = trace.summarise(path)
        assert (got.packets, got.octets, got.skipped) == (want.packets, want.octets, want.skipped)
        assert got.key_rows == want.key_rows
        assert got.duration_s == pytest.approx(want.duration_s, abs=2e-6)
    truncated = trace.summarise(cut)
    assert truncated.octets == want.octets  # original lengths, not captured ones
    assert truncated.packets == want.packets


def test_bad_captures_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    for path, words in ((text, "not a pcap"), (tmp_path / "missing.pcap", "no such")):
        with pytest.raises(trace.TraceError, match=words) as info:
            trace.summarise(path)
        assert str(path) in str(info.value)


def test_the_policies_run_on_a_capture_and_account_for_every_octet(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap"
    written = write_pcap(path, 60_000, frame=1000, rate_pps=2e5)
    run = model_backend.run_trace(get_scenario("data-ingestion"), path)
    assert run.packets == 60_000 - written["arp"]
    for policy, offered in run.offered.items():
        assert offered.sum() == pytest.approx(written["ip_octets"]), policy
    assert run.elephants == len(ROCE_QPS)
    # Four QPs of ~15 % of the packets each: all reported by the sketch.
    assert np.all(run.detection.report_packets[: run.elephants] > 0)
    assert run.trace is not None and run.trace["trace_ip_packets"] == run.packets


def test_cli_study_with_a_trace(tmp_path: Path) -> None:
    path = tmp_path / "t.pcap.gz"
    plain = tmp_path / "t.pcap"
    written = write_pcap(plain, 30_000, frame=600)
    with plain.open("rb") as src, gzip.open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    out = tmp_path / "out"
    args = ["study", "storage-compute", "--trace", str(path), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(_mounted(), args)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["trace_file"] == str(path)
    assert results["packets_simulated"] == results["trace_ip_packets"]
    roce = written["roce"] + written["roce_vlan"]
    share = roce * 600 / ((30_000 - written["arp"]) * 600)
    assert results["elephant_byte_share_of_offered"] == pytest.approx(share, abs=1e-4)
    assert "the capture" in (out / "report.md").read_text()
    missing = ["study", "storage-compute", "--trace", str(out), "--no-progress"]
    bad = CliRunner().invoke(_mounted(), missing)
    assert bad.exit_code == 2 and "no such capture file" in " ".join(bad.output.split())
    bmv2 = ["study", "storage-compute", "--trace", str(path), "--backend", "bmv2"]
    assert CliRunner().invoke(_mounted(), bmv2).exit_code == 2


#: Run in a child, to measure its peak memory alone.
CHILD = """
import json, resource, sys
from pathlib import Path
from icpn.study import model_backend
from icpn.study.scenarios import get_scenario
run = model_backend.run_trace(get_scenario("data-ingestion"), Path(sys.argv[1]))
print(json.dumps({"packets": run.packets, "octets": float(run.offered["ecmp_5tuple"].sum()),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_a_capture_larger_than_memory_budget_streams(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A 2.1 GB capture, written block by block to /tmp and deleted after; the study on it
    must stay under 600 MB of peak memory (imports included), a quarter of the file."""
    directory = Path(tmp_path_factory.mktemp("big", numbered=True))
    path = directory / "big.pcap"
    try:
        written = write_pcap(path, 1_400_000, frame=1500, rate_pps=1e6, block=1 << 15)
        assert path.stat().st_size >= 2_000_000_000
        env = {"PYTHONPATH": f"{REPO / 'control'}:{REPO}", "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        ).stdout
        got = json.loads(out.strip().splitlines()[-1])
        assert got["packets"] == 1_400_000 - written["arp"]
        assert got["octets"] == pytest.approx(written["ip_octets"])
        assert got["peak_mb"] < 600, got
        # The parent never read the file: its own peak stays far below it too.
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 < 1500
    finally:
        path.unlink(missing_ok=True)
