"""Compile ``p4src/tna/icpn.p4`` with bf-p4c, per target and profile, into
``build/tofino/<target>/<profile>/``: ``bfrt.json``, ``p4info.txtpb``, ``pipe/`` (the binary,
``context.json``, the ``.bfa``, ``logs/``) and ``outcome.json``, which says how the compile
ended and why.

A compile is repeated only when a P4 source or the flags changed. Several run at once (each
bf-p4c is single-threaded and takes one to two minutes): ``ICPN_BUILD_JOBS`` bounds them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from icpn import sketch_key
from icpn.paths import BUILD_DIR, P4SRC_DIR
from icpn.targets import toolchain
from icpn.targets.bmv2.build import BuildError, codepoint_defines
from icpn.targets.tofino.profiles import PROFILES, PROGRAM, TARGETS, Profile
from icpn.targets.tofino.resources import parser_defects

SOURCE = P4SRC_DIR / "tna" / f"{PROGRAM}.p4"
TOFINO_DIR = BUILD_DIR / "tofino"
JOBS_ENV = "ICPN_BUILD_JOBS"
#: Extra bf-p4c flags for every compile.
FLAGS_ENV = "ICPN_BF_P4FLAGS"
#: Tofino 1's egress parser is limited in how deep it may look by default; icpn's egress
#: parser walks the HBH options to the IOAM trace, as deep as ingress does.
_TARGET_FLAGS = {"tofino": ["-Xp4c=--disable-parse-max-depth-limit"], "tofino2": []}
#: Counters, registers and action profiles as standard P4Runtime objects in the P4Info (not
#: ``barefoot.*`` externs): what Stratum serves over P4Runtime, what finsy reads, and what the
#: BfRuntime translator maps onto bfrt.json by name. bfrt.json itself is unaffected.
_P4INFO_FLAGS = ["--p4runtime-force-std-externs"]

#: How a compile ended.
OK = "ok"  # binary written
NO_FIT = "no-fit"  # the compiler could not place the program (stages, PHV, memories)
ASSEMBLER_DEFECT = "assembler-defect"  # placed; the assembler failed on a known defect
FAILED = "failed"  # anything else: a P4 error, a crash

_NO_FIT_PATTERNS = (
    "PHV allocation was not successful",
    "able placement",  # "table placement ..." / "Table placement ..."
    "supports up to",  # "tofino supports up to 12 stages, using 13"
    "cannot fit",
    "could not fit",
)


@dataclass
class Outcome:
    """How one compile ended, as recorded in ``outcome.json``."""

    target: str
    profile: str
    status: str
    flags: list[str]
    returncode: int
    seconds: float
    errors: list[str]
    parser_defects: list[str]
    #: The newest P4 source's mtime when the compile started: a later edit makes it stale.
    sources_mtime: float = 0.0
    #: ``bf-p4c --version``: another compiler makes it stale too.
    compiler: str = ""

    @property
    def placed(self) -> bool:
        """The compiler placed the program: its resources can be read."""
        return self.status in (OK, ASSEMBLER_DEFECT)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def out_dir(target: str, profile: str) -> Path:
    return TOFINO_DIR / target / profile


def outcome_path(target: str, profile: str) -> Path:
    return out_dir(target, profile) / "outcome.json"


def read_outcome(target: str, profile: str) -> Outcome | None:
    path = outcome_path(target, profile)
    if not path.exists():
        return None
    return Outcome(**json.loads(path.read_text()))


def flags(target: str, profile: Profile) -> list[str]:
    """Every flag beyond source and outputs: target's, profile's, codepoints, environment."""
    return [
        *_TARGET_FLAGS[target],
        *_P4INFO_FLAGS,
        *profile.flags,
        *codepoint_defines(),
        *sketch_key.tna_defines(),
        *shlex.split(os.environ.get(FLAGS_ENV, "")),
    ]


def _newest_source_mtime() -> float:
    return max(p.stat().st_mtime for p in P4SRC_DIR.rglob("*.p4") if "v1model" not in p.parts)


def is_stale(target: str, profile: Profile) -> bool:
    done = read_outcome(target, profile.name)
    if done is None or done.flags != flags(target, profile):
        return True
    if done.compiler != (toolchain.bf_p4c().version or ""):
        return True
    return _newest_source_mtime() > done.sources_mtime


def _errors(log: str) -> list[str]:
    """The compiler's error messages, each with the lines that explain it (at most 12)."""
    found: list[str] = []
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if re.search(r"(^|\s)error:", line) or line.startswith("error"):
            found.append("\n".join(lines[i : i + 12]).strip())
    return found[:5]


def _status(returncode: int, log: str, pipe: Path, defects: list[str]) -> str:
    if returncode == 0:
        return OK
    # bfas rejects the assembly bf-p4c wrote for Tofino 2 when the parser's match registers
    # are missing (the CLOTs of a state are then unreachable): placement succeeded.
    if defects and (pipe / "context.json").exists() and "clot" in log:
        return ASSEMBLER_DEFECT
    if any(p in log for p in _NO_FIT_PATTERNS):
        return NO_FIT
    return FAILED


def compile_one(target: str, profile: Profile, *, force: bool = False) -> Outcome:
    """Compile one (target, profile) if stale or forced; the outcome, whatever it is."""
    if target not in TARGETS:
        raise BuildError(f"unknown Tofino target {target!r} (known: {', '.join(TARGETS)})")
    if not force and not is_stale(target, profile):
        done = read_outcome(target, profile.name)
        assert done is not None
        return done
    bf_p4c = toolchain.bf_p4c()
    if bf_p4c.path is None:
        raise BuildError(f"cannot compile {SOURCE.name} for {target}: {toolchain.BF_P4C_HINT}")
    out = out_dir(target, profile.name)
    pipe = out / "pipe"
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    out.mkdir(parents=True)
    used = flags(target, profile)
    cmd = [
        bf_p4c.path,
        "-b",
        target,
        "-a",
        TARGETS[target],
        "-g",
        "--verbose",
        "2",
        "-I",
        str(P4SRC_DIR),
        "-o",
        str(out),
        "--bf-rt-schema",
        str(out / "bfrt.json"),
        "--p4runtime-files",
        str(out / "p4info.txtpb"),
        *used,
        str(SOURCE),
    ]
    sources_mtime = _newest_source_mtime()
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log = result.stdout + result.stderr
    (out / "bf-p4c.log").write_text(shlex.join(cmd) + "\n" + log)
    bfa = pipe / f"{PROGRAM}.bfa"
    defects = parser_defects(bfa.read_text()) if bfa.exists() else []
    outcome = Outcome(
        target=target,
        profile=profile.name,
        status=_status(result.returncode, log, pipe, defects),
        flags=used,
        returncode=result.returncode,
        seconds=round(time.monotonic() - started, 1),
        errors=_errors(log) if result.returncode else [],
        parser_defects=defects,
        sources_mtime=sources_mtime,
        compiler=bf_p4c.version or "",
    )
    outcome_path(target, profile.name).write_text(json.dumps(outcome.to_json(), indent=2) + "\n")
    return outcome


def jobs() -> int:
    wanted = os.environ.get(JOBS_ENV)
    return max(1, int(wanted)) if wanted else max(1, os.cpu_count() or 1)


def compile_many(
    pairs: Iterable[tuple[str, Profile]],
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[Outcome]:
    """Compile several (target, profile) pairs, ``jobs()`` at a time; outcomes in order."""
    todo = list(pairs)

    def one(pair: tuple[str, Profile]) -> Outcome:
        target, profile = pair
        stale = force or is_stale(target, profile)
        if stale:
            progress(f"bf-p4c: compiling {profile.name} for {target} …")
        outcome = compile_one(target, profile, force=force)
        if stale:
            progress(f"bf-p4c: {profile.name} for {target}: {outcome.status} ({outcome.seconds} s)")
        return outcome

    with ThreadPoolExecutor(max_workers=min(jobs(), max(1, len(todo)))) as pool:
        return list(pool.map(one, todo))


def fitting_pairs() -> list[tuple[str, Profile]]:
    """What ``icpn build`` compiles: each profile on the targets it is built for."""
    return [(t, p) for p in PROFILES.values() for t in TARGETS if t in p.fits]


def all_pairs() -> list[tuple[str, Profile]]:
    """What ``icpn bench`` measures: every profile on every target."""
    return [(t, p) for p in PROFILES.values() for t in TARGETS]
