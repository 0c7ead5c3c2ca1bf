"""``icpn net``: bring an emulated topology up (BMv2 switches, namespace hosts, the
controller), run commands in its hosts, and take it down again, also after a crash.

Exit codes: 0 success; 1 the network failed to come up or to go away (the message says
what, and where the logs are); 2 bad usage, an unknown topology, an invalid intent or a
missing prerequisite (root, Mininet, p4c/BMv2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

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
from icpn.net.state import STATE_FILE, NetState, alive, tear_down
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
    collector: Annotated[
        bool,
        typer.Option(
            help="Start the IFIT collector (without: run your own, icpn collect --netns collector)."
        ),
    ] = True,
) -> None:
    """Start BMv2 switches, hosts and links from the topology's intent, push the pipeline
    and the entries, then keep the controller running (elephants, switch restarts) until
    Ctrl-C or ``icpn net down``."""
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
        _detach(topology, path, collector)
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
    try:
        with emulate(path.stem, intent, log_dir) as emu:
            state.bmv2_pids, state.host_pids = emu.bmv2_pids, emu.host_pids
            state.interfaces = emu.interfaces
            state.save()
            ctl = Controller(intent, configs, art)
            ctl.progress = lambda message: console.print(message, markup=False, highlight=False)
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
                state.save()
                _print_hosts(path.stem, intent.hosts, log_dir)
                logging.getLogger("finsy").setLevel(logging.ERROR)
                asyncio.run(ctl.run())
    except KeyboardInterrupt:
        console.print(f"{path.stem}: stopping")
    except (EmulationError, UnreachableError, ReconcileError, CollectorStartError) as exc:
        err.print(f"[red]error:[/red] {exc}; logs in {log_dir}")
        raise typer.Exit(EXIT_FAILED) from exc
    finally:
        STATE_FILE.unlink(missing_ok=True)
    console.print(f"{path.stem}: down, everything removed")


def _print_hosts(topology: str, hosts: dict[str, HostIntent], log_dir: Path) -> None:
    table = Table("host", "address", "switch port", title=f"{topology} is up")
    for name, spec in hosts.items():
        table.add_row(name, spec.address, f"{spec.switch}:{spec.port}")
    console.print(table)
    console.print(
        f"run commands with: icpn net exec <host> -- <command>; logs in {log_dir}; "
        "icpn net down (or Ctrl-C) to stop"
    )


def _detach(topology: str, path: Path, collector: bool = True) -> None:
    NET_DIR.mkdir(parents=True, exist_ok=True)
    log = NET_DIR / f"{path.stem}.log"
    command = [sys.executable, "-m", "icpn.cli", "net", "up", str(path)]
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
    try:
        state = NetState.load()
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_FAILED) from exc
    if state is None:
        console.print("no network is up")
        return
    done = tear_down(state)
    for line in done:
        console.print(line)
    left = [pid for pid in [state.pid, *state.bmv2_pids.values()] if alive(pid)]
    if left:
        err.print(f"[red]still running:[/red] pids {left}")
        raise typer.Exit(EXIT_FAILED)
    console.print(f"{state.topology}: down")


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
