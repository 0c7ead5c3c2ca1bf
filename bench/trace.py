"""Reading captures for ``icpn study NAME --trace``: reader throughput and a study on a trace.

On captures written by ``tests/pcap_gen.py`` (RoCEv2/IPv6, TCP/IPv4, a little ARP) of
``--records`` records, for small (128 octets) and large (1500 octets) frames:

* scapy's ``RawPcapReader`` alone (the reader icpn uses: records and their metadata, no
  dissection), and for comparison dpkt's ``pcap.Reader`` (when installed; it does not give
  a record's original length) and scapy's dissecting ``PcapReader`` (on a tenth of the
  records: it is much slower);
* icpn's first pass (``trace.summarise``: read + decode + sketch keys), records/s and MB/s;
* the whole study on the capture (``model_backend.run_trace``: two passes + the model),
  packets/s.

Writes build/bench/trace.json (every figure named with its unit) and trace.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.utils import PcapReader, RawPcapReader

from icpn.paths import BUILD_DIR
from icpn.study import model_backend, trace
from icpn.study.scenarios import get_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' capture writer
from tests.pcap_gen import write_pcap

FRAMES = (128, 1500)


def _rate(count: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    n = count()
    return n / (time.perf_counter() - started), n


def measure(path: Path, records: int) -> dict[str, Any]:
    size_mb = path.stat().st_size / 1e6
    out: dict[str, Any] = {"file_mb": round(size_mb, 1), "records": records}

    def raw() -> int:
        with RawPcapReader(str(path)) as reader:
            return sum(1 for _ in reader)

    out["scapy_raw_reader_records_per_s"] = round(_rate(raw)[0])
    try:
        import dpkt  # type: ignore[import-untyped]

        def with_dpkt() -> int:
            with path.open("rb") as handle:
                return sum(1 for _ in dpkt.pcap.Reader(handle))

        out["dpkt_reader_records_per_s"] = round(_rate(with_dpkt)[0])
    except ImportError:
        out["dpkt_reader_records_per_s"] = None

    def dissecting() -> int:
        with PcapReader(str(path)) as reader:
            return sum(1 for _ in itertools.islice(reader, records // 10))

    out["scapy_dissecting_reader_records_per_s"] = round(_rate(dissecting)[0])
    started = time.perf_counter()
    summary = trace.summarise(path)
    wall = time.perf_counter() - started
    out["icpn_first_pass_records_per_s"] = round(summary.records_read / wall)
    out["icpn_first_pass_mb_per_s"] = round(size_mb / wall, 1)
    started = time.perf_counter()
    run = model_backend.run_trace(get_scenario("data-ingestion"), path)
    wall = time.perf_counter() - started
    out["study_on_trace_packets_per_s"] = round(run.packets / wall)
    out["study_on_trace_wall_s"] = round(wall, 2)
    return out


def summary(report: dict[str, Any]) -> str:
    lines = [
        "# Reading captures (`icpn study NAME --trace`)",
        "",
        "| frame (octets) | file (MB) | scapy RawPcapReader (records/s) | dpkt (records/s) "
        "| scapy PcapReader, dissecting (records/s) | icpn first pass (records/s, MB/s) "
        "| study on the trace (packets/s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for frame in FRAMES:
        f = report[f"frame_{frame}"]
        dpkt = f["dpkt_reader_records_per_s"]
        lines.append(
            f"| {frame} | {f['file_mb']} | {f['scapy_raw_reader_records_per_s']:,} "
            f"| {'n/a' if dpkt is None else f'{dpkt:,}'} "
            f"| {f['scapy_dissecting_reader_records_per_s']:,} "
            f"| {f['icpn_first_pass_records_per_s']:,}, {f['icpn_first_pass_mb_per_s']} "
            f"| {f['study_on_trace_packets_per_s']:,} |"
        )
    lines += [
        "",
        f"{report['records']:,} records per capture. The study reads the capture twice "
        "(span and keys, then the run).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    args = parser.parse_args()
    if not 10_000 <= args.records <= 50_000_000:
        parser.error("need 10k <= records <= 50M")
    report: dict[str, Any] = {"records": args.records}
    with tempfile.TemporaryDirectory(prefix="icpn-trace-") as tmp:
        for frame in FRAMES:
            path = Path(tmp) / f"frames-{frame}.pcap"
            write_pcap(path, args.records, frame=frame, rate_pps=1e6)
            print(f"trace: {frame}-octet frames ...", flush=True)
            report[f"frame_{frame}"] = measure(path, args.records)
            path.unlink()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trace.json").write_text(json.dumps(report, indent=2) + "\n")
    text = summary(report)
    (args.out / "trace.md").write_text(text)
    print("\n" + text + f"\nwritten: {args.out / 'trace.json'} and trace.md")


if __name__ == "__main__":
    main()
