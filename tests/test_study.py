"""A small study end to end on the model backend: files, figures, and that elephant
splitting balances better than 5-tuple ECMP (as measured in the run)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from icpn.study import POLICIES, SCENARIOS, bmv2_backend, model_backend, run_study
from icpn.study.bmv2_backend import BackendUnavailable

PACKETS = 200_000


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], list[int]]:
    out = tmp_path_factory.mktemp("study")
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        assert total == PACKETS
        calls.append(done)

    result = run_study("data-ingestion", packets=PACKETS, out_dir=out, progress=progress, seed=3)
    assert result.out_dir == out
    assert all(f.exists() for f in result.files)
    return out, dict(result.figures), calls


def test_writes_every_file(study: tuple[Path, dict[str, object], list[int]]) -> None:
    out, _, calls = study
    for name in (
        "results.json",
        "windows.csv",
        "report.md",
        "utilisation_per_path.png",
        "utilisation_over_time.png",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "utilisation_per_path.png").read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "![utilisation_per_path](utilisation_per_path.png)" in report
    assert "PASS" in report or "FAIL" in report
    assert calls and calls[-1] == PACKETS and calls == sorted(calls)


def test_results_have_the_expected_figures(
    study: tuple[Path, dict[str, object], list[int]],
) -> None:
    out, figures, _ = study
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(figures))
    assert results["packets_simulated"] >= PACKETS
    for policy in POLICIES:
        for figure in (
            "busiest_over_mean",
            "jain_index",
            "goodput_share_of_bundle",
            "drops_share_of_offered",
            "busiest_path_utilisation_share_of_capacity",
            "mean_path_utilisation_share_of_capacity",
        ):
            assert f"{policy}_{figure}" in results
        for path in SCENARIOS["data-ingestion"].paths:
            assert f"{policy}_path_{path.name}_utilisation_share_of_capacity" in results
        assert 0 < results[f"{policy}_goodput_share_of_bundle"] <= 1
        assert 1 / 4 <= results[f"{policy}_jain_index"] <= 1
    for figure in (
        "elephant_detection_latency_ms_p50",
        "elephant_detection_latency_packets_p50",
        "goal_balance_pass",
        "goal_goodput_pass",
    ):
        assert figure in results
    # Every RoCE QP is an elephant here; the sketch reports each after ~threshold packets.
    assert results["elephant_qps_detected"] == results["elephant_qps"]
    assert results["elephant_detection_latency_packets_p50"] >= results["sketch_threshold_packets"]


def test_elephant_splitting_beats_5tuple_ecmp(
    study: tuple[Path, dict[str, object], list[int]],
) -> None:
    _, f, _ = study

    def num(name: str) -> float:
        value = f[name]
        assert isinstance(value, int | float)
        return float(value)

    assert num("deep_hash_elephants_busiest_over_mean") < num("ecmp_5tuple_busiest_over_mean")
    assert num("deep_hash_elephants_jain_index") > num("ecmp_5tuple_jain_index")
    assert num("deep_hash_elephants_goodput_share_of_bundle") > num(
        "ecmp_5tuple_goodput_share_of_bundle"
    )


def test_window_csv_matches_the_totals(study: tuple[Path, dict[str, object], list[int]]) -> None:
    out, f, _ = study
    with (out / "windows.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    windows = int(f["measurement_windows"])  # type: ignore[call-overload]
    paths = len(SCENARIOS["data-ingestion"].paths)
    assert len(rows) == len(POLICIES) * windows * paths
    util = [float(r["utilisation_share_of_capacity"]) for r in rows if r["policy"] == "ecmp_5tuple"]
    assert np.mean(util) == pytest.approx(
        float(f["ecmp_5tuple_mean_path_utilisation_share_of_capacity"]),  # type: ignore[arg-type]
        abs=1e-3,
    )


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_runs_and_is_deterministic(name: str) -> None:
    a = model_backend.run(SCENARIOS[name], 50_000, seed=5)
    b = model_backend.run(SCENARIOS[name], 50_000, seed=5)
    assert a.packets >= 50_000
    for policy in POLICIES:
        assert np.array_equal(a.offered[policy], b.offered[policy])
        # Every policy places the same bytes.
        assert a.offered[policy].sum() == pytest.approx(a.offered[POLICIES[0]].sum())


def test_bad_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="valid names: data-ingestion, storage-compute"):
        run_study("nope", progress=False)
    with pytest.raises(ValueError, match="valid: model, bmv2, auto"):
        run_study("data-ingestion", backend="tofino", progress=False)
    with pytest.raises(ValueError, match="packets"):
        run_study("data-ingestion", packets=10, progress=False)
    monkeypatch.setattr(bmv2_backend, "unavailable_reason", lambda: "no BMv2 here")
    with pytest.raises(BackendUnavailable, match="BMv2 backend not available: no BMv2 here"):
        run_study("data-ingestion", backend="bmv2", packets=20_000, progress=False)
