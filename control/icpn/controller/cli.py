"""``icpn ctl``: run the controller on an intent file, and show what the switches hold.

Exit codes follow the rest of the CLI: 0 success; 1 the work failed (a switch unreachable or
refusing a write; the message says which, and what state it was left in); 2 bad usage, an
invalid intent (every problem listed with file, line and field) or a missing prerequisite.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import finsy as fy
import typer
from rich.console import Console
from rich.table import Table

from icpn.constants import DropReason
from icpn.controller.core import Controller, UnreachableError
from icpn.controller.reconcile import ReconcileError, plan, read_state
from icpn.controller.render import load_and_render
from icpn.controller.targets import Client, TargetError
from icpn.controller.writes import planned_writes
from icpn.features import qos
from icpn.features.icmp import PUNT_COUNTER
from icpn.features.routing import DROP_COUNTER
from icpn.features.sketch import ELEPHANT_OVERRIDE
from icpn.intent import IntentError
from icpn.net.state import NetState
from icpn.switch_api import SwitchApiError
from icpn.targets.bmv2 import build

app = typer.Typer(help="The controller: apply an intent, show switch state.", no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)  # one problem per line, never re-wrapped

EXIT_FAILED = 1
EXIT_USAGE = 2
#: Election id of ``icpn ctl show``: low, so it is a backup that never disturbs a running
#: controller (P4Runtime lets backups read).
SHOW_ELECTION_ID = 1

IntentOption = Annotated[
    Path,
    typer.Option("--intent", "-i", help="Network intent (YAML).", exists=False, dir_okay=False),
]


def _load(intent_path: Path) -> Controller:
    try:
        intent, configs = load_and_render(intent_path)
    except IntentError as exc:
        for problem in exc.problems:
            err.print(problem, markup=False, highlight=False)
        err.print(f"[red]{len(exc.problems)} problem(s); nothing was written[/red]")
        raise typer.Exit(EXIT_USAGE) from exc
    return Controller(intent, configs, None)


def _artifacts() -> build.Artifacts:
    try:
        return build.compile_program("icpn")
    except build.BuildError as exc:
        err.print(f"[red]cannot build the pipeline:[/red] {exc}")
        raise typer.Exit(EXIT_USAGE) from exc


@app.command("run")
def run_cmd(
    intent_path: IntentOption,
    once: Annotated[
        bool, typer.Option(help="Reconcile every switch once and exit, instead of staying on.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="With --once: show what would be written, write nothing.")
    ] = False,
    election_id: Annotated[
        int, typer.Option(min=2, help="P4Runtime election id; the highest connected is primary.")
    ] = 10,
    batch_size: Annotated[int, typer.Option(min=1, max=10000, help="Updates per write.")] = 1000,
    push_pipeline: Annotated[
        bool,
        typer.Option(
            help="Push the compiled program to switches that lack it (BMv2: build/v1model; "
            "Tofino: build/tofino/<target>/<profile>)."
        ),
    ] = True,
    offline: Annotated[
        bool,
        typer.Option(
            help="With --dry-run: connect to nothing; show what each switch would get from "
            "empty, in its own API's terms (P4Runtime entities or BfRuntime table updates)."
        ),
    ] = False,
) -> None:
    """Apply an intent: every switch gets exactly the entries the intent renders to.

    Without --once the controller stays connected: it restores a switch that restarts,
    takes over as primary when a higher-id controller leaves, and splits elephant flows.
    Ctrl-C stops it (switch state stays as it is).
    """
    if dry_run and not once:
        err.print("--dry-run needs --once")
        raise typer.Exit(EXIT_USAGE)
    if offline and not dry_run:
        err.print("--offline needs --once --dry-run")
        raise typer.Exit(EXIT_USAGE)
    ctl = _load(intent_path)
    if offline:
        _show_planned(ctl, {name: None for name in ctl.configs})
        return
    ctl.election_id, ctl.batch_size = election_id, batch_size
    ctl.artifacts = _artifacts() if push_pipeline else None
    ctl.progress = lambda message: console.print(message, markup=False, highlight=False)
    total = sum(len(c.entities) for c in ctl.configs.values())
    console.print(f"{intent_path}: {len(ctl.configs)} switches, {total} entries rendered")
    if once:
        _apply_once(ctl, dry_run=dry_run)
        return
    logging.getLogger("finsy").setLevel(logging.ERROR)  # reconnect chatter; we report ourselves
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        asyncio.run(ctl.run())
    except KeyboardInterrupt:
        console.print("controller stopped; switches keep their state")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from ``icpn net down``) stops the controller like Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signum}")


def _apply_once(ctl: Controller, *, dry_run: bool) -> None:
    try:
        plans = asyncio.run(ctl.apply(dry_run=dry_run))
    except TargetError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    except UnreachableError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_FAILED) from exc
    except ReconcileError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from exc
    table = Table("switch", "inserted", "modified", "deleted", "unchanged", title="reconciled")
    for name, todo in plans.items():
        counts = (len(todo.inserts), len(todo.modifies), len(todo.deletes), todo.unchanged)
        table.add_row(name, *map(str, counts))
    console.print(table)
    if dry_run:
        _show_planned(ctl, plans)


def _show_planned(ctl: Controller, plans: dict[str, Any]) -> None:
    """Each switch's writes in its API: P4Runtime updates per table, or the BfRuntime
    updates per bfrt.json table (selector groups and members included)."""
    try:
        for name, todo in plans.items():
            switch = ctl.intent.switches[name]
            rows = Table("table", "update", "count")
            writes = planned_writes(ctl, name, todo)
            for (table, kind), count in sorted(writes.items()):
                rows.add_row(table, kind, str(count))
            total = sum(writes.values())
            rows.title = f"{name} ({switch.target}, {switch.api}): {total} {switch.api} updates" + (
                "" if todo is not None else " from an empty switch"
            )
            console.print(rows)
    except TargetError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc


@app.command("show")
def show_cmd(
    intent_path: IntentOption,
    switch: Annotated[
        list[str] | None, typer.Option(help="Only these switches (repeatable).")
    ] = None,
    table: Annotated[
        str | None, typer.Option(help="List this table's entries instead of the summary.")
    ] = None,
) -> None:
    """What the switches hold: entries per table against the intent, learned elephant
    overrides with their hit counts, drop counters and what was punted to the controller.
    Reads only, with a low election id so that a running controller stays primary. A switch
    that cannot be read (down, restarting, not yet restored) is named with the reason; the
    exit code is then 1."""
    ctl = _load(intent_path)
    logging.getLogger("finsy").setLevel(logging.ERROR)  # its warnings are not the state
    names = switch or list(ctl.configs)
    unknown = sorted(set(names) - set(ctl.configs))
    if unknown:
        err.print(f"unknown switch(es) {unknown}; the intent has {sorted(ctl.configs)}")
        raise typer.Exit(EXIT_USAGE)
    down = _lab_down(ctl)
    if down:
        console.print(
            f"note: icpn net has {', '.join(down)} down: failover keeps the paths through "
            "it out of the SR policy groups and ECMP routes, so those entries differ from "
            "the intent until it is back (icpn net status)",
            highlight=False,
        )
    try:
        missing = asyncio.run(_show(ctl, names, table))
    except TargetError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(EXIT_USAGE) from exc
    if missing:
        raise typer.Exit(EXIT_FAILED)


async def _show(ctl: Controller, names: list[str], table: str | None) -> list[str]:
    """Show each switch; returns the ones that could not be read (each said why)."""
    missing = []
    for name in names:
        address = ctl.intent.switches[name].grpc
        client = ctl.client(name, election_id=SHOW_ELECTION_ID)
        try:
            await _show_one(client, name, ctl, table)
        except (TimeoutError, OSError, SwitchApiError, fy.P4ClientError) as exc:
            err.print(f"{name} ({address}): {_unavailable(name, address, exc)}", highlight=False)
            missing.append(name)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled (Ctrl-C)
            # finsy cancels its own tasks when the switch goes away mid-connection
            err.print(
                f"{name} ({address}): {_lab_word(address) or 'restarting'}: the "
                "connection broke while it was read",
                highlight=False,
            )
            missing.append(name)
        finally:
            await client.close()
    return missing


async def _show_one(client: Client, name: str, ctl: Controller, table: str | None) -> None:
    await asyncio.wait_for(client.connect(), 10)
    if isinstance(client.schema, fy.P4Schema) and not client.schema.exists:
        raise SwitchApiError(f"{name}: FAILED_PRECONDITION: no pipeline")
    if table is not None:
        await _show_table(client, name, table)
    else:
        await _show_summary(client, name, ctl)


def _unavailable(name: str, address: str, exc: BaseException) -> str:
    """Why a switch cannot be shown, in the terms of a lab whose switch restarts: serving
    without a pipeline is a switch being restored, a refused connection one that is down."""
    text = str(exc) or type(exc).__name__
    lab = _lab_word(address)
    if "FAILED_PRECONDITION" in text or "No forwarding pipeline" in text:
        return "restarting: serving, but without its pipeline yet (a running controller " + (
            "restores it)" if lab is None else f"restores it); icpn net: {lab}"
        )
    if isinstance(exc, TimeoutError | OSError) or "UNAVAILABLE" in text:
        if lab is not None:
            return f"{lab}; nothing answers"
        return "unreachable: nothing answers (down, or restarting)"
    if "no table" in text:
        return text.removeprefix(f"{name}: ")
    return f"unavailable: {text}"


def _lab_down(ctl: Controller) -> list[str]:
    """The intent's switches a running lab reports as not running."""
    try:
        state = NetState.load()
    except ValueError:
        return []
    if state is None:
        return []
    addresses = {s.grpc for s in ctl.intent.switches.values()}
    return [
        name
        for name, grpc in state.grpc.items()
        if grpc in addresses and state.switch_state.get(name, "running") != "running"
    ]


def _lab_word(address: str) -> str | None:
    """What ``icpn net`` says of the switch at ``address``, when a lab runs it."""
    try:
        state = NetState.load()
    except ValueError:
        return None
    if state is None:
        return None
    for switch, grpc in state.grpc.items():
        if grpc == address and state.switch_state.get(switch, "running") != "running":
            return state.switch_state[switch]
    return None


async def _show_table(client: Client, name: str, table: str) -> None:
    if table not in {t.alias for t in client.schema.tables}:
        known = ", ".join(sorted(t.alias for t in client.schema.tables))
        raise SwitchApiError(f"{name}: no table {table!r}; tables: {known}")
    rows = Table("match", "action", "priority", title=f"{name}: {table}")
    for entry in await client.read(fy.P4TableEntry(table)):
        rows.add_row(_text(entry.match), _text(entry.action), str(entry.priority or ""))
    console.print(rows)


async def _show_summary(client: Client, name: str, ctl: Controller) -> None:
    actual = await read_state(client, include_learned=True)
    learned = [e for e in actual if getattr(e, "table_id", None) == ELEPHANT_OVERRIDE]
    owned = [e for e in actual if getattr(e, "table_id", None) != ELEPHANT_OVERRIDE]
    todo = plan(ctl.configs[name].entities, owned, client.schema)
    in_sync = "in sync with the intent" if not todo else f"differs: {todo.summary()}"
    role = "primary" if client.is_primary else "backup"
    switch = ctl.intent.switches[name]
    console.print(
        f"[bold]{name}[/bold] {switch.grpc} ({switch.target}, {switch.api}; {role} view): {in_sync}"
    )
    per_table = Counter(_kind(e) for e in owned)
    wanted = Counter(_kind(e) for e in ctl.configs[name].entities)
    rows = Table("table", "entries", "intent")
    for kind in sorted(set(per_table) | set(wanted)):
        rows.add_row(kind, str(per_table[kind]), str(wanted[kind]))
    console.print(rows)
    if learned:
        overrides = Table("flow", "segment list", "packets", title="elephant overrides (learned)")
        for entry in learned:
            packets = entry.counter_data.packet_count if entry.counter_data else 0
            overrides.add_row(_text(entry.match), _text(entry.action), str(packets))
        console.print(overrides)
    drops = await client.read_counters(DROP_COUNTER)
    reasons = {r.value: r.name for r in DropReason}
    counted = {reasons.get(i, str(i)): d.packet_count for i, d in drops.items() if d.packet_count}
    console.print(f"drops: {counted or 'none'}")
    if PUNT_COUNTER in {c.alias for c in client.schema.counters}:
        punted = await client.read_counters(PUNT_COUNTER)
        sent = {reasons.get(i, str(i)): d.packet_count for i, d in punted.items() if d.packet_count}
        console.print(f"punted to the controller: {sent or 'none'}")
    await _show_qos(client, name, ctl)


async def _show_qos(client: Client, name: str, ctl: Controller) -> None:
    """Traffic classes (queue, rate, ECN threshold) and what each queue sent."""
    intent = ctl.intent
    if not intent.traffic_classes and not intent.tenants:
        return
    counters = {c.alias for c in client.schema.counters}
    sent = await client.read_counters(qos.CLASS_TX) if qos.CLASS_TX in counters else {}
    rows = Table("class", "queue", "rate (pkt/s)", "ECN at (pkts)", "packets sent", title="qos")
    for tc in intent.traffic_classes:
        data = sent.get(tc.queue)
        rows.add_row(
            tc.name,
            str(tc.queue),
            str(tc.rate_pps or "-") + ("" if intent.switches[name].thrift else " (no Thrift)"),
            str(tc.ecn_queue_packets if tc.ecn_queue_packets is not None else "-"),
            str(data.packet_count if data else 0),
        )
    console.print(rows)
    for index, tenant in enumerate(intent.tenants):
        console.print(
            f"tenant {tenant.name}: meter {index}, CIR {tenant.cir_bytes_per_s} B/s, "
            f"PIR {tenant.pir_bytes_per_s} B/s, red {tenant.red}"
        )


def _kind(entity: Any) -> str:
    if isinstance(entity, fy.P4TableEntry):
        return str(entity.table_id)
    if isinstance(entity, fy.P4MeterEntry):
        return f"meter {entity.meter_id}"
    return type(entity).__name__.removeprefix("P4").removesuffix("Entry").lower() + " session"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, fy.P4TableMatch):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, fy.P4TableAction):
        return f"{value.name}({', '.join(f'{k}={v}' for k, v in value.args.items())})"
    if isinstance(value, fy.P4IndirectAction) and value.action_set is not None:
        return " | ".join(f"{w}x {_text(a)}" for w, a in value.action_set)
    return str(value)
