"""pytest wiring for the PTF suite: BMv2 switches shared by a pytest session.

Every test here is marked ``bmv2``; the top-level conftest skips them, with the reason, where
p4c, BMv2 or root is missing.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

from ptf_tests.base import PtfEnvironment, PtfSession


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    # A CI runner that times out sends SIGTERM; turning it into KeyboardInterrupt lets
    # pytest run the finalizers below, which stop BMv2 and delete the veths.
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def ptf_session() -> Iterator[PtfSession]:
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    session = PtfSession()
    try:
        yield session
    finally:
        session.close()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def ptf_env(request: pytest.FixtureRequest, ptf_session: PtfSession) -> PtfEnvironment:
    """The switch for the requesting test class's ``PROGRAM`` (started once per session)."""
    program = getattr(request.cls, "PROGRAM", "icpn")
    num_ports = getattr(request.cls, "NUM_PORTS", 5)
    return ptf_session.environment(program, num_ports)
