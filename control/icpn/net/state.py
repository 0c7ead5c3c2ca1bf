"""What a running ``icpn net up`` leaves on disk, so that ``icpn net down`` can stop it and
remove everything it made even after the process died (a crash, ``kill -9``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from icpn.paths import BUILD_DIR
from icpn.targets.veth import pid_alive

STATE_FILE = BUILD_DIR / "net" / "state.json"


@dataclass
class NetState:
    topology: str
    intent_path: str
    pid: int
    log_dir: str
    ready: bool = False
    bmv2_pids: dict[str, int] = field(default_factory=dict)  # the running one per switch
    host_pids: dict[str, int] = field(default_factory=dict)
    interfaces: list[str] = field(default_factory=list)
    #: every BMv2 pid each switch has had (restarts too): net down stops whichever live
    bmv2_started: dict[str, list[int]] = field(default_factory=dict)
    #: per switch: running, restarting, killed (icpn net kill), exited ... (supervisor's word)
    switch_state: dict[str, str] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    grpc: dict[str, str] = field(default_factory=dict)
    #: the supervisor's request directory (icpn net restart / kill)
    requests: str = ""
    collector_pid: int | None = None  # icpn collect, started by net up (icpn.net.telemetry)
    metrics_port: int | None = None  # its Prometheus port on 127.0.0.1

    def save(self, path: Path = STATE_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # atomic: a reader never sees half a file

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> NetState | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path}: not an icpn net state file ({exc}); remove it") from exc


alive = pid_alive


def _stop(pid: int, timeout_s: float) -> bool:
    """TERM, then KILL after ``timeout_s``; True if the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return not alive(pid)


def tear_down(state: NetState, path: Path = STATE_FILE, timeout_s: float = 30.0) -> list[str]:
    """Stop the ``net up`` process, then remove whatever it left; returns what was done."""
    done: list[str] = []
    if alive(state.pid):
        _stop(state.pid, timeout_s)
        done.append(f"stopped icpn net up (pid {state.pid})")
    for name, pids in _switch_pids(state).items():
        for pid in pids:
            if alive(pid) and is_bmv2(pid):
                _stop(pid, 5)
                done.append(f"killed BMv2 {name} (pid {pid})")
    collector = state.collector_pid
    if collector is not None and alive(collector) and _is_collector(collector):
        _stop(collector, 5)
        done.append(f"stopped the collector (pid {collector})")
    for name, pid in state.host_pids.items():
        if alive(pid) and _is_mininet_host(pid):
            _stop(pid, 2)
            done.append(f"killed host {name} (pid {pid})")
    for ifname in state.interfaces:
        if Path(f"/sys/class/net/{ifname}").exists():
            subprocess.run(["ip", "link", "del", ifname], capture_output=True, check=False)
            done.append(f"deleted interface {ifname}")
    path.unlink(missing_ok=True)
    return done


def _switch_pids(state: NetState) -> dict[str, list[int]]:
    """Every BMv2 the lab started, and any other BMv2 writing its log into the lab's log
    directory (one restarted by hand with the lab's command line)."""
    pids: dict[str, list[int]] = {}
    for name, started in state.bmv2_started.items():
        pids.setdefault(name, []).extend(started)
    for name, pid in state.bmv2_pids.items():
        if pid not in pids.get(name, []):
            pids.setdefault(name, []).append(pid)
    marker = f" {state.log_dir.rstrip('/')}/" if state.log_dir else None
    for entry in Path("/proc").iterdir():
        if marker is None or not entry.name.isdigit():
            continue
        command = _cmdline(int(entry.name))
        if "simple_switch" in command and marker in command:
            pid = int(entry.name)
            if not any(pid in known for known in pids.values()):
                pids.setdefault("(by hand)", []).append(pid)
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def is_bmv2(pid: int) -> bool:
    """Guard against pid reuse: only kill what is still a BMv2 switch."""
    return "simple_switch" in _cmdline(pid)


def _is_collector(pid: int) -> bool:
    return "icpn.cli collect" in _cmdline(pid)


def _is_mininet_host(pid: int) -> bool:
    return "bash" in _cmdline(pid) or "mnexec" in _cmdline(pid)
