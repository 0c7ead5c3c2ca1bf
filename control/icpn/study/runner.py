"""Running a study: a scenario under every policy, on a backend, with its report."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from icpn.paths import BUILD_DIR
from icpn.study import (
    bmv2_backend,
    degradation,
    inference,
    inference_report,
    model_backend,
    report,
)
from icpn.study.scenarios import SCENARIOS, get_scenario

BACKENDS: tuple[str, ...] = ("model", "bmv2", "auto")
MIN_PACKETS = 10_000
#: BMv2 sends real packets at the emulated rates (hundreds per second, the topology's
#: ``emulation.bandwidth_scale``: docs/studies.md): fewer make sense,
#: and at most MAX_PACKETS_PER_POLICY of them per policy are sent.
MIN_PACKETS_BMV2 = 1_000
MAX_PACKETS = 1_000_000_000

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class StudyResult:
    name: str
    backend: str
    out_dir: Path
    figures: dict[str, report.Figure]
    files: tuple[Path, ...]


def studies_dir() -> Path:
    return BUILD_DIR / "studies"


def run_study(
    name: str,
    backend: str = "model",
    packets: int = 10_000_000,
    out_dir: Path | None = None,
    progress: bool | ProgressCallback = True,
    seed: int = 1,
    trace: Path | None = None,
) -> StudyResult:
    """Run study ``name`` (a scenario of :data:`SCENARIOS`) and write its report to
    ``out_dir`` (default ``build/studies/<name>``).

    ``progress``: True shows a rich progress bar, a callable gets (packets done, total),
    False is silent. ``backend``: ``model`` (the reference model), ``bmv2`` (real switches:
    :mod:`icpn.study.bmv2_backend`), ``auto`` (the model, for now). Raises ValueError for an
    unknown name or bad arguments, listing what is valid, and
    :class:`icpn.study.bmv2_backend.BackendUnavailable` when BMv2 cannot run.

    ``trace``: a capture (pcap, pcapng, gzip'd) to run the policies on instead of the
    scenario's synthetic traffic (:mod:`icpn.study.trace`; model backend only, ``packets``
    and ``seed`` unused); default output ``build/studies/<name>/trace-<file name>``.
    """
    scenario = get_scenario(name)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    lowest = MIN_PACKETS_BMV2 if backend == "bmv2" else MIN_PACKETS
    if not lowest <= packets <= MAX_PACKETS:
        raise ValueError(f"packets must be {lowest:,}..{MAX_PACKETS:,}, not {packets:,}")
    if trace is not None:
        if backend == "bmv2":
            raise ValueError(
                "--trace runs on the model backend (replaying a capture through "
                "BMv2 is not supported)"
            )
        target = out_dir if out_dir is not None else studies_dir() / name / f"trace-{trace.name}"
        with ExitStack() as stack:
            trace_callback: ProgressCallback | None = None
            if progress is True:
                trace_callback = stack.enter_context(_rich_progress(name, "model, trace"))
            elif progress is not False:
                trace_callback = progress
            started = time.perf_counter()
            run = model_backend.run_trace(scenario, trace, progress=trace_callback)
            run.wall_s = time.perf_counter() - started
        figures, files = report.write(run, target)
        return StudyResult(name, "model", target, figures, tuple(files))
    target = out_dir if out_dir is not None else studies_dir() / name
    callback_given = None if isinstance(progress, bool) else progress
    if backend == "auto":  # BMv2 + Mininet where they run, the model everywhere else
        backend = "model" if bmv2_backend.unavailable_reason() else "bmv2"
    if backend == "bmv2":
        target = out_dir if out_dir is not None else studies_dir() / name / "bmv2"
        with ExitStack() as stack:
            if progress is True:  # a bar per policy: ~1 min each at the emulated rates
                callback_given = stack.enter_context(_rich_progress(name, "bmv2"))
            figures = bmv2_backend.run(
                scenario, packets, seed=seed, out_dir=target, progress=callback_given
            )
        written = tuple(sorted(p for p in target.iterdir() if p.is_file()))
        return StudyResult(name, "bmv2", target, figures, written)
    with ExitStack() as stack:
        callback: ProgressCallback | None
        if progress is True:
            callback = stack.enter_context(_rich_progress(name, "model"))
        elif progress is False:
            callback = None
        else:
            callback = progress
        started = time.perf_counter()
        run = model_backend.run(scenario, packets, seed=seed, progress=callback)
        run.wall_s = time.perf_counter() - started
    figures, files = report.write(run, target)
    return StudyResult(name, "model", target, figures, tuple(files))


def run_inference(
    out_dir: Path | None = None, seed: int = 1, backend: str = "model"
) -> StudyResult:
    """The cloud-edge inference study on its queueing model (:mod:`icpn.study.inference`)
    or on BMv2's queues (:mod:`icpn.study.inference_bmv2`), written to ``out_dir`` (default
    ``build/studies/cloud-edge-inference[/bmv2]``)."""
    if backend not in ("model", "bmv2"):
        raise ValueError(f"{inference.NAME} runs on the model or bmv2 backend, not {backend!r}")
    target = out_dir if out_dir is not None else studies_dir() / inference.NAME
    started = time.perf_counter()
    if backend == "bmv2":
        from icpn.study import inference_bmv2

        if out_dir is None:
            target = target / "bmv2"
        result, em = inference_bmv2.run(seed=seed)
        result.wall_s = time.perf_counter() - started
        figures, files = inference_report.write(
            result,
            target,
            backend="bmv2",
            bulk_capacity_bytes=em.rate_pps
            * (em.seconds + em.prefill_s)
            * result.scenario.frame_bytes,
            backend_doc=inference_bmv2.__doc__,
            extra={
                "duration_s": round(em.seconds * em.scale, 6),  # real time the run stands for
                "bmv2_queue_rate_pps": em.rate_pps,
                "bmv2_queue_depth_packets": em.depth_packets,
                "bmv2_real_seconds_per_emulated_second": round(em.scale, 6),
                "bmv2_emulated_seconds": em.seconds,
            },
        )
        return StudyResult(inference.NAME, "bmv2", target, figures, tuple(files))
    result = inference.run(seed=seed)
    result.wall_s = time.perf_counter() - started
    figures, files = inference_report.write(result, target)
    return StudyResult(inference.NAME, "model", target, figures, tuple(files))


def run_degradation(out_dir: Path | None = None) -> StudyResult:
    """The path-degradation study on BMv2 (:mod:`icpn.study.degradation`), written to
    ``out_dir`` (default ``build/studies/path-degradation/bmv2``); raises
    :class:`icpn.study.bmv2_backend.BackendUnavailable` where BMv2 cannot run."""
    target = out_dir if out_dir is not None else studies_dir() / degradation.NAME / "bmv2"
    figures = degradation.run(target)
    written = tuple(sorted(p for p in target.iterdir() if p.is_file()))
    return StudyResult(degradation.NAME, "bmv2", target, figures, written)


class _rich_progress:
    """A rich progress bar as a (done, total) callback."""

    def __init__(self, name: str, backend: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn(f"study {name} ({backend})"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("packets"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task("packets", total=None)

    def __enter__(self) -> ProgressCallback:
        self._progress.start()
        return self._update

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _update(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


__all__ = [
    "BACKENDS",
    "SCENARIOS",
    "StudyResult",
    "run_degradation",
    "run_inference",
    "run_study",
]
