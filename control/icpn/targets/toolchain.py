"""Find the p4lang tools (p4c's BMv2 back end and BMv2's gRPC switch) and say what is missing.

One place answers "can we compile P4 (for BMv2, for Tofino) / run BMv2 here?" for the
Makefile, the CLI and the tests, so that a missing tool is reported the same way everywhere
and the tests that need it are skipped with the reason rather than failing or, worse, passing.

``ICPN_P4C``, ``ICPN_BMV2`` and ``ICPN_BF_P4C`` override the executables (a path or a name on
PATH). ``ICPN_BMV2_PERF`` names a second, performance build of simple_switch_grpc (logging
macros and event logger compiled out, ``bench/build_bmv2_perf.sh``) that only
``bench/forwarding.py`` uses, beside the stock one.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

P4C_ENV = "ICPN_P4C"
BMV2_ENV = "ICPN_BMV2"
BF_P4C_ENV = "ICPN_BF_P4C"
P4C_DEFAULT = "p4c-bm2-ss"
BMV2_DEFAULT = "simple_switch_grpc"
BF_P4C_DEFAULT = "bf-p4c"
BMV2_PERF_ENV = "ICPN_BMV2_PERF"
#: Where bench/build_bmv2_perf.sh installs by default: apart from the stock /usr/local.
BMV2_PERF_DEFAULT = "/opt/bmv2-perf/bin/simple_switch_grpc"
#: Strings of BMv2 log calls (``BMLOG_DEBUG_PKT`` in simple_switch.cpp, ``BMLOG_TRACE_PKT`` in
#: bm_sim/tables.cpp): in the executable only when its logging macros are compiled in.
LOGGING_MACRO_MARKERS = (b"Processing packet received on port", b"Applying table '")

INSTALL_HINT = (
    "install p4c and BMv2 (with PI, for simple_switch_grpc) following "
    "https://github.com/p4lang/p4c#installing-p4c-from-source and "
    "https://github.com/p4lang/behavioral-model#building-the-code, "
    f"or point {P4C_ENV}/{BMV2_ENV} at the executables"
)

BF_P4C_HINT = (
    "build the open-source Tofino compiler (p4lang/p4c with backends/tofino, driver bf-p4c; "
    f"docs/tofino.md says how) or point {BF_P4C_ENV} at it"
)


@dataclass(frozen=True)
class Tool:
    """An executable we looked for: where it is (None when absent) and what it says it is."""

    name: str
    env_var: str
    path: str | None
    version: str | None

    @property
    def found(self) -> bool:
        return self.path is not None

    def describe(self) -> str:
        if self.path is None:
            return f"{self.name}: not found (set {self.env_var} or put it on PATH)"
        return f"{self.name}: {self.path} ({self.version or 'version unknown'})"


def version_of(path: str) -> str | None:
    """First line of ``--version``; None when the tool does not answer within 10 s."""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else None


def _find(default: str, env_var: str) -> Tool:
    wanted = os.environ.get(env_var) or default
    path = shutil.which(wanted)
    return Tool(default, env_var, path, version_of(path) if path else None)


@functools.cache
def p4c() -> Tool:
    """The P4 compiler for BMv2 (``p4c-bm2-ss``)."""
    return _find(P4C_DEFAULT, P4C_ENV)


@functools.cache
def bmv2() -> Tool:
    """BMv2's simple_switch with the P4Runtime gRPC server."""
    return _find(BMV2_DEFAULT, BMV2_ENV)


@functools.cache
def bf_p4c() -> Tool:
    """The Tofino compiler (p4lang/p4c's ``backends/tofino`` driver)."""
    return _find(BF_P4C_DEFAULT, BF_P4C_ENV)


def choose_bmv2_perf(
    env_value: str | None, default: str, stock: str | None
) -> tuple[str | None, str]:
    """Which performance simple_switch_grpc bench/forwarding.py runs beside the stock one,
    or None; and why (a sentence for its report).

    ``env_value`` (``ICPN_BMV2_PERF``) must exist when given: whoever names a build wants
    it measured, not a silent stock-only run (ValueError). Otherwise ``default`` is used
    when it exists. The stock executable itself is no second build."""
    if env_value:
        found = shutil.which(env_value)
        if found is None:
            raise ValueError(f"{BMV2_PERF_ENV}={env_value}: no such executable")
    else:
        found = shutil.which(default)
        if found is None:
            return None, (
                f"no performance build: {default} does not exist and {BMV2_PERF_ENV} is "
                "not set (bench/build_bmv2_perf.sh makes one)"
            )
    if stock is not None and Path(found).resolve() == Path(stock).resolve():
        return None, f"the performance build {found} is the stock build itself"
    return found, f"found {found}"


def logging_macros_compiled_in(executable: str) -> bool | None:
    """Whether a BMv2 executable formats its per-packet log lines (even at --log-level off):
    its log calls' format strings are in the binary only then. None when it cannot be read.
    simple_switch_grpc links bm_sim and simple_switch statically, so the binary says it."""
    path = shutil.which(executable) or executable
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    return any(marker in data for marker in LOGGING_MACRO_MARKERS)


def _read_in_prefix(executable: str, *parts: str) -> str | None:
    """A file of the install prefix an executable's ``bin/`` sits in, or None."""
    path = shutil.which(executable) or executable
    try:
        return Path(path).resolve().parent.parent.joinpath(*parts).read_text()
    except OSError:
        return None


def bmv2_config_defines(executable: str) -> dict[str, bool] | None:
    """The build switches BMv2's installed ``bm/config.h`` records beside ``<prefix>/bin``:
    logging macros (BM_LOG_DEBUG_ON, BM_LOG_TRACE_ON), event logger (BM_ELOG_ON), packet
    tracing (BM_PACKET_TRACE_ON), debugger (BM_DEBUG_ON). None when the header is not there
    (an executable moved on its own)."""
    text = _read_in_prefix(executable, "include", "bm", "config.h")
    if text is None:
        return None
    names = (
        "BM_LOG_DEBUG_ON",
        "BM_LOG_TRACE_ON",
        "BM_ELOG_ON",
        "BM_PACKET_TRACE_ON",
        "BM_DEBUG_ON",
    )
    return {name: f"#define {name} " in text for name in names}


def bmv2_perf_patches(executable: str) -> list[str] | None:
    """The patches to BMv2 itself that bench/build_bmv2_perf.sh applied to this build (their
    file names, from ``<prefix>/share/icpn/bmv2-perf-patches``, which the script writes).
    None when there is no such record (the stock build, or one made otherwise): a report
    must not call a build unpatched when it cannot know."""
    text = _read_in_prefix(executable, "share", "icpn", "bmv2-perf-patches")
    if text is None:
        return None
    return [line.strip() for line in text.splitlines() if line.strip()]


def tofino_unavailable_reason() -> str | None:
    """Why the Tofino compile tests cannot run here, or None when they can."""
    if not bf_p4c().found:
        return f"bf-p4c not found: {BF_P4C_HINT}"
    return None


def can_manage_links() -> bool:
    """Creating veth pairs needs CAP_NET_ADMIN; in practice, root."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def bmv2_unavailable_reason() -> str | None:
    """Why BMv2 tests cannot run here, or None when they can."""
    missing = [t.name for t in (p4c(), bmv2()) if not t.found]
    if missing:
        return f"{' and '.join(missing)} not found: {INSTALL_HINT}"
    if not can_manage_links():
        return "creating veth ports needs root (CAP_NET_ADMIN) and iproute2's `ip`"
    return None
