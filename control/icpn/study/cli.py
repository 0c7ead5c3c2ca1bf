"""``icpn study NAME``: run a traffic study and write its report.

Mounted by the main CLI as ``app.add_typer(study.cli.app, name="study")``. Exit codes as
the main CLI's: 0 done, 1 the study failed, 2 bad usage (unknown name, bad arguments) or a
missing prerequisite (the BMv2 backend cannot run).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from icpn.study.bmv2_backend import BackendUnavailable
from icpn.study.policies import POLICIES
from icpn.study.report import verdict
from icpn.study.runner import BACKENDS, MAX_PACKETS, MIN_PACKETS, run_study
from icpn.study.scenarios import SCENARIOS

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    help="Traffic studies: a scenario under 5-tuple ECMP, the APN deep hash and elephant "
    f"splitting. Studies: {', '.join(SCENARIOS)}.",
    add_completion=False,
    # A group (so that ``add_typer`` mounts it as ``icpn study NAME``) whose options may
    # follow the name: groups stop parsing options at the first argument otherwise.
    context_settings={"allow_interspersed_args": True},
)
console = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def study(
    name: Annotated[str, typer.Argument(help=f"The study: {', '.join(SCENARIOS)}.")],
    backend: Annotated[
        str,
        typer.Option(
            help=f"{' | '.join(BACKENDS)} (auto = bmv2 where BMv2 and Mininet run, else model)."
        ),
    ] = "model",
    packets: Annotated[
        int,
        typer.Option(
            help=f"Packets to simulate ({MIN_PACKETS:,}..{MAX_PACKETS:,}; with bmv2, packets "
            "sent per policy, from 1,000, at most 20,000).",
        ),
    ] = 10_000_000,
    out: Annotated[
        Path | None, typer.Option(help="Output directory; default build/studies/NAME.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (runs are deterministic).")] = 1,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    trace: Annotated[
        Path | None,
        typer.Option(
            help="Run the policies on this capture (pcap, pcapng, gzip'd) instead of the "
            "scenario's traffic; model backend. Flow keys: docs/studies.md."
        ),
    ] = None,
) -> None:
    """Run study NAME and write results.json, windows.csv, plots and report.md."""
    if name not in SCENARIOS:
        err.print(f"unknown study {name!r}; valid names: {', '.join(SCENARIOS)}")
        raise typer.Exit(EXIT_USAGE)
    if backend not in BACKENDS:
        err.print(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        raise typer.Exit(EXIT_USAGE)
    try:
        result = run_study(name, backend, packets, out, progress=progress, seed=seed, trace=trace)
    except BackendUnavailable as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    except Exception as exc:
        err.print(f"study {name} failed: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    f = result.figures

    def share(name: str) -> str:
        value = f[name]
        return "n/a" if not isinstance(value, int | float) else f"{float(value):.1%}"

    for policy in POLICIES:
        console.print(
            f"{policy:22} busiest/mean {f[policy + '_busiest_over_mean']}  "
            f"Jain {f[policy + '_jain_index']}  "
            f"goodput {share(policy + '_goodput_share_of_bundle')} of bundle"
        )
    goodput_goal = f["goal_goodput_share_of_bundle_min"]
    console.print(
        f"elephant detection p50 {f.get('elephant_detection_latency_ms_p50', 'n/a')} ms; "
        f"goals: balance {verdict(f['goal_balance_pass'])} "
        f"(busiest/mean <= {f['goal_busiest_over_mean_max']}), "
        f"goodput {verdict(f['goal_goodput_pass'])}"
        + (f" (>= {share('goal_goodput_share_of_bundle_min')})" if goodput_goal is not None else "")
    )
    console.print(f"backend: {result.backend}")
    console.print(f"written: {result.out_dir / 'report.md'} (and results.json, CSV, plots)")
