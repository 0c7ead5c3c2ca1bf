"""``icpn study sweep``: the grid, the confidence intervals, the local process pool and a
Dask LocalCluster giving the same merged result, and the command line."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from typer.testing import CliRunner

from icpn.study import sweep
from tests.test_study_cli import _mounted

SCENARIO = "storage-compute"
PACKETS = 20_000
SEEDS = (1, 2, 3)
PARAMS = {"threshold": [0.005, 0.02]}


def test_t_quantiles_and_intervals() -> None:
    assert sweep.t975(1) == pytest.approx(12.706)
    assert sweep.t975(4) == pytest.approx(2.776)
    assert sweep.t975(60) == pytest.approx(2.000, abs=1e-3)
    assert sweep.t975(1000) == pytest.approx(1.962, abs=1e-3)
    iv = sweep.interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776 * statistics.stdev([1, 2, 3, 4, 5]) / math.sqrt(5)
    assert (iv.mean, iv.n) == (3.0, 5)
    assert iv.low == pytest.approx(3 - half)
    assert iv.high == pytest.approx(3 + half)
    single = sweep.interval([2.0, math.nan])
    assert single.n == 1 and single.mean == 2.0 and math.isnan(single.low)
    with pytest.raises(ValueError):
        sweep.t975(0)


def test_parameters_seeds_and_grid() -> None:
    assert sweep.parse_parameter("sketch_width=256,1024") == ("sketch_width", [256, 1024])
    assert sweep.parse_parameter("threshold=0.01") == ("threshold", [0.01])
    for bad in ("width=1", "threshold", "sketch_depth=two", "threshold="):
        with pytest.raises(ValueError, match="bad --param"):
            sweep.parse_parameter(bad)
    assert sweep.parse_seeds("3") == [1, 2, 3]
    assert sweep.parse_seeds("4-6") == [4, 5, 6]
    assert sweep.parse_seeds("2,9") == [2, 9]
    for bad in ("x", "1,1", "5-4"):
        with pytest.raises(ValueError, match="bad --seeds"):
            sweep.parse_seeds(bad)
    points = sweep.grid({"sketch_width": [256, 512], "threshold": [0.01, 0.02, 0.03]})
    assert len(points) == 6 and len(set(points)) == 6
    assert points[0] == (("sketch_width", 256), ("threshold", 0.01))


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("sweep-local")
    return sweep.run_sweep(
        SCENARIO, seeds=SEEDS, parameters=PARAMS, packets=PACKETS, out_dir=out, workers=2
    ) | {"out": out}


def test_local_pool_sweep_merges_every_run(local: dict[str, object]) -> None:
    out = Path(str(local["out"]))
    for name in ("sweep.json", "sweep.csv", "report.md", "sweep-threshold.png"):
        assert (out / name).stat().st_size > 0, name
    assert local["runs"] == len(SEEDS) * 2
    assert local["engine"] == "local process pool, 2 workers"
    points = local["points"]
    assert isinstance(points, list) and len(points) == 2
    # The merged figure is the interval of the runs' own figures, recomputed here.
    figure = "deep_hash_elephants_busiest_over_mean"
    for point in points:
        threshold = point["parameters"]["threshold"]
        runs = [
            sweep.run_task(sweep.Task(SCENARIO, PACKETS, seed, (("threshold", threshold),)))
            for seed in SEEDS
        ]
        want = sweep.interval([r[figure] for r in runs]).as_dict()
        assert point["figures"][figure] == want
        assert want["n"] == len(SEEDS)
    # A lower threshold reports more flows: the sweep sees the parameter.
    installed = [p["figures"]["manager_overrides_installed"]["mean"] for p in points]
    assert installed[0] > installed[1]
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["points"] == points
    report = (out / "report.md").read_text()
    assert "95 % confidence interval" in report and "±" in report


def test_dask_local_cluster_gives_the_same_result(local: dict[str, object], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = sweep.run_sweep(
            SCENARIO,
            seeds=SEEDS,
            parameters=PARAMS,
            packets=PACKETS,
            out_dir=tmp_path,
            scheduler=cluster.scheduler_address,
        )
    assert str(result["engine"]).startswith("Dask distributed at tcp://")
    assert result["points"] == local["points"]
    assert result["per_run"] == local["per_run"]


def test_cli_sweep(tmp_path: Path) -> None:
    args = ["study", "sweep", SCENARIO, "--seeds", "2", "--param", "sketch_width=256,1024"]
    args += ["--policy", "deep_hash_elephants", "--packets", "20000", "--workers", "1"]
    args += ["--out", str(tmp_path), "--no-progress"]
    result = CliRunner().invoke(_mounted(), args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "sweep.json").read_text())
    assert saved["parameters"] == {"sketch_width": [256, 1024]}
    figures = saved["points"][0]["figures"]
    assert "deep_hash_elephants_busiest_over_mean" in figures
    assert not any(f.startswith("ecmp_5tuple") for f in figures)
    runner = CliRunner()
    for bad in (
        ["study", "sweep", "nope"],
        ["study", "sweep", SCENARIO, "--param", "width=3"],
        ["study", "sweep", SCENARIO, "--seeds", "x"],
        ["study", "sweep", SCENARIO, "--policy", "random", "--packets", "20000"],
    ):
        assert runner.invoke(_mounted(), [*bad, "--no-progress"]).exit_code == 2, bad
