"""Where collector results go: Prometheus metrics (a registry of our own, so tests and
several collectors in one process do not clash), CSV files (one row per report, one row
per block segment) and a rich table for ``icpn collect --watch``.

Node labels are names when the caller gives a node id -> name map (from the intent's
``ioam_node_id``), else the decimal IOAM node id.
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from rich.console import Group
from rich.table import Table

from icpn.collector.altmark import AltmarkBlock, AltmarkMonitor, SegmentLoss
from icpn.collector.paths import PathMeter, PathSample
from icpn.collector.traces import TraceCollector, TraceRecord

Segmenter = Callable[[AltmarkBlock], list[SegmentLoss]]
"""How a block is cut into segments: the SR policies' paths (icpn.collector.paths), or
by default its nodes in order (AltmarkBlock.segments)."""

NS = 1e-9
#: Delay buckets from 1 us to 1 s: BMv2 hops take tens of us to ms, WAN links ms.
DELAY_BUCKETS = (1e-6, 1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0)


def node_label(node_id: int | None, names: Mapping[int, str]) -> str:
    if node_id is None:
        return "?"
    return names.get(node_id, str(node_id))


def _join(values: tuple[int | None, ...] | list[str]) -> str:
    return ";".join("" if v is None else str(v) for v in values)


class PrometheusExport:
    """Metrics for reports and blocks; :meth:`on_trace` and :meth:`on_block` are sinks."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        names: Mapping[int, str] | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.names = dict(names or {})
        self.segmenter: Segmenter = segmenter or AltmarkBlock.segments
        r = self.registry
        self.reports = Counter(
            "icpn_ifit_reports", "Trace reports received", ["exporter"], registry=r
        )
        self.lost_reports = Counter(
            "icpn_ifit_reports_lost", "Reports missing from sequence gaps", ["exporter"], registry=r
        )
        self.malformed = Counter(
            "icpn_ifit_reports_malformed",
            "Datagrams that were no usable report",
            ["reason"],
            registry=r,
        )
        self.hop_delay = Histogram(
            "icpn_ifit_hop_delay_seconds",
            "Delay between consecutive nodes' IOAM receive timestamps",
            ["from_node", "to_node"],
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.hop_delay_last = Gauge(
            "icpn_ifit_hop_delay_last_seconds",
            "Latest per-hop delay (negative when the nodes' clocks disagree)",
            ["from_node", "to_node"],
            registry=r,
        )
        self.transit_delay = Histogram(
            "icpn_ifit_transit_delay_seconds",
            "IOAM transit delay per node",
            ["node"],
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.path_length = Gauge(
            "icpn_ifit_path_nodes",
            "Nodes in the latest trace per exporter",
            ["exporter"],
            registry=r,
        )
        self.blocks = Counter(
            "icpn_altmark_blocks", "Finished alternate-marking blocks", ["flow_mon_id"], registry=r
        )
        self.block_packets = Gauge(
            "icpn_altmark_block_packets",
            "Packets of the latest finished block per node",
            ["flow_mon_id", "node"],
            registry=r,
        )
        self.segment_loss = Gauge(
            "icpn_altmark_segment_loss_packets",
            "Packets lost in the latest finished block between two nodes",
            ["flow_mon_id", "from_node", "to_node"],
            registry=r,
        )
        self.segment_loss_ratio = Gauge(
            "icpn_altmark_segment_loss_ratio",
            "Loss ratio of the latest finished block between two nodes",
            ["flow_mon_id", "from_node", "to_node"],
            registry=r,
        )
        self.segment_lost_total = Counter(
            "icpn_altmark_segment_lost_packets",
            "Packets lost over all finished blocks between two nodes",
            ["flow_mon_id", "from_node", "to_node"],
            registry=r,
        )
        self.poll_errors = Counter(
            "icpn_altmark_poll_errors", "Counter reads that failed", ["node"], registry=r
        )
        path_labels = ["policy", "list", "flow_mon_id"]
        self.path_loss_ratio = Gauge(
            "icpn_path_loss_ratio",
            "Loss ratio of a segment list in its latest finished block",
            path_labels,
            registry=r,
        )
        self.path_lost_total = Counter(
            "icpn_path_lost_packets",
            "Packets a segment list lost over all finished blocks",
            path_labels,
            registry=r,
        )
        self.path_sent_total = Counter(
            "icpn_path_sent_packets",
            "Packets a segment list carried over all finished blocks (from its own first node)",
            path_labels,
            registry=r,
        )
        self.path_delay = Gauge(
            "icpn_path_delay_seconds",
            "Mean one-way delay of a segment list in its latest finished block",
            path_labels,
            registry=r,
        )
        self._malformed_seen: dict[str, int] = {}
        self._poll_errors_seen: dict[str, int] = {}

    def on_trace(self, record: TraceRecord, lost_before: int) -> None:
        exporter = node_label(record.exporter, self.names)
        self.reports.labels(exporter).inc()
        self.lost_reports.labels(exporter).inc(lost_before)
        self.path_length.labels(exporter).set(len(record.nodes))
        path = [node_label(n, self.names) for n in record.path]
        for (a, b), delay in zip(itertools.pairwise(path), record.hop_delays_ns, strict=False):
            if delay is None:
                continue
            self.hop_delay_last.labels(a, b).set(delay * NS)
            if delay >= 0:  # a histogram cannot hold negative values
                self.hop_delay.labels(a, b).observe(delay * NS)
        for node, transit in zip(path, record.transit_delays_ns, strict=True):
            if transit is not None:
                self.transit_delay.labels(node).observe(transit * NS)

    def on_block(self, block: AltmarkBlock) -> None:
        flow = str(block.flow_mon_id)
        self.blocks.labels(flow).inc()
        for node, packets in block.packets.items():
            self.block_packets.labels(flow, node).set(packets)
        segments = self.segmenter(block)
        for seg in segments:
            labels = (flow, seg.upstream, seg.downstream)
            self.segment_loss.labels(*labels).set(seg.lost)
            self.segment_loss_ratio.labels(*labels).set(seg.ratio)
            if not seg.end_to_end or sum(not s.end_to_end for s in segments) > 1:
                self.segment_lost_total.labels(*labels).inc(max(seg.lost, 0))

    def on_path(self, sample: PathSample) -> None:
        labels = (sample.policy, str(sample.list_id), str(sample.flow_mon_id))
        self.path_loss_ratio.labels(*labels).set(sample.ratio)
        self.path_lost_total.labels(*labels).inc(max(sample.lost, 0))
        self.path_sent_total.labels(*labels).inc(sample.sent)
        if sample.delay_ms is not None:
            self.path_delay.labels(*labels).set(sample.delay_ms / 1000)

    def sync(self, traces: TraceCollector | None, monitor: AltmarkMonitor | None) -> None:
        """Bring the counters kept elsewhere (malformed datagrams, poll errors) up to date."""
        if traces is not None:
            for reason, count in traces.stats.malformed.items():
                new = count - self._malformed_seen.get(reason, 0)
                if new > 0:
                    self.malformed.labels(reason).inc(new)
                self._malformed_seen[reason] = count
        if monitor is not None:
            for node, count in monitor.poll_errors.items():
                new = count - self._poll_errors_seen.get(node, 0)
                if new > 0:
                    self.poll_errors.labels(node).inc(new)
                self._poll_errors_seen[node] = count

    def exposition(self) -> str:
        """The metrics in the Prometheus text format."""
        return generate_latest(self.registry).decode()


TRACE_COLUMNS = [
    "received_at",
    "exporter",
    "sequence",
    "lost_before",
    "overflow",
    "namespace_id",
    "trace_type",
    "src",
    "dst",
    "protocol",
    "src_port",
    "dst_port",
    "path",
    "hop_delays_ns",
    "transit_delays_ns",
    "ingress_ifs",
    "egress_ifs",
    "export_time_ns",
]
BLOCK_COLUMNS = [
    "finished_at",
    "flow_mon_id",
    "colour",
    "block",
    "from_node",
    "to_node",
    "end_to_end",
    "sent",
    "received",
    "lost",
    "loss_ratio",
]
PATH_COLUMNS = [
    "finished_at",
    "policy",
    "list",
    "flow_mon_id",
    "colour",
    "block",
    "from_node",
    "to_node",
    "sent",
    "received",
    "lost",
    "loss_ratio",
    "delay_ms",
]


class CsvExport:
    """``traces.csv`` (one row per report; lists joined with ';', node order = path order),
    ``altmark.csv`` (one row per segment of every finished block) and ``paths.csv`` (one
    row per segment list per finished block, icpn.collector.paths) in ``directory``. Rows
    are flushed at once so that a killed collector leaves complete files."""

    def __init__(
        self,
        directory: Path,
        names: Mapping[int, str] | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.names = dict(names or {})
        self.segmenter: Segmenter = segmenter or AltmarkBlock.segments
        self.traces_path = directory / "traces.csv"
        self.blocks_path = directory / "altmark.csv"
        self.paths_path = directory / "paths.csv"
        self._files: list[IO[str]] = []
        self._traces = self._open(self.traces_path, TRACE_COLUMNS)
        self._blocks = self._open(self.blocks_path, BLOCK_COLUMNS)
        self._paths = self._open(self.paths_path, PATH_COLUMNS)

    def _open(self, path: Path, columns: list[str]) -> csv.DictWriter[str]:
        new = not path.exists() or path.stat().st_size == 0
        f = path.open("a", newline="")
        self._files.append(f)
        writer = csv.DictWriter(f, columns)
        if new:
            writer.writeheader()
            f.flush()
        return writer

    def on_trace(self, record: TraceRecord, lost_before: int) -> None:
        flow = record.flow
        self._traces.writerow(
            {
                "received_at": f"{record.received_at:.6f}",
                "exporter": node_label(record.exporter, self.names),
                "sequence": record.sequence,
                "lost_before": lost_before,
                "overflow": int(record.overflow),
                "namespace_id": record.namespace_id,
                "trace_type": f"{record.trace_type:#08x}",
                "src": flow.src if flow else "",
                "dst": flow.dst if flow else "",
                "protocol": flow.protocol if flow else "",
                "src_port": flow.src_port if flow and flow.src_port is not None else "",
                "dst_port": flow.dst_port if flow and flow.dst_port is not None else "",
                "path": _join([node_label(n, self.names) for n in record.path]),
                "hop_delays_ns": _join(record.hop_delays_ns),
                "transit_delays_ns": _join(record.transit_delays_ns),
                "ingress_ifs": _join(tuple(n.ingress_if for n in record.nodes)),
                "egress_ifs": _join(tuple(n.egress_if for n in record.nodes)),
                "export_time_ns": record.export_time_ns,
            }
        )
        self._files[0].flush()

    def on_block(self, block: AltmarkBlock) -> None:
        for seg in self.segmenter(block):
            self._blocks.writerow(
                {
                    "finished_at": f"{block.finished_at:.6f}",
                    "flow_mon_id": block.flow_mon_id,
                    "colour": block.colour,
                    "block": block.number,
                    "from_node": seg.upstream,
                    "to_node": seg.downstream,
                    "end_to_end": int(seg.end_to_end),
                    "sent": seg.sent,
                    "received": seg.received,
                    "lost": seg.lost,
                    "loss_ratio": f"{seg.ratio:.6f}",
                }
            )
        self._files[1].flush()

    def on_path(self, sample: PathSample) -> None:
        self._paths.writerow(
            {
                "finished_at": f"{sample.finished_at:.6f}",
                "policy": sample.policy,
                "list": sample.list_id,
                "flow_mon_id": sample.flow_mon_id,
                "colour": sample.colour,
                "block": sample.block,
                "from_node": sample.start,
                "to_node": sample.endpoint,
                "sent": sample.sent,
                "received": sample.received,
                "lost": sample.lost,
                "loss_ratio": f"{sample.ratio:.6f}",
                "delay_ms": "" if sample.delay_ms is None else f"{sample.delay_ms:.3f}",
            }
        )
        self._files[2].flush()

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def __enter__(self) -> CsvExport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _us(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}"


def live_view(
    traces: TraceCollector | None,
    monitor: AltmarkMonitor | None,
    names: Mapping[int, str] | None = None,
    *,
    max_rows: int = 20,
    paths: PathMeter | None = None,
) -> Group:
    """The terminal view: latest trace per (exporter, flow), latest block per flow (cut
    into the SR policies' segments with ``paths``), the latest sample per segment list,
    and the counts an operator watches (reports, lost, malformed)."""
    labels = dict(names or {})
    segmenter: Segmenter = paths.plan.segments if paths is not None else AltmarkBlock.segments
    parts: list[Table] = []
    if traces is not None:
        stats = traces.stats
        table = Table(
            title=(
                f"IOAM traces — reports {stats.reports}, lost {traces.sequences.lost}, "
                f"malformed {sum(stats.malformed.values())}"
            )
        )
        for column in ("exporter", "flow", "path", "hop delays (us)", "transit (us)", "age (s)"):
            table.add_column(column)
        now = time.time()
        rows = sorted(traces.latest.values(), key=lambda r: r.received_at, reverse=True)
        for record in rows[:max_rows]:
            flow = record.flow
            flow_text = f"{flow.src}:{flow.src_port} → {flow.dst}:{flow.dst_port}" if flow else "?"
            table.add_row(
                node_label(record.exporter, labels),
                flow_text,
                " → ".join(node_label(n, labels) for n in record.path),
                " ".join(_us(d) for d in record.hop_delays_ns),
                " ".join(_us(d) for d in record.transit_delays_ns),
                f"{now - record.received_at:.1f}",
            )
        parts.append(table)
    if monitor is not None:
        table = Table(
            title=(
                f"Alternate marking — period {monitor.period_s * 1e3:.1f} ms, "
                f"polls {monitor.polls}, poll errors {sum(monitor.poll_errors.values())}"
            )
        )
        for column in ("FlowMonID", "block", "colour", "packets per node", "segment loss"):
            table.add_column(column)
        for flow_mon_id in monitor.flow_mon_ids[:max_rows]:
            block = monitor.latest.get(flow_mon_id)
            if block is None:
                table.add_row(str(flow_mon_id), "-", "-", "waiting for a finished block", "")
                continue
            table.add_row(
                str(flow_mon_id),
                str(block.number),
                str(block.colour),
                " ".join(f"{n}={p}" for n, p in block.packets.items()),
                " ".join(
                    f"{'e2e ' if s.end_to_end else ''}{s.upstream}→{s.downstream}: "
                    f"{s.lost} ({s.ratio:.2%})"
                    for s in segmenter(block)
                ),
            )
        parts.append(table)
    if paths is not None:
        table = Table(
            title=(
                f"Segment lists — reports of no list {paths.unmatched}, "
                f"without a colour {paths.uncoloured}"
            )
        )
        for column in ("policy", "list", "from → to", "block", "sent", "lost", "delay (ms)"):
            table.add_column(column)
        for sample in list(paths.latest.values())[:max_rows]:
            table.add_row(
                sample.policy,
                str(sample.list_id),
                f"{sample.start} → {sample.endpoint}",
                str(sample.block),
                str(sample.sent),
                f"{sample.lost} ({sample.ratio:.2%})",
                "-" if sample.delay_ms is None else f"{sample.delay_ms:.3f}",
            )
        parts.append(table)
    return Group(*parts)
