"""PTF test library, in layers (after stratum/fabric-tna's base_test → fabric_test):

* :class:`PtfSession` / :class:`PtfEnvironment`: one BMv2 per program per pytest session,
  its pipeline pushed once through the project's P4Runtime client, and a ``ptf`` dataplane on
  the host ends of its veths.
* :class:`P4RuntimeTest`: the base class of every test. Gives ``self.sw`` (P4Runtime) and
  ``self.dataplane``; records every entity a test inserts and deletes them afterwards,
  then checks that the tables are really empty again, so tests cannot leak into each other.
  Implements the two unittest methods ``ptf.testutils`` calls, so its helpers work as is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import finsy as fy
import ptf
import ptf.ptfutils
import pytest
from ptf.dataplane import DataPlane
from ptf.mask import Mask

from icpn.p4rt import P4RuntimeError, SwitchTarget, SyncSwitchClient
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

#: How long to wait for a packet that should come, and to be sure one that should not
#: does not. BMv2 forwards in well under a millisecond when idle.
POSITIVE_TIMEOUT_S = 2.0
#: BMv2 log level for the suite's switches (``trace`` shows every table and header).
LOG_LEVEL_ENV = "ICPN_BMV2_LOG_LEVEL"
NEGATIVE_TIMEOUT_S = 0.3

ptf.config.update({"relax": False, "qlen": 1000})
ptf.ptfutils.default_timeout = POSITIVE_TIMEOUT_S
ptf.ptfutils.default_negative_timeout = NEGATIVE_TIMEOUT_S
logging.getLogger("dataplane").setLevel(logging.WARNING)


@dataclass
class PtfEnvironment:
    """A running switch with its program loaded, a P4Runtime client and a dataplane."""

    program: str
    switch: Bmv2Switch
    client: SyncSwitchClient
    dataplane: DataPlane

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.dataplane.kill()
        with contextlib.suppress(Exception):
            self.client.close()
        self.switch.stop()


@dataclass
class PtfSession:
    """Switches started on demand and shared by every test of the session."""

    environments: dict[str, PtfEnvironment] = field(default_factory=dict)

    def environment(self, program: str, num_ports: int) -> PtfEnvironment:
        env = self.environments.get(program)
        if env is None:
            env = self._start(program, num_ports)
            self.environments[program] = env
        return env

    @staticmethod
    def _start(program: str, num_ports: int) -> PtfEnvironment:
        art = build.compile_program(program)
        log_level = os.environ.get(LOG_LEVEL_ENV, "info")
        options = Bmv2Options(num_ports=num_ports, log_level=log_level)
        switch = Bmv2Switch(f"ptf-{program}", options).start()
        try:
            target = SwitchTarget(
                name=switch.name,
                address=switch.grpc_address,
                device_id=switch.device_id,
                p4info=art.p4info,
                p4blob=art.json,
                force_pipeline=True,
            )
            client = SyncSwitchClient(target).connect()
            try:
                client.read(fy.P4TableEntry())
            except P4RuntimeError as exc:
                # BMv2 accepts a pipeline over P4Runtime even when it cannot load the JSON
                # (its log says why); every later read then fails. Say so once, here.
                raise RuntimeError(
                    f"BMv2 did not load {art.json} (see {switch.log_dir}): {exc}"
                ) from exc
            dataplane = DataPlane(config={"platform": "linux", "qlen": 1000})
            for port, ifname in switch.host_interfaces.items():
                dataplane.port_add(ifname, 0, port)
        except BaseException:
            switch.stop()
            raise
        return PtfEnvironment(program, switch, client, dataplane)

    def close(self) -> None:
        for env in self.environments.values():
            env.close()
        self.environments.clear()


@pytest.mark.bmv2
class P4RuntimeTest:
    """Base of all PTF tests: P4Runtime + dataplane access and automatic entry cleanup."""

    PROGRAM: ClassVar[str] = "icpn"
    NUM_PORTS: ClassVar[int] = 5

    sw: SyncSwitchClient
    dataplane: DataPlane
    env: PtfEnvironment

    @pytest.fixture(autouse=True)
    def _p4runtime_test(self, ptf_env: PtfEnvironment) -> Iterator[None]:
        self.env = ptf_env
        self.sw = ptf_env.client
        self.dataplane = ptf_env.dataplane
        self._written: list[Any] = []
        self.dataplane.flush()
        try:
            yield
        finally:
            self._cleanup()

    # -- entries
    def insert(self, entities: Iterable[Any]) -> None:
        """Insert entities (in one batch) and remember them for cleanup."""
        batch = list(entities)
        self.sw.insert(batch)
        self._written.extend(batch)

    def _cleanup(self) -> None:
        if self._written:
            self.sw.delete(reversed(self._written), strict=False)
            self._written.clear()
        leftover = self.sw.read(fy.P4TableEntry())
        assert not leftover, f"entries left after cleanup: {leftover}"

    # -- counters
    def counter_packets(self, counter: str, index: int) -> int:
        return int(self.sw.read_counter(counter, index).packet_count)

    # -- what ptf.testutils expects of a unittest.TestCase
    def fail(self, msg: str) -> None:
        pytest.fail(msg)

    def assertTrue(self, condition: object, msg: str | None = None) -> None:
        assert condition, msg

    def before_send(self, pkt: bytes, device_number: int = 0, port_number: int = -1) -> None:
        """ptf hook called before every send; nothing to do here."""

    def at_receive(self, pkt: bytes, device_number: int = 0, port_number: int = -1) -> None:
        """ptf hook called on every received packet; nothing to do here."""

    # -- dataplane helpers
    def receive_on_any(self, expected: dict[int, Any], timeout: float = POSITIVE_TIMEOUT_S) -> int:
        """Wait for one packet on any port; it must arrive on a port of ``expected`` and match
        that port's expected packet (scapy packet or ptf Mask). Returns the port."""
        result = self.dataplane.poll(device_number=0, timeout=timeout)
        if not isinstance(result, self.dataplane.PollSuccess):
            pytest.fail(
                f"no packet on any port within {timeout} s; wanted one of {sorted(expected)}"
            )
        port = result.port
        if port not in expected:
            pytest.fail(f"packet arrived on port {port}, not one of {sorted(expected)}")
        want = expected[port]
        mask = want if isinstance(want, Mask) else Mask(want)
        if not mask.pkt_match(result.packet):
            pytest.fail(f"packet on port {port} differs from expected:\n{result.format()}")
        return int(port)
