"""The BMv2 harness leaves no process and no veth behind: after a clean exit, after an
exception, after Ctrl-C, and (with the next switch's reaping) after SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from icpn.targets import veth
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

pytestmark = pytest.mark.bmv2

CHILD = """
import sys, time
from icpn.targets.bmv2.switch import Bmv2Switch, Bmv2Options
with Bmv2Switch("child", Bmv2Options(num_ports=2)) as sw:
    print(sw.process.pid, *sw.host_interfaces.values(), flush=True)
    time.sleep(60)
"""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped or defunct.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def as_in_a_terminal() -> None:
    """SIGINT back to its default in the child, as for a command run in a terminal. Started
    from a background job without job control (as CI may run), the child would inherit
    SIGINT ignored, and Python then installs no KeyboardInterrupt handler: Ctrl-C could not
    reach it at all, whatever the code under test does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_child() -> tuple[subprocess.Popen[str], int, list[str]]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    assert child.stdout is not None
    line = child.stdout.readline().split()
    assert line, f"child did not start a switch: {child.stderr.read() if child.stderr else ''}"
    return child, int(line[0]), line[1:]


def test_switch_serves_grpc_and_stop_removes_everything() -> None:
    with Bmv2Switch("harness", Bmv2Options(num_ports=3)) as sw:
        assert sw.running
        with socket.create_connection(("127.0.0.1", sw.grpc_port), timeout=2):
            pass
        names = veth.existing_names()
        assert set(sw.host_interfaces.values()) <= names
        assert sw.process is not None
        pid = sw.process.pid
    assert wait_gone(pid)
    assert not set(sw.host_interfaces.values()) & veth.existing_names()


def test_exception_inside_with_still_cleans_up() -> None:
    sw = Bmv2Switch("harness-exc", Bmv2Options(num_ports=2))
    with pytest.raises(RuntimeError, match="boom"), sw:
        assert sw.process is not None
        pid = sw.process.pid
        raise RuntimeError("boom")
    assert wait_gone(pid)
    assert not set(sw.host_interfaces.values()) & veth.existing_names()


def test_ctrl_c_in_the_owner_cleans_up() -> None:
    child, bmv2_pid, ifnames = start_child()
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=20)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)
        pytest.fail(f"no exit 20 s after Ctrl-C: {child.stderr.read() if child.stderr else ''}")
    assert wait_gone(bmv2_pid), "BMv2 survived its owner's Ctrl-C"
    assert not set(ifnames) & veth.existing_names(), "veths survived Ctrl-C"


def test_sigkill_of_owner_kills_bmv2_and_next_switch_reaps_veths() -> None:
    child, bmv2_pid, ifnames = start_child()
    child.kill()
    child.wait(timeout=10)
    assert wait_gone(bmv2_pid), "BMv2 outlived a SIGKILLed owner (PDEATHSIG not set?)"
    with Bmv2Switch("reaper", Bmv2Options(num_ports=1)):
        assert not set(ifnames) & veth.existing_names(), "stale veths were not reaped"


def test_cli_switch_run_serves_until_ctrl_c_and_cleans_up() -> None:
    """``icpn switch run`` as a user runs it: prints its ports, then Ctrl-C removes all."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "icpn.cli", "switch", "run", "--ports", "2", "--log-level", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_in_a_terminal,
    )
    assert cli.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("Ctrl-C" in line for line in lines):
        line = cli.stdout.readline()
        if not line:
            break
        lines.append(line)
    output = "".join(lines)
    assert "P4Runtime: 127.0.0.1:" in output, output
    ifnames = re.findall(r"\b(ic[0-9a-f]+-[0-9a-f]+p\d+h)\b", output)
    assert len(ifnames) == 2 and set(ifnames) <= veth.existing_names()
    cli.send_signal(signal.SIGINT)
    try:
        code = cli.wait(timeout=30)
    except subprocess.TimeoutExpired:
        cli.kill()
        code = cli.wait(timeout=10)
        pytest.fail(f"no exit 30 s after Ctrl-C; it printed:\n{output}{cli.stdout.read()}")
    after = cli.stdout.read()
    assert code == 0, output + after
    assert "switch and ports removed" in after
    assert not set(ifnames) & veth.existing_names()
