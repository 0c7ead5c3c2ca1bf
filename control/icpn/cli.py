"""The ``icpn`` command line. Exit codes: 0 success, 1 the work failed, 2 bad usage or a
missing prerequisite (the message says which)."""

from __future__ import annotations

import signal
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from icpn import codegen
from icpn.collector.cli import app as collect_app
from icpn.controller.cli import app as ctl_app
from icpn.net.cli import app as net_app
from icpn.p4rt import SwitchTarget, SyncSwitchClient
from icpn.study.cli import app as study_app
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Error, Bmv2Options, Bmv2Switch
from icpn.targets.tofino import build as tofino_build
from icpn.traffic.cli import app as traffic_app

app = typer.Typer(
    help="icpn: P4 data plane and controller for a computing power network.",
    no_args_is_help=True,
    add_completion=False,
)
switch_app = typer.Typer(help="Run BMv2 switches.", no_args_is_help=True)
app.add_typer(switch_app, name="switch")
app.add_typer(ctl_app, name="ctl")
app.add_typer(net_app, name="net")
app.add_typer(collect_app, name="collect")
app.add_typer(study_app, name="study")
app.add_typer(traffic_app, name="traffic")
console = Console()
err = Console(stderr=True)

EXIT_FAILED = 1
EXIT_PREREQUISITE = 2


@app.command("toolchain")
def toolchain_cmd() -> None:
    """Show the P4 compilers and BMv2 found, and which tests can run here."""
    for tool in (toolchain.p4c(), toolchain.bmv2(), toolchain.bf_p4c()):
        console.print(tool.describe())
    reason = toolchain.bmv2_unavailable_reason()
    console.print("BMv2 tests: " + ("can run" if reason is None else f"will be skipped: {reason}"))
    reason = toolchain.tofino_unavailable_reason()
    console.print(
        "Tofino compile tests: " + ("can run" if reason is None else f"will be skipped: {reason}")
    )


@app.command("build")
def build_cmd(
    program: Annotated[
        list[str] | None, typer.Option(help="v1model program(s) to build; default all.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompile even if up to date.")] = False,
    tofino: Annotated[
        bool, typer.Option(help="Also compile the TNA program (when bf-p4c is found).")
    ] = True,
    skip_missing: Annotated[
        bool, typer.Option(help="A missing compiler skips its part instead of failing.")
    ] = False,
) -> None:
    """Compile the P4 programs: build/v1model/<program>.json and .p4info.txtpb with p4c, and
    build/tofino/<target>/<profile>/ with bf-p4c for each TNA profile on the targets it fits."""
    codegen.write()
    if toolchain.p4c().path is None and skip_missing:
        console.print(f"v1model: skipped: {toolchain.p4c().describe()}")
    else:
        for name in program or build.programs():
            try:
                art = build.compile_program(name, force=force)
            except build.BuildError as exc:
                err.print(f"[red]error:[/red] {exc}")
                missing_p4c = toolchain.p4c().path is None
                raise typer.Exit(EXIT_PREREQUISITE if missing_p4c else EXIT_FAILED) from exc
            console.print(f"{name}: {art.json} {art.p4info}")
    if tofino and not program:
        _build_tofino(force=force)


def _build_tofino(*, force: bool) -> None:
    reason = toolchain.tofino_unavailable_reason()
    if reason is not None:
        console.print(f"Tofino: skipped: {reason}")
        return
    outcomes = tofino_build.compile_many(
        tofino_build.fitting_pairs(), force=force, progress=console.print
    )
    failed = False
    for outcome in outcomes:
        where = tofino_build.out_dir(outcome.target, outcome.profile)
        if outcome.status == tofino_build.OK:
            console.print(f"{outcome.profile} ({outcome.target}): {where}")
        elif outcome.status == tofino_build.ASSEMBLER_DEFECT:
            console.print(
                f"[yellow]{outcome.profile} ({outcome.target}): placed, not assembled[/yellow]: "
                "this bf-p4c drops parser match registers (p4lang/p4c#5753; docs/tofino.md); "
                f"bfrt.json, P4Info and the placement (logs/resources.json) are in {where}"
            )
        else:
            failed = True
            err.print(
                f"[red]error:[/red] {outcome.profile} ({outcome.target}): {outcome.status}\n"
                + "\n".join(outcome.errors)
                + f"\n(log: {where / 'bf-p4c.log'})"
            )
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("dissector")
def dissector_cmd() -> None:
    """Print the path of the Wireshark Lua dissector for APN6 and alternate marking.

    Use: tshark -X lua_script:$(icpn dissector) -r capture.pcap
    """
    from icpn.wireshark import LUA_DISSECTOR

    print(LUA_DISSECTOR)


@app.command("constants")
def constants_cmd() -> None:
    """Regenerate p4src/shared/constants.p4 from icpn.constants."""
    changed = codegen.write()
    console.print(f"{codegen.GENERATED_FILE}: {'written' if changed else 'up to date'}")


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from a supervisor) takes the same clean-up path as Ctrl-C."""
    raise KeyboardInterrupt(f"signal {signum}")


@switch_app.command("run")
def switch_run(
    program: Annotated[str, typer.Option(help="P4 program to load.")] = "icpn",
    ports: Annotated[int, typer.Option(min=1, max=64, help="Number of veth ports.")] = 4,
    log_level: Annotated[str, typer.Option(help="BMv2 log level.")] = "info",
    pcap: Annotated[bool, typer.Option(help="Write per-port pcaps to the log directory.")] = False,
) -> None:
    """Start one BMv2 switch with the program loaded and wait for Ctrl-C.

    The switch's ports are veth pairs; send and capture on their host ends (listed on start).
    """
    reason = toolchain.bmv2_unavailable_reason()
    if reason is not None:
        err.print(f"[red]cannot run a switch:[/red] {reason}")
        raise typer.Exit(EXIT_PREREQUISITE)
    try:
        art = build.compile_program(program)
    except build.BuildError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    # SIGINT too, explicitly: a shell that starts a command in the background without job
    # control starts it with SIGINT ignored, and Python then installs no handler of its own.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Bmv2Switch(
            f"cli-{program}", Bmv2Options(num_ports=ports, log_level=log_level, pcap=pcap)
        ) as sw:
            target = SwitchTarget(
                program, sw.grpc_address, p4info=art.p4info, p4blob=art.json, force_pipeline=True
            )
            with SyncSwitchClient(target):
                pass  # the pipeline is set; the switch keeps it when the client leaves
            # Only now, with no client left to close, is "Ctrl-C" offered: an interrupt that
            # landed in the client's close could leave its gRPC loop to the interpreter's exit.
            table = Table("port", "host interface")
            for port, ifname in sw.host_interfaces.items():
                table.add_row(str(port), ifname)
            console.print(table)
            console.print(
                f"P4Runtime: {sw.grpc_address} (device id {sw.device_id}); "
                f"log: {sw.log_file}. Ctrl-C to stop."
            )
            while sw.running:
                time.sleep(0.5)
            err.print(f"[red]BMv2 exited[/red]; see {sw.log_dir}")
            raise typer.Exit(EXIT_FAILED)
    except KeyboardInterrupt:
        console.print("stopped; switch and ports removed")
    except Bmv2Error as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_FAILED) from exc


if __name__ == "__main__":
    app()
