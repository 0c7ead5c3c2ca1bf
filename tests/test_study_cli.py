"""``icpn study``: usage errors exit 2 with the valid names; a small run exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from icpn.study import bmv2_backend
from icpn.study.cli import app


def _mounted() -> typer.Typer:
    """Mounted as the main CLI will: ``icpn study NAME [options]``."""
    main = typer.Typer()

    @main.command()
    def other() -> None:  # a second command, so that ``main`` is a group
        pass

    main.add_typer(app, name="study")
    return main


def test_unknown_study_exits_2_listing_the_names() -> None:
    result = CliRunner().invoke(_mounted(), ["study", "nope"])
    assert result.exit_code == 2
    for name in ("data-ingestion", "storage-compute", "cross-dc-training"):
        assert name in result.output


def test_bad_arguments_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    for args in (
        ["study", "data-ingestion", "--backend", "tofino"],
        ["study", "data-ingestion", "--packets", "5"],
        ["study", "data-ingestion", "--packets", "many"],
        ["study"],
    ):
        assert runner.invoke(_mounted(), args).exit_code == 2, args
    monkeypatch.setattr(bmv2_backend, "unavailable_reason", lambda: "no BMv2 here")
    bmv2 = runner.invoke(_mounted(), ["study", "data-ingestion", "--backend", "bmv2"])
    assert bmv2.exit_code == 2
    assert "BMv2 backend not available: no BMv2 here" in bmv2.output


def test_small_run_auto_is_the_model_without_bmv2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bmv2_backend, "unavailable_reason", lambda: "no BMv2 here")
    args = ["study", "storage-compute", "--packets", "20000", "--no-progress"]
    args += ["--out", str(tmp_path), "--seed", "2", "--backend", "auto"]
    result = CliRunner().invoke(_mounted(), args)
    assert result.exit_code == 0, result.output
    assert "deep_hash_elephants" in result.output
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["scenario"] == "storage-compute" and results["seed"] == 2
    assert "backend: model" in result.output


def test_path_degradation_is_listed_and_says_why_it_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    listed = runner.invoke(_mounted(), ["study", "--list"])
    assert listed.exit_code == 0 and "path-degradation" in listed.output
    monkeypatch.setattr(bmv2_backend, "unavailable_reason", lambda: "no BMv2 here")
    result = runner.invoke(_mounted(), ["study", "path-degradation"])
    assert result.exit_code == 2
    assert "runs on BMv2" in result.output and "no BMv2 here" in result.output
