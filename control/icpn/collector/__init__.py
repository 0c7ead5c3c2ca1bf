"""The IFIT telemetry collector (DESIGN.md 4): IOAM trace reports over UDP decoded into
paths and per-hop delays (:mod:`.traces`), alternate-marking loss per block and segment
from the nodes' colour counters (:mod:`.altmark`), exported to Prometheus, CSV and a live
table (:mod:`.export`), run by :mod:`.service` and the ``icpn collect`` command (:mod:`.cli`).
"""

from icpn.collector.altmark import AltmarkBlock, AltmarkMonitor, CounterSource, SegmentLoss
from icpn.collector.export import CsvExport, PrometheusExport, live_view
from icpn.collector.service import (
    COLLECTOR_ELECTION_ID,
    Collector,
    CollectorConfig,
    connect_readers,
    run_collector,
)
from icpn.collector.traces import (
    MalformedReport,
    SequenceTracker,
    TraceCollector,
    TraceRecord,
    decode_report,
    listen,
)

__all__ = [
    "COLLECTOR_ELECTION_ID",
    "AltmarkBlock",
    "AltmarkMonitor",
    "Collector",
    "CollectorConfig",
    "CounterSource",
    "CsvExport",
    "MalformedReport",
    "PrometheusExport",
    "SegmentLoss",
    "SequenceTracker",
    "TraceCollector",
    "TraceRecord",
    "connect_readers",
    "decode_report",
    "listen",
    "live_view",
    "run_collector",
]
