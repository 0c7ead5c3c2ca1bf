"""Tool discovery: env overrides, absent tools, and the reason BMv2 tests give when skipped."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from icpn.targets import toolchain
from icpn.targets.bmv2 import build


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    toolchain.p4c.cache_clear()
    toolchain.bmv2.cache_clear()
    yield
    toolchain.p4c.cache_clear()
    toolchain.bmv2.cache_clear()


def fake_tool(tmp_path: Path, name: str, version: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\necho '{version}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_env_var_overrides_the_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = fake_tool(tmp_path, "my-p4c", "p4c 9.9.9 (SHA: test)")
    monkeypatch.setenv(toolchain.P4C_ENV, str(tool))
    found = toolchain.p4c()
    assert found.path == str(tool)
    assert found.version == "p4c 9.9.9 (SHA: test)"
    assert "9.9.9" in found.describe()


def test_missing_tools_give_a_reason_naming_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(toolchain.P4C_ENV, "/nonexistent/p4c-bm2-ss")
    monkeypatch.setenv(toolchain.BMV2_ENV, "/nonexistent/simple_switch_grpc")
    reason = toolchain.bmv2_unavailable_reason()
    assert reason is not None
    assert "p4c-bm2-ss" in reason and "simple_switch_grpc" in reason
    assert "not found" in toolchain.p4c().describe()


def test_build_without_p4c_fails_with_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(toolchain.P4C_ENV, "/nonexistent/p4c-bm2-ss")
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    with pytest.raises(build.BuildError, match="install p4c"):
        build.compile_program("icpn", force=True)


def test_unknown_program_is_named_in_the_error() -> None:
    with pytest.raises(build.BuildError, match=r"no such program.*known: .*icpn"):
        build.compile_program("nonexistent")


def test_programs_are_the_top_level_p4_files() -> None:
    assert {"icpn", "port_forward"} <= set(build.programs())


def test_changed_codepoint_makes_the_build_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    monkeypatch.setattr(build, "p4_overrides", dict)  # defaults, whatever the environment
    monkeypatch.delenv(build.P4FLAGS_ENV, raising=False)
    art = build.artifacts("icpn")
    art.json.parent.mkdir(parents=True)
    for path in (art.json, art.p4info):
        path.write_text("{}")
    build._flags_stamp(art).write_text(" ".join(build.p4c_flags()))
    assert not build.is_stale("icpn")
    monkeypatch.setattr(build, "p4_overrides", lambda: {"APN6_OPT_TYPE": 0x1E})
    assert build.p4c_flags()[0] == "-DAPN6_OPT_TYPE=0x1e"
    assert build.is_stale("icpn")


def test_a_variant_compiles_features_out_beside_the_program(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """bench/forwarding.py's slices: -DWITHOUT_SKETCH drops the sketch's tables from the
    P4Info, into build/v1model/variants/, leaving the program's own artifacts alone."""
    if toolchain.p4c().path is None:
        pytest.skip("p4c-bm2-ss not found")
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    monkeypatch.delenv(build.P4FLAGS_ENV, raising=False)
    art = build.compile_variant("icpn", "nosketch", ["WITHOUT_SKETCH"])
    assert art.json == tmp_path / "v1model" / "variants" / "icpn-nosketch.json"
    p4info = art.p4info.read_text()
    assert "IcpnIngress.sketch.sketch_profile" not in p4info
    assert "IcpnIngress.routing.routing_v6" in p4info
    assert not build.artifacts("icpn").exist
    assert not build._is_stale(art, [*build.p4c_flags(), "-DWITHOUT_SKETCH"])
    with pytest.raises(build.BuildError, match="variant name"):
        build.compile_variant("icpn", "no sketch", ["WITHOUT_SKETCH"])
