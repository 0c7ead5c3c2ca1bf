"""The model-distribution study on the reference model: one transfer per edge site, few
5-tuples, so 5-tuple ECMP leaves one path busier and the push finishes late; elephant
splitting finishes close to the bundle's ideal (every path done at once)."""

from __future__ import annotations

from pathlib import Path

from icpn.study.runner import run_study


def test_splitting_brings_completion_close_to_the_ideal(tmp_path: Path) -> None:
    result = run_study("model-distribution", "model", 400_000, tmp_path, progress=False, seed=4)
    f = result.figures
    ecmp = float(f["ecmp_5tuple_completion_over_ideal"])  # type: ignore[arg-type]
    split = float(f["deep_hash_elephants_completion_over_ideal"])  # type: ignore[arg-type]
    assert split <= 1.05, f
    assert ecmp > split + 0.05, (ecmp, split)
    # completion over ideal is busiest/mean of the whole run's load for equal capacities
    assert split == f["deep_hash_elephants_busiest_over_mean"]
    assert (tmp_path / "report.md").exists() and (tmp_path / "results.json").exists()
