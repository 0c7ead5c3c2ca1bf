"""Find the p4lang tools (p4c's BMv2 back end and BMv2's gRPC switch) and say what is missing.

One place answers "can we compile P4 (for BMv2, for Tofino) / run BMv2 here?" for the
Makefile, the CLI and the tests, so that a missing tool is reported the same way everywhere
and the tests that need it are skipped with the reason rather than failing or, worse, passing.

``ICPN_P4C``, ``ICPN_BMV2`` and ``ICPN_BF_P4C`` override the executables (a path or a name on
PATH).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

P4C_ENV = "ICPN_P4C"
BMV2_ENV = "ICPN_BMV2"
BF_P4C_ENV = "ICPN_BF_P4C"
P4C_DEFAULT = "p4c-bm2-ss"
BMV2_DEFAULT = "simple_switch_grpc"
BF_P4C_DEFAULT = "bf-p4c"

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


def _version_of(path: str) -> str | None:
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
    return Tool(default, env_var, path, _version_of(path) if path else None)


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
