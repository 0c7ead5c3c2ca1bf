"""The command line: help, exit codes and messages when prerequisites are missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from icpn.cli import EXIT_PREREQUISITE, app
from icpn.targets import toolchain

runner = CliRunner()


@pytest.fixture
def no_toolchain(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(toolchain.P4C_ENV, "/nonexistent/p4c-bm2-ss")
    monkeypatch.setenv(toolchain.BMV2_ENV, "/nonexistent/simple_switch_grpc")
    toolchain.p4c.cache_clear()
    toolchain.bmv2.cache_clear()
    yield
    toolchain.p4c.cache_clear()
    toolchain.bmv2.cache_clear()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("build", "toolchain", "switch", "constants", "ctl", "study"):
        assert command in result.output
    assert "demo" not in result.output  # the two-host demo gave way to the studies


def test_build_without_p4c_exits_2_with_the_reason(no_toolchain: None) -> None:
    result = runner.invoke(app, ["build", "--program", "icpn", "--force"])
    assert result.exit_code == EXIT_PREREQUISITE
    assert "install p4c" in result.output


def test_switch_run_without_toolchain_exits_2(no_toolchain: None) -> None:
    result = runner.invoke(app, ["switch", "run", "--ports", "2"])
    assert result.exit_code == EXIT_PREREQUISITE


def test_switch_run_rejects_a_bad_port_count() -> None:
    result = runner.invoke(app, ["switch", "run", "--ports", "0"])
    assert result.exit_code == 2
    assert "ports" in result.output


def test_toolchain_reports_both_tools(no_toolchain: None) -> None:
    result = runner.invoke(app, ["toolchain"])
    assert result.exit_code == 0
    assert "p4c-bm2-ss: not found" in result.output
    assert "will be skipped" in result.output


def test_dissector_prints_an_existing_lua_file() -> None:
    result = runner.invoke(app, ["dissector"])
    assert result.exit_code == 0
    path = Path(result.output.strip())
    assert path.suffix == ".lua" and path.exists()


def test_ctl_run_lists_every_intent_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "intent.yaml"
    path.write_text(
        "switches:\n"
        "  s1: {grpc: nowhere, router_mac: 00:00:00:00:aa:01, sid: fc00:1::1}\n"
        "  s2: {grpc: '127.0.0.1:1', router_mac: zz, sid: fc00:2::1}\n"
    )
    result = runner.invoke(app, ["ctl", "run", "--once", "--no-push-pipeline", "-i", str(path)])
    assert result.exit_code == 2
    assert f"{path}:2: switches.s1.grpc: " in result.output
    assert f"{path}:3: switches.s2.router_mac: " in result.output
    assert "2 problem(s); nothing was written" in result.output


def test_ctl_run_with_an_unreachable_switch_exits_1_naming_it(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "intent.yaml"
    path.write_text(
        "switches:\n"
        f"  s1: {{grpc: '127.0.0.1:{port}', router_mac: 00:00:00:00:aa:01, sid: fc00:1::1}}\n"
    )
    result = runner.invoke(app, ["ctl", "run", "--once", "--no-push-pipeline", "-i", str(path)])
    assert result.exit_code == 1
    assert f"s1 (127.0.0.1:{port})" in result.output
    assert "nothing was written" in result.output


def test_ctl_dry_run_needs_once(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ctl", "run", "--dry-run", "-i", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and "--dry-run needs --once" in result.output
