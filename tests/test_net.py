"""The shipped topologies and ``icpn net``: every topology intent renders into what its
scenario promises (DESIGN.md 6); the state file lets ``net down`` clean up after a crash;
on BMv2 + Mininet a topology comes up, carries pings, and goes away, also after kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from icpn.controller.render import load_and_render
from icpn.net.cli import topologies
from icpn.net.emulation import link_rate_mbps, mininet_available
from icpn.net.state import NetState, alive, is_bmv2, tear_down

TOPOLOGIES = topologies()


def test_the_scenarios_are_shipped() -> None:
    assert set(TOPOLOGIES) == {
        "data-ingestion",
        "storage-compute",
        "cross-dc-training",
        "model-distribution",
        "cloud-edge-inference",
        "path-degradation",
    }


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_every_topology_renders_with_disjoint_sr_paths(name: str) -> None:
    intent, configs = load_and_render(TOPOLOGIES[name])
    topology = intent.topology()
    for policy in intent.sr_policies:
        paths = topology.sr_paths(
            policy.headend,
            policy.endpoint,
            count=policy.paths,
            max_latency_ms=policy.max_latency_ms,
        )
        assert len(paths) == policy.paths
        links = [p.links for p in paths]
        assert all(a.isdisjoint(b) for i, a in enumerate(links) for b in links[i + 1 :])
        (lists,) = [
            p.lists
            for p in configs[policy.headend].policies
            if p.sr_policy_id == 1 + intent.sr_policies.index(policy)
        ]
        assert len(lists) == policy.paths


def test_data_ingestion_is_shanghai_to_ningxia_in_about_33_ms_rtt() -> None:
    intent, _ = load_and_render(TOPOLOGIES["data-ingestion"])
    paths = intent.topology().sr_paths("sh1", "nx1", count=4)
    assert len(paths) == 4 and {p.nodes[1] for p in paths} == {"gz1", "gz2", "gz3", "gz4"}
    assert all(2 * p.latency_ms == pytest.approx(30.0) for p in paths)  # 3000 km of fibre


def test_cross_dc_training_converges_at_least_16_to_1() -> None:
    intent, _ = load_and_render(TOPOLOGIES["cross-dc-training"])
    access = intent.emulation.host_gbps * sum(h.switch == "dca" for h in intent.hosts.values())
    wan = sum(link.capacity_gbps for link in intent.links if link.a.startswith("dca:"))
    assert access / wan >= 16


def test_link_rates_scale_down_for_bmv2() -> None:
    assert link_rate_mbps(100, 1e-5) == pytest.approx(1.0)


@pytest.fixture
def fake_switch_process() -> Iterator[int]:
    """A process whose command line names simple_switch, like a BMv2 left by a crash."""
    process = subprocess.Popen(["bash", "-c", "exec -a simple_switch_grpc sleep 60"])
    time.sleep(0.2)
    yield process.pid
    process.kill()
    process.wait()


def test_down_after_a_crash_kills_what_the_dead_process_left(
    tmp_path: Path, fake_switch_process: int
) -> None:
    state_file = tmp_path / "state.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    NetState("t", "t.yaml", dead.pid, str(tmp_path), True, {"s1": fake_switch_process}).save(
        state_file
    )
    loaded = NetState.load(state_file)
    assert loaded is not None and loaded.bmv2_pids == {"s1": fake_switch_process}
    done = tear_down(loaded, state_file, timeout_s=2)
    time.sleep(0.2)
    assert f"killed BMv2 s1 (pid {fake_switch_process})" in done
    assert not state_file.exists()


def test_down_never_kills_a_reused_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        state = NetState("t", "t.yaml", 1 << 22, str(tmp_path), True, {"s1": bystander.pid})
        assert tear_down(state, tmp_path / "state.json") == []
        assert alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_corrupt_state_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps({"what": 1}))
    with pytest.raises(ValueError, match="not an icpn net state file"):
        NetState.load(path)


@pytest.mark.bmv2
@pytest.mark.netadmin
def test_net_up_ping_and_down_after_kill_9() -> None:
    reason = mininet_available()
    if reason is not None:
        pytest.skip(f"needs Mininet: {reason}")
    icpn = [sys.executable, "-m", "icpn.cli", "net"]

    def net(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*icpn, *args], capture_output=True, text=True, timeout=timeout)

    up = net("up", "storage-compute", "--detach")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        ping = net("exec", "storage", "--", "ping", "-6", "-c", "3", "-i", "0.2", "2001:db8:40::10")
        assert ping.returncode == 0 and "3 received" in ping.stdout, ping.stdout + ping.stderr
        state = NetState.load()
        assert state is not None and state.ready and len(state.bmv2_pids) == 3
        os.kill(state.pid, 9)  # the net up process crashes
        time.sleep(0.5)
        assert all(alive(pid) for pid in state.bmv2_pids.values())  # left behind
    finally:
        down = net("down", timeout=60)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not any(alive(pid) for pid in state.bmv2_pids.values())
    assert not any(Path(f"/sys/class/net/{i}").exists() for i in state.interfaces)
    assert NetState.load() is None


def test_a_taken_grpc_port_is_refused_naming_the_process(tmp_path: Path) -> None:
    from icpn.intent import load_intent
    from icpn.net.emulation import EmulationError, _check_ports
    from icpn.net.ports import listener

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        found = listener(port)
        assert found is not None and found.pid == os.getpid()
        text = Path("topologies/storage-compute.yaml").read_text()
        first = text.index("grpc: 127.0.0.1:") + len("grpc: 127.0.0.1:")
        end = first + text[first:].index("\n")
        path = tmp_path / "taken.yaml"
        path.write_text(text[:first] + str(port) + text[end:])
        with pytest.raises(
            EmulationError, match=f"port {port} is already in use by pid {os.getpid()}"
        ):
            _check_ports(load_intent(path))
    assert listener(port) is None


class FakeSwitch:
    """A supervised "switch": ``sleep`` named simple_switch, serving at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.grpc = "127.0.0.1:1"
        self.started: list[int] = []
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["bash", "-c", "exec -a simple_switch_grpc sleep 60"])
        self.started.append(process.pid)
        return process

    def launch(self) -> None:
        self.process = self._spawn()

    def serving(self, timeout_s: float) -> str | None:
        return None


def test_supervision_restarts_a_crashed_switch_at_a_bounded_rate_and_obeys_requests(
    tmp_path: Path,
) -> None:
    from icpn.net.supervise import RestartPolicy, Supervisor, request_path

    switch = FakeSwitch("s1")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # the net up process, gone
    dead.wait()
    state = NetState("t", "t.yaml", dead.pid, str(tmp_path), True)
    state_file = tmp_path / "state.json"
    policy = RestartPolicy(delay_s=0.0, max_restarts=2, window_s=60)
    journal = tmp_path / "events.jsonl"
    supervisor = Supervisor(
        {"s1": switch}, state, tmp_path / "requests", journal, policy, state_file=state_file
    )
    try:
        for restarts in (1, 2):  # crashes restarted, twice
            switch.process.kill()
            switch.process.wait()
            supervisor.step()  # sees the exit (and reaps it) ...
            supervisor.step()  # ... and restarts it
            assert switch.process.poll() is None and state.restarts["s1"] == restarts
        switch.process.kill()
        switch.process.wait()
        supervisor.step()
        supervisor.step()
        assert switch.process.poll() is not None, "a third crash in a minute is left down"
        assert "too often" in state.switch_state["s1"]
        request_path(tmp_path / "requests", "s1", "restart").touch()
        supervisor.step()
        assert switch.process.poll() is None and state.switch_state["s1"] == "running"
        request_path(tmp_path / "requests", "s1", "kill").touch()
        supervisor.step()
        supervisor.step()
        assert switch.process.poll() is not None and state.switch_state["s1"].startswith("killed")
        saved = NetState.load(state_file)
        assert saved is not None and saved.bmv2_started["s1"] == switch.started
        assert len(switch.started) == 4
        kinds = [json.loads(line)["kind"] for line in journal.read_text().splitlines()]
        assert kinds.count("start") == 3 and "gave up" in kinds and kinds[-1] == "kill"
        done = tear_down(saved, state_file, timeout_s=2)  # every pid, none left
        assert not any(alive(pid) and is_bmv2(pid) for pid in switch.started), done
    finally:
        for pid in switch.started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        switch.process.wait(timeout=5)


def test_restart_kill_and_status_without_a_lab_say_so() -> None:
    from typer.testing import CliRunner

    from icpn.cli import app

    assert NetState.load() is None, "no lab may be up in this checkout while tests run"
    runner = CliRunner()
    for command in (["net", "restart", "gz2"], ["net", "kill", "gz2"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1 and "no network is up" in result.output, result.output
    status = runner.invoke(app, ["net", "status"])
    assert status.exit_code == 0 and "no network is up" in status.output


def test_down_after_a_crash_stops_the_collector_it_left(tmp_path: Path) -> None:
    collector = subprocess.Popen(["bash", "-c", "exec -a 'python -m icpn.cli collect' sleep 60"])
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        time.sleep(0.2)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        state = NetState("t", "t.yaml", dead.pid, str(tmp_path), True, collector_pid=collector.pid)
        state.save(tmp_path / "state.json")
        loaded = NetState.load(tmp_path / "state.json")
        assert loaded is not None and loaded.collector_pid == collector.pid
        done = tear_down(loaded, tmp_path / "state.json", timeout_s=2)
        assert f"stopped the collector (pid {collector.pid})" in done
        assert collector.wait(timeout=5) is not None
        # a pid reused by something else is left alone
        state.collector_pid = bystander.pid
        assert tear_down(state, tmp_path / "state.json", timeout_s=2) == []
        assert alive(bystander.pid)
    finally:
        for process in (collector, bystander):
            process.kill()
            process.wait()
