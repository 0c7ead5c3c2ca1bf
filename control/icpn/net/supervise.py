"""Switch supervision in the lab: the ``icpn net up`` process watches its BMv2 processes,
restarts one that exits, and serves ``icpn net restart`` / ``icpn net kill``.

Only the ``net up`` process starts and stops switches (it is their parent: it reaps them,
so none lingers ``<defunct>``) and only it writes the state file; the other commands drop a
request file into the lab's request directory and wait for the state to show the outcome.

A switch that exits on its own (a crash) is restarted after ``delay_s``, at most
``max_restarts`` times in ``window_s``: a switch that keeps dying is left down (state
``exited ... (restarting too often)``) until ``icpn net restart``. One killed with ``icpn net
kill`` (a failure to study: the controller's failover steers around it) stays down until
``icpn net restart``. A restart is refused while another process listens on the switch's
gRPC port (:mod:`icpn.net.ports`).

Every start, exit and restart is appended to the lab's event journal (JSON lines, with
``time.monotonic()`` like the controller's failover events), so tests and benchmarks can time
an outage from both sides.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icpn.net.emulation import EmulationError
from icpn.net.state import STATE_FILE, NetState
from icpn.targets.bmv2.switch import stop_process

LOG = logging.getLogger(__name__)

ACTIONS = ("restart", "kill")
#: How long a restarted BMv2 has to serve gRPC.
SERVE_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class RestartPolicy:
    """Restart-on-exit: after ``delay_s``, at most ``max_restarts`` per ``window_s``."""

    enabled: bool = True
    delay_s: float = 1.0
    max_restarts: int = 3
    window_s: float = 60.0


def request_path(requests: Path, switch: str, action: str) -> Path:
    return requests / f"{switch}.{action}"


class Supervisor:
    """Watches the switches of a running emulation (``switches``: Mininet BMv2 nodes)."""

    def __init__(
        self,
        switches: dict[str, Any],
        state: NetState,
        requests: Path,
        journal: Path,
        policy: RestartPolicy | None = None,
        *,
        progress: Callable[[str], None] = lambda message: LOG.info("%s", message),
        interval_s: float = 0.1,
        state_file: Path = STATE_FILE,
    ) -> None:
        self.switches = switches
        self.state = state
        self.requests = requests
        self.journal = journal
        self.policy = policy or RestartPolicy()
        self.progress = progress
        self.interval_s = interval_s
        self.state_file = state_file
        self.held: set[str] = set()  # killed on request: not restarted until asked
        self._exited_at: dict[str, float] = {}
        self._recent: dict[str, deque[float]] = {n: deque() for n in switches}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="switch supervisor", daemon=True)
        requests.mkdir(parents=True, exist_ok=True)
        for stale in requests.glob("*.*"):
            stale.unlink(missing_ok=True)
        state.requests = str(requests)
        for name, switch in switches.items():
            state.grpc[name] = switch.grpc
            state.switch_state[name] = "running"
            state.restarts.setdefault(name, 0)
        self._record_pids()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=SERVE_TIMEOUT_S + 5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception:  # the supervisor must outlive one bad step
                LOG.exception("switch supervisor step failed")

    # -- one round -------------------------------------------------------------------------
    def step(self) -> None:
        changed = False
        for name, switch in self.switches.items():
            for action in ACTIONS:
                request = request_path(self.requests, name, action)
                if request.exists():
                    request.unlink(missing_ok=True)
                    getattr(self, f"_{action}")(name, switch)
                    changed = True
            process = switch.process
            if process is None or process.poll() is None:
                continue
            if name not in self._exited_at:  # newly exited (poll() reaped it)
                self._exited_at[name] = time.monotonic()
                code = process.returncode
                self._event("exit", name, pid=process.pid, code=code)
                if name in self.held:
                    self.state.switch_state[name] = "killed (icpn net restart to bring it back)"
                else:
                    self.state.switch_state[name] = f"exited ({_exit_text(code)})"
                    self.progress(f"{name}: BMv2 exited ({_exit_text(code)})")
                changed = True
            if name not in self.held and self._may_restart(name):
                self._restart(name, switch, automatic=True)
                changed = True
        if changed:
            self._record_pids()

    def _may_restart(self, name: str) -> bool:
        policy = self.policy
        if not policy.enabled or "too often" in self.state.switch_state[name]:
            return False
        if time.monotonic() - self._exited_at[name] < policy.delay_s:
            return False
        recent = self._recent[name]
        while recent and time.monotonic() - recent[0] > policy.window_s:
            recent.popleft()
        if len(recent) >= policy.max_restarts:
            self.state.switch_state[name] += (
                f"; not restarted: {len(recent)} restarts within {policy.window_s:g} s "
                "(restarting too often; icpn net restart to try again)"
            )
            self._event("gave up", name)
            self.progress(f"{name}: restarting too often, left down")
            return False
        return True

    def _kill(self, name: str, switch: Any) -> None:
        """A crash on request: SIGKILL, then held down until icpn net restart."""
        self.held.add(name)
        process = switch.process
        if process is not None and process.poll() is None:
            at = time.monotonic()  # the moment of death, not of its reaping
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
            self._event("kill", name, at=at, pid=process.pid)
        self.state.switch_state[name] = "killed (icpn net restart to bring it back)"
        self._exited_at.setdefault(name, time.monotonic())

    def _restart(self, name: str, switch: Any, *, automatic: bool = False) -> None:
        self.held.discard(name)
        stop_process(switch.process)
        self._exited_at.pop(name, None)
        self.state.switch_state[name] = "restarting"
        self._record_pids()
        try:
            switch.launch()
        except (EmulationError, OSError) as exc:
            self.state.switch_state[name] = f"not restarted: {exc}"
            self.held.add(name)  # needs the user: do not retry in a loop
            self._event("restart failed", name, detail=str(exc))
            self.progress(f"{name}: {exc}")
            return
        if automatic:
            self._recent[name].append(time.monotonic())
        self.state.restarts[name] = self.state.restarts.get(name, 0) + 1
        self._event("start", name, pid=switch.process.pid, automatic=automatic)
        problem = switch.serving(SERVE_TIMEOUT_S)
        if problem is not None:
            self.state.switch_state[name] = f"restarting: {problem}"
            self._event("not serving", name, detail=problem)
            return
        self.state.switch_state[name] = "running"
        self._event("serving", name, pid=switch.process.pid)
        self.progress(f"{name}: BMv2 restarted (pid {switch.process.pid}); controller restoring it")

    # -- records ---------------------------------------------------------------------------
    def _record_pids(self) -> None:
        for name, switch in self.switches.items():
            if switch.process is not None:
                self.state.bmv2_pids[name] = switch.process.pid
            self.state.bmv2_started[name] = list(switch.started)
        self.state.save(self.state_file)

    def _event(self, kind: str, switch: str, *, at: float | None = None, **fields: Any) -> None:
        now = time.monotonic()
        when = now if at is None else at
        line: dict[str, Any] = {"at": when, "wall": time.time() - (now - when)}
        line |= {"kind": kind, "switch": switch}
        with self.journal.open("a") as out:
            out.write(json.dumps({**line, **fields}) + "\n")


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
