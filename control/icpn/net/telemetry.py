"""The IFIT collector inside an emulated network (issue 14 part 2), and what it measured.

Where it runs: the decapsulating switches send their trace reports out of the collector's
port to the collector host's address, so they arrive in the collector host's network
namespace; the switches serve P4Runtime on 127.0.0.1 of the root namespace, which the
collector polls for the alternate-marking counters. ``icpn collect`` therefore runs as a
process of the root namespace with only its report socket opened in the collector host's
namespace (``--netns``, :func:`icpn.collector.traces.bind_in_netns`): no forwarding, no
management network, no change to the switches' addresses. It measures the SR policies'
real paths (:mod:`icpn.collector.paths`) and writes ``traces.csv``, ``altmark.csv`` and
``paths.csv`` under ``<log dir>/telemetry`` (emptied at every ``net up``), and Prometheus
metrics on a free local port.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from icpn.intent import Intent
from icpn.targets.bmv2.switch import free_tcp_port, stop_process

#: The collector host's name in the emulated network (icpn.net.emulation).
COLLECTOR_HOST = "collector"
START_TIMEOUT_S = 30.0
LISTENING = "listening for trace reports"


class CollectorStartError(RuntimeError):
    """The collector did not come up; the message says why and where its log is."""


@dataclass
class CollectorProcess:
    pid: int
    csv_dir: Path
    metrics_port: int
    log: Path


def telemetry_dir(log_dir: Path) -> Path:
    return log_dir / "telemetry"


def collector_command(
    intent: Intent, intent_path: Path, host_pid: int, out_dir: Path, metrics_port: int
) -> list[str]:
    """``icpn collect`` for the lab: reports in the collector host's namespace, counters
    from the intent's switches (when it marks any flow), CSV and Prometheus."""
    assert intent.collector is not None
    command = [sys.executable, "-m", "icpn.cli", "collect"]
    if any(t.altmark is not None for t in intent.telemetry):
        command += ["--intent", str(intent_path)]
    command += [
        "--netns",
        f"/proc/{host_pid}/ns/net",
        "--listen",
        f"[::]:{intent.collector.udp_port}",
        "--csv",
        str(out_dir),
        "--prometheus-port",
        str(metrics_port),
    ]
    return command


@contextmanager
def collector_process(
    intent: Intent, intent_path: Path, host_pids: dict[str, int], log_dir: Path
) -> Iterator[CollectorProcess | None]:
    """Start the collector once the switches hold their program (it reads their P4Info);
    stop it on exit. None when the intent has no collector."""
    if intent.collector is None or COLLECTOR_HOST not in host_pids:
        yield None
        return
    out_dir = telemetry_dir(log_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.csv"):  # a new network: its measurements start afresh
        old.unlink()
    log = log_dir / "collector.log"
    port = free_tcp_port()
    command = collector_command(intent, intent_path, host_pids[COLLECTOR_HOST], out_dir, port)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "COLUMNS": "200"},
        )
    try:
        _wait_listening(process, log)
        yield CollectorProcess(process.pid, out_dir, port, log)
    finally:
        stop_process(process)


def _wait_listening(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if LISTENING in text:
            return
        if process.poll() is not None:
            tail = "\n".join(text.splitlines()[-10:])
            raise CollectorStartError(
                f"the collector exited ({process.returncode}; net up --no-collector goes "
                f"without): {tail}"
            )
        time.sleep(0.1)
    raise CollectorStartError(
        f"the collector did not start within {START_TIMEOUT_S:.0f} s (see {log}; "
        "net up --no-collector goes without)"
    )


@dataclass
class ListTotals:
    """One segment list's measurements summed over the finished blocks so far."""

    policy: str
    list_id: str
    from_node: str
    to_node: str
    blocks: int = 0
    sent: int = 0
    lost: int = 0
    delays_ms: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.lost / self.sent if self.sent else 0.0

    @property
    def delay_ms(self) -> float | None:
        return sum(self.delays_ms) / len(self.delays_ms) if self.delays_ms else None


@dataclass
class Summary:
    reports: int
    lists: list[ListTotals]
    segments: list[dict[str, str]]  # the latest block's segments (altmark.csv rows)


def summarize(out_dir: Path) -> Summary:
    """What the lab's collector wrote so far: reports, per-list totals, latest segments."""
    reports = max(0, _rows(out_dir / "traces.csv"))
    totals: dict[tuple[str, str], ListTotals] = {}
    for row in _read(out_dir / "paths.csv"):
        key = (row["policy"], row["list"])
        entry = totals.setdefault(key, ListTotals(*key, row["from_node"], row["to_node"]))
        entry.blocks += 1
        entry.sent += int(row["sent"])
        entry.lost += int(row["lost"])
        if row["delay_ms"]:
            entry.delays_ms.append(float(row["delay_ms"]))
    blocks = _read(out_dir / "altmark.csv")
    latest: list[dict[str, str]] = []
    if blocks:
        last = (blocks[-1]["flow_mon_id"], blocks[-1]["block"])
        latest = [r for r in blocks if (r["flow_mon_id"], r["block"]) == last]
    return Summary(reports, list(totals.values()), latest)


def _read(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _rows(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f) - 1
    except FileNotFoundError:
        return 0
