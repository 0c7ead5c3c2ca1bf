"""A switch outage in the running lab, measured on the wire (issue 14): many small RoCEv2
flows from one host to another, a transit switch killed mid-traffic (``icpn net kill``) and
brought back (``icpn net restart``); what was lost, and when.

The flows are numbered UDP datagrams to port 4791 (RoCEv2) behind a BTH whose DestQP
differs per flow, so the headend's deep hash spreads them over the SR policy's segment lists
(the DestQP is part of the hash key). Each flow stays below the elephant threshold of the
shipped topologies' sketches, so none is pinned: what a flow does is what its hashed list
does. Each datagram carries its flow, its sequence number and its send time
(``time.monotonic_ns()``, the same clock in every namespace of one machine), so the
receiver's log says which packets were lost and when they had been sent.

Figures (:class:`OutageFigures`):

* packets lost during the outage, and after the switch was back (should be 0);
* time to steer around, on the wire: from the kill to the send time of the last packet
  lost (after that, nothing is sent into the dead switch); and as the controller logged
  it: from the kill to its drain of the lists through the switch;
* time to restore: from the restarted switch serving gRPC to its lists back in their
  groups (the controller reconciles it in between).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from icpn.net.state import NetState

RUDP_PORT = 4791

#: Sends ``flows`` flows round robin at ``rate`` packets/s for ``seconds`` to [dst]:4791;
#: prints "flow seq send_ns" per packet at the end (the send log).
SENDER = textwrap.dedent(
    """
    import socket, struct, sys, time
    dst, flows = sys.argv[1], int(sys.argv[2])
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    log = []
    start = time.monotonic()
    n = 0
    while True:
        due = start + n / rate
        if due - start >= seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        flow, seq = n % flows, n // flows
        now = time.monotonic_ns()
        # BTH: opcode 4 (RC SEND only), flags, P_Key 0xffff, DestQP 0x100+flow, PSN seq
        bth = struct.pack("!BBHI I", 4, 0, 0xFFFF, 0x100 + flow, seq & 0xFFFFFF)
        s.sendto(bth + struct.pack("!HIQ", flow, seq, now) + bytes(32), (dst, 4791))
        log.append(f"{flow} {seq} {now}")
        n += 1
    print("\\n".join(log), flush=True)
    """
)

#: Receives on [::]:4791 until ``seconds`` pass; prints "flow seq send_ns" per packet.
RECEIVER = textwrap.dedent(
    """
    import socket, struct, sys, time
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", 4791))
    s.settimeout(0.2)
    end = time.monotonic() + float(sys.argv[1])
    print("listening", flush=True)
    seen = []
    while time.monotonic() < end:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        if len(data) >= 26:
            flow, seq, sent = struct.unpack("!HIQ", data[12:26])
            seen.append(f"{flow} {seq} {sent}")
    print("\\n".join(seen), flush=True)
    """
)


@dataclass(frozen=True)
class OutageFigures:
    """One outage, every figure with its unit in its name."""

    switch: str
    flows: int
    rate_pps: float
    sent_packets: int
    received_packets: int
    lost_packets: int  # all of them
    lost_in_outage_packets: int  # sent between 1 s before the kill and the restart
    lost_before_outage_packets: int  # e.g. while the source resolved its gateway
    lost_after_restart_packets: int  # sent after the restart began (should be none)
    flows_hit: int  # flows that lost a packet in the outage
    steer_wire_s: float | None  # kill -> send time of the last packet lost in the outage
    steer_controller_s: float | None  # kill -> the controller's drain written
    serve_after_restart_s: float | None  # BMv2 started again -> serving gRPC
    restore_s: float | None  # BMv2 serving -> its lists back in service (reconciled first)
    outage_s: float  # kill -> restart


def read_log(text: str) -> dict[tuple[int, int], int]:
    """``flow seq send_ns`` lines -> {(flow, seq): send_ns}."""
    found: dict[tuple[int, int], int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            found[int(parts[0]), int(parts[1])] = int(parts[2])
    return found


def analyse(
    switch: str,
    sent: dict[tuple[int, int], int],
    received: set[tuple[int, int]],
    events: list[dict[str, Any]],
    *,
    kill_at: float,
    restart_at: float,
    rate_pps: float,
    flows: int,
) -> OutageFigures:
    """The figures from the send log, what arrived, and the lab's events (monotonic s)."""
    lost = {key: ns / 1e9 for key, ns in sent.items() if key not in received}
    in_outage = {k: t for k, t in lost.items() if kill_at - 1.0 <= t < restart_at}
    after = [t for t in lost.values() if t >= restart_at]

    def first(kind: str, since: float, who: str | None = None) -> float | None:
        for event in events:
            if event.get("kind") != kind or event.get("at", 0) < since:
                continue
            if who is None or event.get("switch") == who or who in event.get("detail", ""):
                return float(event["at"])
        return None

    drained = first("drain", kill_at, switch)
    started = first("start", restart_at, switch)
    serving = first("serving", restart_at, switch)
    restored = first("restore", serving, switch) if serving is not None else None
    late = [t for t in in_outage.values() if t >= kill_at]
    return OutageFigures(
        switch=switch,
        flows=flows,
        rate_pps=rate_pps,
        sent_packets=len(sent),
        received_packets=len(received & sent.keys()),
        lost_packets=len(lost),
        lost_in_outage_packets=len(in_outage),
        lost_before_outage_packets=len(lost) - len(in_outage) - len(after),
        lost_after_restart_packets=len(after),
        flows_hit=len({flow for flow, _ in in_outage}),
        steer_wire_s=(max(late) - kill_at) if late else None,
        steer_controller_s=(drained - kill_at) if drained is not None else None,
        serve_after_restart_s=(serving - started) if serving and started else None,
        restore_s=(restored - serving) if restored is not None and serving is not None else None,
        outage_s=restart_at - kill_at,
    )


def _icpn(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icpn.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def run_outage(
    switch: str,
    *,
    source: str,
    destination: str,
    address: str,
    flows: int = 40,
    rate_pps: float = 400.0,
    before_s: float = 3.0,
    down_s: float = 4.0,
    after_s: float = 4.0,
) -> OutageFigures:
    """In the running lab: traffic from ``source`` to ``destination`` (``address``), the
    switch killed ``before_s`` in, restarted ``down_s`` later, traffic on ``after_s``
    after its restoration. Raises RuntimeError when a step fails (with its output)."""
    state = NetState.load()
    if state is None or not state.ready:
        raise RuntimeError("no lab is up: icpn net up <topology> --detach")
    seconds = before_s + down_s + after_s + 2.0
    receiver = subprocess.Popen(
        [sys.executable, "-m", "icpn.cli", "net", "exec", destination, "--",
         sys.executable, "-c", RECEIVER, str(seconds + 3.0)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sender: subprocess.Popen[str] | None = None
    try:
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "listening":
            raise RuntimeError(f"the receiver did not start: {receiver.stderr}")
        sender = subprocess.Popen(
            [sys.executable, "-m", "icpn.cli", "net", "exec", source, "--",
             sys.executable, "-c", SENDER, address, str(flows), str(rate_pps), str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(before_s)
        kill_asked = time.monotonic()
        killed = _icpn("net", "kill", switch)
        if killed.returncode != 0:
            raise RuntimeError(f"icpn net kill {switch}: {killed.stdout}{killed.stderr}")
        events = _journal(state)
        kill_at = next(
            (e["at"] for e in events if e.get("kind") == "kill" and e.get("at", 0) >= kill_asked),
            kill_asked,
        )
        time.sleep(max(0.0, down_s - (time.monotonic() - kill_at)))
        restart_asked = time.monotonic()
        restarted = _icpn("net", "restart", switch)
        if restarted.returncode != 0:
            raise RuntimeError(f"icpn net restart {switch}: {restarted.stdout}{restarted.stderr}")
        restart_at = next(
            (e["at"] for e in _journal(state) if e.get("kind") == "start"
             and e.get("switch") == switch and e.get("at", 0) >= restart_asked),
            restart_asked,
        )  # fmt: skip
        sent_out, sent_err = sender.communicate(timeout=seconds + 60)
        got_out, _ = receiver.communicate(timeout=seconds + 60)
    finally:
        for process in (sender, receiver):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    sent = read_log(sent_out)
    if not sent:
        raise RuntimeError(f"the sender sent nothing: {sent_err}")
    received = set(read_log(got_out))
    return analyse(
        switch,
        sent,
        received,
        _journal(state),
        kill_at=kill_at,
        restart_at=restart_at,
        rate_pps=rate_pps,
        flows=flows,
    )


def _journal(state: NetState) -> list[dict[str, Any]]:
    path = Path(state.log_dir) / "events.jsonl"
    events = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def as_json(figures: OutageFigures) -> dict[str, Any]:
    return asdict(figures)
