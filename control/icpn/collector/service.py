"""One collector run: the report socket, the counter polling, the exports and the live
view on one asyncio loop, for a bounded time or until cancelled, and everything it opened
closed on the way out (socket, HTTP server, CSV files). The CLI and the tests both use it;
switch connections are the caller's (they decide how to reach the switches)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import start_http_server
from rich.console import Console
from rich.live import Live

from icpn.collector.altmark import AltmarkMonitor, CounterSource
from icpn.collector.export import CsvExport, PrometheusExport, live_view
from icpn.collector.paths import PathMeter, PathPlan
from icpn.collector.traces import TraceCollector, listen
from icpn.controller.targets import make_client
from icpn.intent import SwitchIntent
from icpn.p4rt import SwitchClient, SwitchTarget

#: Election id the collector reads with: below any controller's (SwitchTarget defaults to
#: 10), so it is a backup (P4Runtime 5) that can read counters but never writes.
COLLECTOR_ELECTION_ID = 1
#: The collector's BfRuntime client id (the controller's is 1).
COLLECTOR_CLIENT_ID = 2
CONNECT_TIMEOUT_S = 15.0


@dataclass
class CollectorConfig:
    """What to run. ``listen`` None: no report socket; ``nodes`` empty: no polling.
    ``plan``: the SR policies' paths, for segments and per-list samples (icpn.collector.paths);
    ``netns``: the network namespace to receive reports in (traces.bind_in_netns)."""

    listen: tuple[str, int] | None = ("::", 50505)
    netns: str | None = None
    plan: PathPlan | None = None
    flow_mon_ids: Sequence[int] = ()
    period_log2_us: int = 20
    guard_s: float | None = None
    poll_interval_s: float | None = None
    csv_dir: Path | None = None
    prometheus_port: int | None = None
    prometheus_addr: str = "0.0.0.0"
    duration_s: float | None = None
    watch: bool = False
    refresh_s: float = 0.5
    names: Mapping[int, str] = field(default_factory=dict)  # IOAM node id -> name


@dataclass
class Collector:
    """The parts of a running collector (for the caller to inspect while and after)."""

    traces: TraceCollector
    monitor: AltmarkMonitor | None
    prometheus: PrometheusExport
    address: tuple[str, int] | None = None
    csv: CsvExport | None = None
    paths: PathMeter | None = None  # per segment list, with a plan


async def run_collector(
    config: CollectorConfig,
    nodes: Mapping[str, CounterSource] | None = None,
    *,
    console: Console | None = None,
    on_started: Callable[[Collector], None] | None = None,
) -> Collector:
    """Run until ``config.duration_s`` has passed (or the task is cancelled)."""
    plan = config.plan
    segmenter = plan.segments if plan is not None else None
    prometheus = PrometheusExport(names=config.names, segmenter=segmenter)
    traces = TraceCollector([prometheus.on_trace])
    monitor = None
    if nodes and config.flow_mon_ids:
        monitor = AltmarkMonitor(
            nodes,
            config.flow_mon_ids,
            config.period_log2_us,
            guard_s=config.guard_s,
            sinks=[prometheus.on_block],
        )
    meter = None
    if plan is not None:
        meter = PathMeter(plan, [prometheus.on_path])
        traces.sinks.append(meter.on_trace)
        if monitor is not None:
            monitor.sinks.append(meter.on_block)
            monitor.baseline_sinks.append(meter.on_baseline)
    collector = Collector(traces, monitor, prometheus, paths=meter)
    async with contextlib.AsyncExitStack() as stack:
        if config.csv_dir is not None:
            collector.csv = stack.enter_context(
                CsvExport(config.csv_dir, config.names, segmenter=segmenter)
            )
            traces.sinks.append(collector.csv.on_trace)
            if monitor is not None:
                monitor.sinks.append(collector.csv.on_block)
            if meter is not None:
                meter.sinks.append(collector.csv.on_path)
        if config.listen is not None:
            transport, collector.address = await listen(traces, *config.listen, config.netns)
            stack.callback(transport.close)
        if config.prometheus_port is not None:
            server, thread = start_http_server(
                config.prometheus_port, config.prometheus_addr, registry=prometheus.registry
            )
            stack.callback(thread.join, 5)
            stack.callback(server.server_close)
            stack.callback(server.shutdown)
        live = None
        if config.watch:
            live = stack.enter_context(
                Live(
                    live_view(traces, monitor, config.names, paths=meter),
                    console=console,
                    auto_refresh=False,
                )
            )
        if on_started is not None:
            on_started(collector)
        await _loop(collector, config, live)
    return collector


async def _loop(collector: Collector, config: CollectorConfig, live: Live | None) -> None:
    """Poll and refresh until the deadline; every wait is bounded by the poll interval."""
    monitor = collector.monitor
    interval = config.refresh_s
    if monitor is not None:
        interval = config.poll_interval_s or monitor.suggested_interval_s
    deadline = None if config.duration_s is None else time.monotonic() + config.duration_s
    while True:
        if monitor is not None:
            await monitor.poll_once()
        collector.prometheus.sync(collector.traces, monitor)
        if live is not None:
            view = live_view(collector.traces, monitor, config.names, paths=collector.paths)
            live.update(view, refresh=True)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        await asyncio.sleep(interval if remaining is None else min(interval, remaining))


@contextlib.asynccontextmanager
async def connect_readers(
    switches: Mapping[str, tuple[str, int]],
    tofino: Mapping[str, SwitchIntent] | None = None,
) -> AsyncIterator[dict[str, CounterSource]]:
    """Connect to each switch (name -> (gRPC address, device id)) as a backup client with
    :data:`COLLECTOR_ELECTION_ID`, taking the P4Info from the switch (never pushing one).

    Tofino switches (``tofino``: their intent) are read through their own API with the TNA
    build's schemas: over P4Runtime as a backup like the rest, over BfRuntime as client
    :data:`COLLECTOR_CLIENT_ID`, bound to the program the controller loaded."""
    tofino = tofino or {}
    async with contextlib.AsyncExitStack() as stack:
        readers: dict[str, CounterSource] = {}
        for name, (address, device_id) in switches.items():
            client: Any
            if name in tofino:
                intent = tofino[name].model_copy(update={"grpc": address, "device_id": device_id})
                client = make_client(
                    f"collector-{name}",
                    intent,
                    artifacts=None,
                    election_id=COLLECTOR_ELECTION_ID,
                    client_id=COLLECTOR_CLIENT_ID,
                )
            else:
                target = SwitchTarget(
                    f"collector-{name}",
                    address,
                    device_id=device_id,
                    election_id=COLLECTOR_ELECTION_ID,
                )
                client = SwitchClient(target)
            try:
                await asyncio.wait_for(client.connect(), timeout=CONNECT_TIMEOUT_S)
            except BaseException:
                await client.close()
                raise
            stack.push_async_callback(client.close)
            readers[name] = client
        yield readers
