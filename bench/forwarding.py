"""BMv2 forwarding rate of icpn.p4 against a minimal port-to-port program, in one run.

Why a ratio: BMv2's absolute rate depends on the machine and on what else runs; the ratio to
a baseline measured with the same traffic, on the same machine, in interleaved rounds, says
what icpn's pipeline costs. Method (after RFC 2544's throughput idea, simplified): offer a
fixed rate above BMv2's capacity from port 1 for a fixed time and count what leaves port 2;
the received rate over the receive interval is the forwarding rate. Both switches run at
once with logging off; rounds alternate between them; the median of the rounds is reported.

Cost per feature: icpn.p4 can be built with features compiled out (``-DWITHOUT_APN`` ...,
see p4src/v1model/icpn.p4). The bench measures slices that add one feature at a time to the
path every packet takes (parser, sanity, my-station, routing), in pipeline order, up to the
whole program; each slice's ratio to the baseline, and each feature's stage ratio (the slice
with it over the slice before it), show where a regression comes from.

Writes build/bench/forwarding.json (every figure named with its unit) and forwarding.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import finsy as fy
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from icpn.features.routing import NextHop, my_station, route
from icpn.p4rt import SwitchTarget, SyncSwitchClient
from icpn.paths import BUILD_DIR
from icpn.targets import toolchain
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

ROUTER_MAC = "00:00:00:00:aa:01"
NEIGHBOR_MAC = "00:00:00:00:00:02"
ETH_P_ALL = 0x0003
#: Frames sent back to back between pacing sleeps. BMv2 reads its ports through libpcap and
#: loses about half of a burst of 64 back-to-back frames even at 200 packets/s, so bursts
#: stay short: the offered rate is then what BMv2 really sees.
PACING_BURST = 8


@dataclass(frozen=True)
class Round:
    program: str
    sent: int
    received: int
    rx_seconds: float
    #: CPU time every BMv2 thread used over the round (ns), from /proc/<pid>/task/*/schedstat.
    cpu_ns: int = 0

    @property
    def pps(self) -> float:
        return self.received / self.rx_seconds if self.rx_seconds > 0 else 0.0


def frames(count: int, size: int) -> list[bytes]:
    """``count`` IPv6/UDP flows (distinct source ports) of ``size`` bytes, to the router MAC."""
    out = []
    for i in range(count):
        pkt = (
            Ether(src="00:00:00:00:00:01", dst=ROUTER_MAC)
            / IPv6(src="2001:db8:1::10", dst="2001:db8:2::10", hlim=64)
            / UDP(sport=10000 + i, dport=4791)
        )
        out.append(bytes(pkt / Raw(b"\x00" * max(0, size - len(pkt)))))
    return out


def send_at_rate(ifname: str, payloads: list[bytes], rate_pps: float, seconds: float) -> int:
    """Send the frames round-robin at ``rate_pps`` for ``seconds``; return how many went."""
    total = int(rate_pps * seconds)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        start = time.perf_counter()
        sent = 0
        for i in range(total):
            try:
                sock.send(payloads[i % len(payloads)])
                sent += 1
            except OSError:  # ENOBUFS: the veth backlog is full; the frame is lost
                pass
            if i % PACING_BURST == 0:
                ahead = start + i / rate_pps - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
    return sent


class Receiver(threading.Thread):
    """Counts frames arriving on an interface and the times of the first and last."""

    def __init__(self, ifname: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.settimeout(0.5)
        self.count = 0
        self.first = 0.0
        self.last = 0.0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.sock.recv(65535)
            except TimeoutError:
                continue
            now = time.perf_counter()
            if self.count == 0:
                self.first = now
            self.last = now
            self.count += 1

    def finish(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.sock.close()


def cpu_ns(pid: int) -> int:
    """CPU time (ns) all threads of a process have run: the first field of each thread's
    schedstat. Unlike a rate, it hardly depends on what else the machine runs."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # a thread that just ended
            continue
    return total


def measure(
    switch: Bmv2Switch, program: str, payloads: list[bytes], rate: float, seconds: float
) -> Round:
    assert switch.process is not None
    rx = Receiver(switch.host_interfaces[2])
    rx.start()
    before = cpu_ns(switch.process.pid)
    sent = send_at_rate(switch.host_interfaces[1], payloads, rate, seconds)
    time.sleep(1.0)  # let BMv2 drain its queues
    used = cpu_ns(switch.process.pid) - before
    rx.finish()
    return Round(program, sent, rx.count, rx.last - rx.first, used)


def icpn_entries() -> list[Any]:
    return [
        my_station(ROUTER_MAC),
        route("2001:db8:2::/48", [NextHop(2, ROUTER_MAC, NEIGHBOR_MAC)]),
    ]


def baseline_entries() -> list[Any]:
    return [
        fy.P4TableEntry(
            "port_map",
            match=fy.P4TableMatch(ingress_port=1),
            action=fy.P4TableAction("forward", port=2),
        )
    ]


@dataclass(frozen=True)
class Program:
    """One switch of the bench: a program, maybe with features compiled out."""

    name: str
    source: str
    entries: Callable[[], list[Any]]
    without: tuple[str, ...] = field(default=())  # features compiled out (-DWITHOUT_...)

    def compile(self) -> build.Artifacts:
        if not self.without:
            return build.compile_program(self.source)
        return build.compile_variant(
            self.source, self.name, [f"WITHOUT_{f.upper()}" for f in self.without]
        )


BASELINE = Program("port_forward", "port_forward", baseline_entries)
ICPN = Program("icpn", "icpn", icpn_entries)
#: icpn.p4's optional features in pipeline order (the -DWITHOUT_<NAME> of each).
FEATURES = ("apn", "sketch", "srv6", "ifit", "qos", "acl")


def slices() -> list[Program]:
    """The path every packet takes, then one more feature each, up to the whole program
    (the last slice is ICPN itself, not a variant)."""
    out = [Program("icpn-routing", "icpn", icpn_entries, FEATURES)]
    for i, feature in enumerate(FEATURES[:-1]):
        out.append(Program(f"icpn-to-{feature}", "icpn", icpn_entries, FEATURES[i + 1 :]))
    return out


@dataclass(frozen=True)
class Offer:
    """What each round offers: the rate rounds' rate (above every capacity), the CPU rounds'
    (below them), for how long, in frames of what size."""

    rate: float
    cpu_rate: float
    seconds: float
    frame_size: int


def run(programs: list[Program], rounds: int, offer: Offer, out_dir: Path) -> dict[str, Any]:
    rate, cpu_rate, seconds = offer.rate, offer.cpu_rate, offer.seconds
    payloads = frames(64, offer.frame_size)
    switches: dict[str, tuple[Bmv2Switch, SyncSwitchClient]] = {}
    results: list[Round] = []
    cpu_results: list[Round] = []
    try:
        for program in programs:
            art = program.compile()
            sw = Bmv2Switch(
                f"bench-{program.name}", Bmv2Options(num_ports=2, log_level="off")
            ).start()
            client = SyncSwitchClient(
                SwitchTarget(
                    program.name,
                    sw.grpc_address,
                    p4info=art.p4info,
                    p4blob=art.json,
                    force_pipeline=True,
                )
            )
            switches[program.name] = (sw, client)
            client.connect()
            client.insert(program.entries())
            measure(sw, program.name, payloads, rate, 0.2)  # warm-up, not recorded
        # Rate rounds above every capacity, then CPU rounds below them.
        for offered, out in ((rate, results), (cpu_rate, cpu_results)):
            for r in range(rounds):
                for name, (sw, _client) in switches.items():
                    result = measure(sw, name, payloads, offered, seconds)
                    out.append(result)
                    print(
                        f"round {r + 1}/{rounds} at {offered:,.0f}/s {name:>16}: received "
                        f"{result.received} of {result.sent}, {result.pps:,.0f} packets/s, "
                        f"{us_per_packet(result):.1f} us of BMv2 CPU per packet",
                        flush=True,
                    )
    finally:
        for sw, client in switches.values():
            client.close()
            sw.stop()
    return summarize(programs, results, cpu_results, offer, out_dir)


def us_per_packet(result: Round) -> float:
    return result.cpu_ns / 1000 / result.received if result.received else float("inf")


def summarize(
    programs: list[Program],
    results: list[Round],
    cpu_results: list[Round],
    offer: Offer,
    out_dir: Path,
) -> dict[str, Any]:
    rate, cpu_rate, seconds, frame_size = (
        offer.rate,
        offer.cpu_rate,
        offer.seconds,
        offer.frame_size,
    )
    names = [p.name for p in programs]
    med = {n: statistics.median(r.pps for r in results if r.program == n) for n in names}
    base = med[BASELINE.name]
    cpu = {
        n: statistics.median(us_per_packet(r) for r in cpu_results if r.program == n) for n in names
    }
    base_cpu = cpu[BASELINE.name]
    report: dict[str, Any] = {
        "icpn_forwarding_pps_median": round(med["icpn"], 1),
        "baseline_port_forward_forwarding_pps_median": round(base, 1),
        "forwarding_ratio_icpn_over_baseline": round(med["icpn"] / base, 3),
        # The same comparison by CPU time per packet below capacity: what a loaded machine
        # (other processes on the two cores) moves far less than a rate.
        "icpn_bmv2_cpu_us_per_packet_median": round(cpu["icpn"], 2),
        "baseline_port_forward_bmv2_cpu_us_per_packet_median": round(base_cpu, 2),
        "cpu_ratio_baseline_over_icpn": round(base_cpu / cpu["icpn"], 3),
        # A rate is a capacity only if the switch dropped part of the offered load.
        "icpn_saturated_all_rounds": all(
            r.received < r.sent for r in results if r.program == "icpn"
        ),
        "baseline_saturated_all_rounds": all(
            r.received < r.sent for r in results if r.program == BASELINE.name
        ),
    }
    staged = [p for p in programs if p.source == "icpn"]
    rows = []
    previous: str | None = None
    for program in staged:
        if program.name == "icpn" and len(staged) == 1:
            break
        added = (
            "all"
            if program.name == "icpn"
            else ", ".join(f for f in FEATURES if f not in program.without) or "none"
        )
        key = program.name.replace("-", "_")
        report[f"slice_{key}_forwarding_pps_median"] = round(med[program.name], 1)
        report[f"slice_{key}_ratio_over_baseline"] = round(med[program.name] / base, 3)
        report[f"slice_{key}_bmv2_cpu_us_per_packet_median"] = round(cpu[program.name], 2)
        report[f"slice_{key}_cpu_ratio_baseline_over_slice"] = round(
            base_cpu / cpu[program.name], 3
        )
        stage = None
        if previous is not None:
            stage = med[program.name] / med[previous]
            report[f"slice_{key}_stage_ratio_over_previous_slice"] = round(stage, 3)
        rows.append(
            (
                program.name,
                added,
                med[program.name],
                med[program.name] / base,
                stage,
                cpu[program.name],
            )
        )
        previous = program.name
    report |= {
        "offered_load_pps": rate,
        "cpu_rounds_offered_load_pps": cpu_rate,
        "offered_seconds_per_round": seconds,
        "frame_size_bytes": frame_size,
        "rounds_per_program": len(results) // len(programs),
        "rounds": [r.__dict__ | {"pps": round(r.pps, 1)} for r in results],
        "cpu_rounds": [
            r.__dict__ | {"cpu_us_per_packet": round(us_per_packet(r), 2)} for r in cpu_results
        ],
        "bmv2": toolchain.bmv2().version,
        "p4c": toolchain.p4c().version,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "forwarding.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = (
        "# BMv2 forwarding rate: icpn.p4 vs port_forward.p4\n\n"
        f"Offered {rate:,.0f} packets/s of {frame_size}-byte IPv6/UDP frames for {seconds} s per "
        f"round, {report['rounds_per_program']} rounds each, interleaved, BMv2 logging off.\n\n"
        "| program | median forwarded packets/s | BMv2 CPU per packet (us) |\n|---|---|---|\n"
        f"| port_forward (baseline) | {base:,.0f} | {base_cpu:.1f} |\n"
        f"| icpn | {med['icpn']:,.0f} | {cpu['icpn']:.1f} |\n\n"
        f"icpn / baseline = **{report['forwarding_ratio_icpn_over_baseline']}** (forwarding rate); "
        f"**{report['cpu_ratio_baseline_over_icpn']}** by CPU time per packet (baseline's / "
        f"icpn's, at {cpu_rate:,.0f} packets/s offered, below both capacities).\n"
    )
    if rows:
        summary += (
            "\n## Cost per feature\n\n"
            "Slices of icpn.p4: the path every packet takes (parser, sanity, my-station, "
            "routing), then one feature more each (`-DWITHOUT_...` for the rest). A stage "
            "ratio below 1 is what that feature costs a plain routed packet.\n\n"
            "| slice | features | packets/s | / baseline | stage ratio | CPU us/packet "
            "| baseline CPU / slice CPU |\n|---|---|---|---|---|---|---|\n"
        )
        for name, added, pps, ratio, stage, us in rows:
            shown = f"{stage:.3f}" if stage is not None else "-"
            summary += (
                f"| {name} | {added} | {pps:,.0f} | {ratio:.3f} | {shown} | {us:.1f} "
                f"| {base_cpu / us:.3f} |\n"
            )
    (out_dir / "forwarding.md").write_text(summary)
    print("\n" + summary)
    print(f"written: {out_dir / 'forwarding.json'} and forwarding.md")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=60_000, help="offered packets/s")
    parser.add_argument(
        "--cpu-rate", type=float, default=2_000, help="offered packets/s of the CPU rounds"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="offered time per round")
    parser.add_argument("--frame-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=BUILD_DIR / "bench")
    parser.add_argument(
        "--no-slices",
        action="store_true",
        help="only the baseline and the whole program, not the cost per feature",
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 0 < args.seconds <= 30 or args.rate <= 0:
        parser.error("need 1 <= rounds <= 20, 0 < seconds <= 30, rate > 0")
    reason = toolchain.bmv2_unavailable_reason()
    if reason is not None:
        parser.exit(2, f"bench: cannot run: {reason}\n")
    programs = [BASELINE, ICPN] if args.no_slices else [BASELINE, *slices(), ICPN]
    offer = Offer(args.rate, args.cpu_rate, args.seconds, args.frame_size)
    run(programs, args.rounds, offer, args.out)


if __name__ == "__main__":
    main()
