"""``icpn collect``: the IFIT telemetry collector as one command (a typer app whose callback
is the command, so it mounts as ``app.add_typer(collector_app, name="collect")``).

Exit codes as in ``icpn.cli``: 0 success, 1 the work failed (a switch unreachable, the
port taken), 2 bad usage (the message names the option).
"""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from icpn.collector.paths import PathPlan, plan_from_intent
from icpn.collector.service import Collector, CollectorConfig, connect_readers, run_collector
from icpn.constants import REPORT_UDP_PORT
from icpn.controller.render import RenderError
from icpn.controller.targets import TargetError
from icpn.intent import Intent, IntentError, SwitchIntent, load_intent
from icpn.switch_api import SwitchApiError

EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_PERIOD_LOG2_US = 20  # ~1.05 s blocks

app = typer.Typer(
    help="Collect IFIT telemetry: IOAM trace reports and alternate-marking loss.",
    add_completion=False,
)
console = Console()
err = Console(stderr=True)


def parse_hostport(value: str, *, what: str = "--listen") -> tuple[str, int]:
    """``HOST:PORT``, ``[IPV6]:PORT`` or ``:PORT`` (all addresses, IPv6 and IPv4)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise typer.BadParameter(f"{value!r} is not HOST:PORT (port 0..65535)", param_hint=what)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise typer.BadParameter(f"{host!r} is not an IPv6 address", param_hint=what) from exc
    elif ":" in host:
        raise typer.BadParameter(
            f"write an IPv6 address in brackets: [{host}]:PORT", param_hint=what
        )
    return host or "::", int(port_text)


def _switches_from(
    intent: Intent, path: list[str] | None, extra: dict[str, tuple[str, int]]
) -> dict[str, tuple[str, int]]:
    switches = {name: (s.grpc, s.device_id) for name, s in intent.switches.items()}
    switches.update(extra)
    if path is None:
        return switches
    unknown = [n for n in path if n not in switches]
    if unknown:
        raise typer.BadParameter(f"unknown switch(es) {', '.join(unknown)}", param_hint="--path")
    return {n: switches[n] for n in path}


def _parse_switch(value: str) -> tuple[str, tuple[str, int]]:
    """``NAME=HOST:PORT`` or ``NAME=HOST:PORT@DEVICE_ID``."""
    name, sep, rest = value.partition("=")
    address, _, device = rest.partition("@")
    if not sep or not name or not address:
        raise typer.BadParameter(f"{value!r} is not NAME=HOST:PORT[@DEVICE]", param_hint="--switch")
    parse_hostport(address, what="--switch")
    if device and not device.isdigit():
        raise typer.BadParameter(f"device id {device!r} is not a number", param_hint="--switch")
    return name, (address, int(device or 0))


@app.callback(invoke_without_command=True)
def collect(
    listen: Annotated[
        str, typer.Option(help="Where to receive trace reports, HOST:PORT ([::] for IPv6).")
    ] = f"[::]:{REPORT_UDP_PORT}",
    intent: Annotated[
        Path | None,
        typer.Option(help="Intent YAML: switches to poll, FlowMonIDs, period, node names."),
    ] = None,
    switch: Annotated[
        list[str] | None,
        typer.Option(
            help="A switch to poll, NAME=HOST:PORT or NAME=HOST:PORT@DEVICE (repeatable)."
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            help="Switches in path order, comma-separated (default: the intent's SR policy "
            "paths, else all switches as listed)."
        ),
    ] = None,
    netns: Annotated[
        str | None,
        typer.Option(
            help="Receive reports in this network namespace: a path (/proc/PID/ns/net, "
            "/run/netns/NAME), a PID, or a host of the running icpn net (collector); the "
            "switches are still reached from here."
        ),
    ] = None,
    flow_mon_id: Annotated[
        list[int] | None,
        typer.Option(min=0, max=(1 << 20) - 1, help="FlowMonID to measure (repeatable)."),
    ] = None,
    period_log2_us: Annotated[
        int | None,
        typer.Option(min=0, max=47, help="Marking period 2^k us (default: the intent's, or 20)."),
    ] = None,
    guard_ms: Annotated[
        float | None, typer.Option(min=0, help="Guard after a colour switch (default T/2).")
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds between counter polls (default T/4).")
    ] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Directory for traces.csv and altmark.csv.")
    ] = None,
    prometheus_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Serve Prometheus metrics on this port.")
    ] = None,
    watch: Annotated[bool, typer.Option(help="Show a live table in the terminal.")] = False,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
) -> None:
    """Receive IOAM trace reports and poll alternate-marking counters; export Prometheus
    metrics, CSV and a live table. Reads switches as a backup P4Runtime client (election
    id 1): it never writes."""
    host, port = parse_hostport(listen)
    extra = dict(_parse_switch(s) for s in switch or [])
    loaded: Intent | None = None
    if intent is not None:
        try:
            loaded = load_intent(intent)
        except IntentError as exc:
            err.print(f"[red]bad intent:[/red]\n{exc}")
            raise typer.Exit(EXIT_USAGE) from exc
    order = [p.strip() for p in path.split(",") if p.strip()] if path else None
    plan: PathPlan | None = None
    if loaded is not None and order is None and loaded.sr_policies:
        try:
            plan = plan_from_intent(loaded)
        except RenderError as exc:
            err.print(f"[red]bad intent:[/red] {exc}")
            raise typer.Exit(EXIT_USAGE) from exc
        if plan.paths:
            order = plan.nodes()
        else:
            plan = None  # no SR policy is measured (no altmark profile): as before
    if loaded is not None:
        switches = _switches_from(loaded, order, extra)
    elif order is not None:
        unknown = [n for n in order if n not in extra]
        if unknown:
            raise typer.BadParameter(
                f"unknown switch(es) {', '.join(unknown)}", param_hint="--path"
            )
        switches = {n: extra[n] for n in order}
    else:
        switches = extra
    flows = list(flow_mon_id or [])
    periods: set[int] = set()
    names: dict[int, str] = {}
    if loaded is not None:
        marks = [t.altmark for t in loaded.telemetry if t.altmark is not None]
        flows = flows or [m.flow_mon_id for m in marks]
        periods = {m.period_log2_us for m in marks if m.flow_mon_id in flows}
        ids = [s.ioam_node_id for s in loaded.switches.values()]
        names = {
            s.ioam_node_id: n for n, s in loaded.switches.items() if ids.count(s.ioam_node_id) == 1
        }
    if period_log2_us is None:
        if len(periods) > 1:
            raise typer.BadParameter(
                f"the intent's FlowMonIDs use periods {sorted(periods)}; pick one",
                param_hint="--period-log2-us",
            )
        period_log2_us = periods.pop() if periods else DEFAULT_PERIOD_LOG2_US
    if switches and not flows:
        raise typer.BadParameter(
            "switches to poll but no FlowMonID (give --flow-mon-id or an intent with altmark)",
            param_hint="--flow-mon-id",
        )
    config = CollectorConfig(
        listen=(host, port),
        netns=_netns_path(netns),
        plan=plan,
        flow_mon_ids=flows,
        period_log2_us=period_log2_us,
        guard_s=None if guard_ms is None else guard_ms / 1000,
        poll_interval_s=poll_interval,
        csv_dir=csv,
        prometheus_port=prometheus_port,
        duration_s=duration,
        watch=watch,
        names=names,
    )
    try:
        tofino = {
            n: s
            for n, s in (loaded.switches.items() if loaded else ())
            if s.is_tofino and n in switches
        }
        collector = asyncio.run(_main(config, switches, tofino))
    except KeyboardInterrupt:
        console.print("stopped")
        return
    except (OSError, SwitchApiError, TargetError, TimeoutError) as exc:
        err.print(f"[red]error:[/red] {exc or type(exc).__name__}")
        raise typer.Exit(EXIT_FAILED) from exc
    stats = collector.traces.stats
    blocks = len(collector.monitor.blocks) if collector.monitor else 0
    console.print(
        f"reports {stats.reports}, lost {collector.traces.sequences.lost}, "
        f"malformed {sum(stats.malformed.values())}, altmark blocks {blocks}"
        + (f", segment-list samples {len(collector.paths.samples)}" if collector.paths else "")
    )


def _netns_path(value: str | None) -> str | None:
    if value is None:
        return None
    if value.isdigit():
        path = f"/proc/{value}/ns/net"
    elif "/" in value:
        path = value
    else:  # a host of the running lab
        from icpn.net.state import NetState

        state = NetState.load()
        if state is None or value not in state.host_pids:
            hosts = ", ".join(state.host_pids) if state else "no network is up"
            raise typer.BadParameter(f"no lab host {value!r} ({hosts})", param_hint="--netns")
        path = f"/proc/{state.host_pids[value]}/ns/net"
    if not Path(path).exists():
        raise typer.BadParameter(f"no network namespace at {path}", param_hint="--netns")
    return path


async def _main(
    config: CollectorConfig,
    switches: dict[str, tuple[str, int]],
    tofino: dict[str, SwitchIntent] | None = None,
) -> Collector:
    def started(c: Collector) -> None:
        if c.address is not None and not config.watch:
            console.print(f"listening for trace reports on {c.address[0]} port {c.address[1]}")

    if not switches:
        return await run_collector(config, console=console, on_started=started)
    async with connect_readers(switches, tofino) as readers:
        return await run_collector(config, readers, console=console, on_started=started)


if __name__ == "__main__":
    app()
