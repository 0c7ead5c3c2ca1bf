"""Tool discovery: env overrides, absent tools, the reason BMv2 tests give when skipped, and
the performance BMv2 build bench/forwarding.py measures beside the stock one."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from icpn.paths import PROJECT_ROOT as REPO
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Error, Bmv2Options, Bmv2Switch


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


def test_perf_build_from_the_environment_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ICPN_BMV2_PERF=/nonexistent/ss: no such executable"):
        toolchain.choose_bmv2_perf("/nonexistent/ss", str(tmp_path / "default"), None)
    tool = fake_tool(tmp_path, "perf-ss", "1.15.5-perf")
    found, note = toolchain.choose_bmv2_perf(str(tool), "/nonexistent/default", None)
    assert found == str(tool) and note == f"found {tool}"


def test_perf_build_default_is_used_only_when_it_exists(tmp_path: Path) -> None:
    default = tmp_path / "bin" / "simple_switch_grpc"
    found, reason = toolchain.choose_bmv2_perf(None, str(default), "/usr/bin/true")
    assert found is None
    assert str(default) in reason and toolchain.BMV2_PERF_ENV in reason
    default.parent.mkdir()
    fake_tool(default.parent, "simple_switch_grpc", "1.15.5")
    found, _ = toolchain.choose_bmv2_perf("", str(default), "/usr/bin/true")
    assert found == str(default)


def test_perf_build_that_is_the_stock_build_is_no_second_build(tmp_path: Path) -> None:
    tool = fake_tool(tmp_path, "simple_switch_grpc", "1.15.5")
    link = tmp_path / "alias"
    link.symlink_to(tool)
    found, reason = toolchain.choose_bmv2_perf(str(link), "/nonexistent", str(tool))
    assert found is None and "is the stock build itself" in reason


def test_logging_macros_are_detected_from_the_binary(tmp_path: Path) -> None:
    with_macros = tmp_path / "with"
    with_macros.write_bytes(b"\x7fELF...[{}] [cxt {}] Processing packet received on port {}\0")
    without = tmp_path / "without"
    without.write_bytes(b"\x7fELF...Transmitting\0")
    assert toolchain.logging_macros_compiled_in(str(with_macros)) is True
    assert toolchain.logging_macros_compiled_in(str(without)) is False
    assert toolchain.logging_macros_compiled_in(str(tmp_path / "absent")) is None


def test_bmv2_config_is_read_beside_the_prefix(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = fake_tool(tmp_path / "bin", "ss", "1.15.5")
    assert toolchain.bmv2_config_defines(str(tool)) is None
    (tmp_path / "include" / "bm").mkdir(parents=True)
    (tmp_path / "include" / "bm" / "config.h").write_text(
        "#ifndef BM_ELOG_ON\n#define BM_ELOG_ON /**/\n#endif\n/* #undef BM_LOG_DEBUG_ON */\n"
        "/* #undef BM_LOG_TRACE_ON */\n/* #undef BM_DEBUG_ON */\n#define BM_PACKET_TRACE_ON /**/\n"
    )
    assert toolchain.bmv2_config_defines(str(tool)) == {
        "BM_LOG_DEBUG_ON": False,
        "BM_LOG_TRACE_ON": False,
        "BM_ELOG_ON": True,
        "BM_PACKET_TRACE_ON": True,
        "BM_DEBUG_ON": False,
    }


def test_switch_options_name_the_executable(tmp_path: Path) -> None:
    """Bmv2Options.executable picks the binary without touching ICPN_BMV2 (the toolchain's
    cached choice stays the stock build's)."""
    tool = fake_tool(tmp_path, "my-ss", "1.15.5")
    switch = Bmv2Switch("opts", Bmv2Options(executable=str(tool)))
    assert switch._executable() == str(tool)
    with pytest.raises(Bmv2Error, match=r"no-such-ss.*no such executable"):
        Bmv2Switch("opts", Bmv2Options(executable="no-such-ss"))._executable()


def test_the_icmp_stage_compiles_out_for_the_bench(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """-DWITHOUT_ICMP (bench/forwarding.py's "icmp" slice) drops my-address, port MTU and
    punt, and only them."""
    if toolchain.p4c().path is None:
        pytest.skip("p4c-bm2-ss not found")
    monkeypatch.setattr(build, "BUILD_DIR", tmp_path)
    monkeypatch.delenv(build.P4FLAGS_ENV, raising=False)
    p4info = build.compile_variant("icpn", "noicmp", ["WITHOUT_ICMP"]).p4info.read_text()
    for table in ("my_address.my_address", "port_mtu.port_mtu", "punt.punt_policy"):
        assert f"IcpnIngress.{table}" not in p4info
    assert "IcpnIngress.routing.routing_v6" in p4info
    assert "IcpnIngress.sketch.sketch_profile" in p4info


def test_perf_build_patches_are_read_from_the_build_record(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    tool = fake_tool(tmp_path / "bin", "ss", "1.15.5")
    assert toolchain.bmv2_perf_patches(str(tool)) is None
    (tmp_path / "share" / "icpn").mkdir(parents=True)
    record = tmp_path / "share" / "icpn" / "bmv2-perf-patches"
    record.write_text("\n")
    assert toolchain.bmv2_perf_patches(str(tool)) == []
    record.write_text("0001-cheap-phv-reset.patch\n0002-other.patch\n")
    assert toolchain.bmv2_perf_patches(str(tool)) == [
        "0001-cheap-phv-reset.patch",
        "0002-other.patch",
    ]


def test_every_bmv2_perf_patch_is_a_diff_naming_its_bmv2_commit() -> None:
    """The build script applies these with git apply, to the checkout the user names: each
    says which BMv2 commit it was written against, so a failed apply can be understood."""
    patches = sorted((REPO / "bench" / "bmv2_perf_patches").glob("*.patch"))
    assert patches, "no BMv2 patches in bench/bmv2_perf_patches"
    for patch in patches:
        text = patch.read_text()
        assert re.search(r"behavioral-model [0-9a-f]{8}", text), patch.name
        assert "\n--- a/" in text and "\n+++ b/" in text, patch.name


#: A behavioral-model checkout to try the patch series on (bench/build_bmv2_perf.sh's SRC).
BMV2_SRC = Path(os.environ.get("ICPN_BMV2_SRC", "/opt/src/behavioral-model"))
BMV2_PATCH_BASE = "9674187f"


@pytest.mark.skipif(
    not (BMV2_SRC / ".git").exists(),
    reason=f"no behavioral-model checkout at {BMV2_SRC} (set ICPN_BMV2_SRC)",
)
def test_perf_build_script_applies_the_series_once_and_refuses_other_changes(
    tmp_path: Path,
) -> None:
    """Clean tree: applied; run again: recognised as applied; a tree with changes of its own
    in a patched file: refused, nothing built (APPLY_ONLY stops before the build)."""
    src = tmp_path / "bmv2"
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(BMV2_SRC), str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "checkout", "-q", BMV2_PATCH_BASE], check=True)
    script = REPO / "bench" / "build_bmv2_perf.sh"

    def apply() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script), str(src), str(tmp_path / "prefix")],
            env=os.environ | {"APPLY_ONLY": "1"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = apply()
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied: 0001-")
    assert "set_zero()" in (src / "include" / "bm" / "bm_sim" / "fields.h").read_text()
    again = apply()
    assert again.returncode == 0 and again.stdout.startswith("already applied: 0001-")
    with (src / "src" / "bm_sim" / "phv.cpp").open("a") as f:
        f.write("// a change of the user's own\n")
    refused = apply()
    assert refused.returncode == 1 and "changes of its own" in refused.stderr
