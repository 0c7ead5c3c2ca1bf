"""``icpn study sweep``: a study over seeds and parameters, each figure with a confidence
interval.

The grid is every combination of the parameters' values (:data:`PARAMETERS`: sketch width
and depth, threshold, sketch windows per run) times the seeds; one task is one model run of
one point and one seed. Runs are independent (each draws its own traffic from its seed), so
they are spread over workers as they come and merged afterwards in grid order: the result
does not depend on where or in which order the runs went. (Inside a run, windows are not
independent — the sketch's dedup slots and the manager's pins carry over — so a run is the
unit of work.) Every run computes every policy; ``policies`` only chooses which policies'
figures are reported.

Workers: a local process pool (``concurrent.futures.ProcessPoolExecutor``, ``spawn``) by
default, or a Dask distributed cluster given its scheduler's address, through Dask's own
``concurrent.futures`` executor — the same code path, and Dask does the scheduling. Dask
rather than Ray: pure-Python wheels, its ``LocalCluster`` runs in CI on two cores, a
cluster is one ``dask scheduler`` and some ``dask worker`` commands, and it speaks
``concurrent.futures``; Ray's runtime (raylet, object store, dashboard) is much heavier for
tasks that are just function calls returning a few numbers. Workers need icpn installed (the
same version), as any Dask task's code.

Each figure of :func:`icpn.study.report.figures` that is a number (booleans count as 0/1:
their mean is the share of seeds that passed) is reported per point as the mean over seeds,
the sample standard deviation and the 95 % confidence interval of the mean (Student's t
with n - 1 degrees of freedom).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icpn.study import model_backend, report
from icpn.study.policies import POLICIES
from icpn.study.scenarios import get_scenario

#: Sweepable parameters: name -> (the ElephantSettings field, type, what it is).
PARAMETERS: dict[str, tuple[str, type, str]] = {
    "sketch_width": ("sketch_width", int, "counters per sketch row (a power of two)"),
    "sketch_depth": ("sketch_depth", int, "sketch rows (1..3)"),
    "threshold": ("threshold_share", float, "report threshold, share of a window's packets"),
    "windows": ("windows_per_run", int, "sketch windows per run (window = duration / this)"),
}
#: Figures the Markdown table shows (all are in the JSON and CSV).
SHOWN = ("busiest_over_mean", "goodput_share_of_bundle")
CONFIDENCE = 0.95
#: Student's t, 97.5 % quantile, for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

Point = tuple[tuple[str, float | int], ...]
Progress = Callable[[int, int], None]


def t975(df: int) -> float:
    """Student's t 97.5 % quantile: the table to 30 degrees of freedom, then the
    Cornish-Fisher expansion around the normal quantile (error < 1e-3 there)."""
    if df < 1:
        raise ValueError("need at least 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Interval:
    mean: float
    std: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        def clean(v: float) -> float | None:
            return None if math.isnan(v) else round(v, 6)

        return {
            "mean": clean(self.mean),
            "std": clean(self.std),
            "ci95_low": clean(self.low),
            "ci95_high": clean(self.high),
            "n": self.n,
        }


def interval(values: Sequence[float]) -> Interval:
    """Mean and 95 % confidence interval of the mean of ``values`` (NaNs left out)."""
    xs = [v for v in values if not math.isnan(v)]
    if not xs:
        return Interval(math.nan, math.nan, math.nan, math.nan, 0)
    mean = statistics.fmean(xs)
    if len(xs) == 1:
        return Interval(mean, math.nan, math.nan, math.nan, 1)
    std = statistics.stdev(xs)
    half = t975(len(xs) - 1) * std / math.sqrt(len(xs))
    return Interval(mean, std, mean - half, mean + half, len(xs))


@dataclass(frozen=True)
class Task:
    scenario: str
    packets: int
    seed: int
    point: Point


def parse_parameter(text: str) -> tuple[str, list[float | int]]:
    """``name=v1,v2,...`` as the parameter and its values (ValueError naming what is wrong)."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or name not in PARAMETERS:
        raise ValueError(
            f"bad --param {text!r}: want NAME=V1,V2,... with NAME one of {', '.join(PARAMETERS)}"
        )
    kind = PARAMETERS[name][1]
    try:
        parsed = [kind(v) for v in values.split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"bad --param {text!r}: values must be {kind.__name__}s") from exc
    if not parsed:
        raise ValueError(f"bad --param {text!r}: no values")
    return name, parsed


def grid(parameters: Mapping[str, Sequence[float | int]]) -> list[Point]:
    """Every combination of the parameters' values, in a fixed order."""
    names = list(parameters)
    return [
        tuple(zip(names, values, strict=True))
        for values in itertools.product(*(parameters[n] for n in names))
    ]


def run_task(task: Task) -> dict[str, float]:
    """One model run of one point and seed (in a worker): its numeric figures."""
    scenario = get_scenario(task.scenario)
    changes: dict[str, Any] = {PARAMETERS[name][0]: value for name, value in task.point}
    scenario = dataclasses.replace(
        scenario, elephants=dataclasses.replace(scenario.elephants, **changes)
    )
    started = time.perf_counter()
    run = model_backend.run(scenario, task.packets, seed=task.seed)
    run.wall_s = time.perf_counter() - started
    figures = report.figures(run, report.fluid_of(run))
    numbers: dict[str, float] = {}
    for name, value in figures.items():
        if isinstance(value, bool | int | float):
            numbers[name] = float(value)
        elif value is None:
            numbers[name] = math.nan
    return numbers


#: Not results: the seed itself and the wall-clock figures (they differ from run to run).
NOT_RESULTS = ("seed", "wall_time_s", "model_packets_per_s")


def _keep(figure: str, policies: Sequence[str]) -> bool:
    if figure in NOT_RESULTS:
        return False
    owner = next((p for p in POLICIES if figure.startswith(p + "_")), None)
    return owner is None or owner in policies


def _executor(scheduler: str | None, workers: int, stack: ExitStack) -> tuple[Executor, str]:
    if scheduler is None:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        return stack.enter_context(pool), f"local process pool, {workers} workers"
    from distributed import Client

    client = stack.enter_context(Client(scheduler))  # type: ignore[no-untyped-call]
    executor = stack.enter_context(client.get_executor())
    workers_there = len(client.scheduler_info().get("workers", {}))
    return executor, f"Dask distributed at {scheduler}, {workers_there} workers"


def run_sweep(
    name: str,
    *,
    seeds: Sequence[int],
    parameters: Mapping[str, Sequence[float | int]],
    packets: int,
    out_dir: Path,
    policies: Sequence[str] = POLICIES,
    workers: int = 2,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the sweep, write sweep.json, sweep.csv, plots and report.md; return the JSON."""
    get_scenario(name)  # unknown name: ValueError listing the valid ones
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"unknown policy {unknown}; valid: {', '.join(POLICIES)}")
    if not seeds or workers < 1:
        raise ValueError("need at least one seed and one worker")
    for pname in parameters:
        if pname not in PARAMETERS:
            raise ValueError(f"unknown parameter {pname!r}; valid: {', '.join(PARAMETERS)}")
    points = grid(parameters)
    tasks = [Task(name, packets, seed, point) for point in points for seed in seeds]
    started = time.perf_counter()
    results: list[dict[str, float] | None] = [None] * len(tasks)
    with ExitStack() as stack:
        executor, engine = _executor(scheduler, workers, stack)
        futures = {executor.submit(run_task, task): i for i, task in enumerate(tasks)}
        for done, future in enumerate(as_completed(futures), 1):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(done, len(tasks))
    wall = time.perf_counter() - started
    runs = [r for r in results if r is not None]
    out = aggregate(name, tasks, runs, policies)
    out.update(
        {
            "packets_per_run": packets,
            "seeds": list(seeds),
            "parameters": {k: list(v) for k, v in parameters.items()},
            "policies": list(policies),
            "engine": engine,
            "runs": len(tasks),
            "wall_s": round(wall, 2),
            "runs_per_s": round(len(tasks) / wall, 3),
        }
    )
    write(out, out_dir)
    return out


def aggregate(
    name: str, tasks: Sequence[Task], runs: Sequence[Mapping[str, float]], policies: Sequence[str]
) -> dict[str, Any]:
    """Per point, each figure's interval over its seeds; and every run's figures."""
    by_point: dict[Point, list[Mapping[str, float]]] = {}
    for task, figures in zip(tasks, runs, strict=True):
        by_point.setdefault(task.point, []).append(figures)
    points = []
    for point, seeds_figures in by_point.items():
        names = [f for f in seeds_figures[0] if _keep(f, policies)]
        points.append(
            {
                "parameters": dict(point),
                "figures": {f: interval([r[f] for r in seeds_figures]).as_dict() for f in names},
            }
        )
    return {
        "scenario": name,
        "confidence": CONFIDENCE,
        "points": points,
        "per_run": [
            {
                "parameters": dict(task.point),
                "seed": task.seed,
                "figures": {
                    f: (None if math.isnan(v) else v)
                    for f, v in figures.items()
                    if _keep(f, policies)
                },
            }
            for task, figures in zip(tasks, runs, strict=True)
        ],
    }


def write(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "sweep.json", out_dir / "sweep.csv"]
    files[0].write_text(json.dumps(result, indent=2) + "\n")
    names = list(result["parameters"])
    with files[1].open("w", newline="") as handle:
        table = csv.writer(handle)
        table.writerow([*names, "figure", "mean", "std", "ci95_low", "ci95_high", "n"])
        for point in result["points"]:
            values = [point["parameters"].get(n) for n in names]
            for figure, iv in point["figures"].items():
                table.writerow(
                    [*values, figure, *(iv[k] for k in ("mean", "std", "ci95_low", "ci95_high")),
                     iv["n"]]
                )  # fmt: skip
    files += plots(result, out_dir)
    report_md = out_dir / "report.md"
    report_md.write_text(markdown(result, [p for p in files if p.suffix == ".png"]))
    files.append(report_md)
    return files


def _shown(result: Mapping[str, Any]) -> list[str]:
    return [f"{p}_{f}" for p in result["policies"] for f in SHOWN]


def plots(result: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """For each parameter with several values: the shown figures' means against it, with
    their 95 % intervals (one line per policy and per combination of the other parameters)."""
    from icpn.study.charts import _pyplot

    plt = _pyplot()
    names = list(result["parameters"])
    files = []
    for swept in (n for n in names if len(result["parameters"][n]) > 1):
        others = [n for n in names if n != swept]
        fig, axes = plt.subplots(1, len(SHOWN), figsize=(5 * len(SHOWN), 3.6), squeeze=False)
        for ax, shown in zip(axes[0], SHOWN, strict=True):
            for policy in result["policies"]:
                groups: dict[tuple[Any, ...], list[tuple[float, Mapping[str, Any]]]] = {}
                for point in result["points"]:
                    key = tuple(point["parameters"][o] for o in others)
                    iv = point["figures"].get(f"{policy}_{shown}")
                    if iv is not None and iv["mean"] is not None:
                        groups.setdefault(key, []).append((point["parameters"][swept], iv))
                for key, line in groups.items():
                    line.sort(key=lambda item: item[0])
                    xs = [x for x, _ in line]
                    ys = [iv["mean"] for _, iv in line]
                    err = [
                        0.0 if iv["ci95_high"] is None else iv["ci95_high"] - iv["mean"]
                        for _, iv in line
                    ]
                    label = policy + "".join(f", {o}={v}" for o, v in zip(others, key, strict=True))
                    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, label=label)
            ax.set_xlabel(swept)
            ax.set_ylabel(shown.replace("_", " "))
            if swept == "sketch_width":
                ax.set_xscale("log", base=2)
        axes[0][0].legend(fontsize=7)
        fig.suptitle(f"{result['scenario']}: mean over seeds, 95 % CI")
        fig.tight_layout()
        path = out_dir / f"sweep-{swept}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def _fmt(iv: Mapping[str, Any]) -> str:
    if iv["mean"] is None:
        return "n/a"
    if iv["ci95_high"] is None:
        return f"{iv['mean']:.4g}"
    return f"{iv['mean']:.4g} ± {iv['ci95_high'] - iv['mean']:.2g}"


def markdown(result: Mapping[str, Any], images: Iterable[Path]) -> str:
    names = list(result["parameters"])
    shown = _shown(result)
    seeds = result["seeds"]
    lines = [
        f"# Sweep: {result['scenario']}",
        "",
        f"{result['runs']} runs ({len(result['points'])} points x {len(seeds)} seeds "
        f"{seeds[0]}..{seeds[-1]}), {result['packets_per_run']:,} packets each, on "
        f"{result['engine']}: {result['wall_s']} s. Each figure: mean over the seeds ± the "
        "half-width of its 95 % confidence interval (Student's t); every figure of the study "
        "report is in sweep.json and sweep.csv.",
        "",
        "| " + " | ".join([*names, *shown]) + " |",
        "|" + "---|" * (len(names) + len(shown)),
    ]
    for point in result["points"]:
        cells = [str(point["parameters"][n]) for n in names]
        cells += [_fmt(point["figures"][f]) if f in point["figures"] else "n/a" for f in shown]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"![{p.stem}]({p.name})" for p in images]
    return "\n".join(lines) + "\n"


def parse_seeds(text: str) -> list[int]:
    """``5`` (seeds 1..5), ``3-7`` or ``1,4,9``."""
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",")]
        elif "-" in text:
            low, high = (int(s) for s in text.split("-", 1))
            seeds = list(range(low, high + 1))
        else:
            seeds = list(range(1, int(text) + 1))
    except ValueError as exc:
        raise ValueError(f"bad --seeds {text!r}: want N, A-B or A,B,C") from exc
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"bad --seeds {text!r}: no seeds, or repeated ones")
    return seeds
