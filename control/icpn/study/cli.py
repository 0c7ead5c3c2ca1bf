"""``icpn study NAME``: run a traffic study and write its report.

Mounted by the main CLI as ``app.add_typer(study.cli.app, name="study")``. Exit codes as
the main CLI's: 0 done, 1 the study failed, 2 bad usage (unknown name, bad arguments) or a
missing prerequisite (the BMv2 backend cannot run).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from icpn.study import degradation, inference, inference_report
from icpn.study.bmv2_backend import BackendUnavailable
from icpn.study.policies import POLICIES
from icpn.study.report import verdict
from icpn.study.runner import (
    BACKENDS,
    MAX_PACKETS,
    MIN_PACKETS,
    run_degradation,
    run_inference,
    run_study,
)
from icpn.study.scenarios import SCENARIOS
from icpn.study.sweep import PARAMETERS, parse_parameter, parse_seeds, run_sweep

#: Every study: the path-bundle scenarios (elephant splitting) and cloud-edge inference
#: (differentiated bearing, its own queueing model: icpn.study.inference).
STUDIES: dict[str, str] = {name: s.title for name, s in SCENARIOS.items()} | {
    inference.NAME: inference.SCENARIO.title,
    degradation.NAME: degradation.TITLE,
}

EXIT_FAILED = 1
EXIT_USAGE = 2


class _StudyGroup(TyperGroup):
    """``icpn study NAME`` and ``icpn study sweep NAME``: the group's NAME argument would
    take ``sweep`` as a study's name, so ``sweep`` is dispatched before the group parses."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,  # typer's own click Context (typer vendors click)
        **extra: Any,
    ) -> Any:
        if args[:1] == ["sweep"]:
            command = typer.main.get_command(sweep_app)
            return command.make_context(f"{info_name} sweep", args[1:], parent=parent, **extra)
        return super().make_context(info_name, args, parent, **extra)


app = typer.Typer(
    cls=_StudyGroup,
    help="Traffic studies: a scenario under 5-tuple ECMP, the APN deep hash and elephant "
    "splitting, or cloud-edge inference under bulk load with and without differentiated "
    f"bearing. Studies: {', '.join(STUDIES)} (--list). `icpn study sweep NAME --help`: a "
    "study over seeds and parameters.",
    add_completion=False,
    # A group (so that ``add_typer`` mounts it as ``icpn study NAME``) whose options may
    # follow the name: groups stop parsing options at the first argument otherwise.
    context_settings={"allow_interspersed_args": True},
)
console = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def study(
    name: Annotated[str | None, typer.Argument(help=f"The study: {', '.join(STUDIES)}.")] = None,
    list_studies: Annotated[
        bool, typer.Option("--list", help="Name every study and exit.")
    ] = False,
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
            "sent per policy, from 1,000, at most 100,000: about a minute per policy at "
            "data ingestion's emulated rate, longer at a lower bandwidth_scale).",
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
    """Run study NAME and write results.json, a CSV, plots and report.md."""
    if list_studies:
        for study_name, title in STUDIES.items():
            console.print(f"{study_name:22} {title}", highlight=False)
        return
    if name not in STUDIES:
        err.print(f"unknown study {name!r}; valid names: {', '.join(STUDIES)}")
        raise typer.Exit(EXIT_USAGE)
    if name == inference.NAME:
        _inference(backend, out, seed)
        return
    if name == degradation.NAME:
        _degradation(backend, out)
        return
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


def _inference(backend: str, out: Path | None, seed: int) -> None:
    from icpn.study.inference_bmv2 import Unavailable

    try:
        result = run_inference(out, seed=seed, backend="model" if backend == "auto" else backend)
    except (Unavailable, ValueError) as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    for line in inference_report.summary(result.figures):
        console.print(line, highlight=False)
    console.print(f"backend: {result.backend}")
    console.print(f"written: {result.out_dir / 'report.md'} (and results.json, CSV, plots)")


def _degradation(backend: str, out: Path | None) -> None:
    if backend not in BACKENDS:
        err.print(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        raise typer.Exit(EXIT_USAGE)
    if backend == "model":  # the default: this study has no model, only the real loop
        console.print(f"{degradation.NAME} runs on BMv2 (the control loop is the study)")
    try:
        result = run_degradation(out)
    except BackendUnavailable as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    except Exception as exc:
        err.print(f"study {degradation.NAME} failed: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    for line in degradation.summary(result.figures):
        console.print(line, highlight=False)
    console.print(f"backend: {result.backend}")
    console.print(f"written: {result.out_dir / 'report.md'} (and results.json, CSV, plot)")


sweep_app = typer.Typer(add_completion=False)


@sweep_app.command(
    help="Run study NAME over seeds and parameters (model backend); each figure with its 95 % "
    "confidence interval over the seeds, in sweep.json, sweep.csv, plots and report.md."
)
def sweep(
    name: Annotated[str, typer.Argument(help=f"The study: {', '.join(SCENARIOS)}.")],
    seeds: Annotated[str, typer.Option(help="N (seeds 1..N), A-B or A,B,C.")] = "5",
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=V1,V2,... (repeatable): "
            + "; ".join(f"{k}: {v[2]}" for k, v in PARAMETERS.items())
            + ". The grid is every combination."
        ),
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(help=f"Policies to report (repeatable; default all: {', '.join(POLICIES)})."),
    ] = None,
    packets: Annotated[int, typer.Option(help="Packets per run.")] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(help="A Dask scheduler's address (tcp://HOST:8786): run there instead."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory; default build/studies/NAME/sweep.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    from icpn.study.runner import _rich_progress, studies_dir

    if name not in SCENARIOS:
        err.print(f"unknown study {name!r}; valid names: {', '.join(SCENARIOS)}")
        raise typer.Exit(EXIT_USAGE)
    try:
        seed_list = parse_seeds(seeds)
        grid = dict(parse_parameter(p) for p in param or [])
        if not MIN_PACKETS <= packets <= MAX_PACKETS:
            raise ValueError(f"packets must be {MIN_PACKETS:,}..{MAX_PACKETS:,}, not {packets:,}")
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    target = out if out is not None else studies_dir() / name / "sweep"
    try:
        with ExitStack() as stack:
            bar = stack.enter_context(_rich_progress(f"{name} sweep", "runs")) if progress else None
            result = run_sweep(
                name,
                seeds=seed_list,
                parameters=grid,
                packets=packets,
                out_dir=target,
                policies=policy or POLICIES,
                workers=workers,
                scheduler=scheduler,
                progress=bar,
            )
    except ValueError as exc:
        err.print(str(exc))
        raise typer.Exit(EXIT_USAGE) from exc
    except Exception as exc:
        err.print(f"sweep of {name} failed: {exc}")
        raise typer.Exit(EXIT_FAILED) from exc
    console.print(
        f"{result['runs']} runs on {result['engine']} in {result['wall_s']} s; "
        f"written: {target / 'report.md'} (and sweep.json, sweep.csv, plots)"
    )
