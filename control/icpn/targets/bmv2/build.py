"""Compile the P4 programs with p4c: ``p4src/<arch>/<program>.p4`` → ``build/<arch>/<program>.json``
and ``.p4info.txtpb``.

A program is any ``.p4`` file directly under ``p4src/v1model/``; files under ``include/`` are
parts of programs. A program is recompiled only when one of the P4 sources is newer than its
outputs, so ``make test`` does not pay for p4c when nothing changed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from icpn.constants import p4_overrides
from icpn.paths import BUILD_DIR, P4SRC_DIR
from icpn.targets import toolchain

ARCH = "v1model"
#: Extra p4c flags. Codepoint overrides need none: ``ICPN_APN6_OPT_TYPE=0x1e`` reaches both
#: Python and (as ``-DAPN6_OPT_TYPE=0x1e``) p4c.
P4FLAGS_ENV = "ICPN_P4FLAGS"


class BuildError(RuntimeError):
    """p4c is missing or rejected a program; the message says which and why."""


@dataclass(frozen=True)
class Artifacts:
    """What p4c produced for one program: the BMv2 JSON and the P4Info text."""

    program: str
    json: Path
    p4info: Path

    @property
    def exist(self) -> bool:
        return self.json.exists() and self.p4info.exists()


def programs(arch: str = ARCH) -> list[str]:
    """Names of the programs of one architecture, sorted."""
    return sorted(p.stem for p in (P4SRC_DIR / arch).glob("*.p4"))


def artifacts(program: str, arch: str = ARCH) -> Artifacts:
    out = BUILD_DIR / arch
    return Artifacts(program, out / f"{program}.json", out / f"{program}.p4info.txtpb")


def _newest_source_mtime() -> float:
    return max(p.stat().st_mtime for p in P4SRC_DIR.rglob("*.p4"))


def codepoint_defines() -> list[str]:
    """``-D`` flags for the codepoints overridden from the environment (every target)."""
    return [f"-D{name}={value:#x}" for name, value in p4_overrides().items()]


def p4c_flags() -> list[str]:
    """Flags beyond the defaults: codepoint overrides (``-D``), then ``ICPN_P4FLAGS``."""
    return [*codepoint_defines(), *shlex.split(os.environ.get(P4FLAGS_ENV, ""))]


def _flags_stamp(art: Artifacts) -> Path:
    return art.json.with_suffix(".flags")


def is_stale(program: str, arch: str = ARCH) -> bool:
    """Outputs missing, older than a source, or built with other flags."""
    return _is_stale(artifacts(program, arch), p4c_flags())


def _is_stale(art: Artifacts, flags: list[str]) -> bool:
    stamp = _flags_stamp(art)
    if not art.exist or not stamp.exists():
        return True
    if stamp.read_text() != " ".join(flags):
        return True
    built = min(art.json.stat().st_mtime, art.p4info.stat().st_mtime)
    return _newest_source_mtime() > built


def compile_program(program: str, arch: str = ARCH, *, force: bool = False) -> Artifacts:
    """Compile one program (if stale or forced) and return its artifacts."""
    return _compile(program, artifacts(program, arch), p4c_flags(), arch, force=force)


def compile_variant(
    program: str, variant: str, defines: Sequence[str], arch: str = ARCH, *, force: bool = False
) -> Artifacts:
    """Compile ``program`` with extra ``-D`` ``defines`` (e.g. ``WITHOUT_SKETCH``, a feature
    compiled out, for ``bench/forwarding.py``) into ``build/<arch>/variants/<program>-<variant>``:
    the program's own artifacts are not touched."""
    if not variant.replace("-", "").replace("_", "").isalnum():
        raise BuildError(f"variant name {variant!r}: letters, digits, - and _ only")
    out = BUILD_DIR / arch / "variants"
    art = Artifacts(
        program, out / f"{program}-{variant}.json", out / f"{program}-{variant}.p4info.txtpb"
    )
    flags = [*p4c_flags(), *(f"-D{d}" for d in defines)]
    return _compile(program, art, flags, arch, force=force)


def _compile(
    program: str, art: Artifacts, flags: list[str], arch: str, *, force: bool
) -> Artifacts:
    source = P4SRC_DIR / arch / f"{program}.p4"
    if not source.exists():
        raise BuildError(f"no such program: {source} (known: {', '.join(programs(arch))})")
    if not force and not _is_stale(art, flags):
        return art
    p4c = toolchain.p4c()
    if p4c.path is None:
        raise BuildError(f"cannot compile {source.name}: {toolchain.INSTALL_HINT}")
    art.json.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        p4c.path,
        "--arch",
        arch,
        "--std",
        "p4-16",
        "-I",
        str(P4SRC_DIR),
        "--p4runtime-files",
        str(art.p4info),
        "-o",
        str(art.json),
        *flags,
        str(source),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        for stale in (art.json, art.p4info, _flags_stamp(art)):
            stale.unlink(missing_ok=True)
        raise BuildError(
            f"p4c failed on {source} (exit {result.returncode}):\n"
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    _flags_stamp(art).write_text(" ".join(flags))
    return art


def build_all(arch: str = ARCH, *, force: bool = False) -> list[Artifacts]:
    return [compile_program(name, arch, force=force) for name in programs(arch)]
