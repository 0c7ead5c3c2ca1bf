"""``icpn net``: bring an emulated topology up (BMv2 switches, namespace hosts, the
controller), run commands in its hosts, and take it down again, also after a crash.

Exit codes: 0 success; 1 the network failed to come up or to go away (the message says
what, and where the logs are); 2 bad usage, an unknown topology, an invalid intent or a
missing prerequisite (root, Mininet, p4c/BMv2).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from icpn.controller.core import Controller, UnreachableError
from icpn.controller.reconcile import ReconcileError
from icpn.controller.render import load_and_render
from icpn.intent import HostIntent, IntentError
from icpn.net.emulation import (
    NET_DIR,
    EmulationError,
    emulate,
    mininet_available,
    netem_available,
)
from icpn.net.state import STATE_FILE, NetState, alive, is_bmv2, tear_down
from icpn.net.supervise import RestartPolicy, Supervisor, request_path
from icpn.net.telemetry import CollectorStartError, collector_process, summarize, telemetry_dir
from icpn.paths import PROJECT_ROOT
from icpn.targets import toolchain
from icpn.targets.bmv2 import build

app = typer.Typer(help="Emulated topologies: up, exec, down.", no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)

EXIT_FAILED = 1
EXIT_USAGE = 2
TOPOLOGY_DIR = PROJECT_ROOT / "topologies"
DETACH_TIMEOUT_S = 120.0
#: The lab's event journal in its log directory: switch exits/restarts (the supervisor) and
#: failover (the controller), one JSON object a line, timed with time.monotonic().
EVENTS = "events.jsonl"
#: How long icpn net restart waits for the switch to serve and be restored.
RESTART_WAIT_S = 60.0


def topologies() -> dict[str, Path]:
    return {p.stem: p for p in sorted(TOPOLOGY_DIR.glob("*.yaml"))}


def resolve(topology: str) -> Path:
    """A topology name (``data-ingestion``) or an intent file path."""
    known = topologies()
    if topology in known:
        return known[topology]
    path = Path(topology)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    err.print(f"unknown topology {topology!r}; known: {', '.join(known)} (or an intent file)")
    raise typer.Exit(EXIT_USAGE)


@app.command("list")
def list_cmd() -> None:
    """The topologies shipped in topologies/."""
    table = Table("topology", "switches", "hosts", "intent")
    for name, path in topologies().items():
        try:
            intent, _ = load_and_render(path)
        except IntentError as exc:
            table.add_row(name, "invalid", str(len(exc.problems)) + " problem(s)", str(path))
            continue
        table.add_row(name, str(len(intent.switches)), ", ".join(intent.hosts), str(path))
    console.print(table)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@app.command("up")
def up_cmd(
    topology: Annotated[str, typer.Argument(help="Topology name (icpn net list) or intent file.")],
    detach: Annotated[
        bool, typer.Option(help="Return once the network is up; stop it with icpn net down.")
    ] = False,
    restart_on_exit: Annotated[
        bool,
        typer.Option(
            help="Restart a switch whose BMv2 exits (after 1 s, at most 3 times a minute)."
        ),
    ] = True,
    failover: Annotated[
        bool,
        typer.Option(
            help="Steer the SR policies around a switch that is down (--no-failover: leave "
            "the groups as they are, e.g. to measure what failover saves)."
        ),
    ] = True,
    collector: Annotated[
        bool,
        typer.Option(
            help="Start the IFIT collector (without: run your own, icpn collect --netns collector)."
        ),
    ] = True,
) -> None:
    """Start BMv2 switches, hosts and links from the topology's intent, push the pipeline
    and the entries, then keep the controller running (elephants, failover, switch
    restarts) and the switches supervised until Ctrl-C or ``icpn net down``."""
    path = resolve(topology)
    try:
        intent, configs = load_and_render(path)
    except IntentError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    reason = mininet_available() or toolchain.bmv2_unavailable_reason()
    if reason is not None:
        err.print(f"[red]cannot emulate a network here:[/red] {reason}")
        raise typer.Exit(EXIT_USAGE)
    existing = NetState.load()
    if existing is not None and alive(existing.pid):
        err.print(f"{existing.topology} is already up (pid {existing.pid}); icpn net down first")
        raise typer.Exit(EXIT_FAILED)
    if existing is not None:
        done = tear_down(existing)
        console.print(f"cleaned up after a previous run that died: {len(done)} item(s)")
    if detach:
        _detach(topology, path, restart_on_exit, failover, collector)
        return
    try:
        art = build.compile_program("icpn")
    except build.BuildError as exc:
        err.print(f"[red]cannot build the pipeline:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    signal.signal(signal.SIGTERM, _interrupt)
    log_dir = NET_DIR / path.stem
    if not netem_available():
        console.print(
            "[yellow]note:[/yellow] this kernel has no sch_netem: links get their rates but "
            "not their delays"
        )
    state = NetState(path.stem, str(path), os.getpid(), str(log_dir))
    state.save()
    journal = log_dir / EVENTS
    supervisor: Supervisor | None = None
    try:
        with emulate(path.stem, intent, log_dir) as emu:
            state.bmv2_pids, state.host_pids = emu.bmv2_pids, emu.host_pids
            state.bmv2_started = {name: [pid] for name, pid in emu.bmv2_pids.items()}
            state.interfaces = emu.interfaces
            state.save()
            journal.unlink(missing_ok=True)
            ctl = Controller(intent, configs, art, journal=journal)
            ctl.failover.enabled = failover
            ctl.progress = _say
            asyncio.run(ctl.apply())
            hosts = emu.host_pids if collector else {}
            with collector_process(intent, path, hosts, log_dir) as running:
                if running is not None:
                    state.collector_pid = running.pid
                    state.metrics_port = running.metrics_port
                    console.print(
                        f"collector: trace reports and counters into {running.csv_dir}, "
                        f"metrics on http://127.0.0.1:{running.metrics_port}/metrics "
                        "(icpn net telemetry)"
                    )
                state.ready = True
                supervisor = Supervisor(
                    emu.switches(),
                    state,
                    NET_DIR / "requests",
                    journal,
                    RestartPolicy(enabled=restart_on_exit),
                    progress=_say,
                ).start()  # from here on only the supervisor writes the state file
                _print_hosts(path.stem, intent.hosts, log_dir)
                logging.getLogger("finsy").setLevel(logging.ERROR)
                try:
                    asyncio.run(ctl.run())
                finally:
                    supervisor.stop()
    except KeyboardInterrupt:
        console.print(f"{path.stem}: stopping")
    except (EmulationError, UnreachableError, ReconcileError, CollectorStartError) as exc:
        err.print(f"[red]error:[/red] {exc}; logs in {log_dir}")
        raise typer.Exit(EXIT_FAILED) from exc
    finally:
        STATE_FILE.unlink(missing_ok=True)
    console.print(f"{path.stem}: down, everything removed")


def _say(message: str) -> None:
    console.print(message, markup=False, highlight=False)


def _print_hosts(topology: str, hosts: dict[str, HostIntent], log_dir: Path) -> None:
    table = Table("host", "address", "switch port", title=f"{topology} is up")
    for name, spec in hosts.items():
        table.add_row(name, spec.address, f"{spec.switch}:{spec.port}")
    console.print(table)
    console.print(
        f"run commands with: icpn net exec <host> -- <command>; logs in {log_dir}; "
        "icpn net down (or Ctrl-C) to stop"
    )


def _detach(
    topology: str, path: Path, restart_on_exit: bool, failover: bool, collector: bool = True
) -> None:
    NET_DIR.mkdir(parents=True, exist_ok=True)
    log = NET_DIR / f"{path.stem}.log"
    command = [sys.executable, "-m", "icpn.cli", "net", "up", str(path)]
    command.append("--restart-on-exit" if restart_on_exit else "--no-restart-on-exit")
    command.append("--failover" if failover else "--no-failover")
    if not collector:
        command.append("--no-collector")
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    with console.status(f"bringing {path.stem} up (log: {log})"):
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                err.print(f"[red]{path.stem} failed to come up[/red]:\n{tail}")
                raise typer.Exit(EXIT_FAILED)
            state = NetState.load()
            if state is not None and state.pid == process.pid and state.ready:
                console.print(f"{path.stem} is up (pid {process.pid}); log: {log}")
                return
            time.sleep(0.2)
    process.terminate()
    err.print(f"[red]{path.stem} did not come up within {DETACH_TIMEOUT_S:.0f} s[/red]; see {log}")
    raise typer.Exit(EXIT_FAILED)


@app.command("down")
def down_cmd() -> None:
    """Stop the running network and remove its switches, hosts and links; after a crash,
    remove what the dead process left."""
    state = _load_state()
    if state is None:
        console.print("no network is up")
        return
    done = tear_down(state)
    for line in done:
        console.print(line)
    pids = [state.pid, *state.bmv2_pids.values()]
    pids += [pid for started in state.bmv2_started.values() for pid in started]
    left = sorted({pid for pid in pids if alive(pid) and (pid == state.pid or is_bmv2(pid))})
    if left:
        err.print(f"[red]still running:[/red] pids {left}")
        raise typer.Exit(EXIT_FAILED)
    console.print(f"{state.topology}: down")


def _load_state() -> NetState | None:
    """The lab's state file, or exit 1 naming a corrupt one."""
    try:
        return NetState.load()
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from exc


def _running() -> NetState:
    """The running lab's state, or exit with why there is none."""
    state = _load_state()
    if state is None or not state.ready:
        err.print("no network is up: icpn net up <topology> --detach")
        raise typer.Exit(EXIT_FAILED)
    if not alive(state.pid):
        err.print(f"the icpn net up process (pid {state.pid}) is gone: icpn net down, then up")
        raise typer.Exit(EXIT_FAILED)
    return state


def _known_switch(state: NetState, switch: str) -> None:
    if switch not in state.grpc:
        err.print(f"no switch {switch!r}; switches: {', '.join(state.grpc)}")
        raise typer.Exit(EXIT_USAGE)


def _events(state: NetState) -> list[dict[str, Any]]:
    path = Path(state.log_dir) / EVENTS
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return found


def _wait_event(state: NetState, switch: str, kinds: set[str], since: float) -> dict[str, Any]:
    """The first journal event of ``switch`` of one of ``kinds`` at or after ``since``."""
    deadline = time.monotonic() + RESTART_WAIT_S
    while time.monotonic() < deadline:
        for event in _events(state):
            mine = event.get("switch") == switch and event.get("kind") in kinds
            if mine and event.get("at", 0) >= since:
                return event
        if not alive(state.pid):
            err.print(f"the icpn net up process (pid {state.pid}) is gone")
            raise typer.Exit(EXIT_FAILED)
        time.sleep(0.1)
    err.print(
        f"{switch}: no {' or '.join(sorted(kinds))} within {RESTART_WAIT_S:.0f} s; "
        f"see {Path(state.log_dir) / EVENTS}"
    )
    raise typer.Exit(EXIT_FAILED)


@app.command("restart")
def restart_cmd(
    switch: Annotated[str, typer.Argument(help="Switch name from the topology.")],
) -> None:
    """Restart a switch's BMv2 (after icpn net kill, a crash, or while it runs) and wait
    until the controller has restored its state and put its paths back in service."""
    state = _running()
    _known_switch(state, switch)
    since = time.monotonic()
    request_path(Path(state.requests), switch, "restart").touch()
    started = _wait_event(state, switch, {"serving", "restart failed", "not serving"}, since)
    if started["kind"] != "serving":
        err.print(f"[red]{switch} was not restarted:[/red] {started.get('detail', '')}")
        raise typer.Exit(EXIT_FAILED)
    console.print(
        f"{switch}: BMv2 serving again (pid {started['pid']}) after {started['at'] - since:.1f} s"
    )
    restored = _wait_event(state, switch, {"up"}, started["at"])
    console.print(
        f"{switch}: state restored by the controller "
        f"{restored['at'] - started['at']:.1f} s later; its paths are back in service"
    )


@app.command("kill")
def kill_cmd(
    switch: Annotated[str, typer.Argument(help="Switch name from the topology.")],
) -> None:
    """Kill a switch's BMv2 as a crash would (SIGKILL) and keep it down until icpn net
    restart: the controller steers the paths through it around it meanwhile."""
    state = _running()
    _known_switch(state, switch)
    since = time.monotonic()
    request_path(Path(state.requests), switch, "kill").touch()
    killed = _wait_event(state, switch, {"kill"}, since)
    console.print(
        f"{switch}: BMv2 killed (pid {killed['pid']}); down until icpn net restart {switch}"
    )
    deadline = time.monotonic() + 3  # failover's drains follow within a second
    drained = _drains(state, switch, since)
    while not drained and time.monotonic() < deadline:
        time.sleep(0.05)
        drained = _drains(state, switch, since)
    for event in drained:
        console.print(
            f"{event['switch']}: SR policy {event['policy']}: segment list(s) "
            f"{', '.join(map(str, event['list_ids']))} out of service "
            f"{event['at'] - killed['at']:.3f} s after the kill"
        )


def _drains(state: NetState, switch: str, since: float) -> list[dict[str, Any]]:
    return [
        e
        for e in _events(state)
        if e.get("kind") == "drain" and e.get("at", 0) >= since and switch in e.get("detail", "")
    ]


@app.command("status")
def status_cmd(
    events: Annotated[int, typer.Option(min=0, help="How many recent events to list.")] = 10,
) -> None:
    """The running lab: each switch's BMv2 (pid, state, restarts) and recent switch and
    failover events."""
    state = _load_state()
    if state is None:
        console.print("no network is up")
        return
    up = "running" if alive(state.pid) else "GONE (icpn net down cleans up)"
    console.print(f"{state.topology}: icpn net up pid {state.pid} {up}; logs in {state.log_dir}")
    table = Table("switch", "gRPC", "pid", "state", "restarts")
    for name, grpc in (state.grpc or {n: "" for n in state.bmv2_pids}).items():
        pid = state.bmv2_pids.get(name)
        live = pid is not None and alive(pid) and is_bmv2(pid)
        table.add_row(
            name,
            grpc,
            f"{pid}" if live else f"{pid} (gone)",
            state.switch_state.get(name, "running" if live else "unknown"),
            str(state.restarts.get(name, 0)),
        )
    console.print(table)
    recent = _events(state)[-events:] if events else []
    if recent:
        now = time.monotonic()
        rows = Table("ago (s)", "switch", "event", "detail", title="recent events")
        for event in recent:
            detail = event.get("detail") or ""
            if event.get("list_ids"):
                detail = f"SR policy {event.get('policy')} lists {event['list_ids']}: {detail}"
            if event.get("pid"):
                detail = f"pid {event['pid']} {detail}".strip()
            rows.add_row(
                f"{now - event.get('at', now):.1f}",
                event.get("switch", ""),
                event.get("kind", ""),
                detail,
            )
        console.print(rows)


@app.command("telemetry")
def telemetry_cmd() -> None:
    """What the running network's collector measured: trace reports, and per SR policy
    segment list the packets sent, lost and the mean one-way delay over the finished
    alternate-marking blocks (docs/telemetry-report.md, "In the lab")."""
    state = NetState.load()
    if state is None or not state.ready:
        err.print("no network is up: icpn net up <topology> --detach")
        raise typer.Exit(EXIT_FAILED)
    out_dir = telemetry_dir(Path(state.log_dir))
    if state.collector_pid is None:
        err.print(
            f"{state.topology} runs no collector (no `collector` in its intent, or "
            "net up --no-collector)"
        )
        raise typer.Exit(EXIT_FAILED)
    summary = summarize(out_dir)
    console.print(f"trace reports received: {summary.reports} (CSV in {out_dir})")
    table = Table("policy", "list", "measured", "blocks", "sent", "lost", "loss", "delay (ms)")
    for item in summary.lists:
        table.add_row(
            item.policy,
            item.list_id,
            f"{item.from_node} → {item.to_node}",
            str(item.blocks),
            str(item.sent),
            str(item.lost),
            f"{item.ratio:.2%}",
            "-" if item.delay_ms is None else f"{item.delay_ms:.3f}",
        )
    console.print(table)
    if summary.segments:
        latest = Table("from", "to", "sent", "lost", title="segments of the latest block")
        for row in summary.segments:
            kind = " (end to end)" if row["end_to_end"] == "1" else ""
            latest.add_row(row["from_node"], row["to_node"] + kind, row["sent"], row["lost"])
        console.print(latest)


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_cmd(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="Host name from the topology.")],
) -> None:
    """Run a command in a host of the running network: icpn net exec src -- ping -6 ..."""
    state = NetState.load()
    if state is None or not state.ready:
        err.print("no network is up: icpn net up <topology> --detach")
        raise typer.Exit(EXIT_FAILED)
    if host not in state.host_pids:
        err.print(f"no host {host!r}; hosts: {', '.join(state.host_pids)}")
        raise typer.Exit(EXIT_USAGE)
    if not ctx.args:
        err.print("give the command after --")
        raise typer.Exit(EXIT_USAGE)
    result = subprocess.run(["mnexec", "-a", str(state.host_pids[host]), *ctx.args], check=False)
    raise typer.Exit(result.returncode)
