"""BMv2 forwarding rate of icpn.p4 against a minimal port-to-port program, in one run.

Why a ratio: BMv2's absolute rate depends on the machine and on what else runs; the ratio to
a baseline measured with the same traffic, on the same machine, in interleaved rounds, says
what icpn's pipeline costs. Method (after RFC 2544's throughput idea, simplified): offer a
fixed rate above BMv2's capacity from port 1 for a fixed time and count what leaves port 2;
the received rate over the receive interval is the forwarding rate. Both switches run at
once with logging off; rounds alternate between them; the median of the rounds is reported.

Maximum forwarding rate: one fixed offered load says little near a capacity. Above it BMv2
spends CPU on frames it then drops, and the same switch at the same load forwarded 56k or
23k packets/s from round to round. So the baseline and the whole program also climb a
ladder of offered loads each round, and each round's best forwarding rate is its maximum
forwarding rate (RFC 2285 3.6.1). The median of the rounds is compared, as the rates are.

Cost per feature: icpn.p4 can be built with features compiled out (``-DWITHOUT_APN`` ...,
see p4src/v1model/icpn.p4). The bench measures slices that add one feature at a time to the
path every packet takes (parser, sanity, my-station, routing), in pipeline order, up to the
whole program; each slice's ratio to the baseline, and each feature's stage ratio (the slice
with it over the slice before it), show where a regression comes from.

Two BMv2 builds: the stock simple_switch_grpc (the toolchain's) and, when there is one, a
performance build (``ICPN_BMV2_PERF``, default /opt/bmv2-perf/bin/simple_switch_grpc, made by
bench/build_bmv2_perf.sh) configured as BMv2's docs/performance.md advises, with the logging
macros, the event logger and packet tracing compiled out, and with the patches to BMv2 in
bench/bmv2_perf_patches (what each program's size costs per packet: zeroing every metadata
field and invalidating every header instance through GMP copies, docs/studies.md). The
stock build formats a log string for every table, action and parser state even at
--log-level off and pays those copies. Every program runs on both builds, all switches
interleaved in the same rounds, each build's ratios against its own baseline. The stock
figures keep their names; the perf build's are prefixed ``perf_build_``, and its report
lists the patches it was built with. Without a perf build the report says it was skipped
and why.

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
from dataclasses import dataclass, field, replace
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
from icpn.targets import toolchain, veth
from icpn.targets.bmv2 import build
from icpn.targets.bmv2.switch import Bmv2Options, Bmv2Switch

ROUTER_MAC = "00:00:00:00:aa:01"
NEIGHBOR_MAC = "00:00:00:00:00:02"
#: Frames sent back to back between pacing sleeps. BMv2 reads its ports through libpcap and
#: loses about half of a burst of 64 back-to-back frames even at 200 packets/s, so bursts
#: stay short: the offered rate is then what BMv2 really sees.
PACING_BURST = 8


#: The goal of issue 17: icpn.p4 forwards at least half the baseline's rate.
GOAL_RATIO = 0.5
#: A baseline forwarding this share of the frames sent is bounded by the offer.
OFFER_BOUND_FRACTION = 0.95
#: Offered loads of the maximum-forwarding-rate rounds (packets/s), in increasing order.
#: RFC 2285 (3.6.1) defines the maximum forwarding rate as the highest forwarding rate
#: taken from an iterative set of forwarding-rate measurements: unlike the rate at one
#: offered load it does not depend on how far above capacity that load is, nor on whether
#: BMv2's input collapses under it (an overloaded switch spends CPU on frames it then drops,
#: and at one fixed load icpn.p4 forwarded either 56k or 23k packets/s from round to round).
MFR_LADDER = (
    *(10_000, 20_000, 30_000),
    *(35_000, 40_000, 45_000, 50_000, 55_000, 60_000),  # where icpn.p4 tops out: 5k steps
    *(70_000, 80_000, 100_000, 120_000),
)
#: Seconds each load of the ladder is offered.
MFR_TRIAL_S = 1.0


@dataclass(frozen=True)
class Bmv2Build:
    """One simple_switch_grpc the bench runs every program on, and what it is."""

    label: str  # "stock" or "perf"
    executable: str
    version: str | None
    #: Whether the per-packet log strings are compiled in (None: unknown).
    logging_macros: bool | None
    #: Build switches from the installed bm/config.h (None: no header beside the binary).
    config: dict[str, bool] | None
    #: Patches to BMv2 bench/build_bmv2_perf.sh applied (None: no record, e.g. stock).
    patches: list[str] | None = None

    @property
    def prefix(self) -> str:
        """Key prefix of this build's figures: none for the stock build (names as before)."""
        return "" if self.label == "stock" else f"{self.label}_build_"

    @classmethod
    def of(cls, label: str, executable: str) -> Bmv2Build:
        return cls(
            label,
            executable,
            toolchain.version_of(executable),
            toolchain.logging_macros_compiled_in(executable),
            toolchain.bmv2_config_defines(executable),
            toolchain.bmv2_perf_patches(executable),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "executable": self.executable,
            "version": self.version,
            "logging_macros_compiled_in": self.logging_macros,
            "config_h_defines": self.config,
            "bmv2_patches": self.patches,
        }


@dataclass(frozen=True)
class Round:
    program: str
    sent: int
    received: int
    rx_seconds: float
    #: CPU time every BMv2 thread used over the round (ns), from /proc/<pid>/task/*/schedstat.
    cpu_ns: int = 0
    #: Which Bmv2Build ran it ("stock", "perf").
    build: str = "stock"
    #: What was asked of the sender (packets/s); ``sent`` says what it managed.
    offered_pps: float = 0.0
    #: Which round of its kind (0-based): the ladder's rounds are told apart by it.
    round_index: int = 0

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
        self.sock = veth.capture_socket(ifname)
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
    switch: Bmv2Switch,
    program: str,
    payloads: list[bytes],
    rate: float,
    seconds: float,
    build: str = "stock",
) -> Round:
    assert switch.process is not None
    rx = Receiver(switch.host_interfaces[2])
    rx.start()
    before = cpu_ns(switch.process.pid)
    sent = send_at_rate(switch.host_interfaces[1], payloads, rate, seconds)
    time.sleep(1.0)  # let BMv2 drain its queues
    used = cpu_ns(switch.process.pid) - before
    rx.finish()
    return Round(program, sent, rx.count, rx.last - rx.first, used, build, rate)


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
#: The programs of the maximum-forwarding-rate rounds: the goal's two.
MFR_PROGRAMS = (BASELINE.name, ICPN.name)
#: icpn.p4's optional features in pipeline order (the -DWITHOUT_<NAME> of each).
FEATURES = ("icmp", "apn", "sketch", "srv6", "ifit", "qos", "acl")


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


def run(
    builds: list[Bmv2Build],
    programs: list[Program],
    rounds: int,
    offer: Offer,
    out_dir: Path,
    perf_note: str,
) -> dict[str, Any]:
    """Every program on every build, all switches up at once, each round visiting them in
    turn: a drift of the machine's load hits every switch alike."""
    rate, cpu_rate, seconds = offer.rate, offer.cpu_rate, offer.seconds
    payloads = frames(64, offer.frame_size)
    switches: dict[tuple[str, str], tuple[Bmv2Switch, SyncSwitchClient]] = {}
    results: list[Round] = []
    cpu_results: list[Round] = []
    mfr_results: list[Round] = []
    try:
        artifacts = {program.name: program.compile() for program in programs}
        for bmv2 in builds:
            for program in programs:
                art = artifacts[program.name]
                options = Bmv2Options(num_ports=2, log_level="off", executable=bmv2.executable)
                sw = Bmv2Switch(f"bench-{bmv2.label}-{program.name}", options).start()
                client = SyncSwitchClient(
                    SwitchTarget(
                        f"{bmv2.label}-{program.name}",
                        sw.grpc_address,
                        p4info=art.p4info,
                        p4blob=art.json,
                        force_pipeline=True,
                    )
                )
                switches[(bmv2.label, program.name)] = (sw, client)
                client.connect()
                client.insert(program.entries())
                measure(sw, program.name, payloads, rate, 0.2)  # warm-up, not recorded
        # Rate rounds above every capacity, the ladder of loads, then CPU rounds below them.
        results = fixed_load_rounds(switches, payloads, rounds, rate, seconds)
        mfr_results = mfr_rounds(switches, payloads, rounds)
        cpu_results = fixed_load_rounds(switches, payloads, rounds, cpu_rate, seconds)
    finally:
        for sw, client in switches.values():
            client.close()
            sw.stop()
    return summarize(
        builds, programs, Measured(results, cpu_results, mfr_results), offer, out_dir, perf_note
    )


def fixed_load_rounds(
    switches: dict[tuple[str, str], tuple[Bmv2Switch, SyncSwitchClient]],
    payloads: list[bytes],
    rounds: int,
    offered: float,
    seconds: float,
) -> list[Round]:
    """Every switch in turn, ``rounds`` times, at one offered load."""
    out = []
    for r in range(rounds):
        for (label, name), (sw, _client) in switches.items():
            result = replace(measure(sw, name, payloads, offered, seconds, label), round_index=r)
            out.append(result)
            print(
                f"round {r + 1}/{rounds} at {offered:,.0f}/s {label:>5} {name:>16}: "
                f"received {result.received} of {result.sent}, "
                f"{result.pps:,.0f} packets/s, "
                f"{us_per_packet(result):.1f} us of BMv2 CPU per packet",
                flush=True,
            )
    return out


def mfr_rounds(
    switches: dict[tuple[str, str], tuple[Bmv2Switch, SyncSwitchClient]],
    payloads: list[bytes],
    rounds: int,
) -> list[Round]:
    """The baseline and the whole program on every build, each round climbing MFR_LADDER
    (every switch at one load before the next load)."""
    out = []
    chosen = [(key, value) for key, value in switches.items() if key[1] in MFR_PROGRAMS]
    for r in range(rounds):
        best: dict[tuple[str, str], float] = {}
        for offered in MFR_LADDER:
            for (label, name), (sw, _client) in chosen:
                result = replace(
                    measure(sw, name, payloads, offered, MFR_TRIAL_S, label), round_index=r
                )
                out.append(result)
                best[(label, name)] = max(best.get((label, name), 0.0), result.pps)
        print(
            f"round {r + 1}/{rounds} maximum forwarding rates: "
            + ", ".join(f"{label} {name} {pps:,.0f}" for (label, name), pps in best.items()),
            flush=True,
        )
    return out


@dataclass(frozen=True)
class Measured:
    """Every round of a run: at the fixed offered load, below capacity (CPU), and up the
    ladder of offered loads (maximum forwarding rate)."""

    rate: list[Round]
    cpu: list[Round]
    mfr: list[Round]


def max_forwarding_rates(mfr: list[Round], program: str) -> list[Round]:
    """Per round of the ladder, the trial with the highest forwarding rate."""
    by_round: dict[int, list[Round]] = {}
    for r in mfr:
        if r.program == program:
            by_round.setdefault(r.round_index, []).append(r)
    return [max(trials, key=lambda t: t.pps) for _, trials in sorted(by_round.items())]


def us_per_packet(result: Round) -> float:
    return result.cpu_ns / 1000 / result.received if result.received else float("inf")


def build_figures(
    bmv2: Bmv2Build, programs: list[Program], measured: Measured
) -> tuple[dict[str, Any], str]:
    """One build's figures (keys with its prefix) and its Markdown section."""
    p = bmv2.prefix
    results = [r for r in measured.rate if r.build == bmv2.label]
    cpu_results = [r for r in measured.cpu if r.build == bmv2.label]
    mfr_results = [r for r in measured.mfr if r.build == bmv2.label]
    names = [program.name for program in programs]
    med = {n: statistics.median(r.pps for r in results if r.program == n) for n in names}
    base = med[BASELINE.name]
    cpu = {
        n: statistics.median(us_per_packet(r) for r in cpu_results if r.program == n) for n in names
    }
    base_cpu = cpu[BASELINE.name]
    ratio = med["icpn"] / base
    base_fraction = statistics.median(
        r.received / r.sent for r in results if r.program == BASELINE.name and r.sent
    )
    cpu_ratio = base_cpu / cpu["icpn"]
    report: dict[str, Any] = {
        f"{p}icpn_forwarding_pps_median": round(med["icpn"], 1),
        f"{p}baseline_port_forward_forwarding_pps_median": round(base, 1),
        f"{p}forwarding_ratio_icpn_over_baseline": round(ratio, 3),
        # The same comparison by CPU time per packet below capacity: what a loaded machine
        # (other processes on the two cores) moves far less than a rate.
        f"{p}icpn_bmv2_cpu_us_per_packet_median": round(cpu["icpn"], 2),
        f"{p}baseline_port_forward_bmv2_cpu_us_per_packet_median": round(base_cpu, 2),
        f"{p}cpu_ratio_baseline_over_icpn": round(cpu_ratio, 3),
        # A rate is a capacity only if the switch dropped part of the offered load.
        f"{p}icpn_saturated_all_rounds": all(
            r.received < r.sent for r in results if r.program == "icpn"
        ),
        f"{p}baseline_saturated_all_rounds": all(
            r.received < r.sent for r in results if r.program == BASELINE.name
        ),
        # What share of the sent frames the baseline forwarded: near 1, its rate is the
        # offer rather than its capacity, and the rate ratio flatters icpn (raise --rate).
        f"{p}baseline_forwarded_fraction_of_sent_median": round(base_fraction, 3),
        # Issue 17's goal, by forwarding rate (the goal's own terms) and by CPU per packet.
        f"{p}goal_ratio_0_5_pass": ratio >= GOAL_RATIO,
        f"{p}goal_cpu_ratio_0_5_pass": cpu_ratio >= GOAL_RATIO,
    }
    mfr_md = ""
    if mfr_results:
        mfr = {n: max_forwarding_rates(mfr_results, n) for n in MFR_PROGRAMS}
        mfr_med = {n: statistics.median(r.pps for r in mfr[n]) for n in MFR_PROGRAMS}
        mfr_ratio = mfr_med[ICPN.name] / mfr_med[BASELINE.name]
        # A baseline that forwarded nearly all of the ladder's top load may have more in it
        # than the sender could offer: then its maximum is the sender's, not its own.
        top_bound = any(
            r.offered_pps >= MFR_LADDER[-1] and r.received >= OFFER_BOUND_FRACTION * r.sent
            for r in mfr[BASELINE.name]
        )
        for n, key in ((ICPN.name, "icpn"), (BASELINE.name, "baseline_port_forward")):
            report[f"{p}{key}_max_forwarding_rate_pps_median"] = round(mfr_med[n], 1)
            report[f"{p}{key}_max_forwarding_rate_at_offered_pps"] = [r.offered_pps for r in mfr[n]]
        report |= {
            f"{p}mfr_ratio_icpn_over_baseline": round(mfr_ratio, 3),
            f"{p}baseline_mfr_bound_by_the_sender": top_bound,
            f"{p}goal_mfr_ratio_0_5_pass": mfr_ratio >= GOAL_RATIO,
        }
        mfr_md = (
            f"\nMaximum forwarding rate (RFC 2285 3.6.1: the best forwarding rate over offered "
            f"loads of {MFR_LADDER[0]:,} to {MFR_LADDER[-1]:,} packets/s, {MFR_TRIAL_S} s "
            f"each; median of the rounds): baseline {mfr_med[BASELINE.name]:,.0f}, icpn "
            f"{mfr_med[ICPN.name]:,.0f} packets/s; icpn / baseline = **{mfr_ratio:.3f}**. "
            f"Goal {GOAL_RATIO}: {'met' if mfr_ratio >= GOAL_RATIO else 'not met'} by maximum "
            "forwarding rate.\n"
        )
        if top_bound:
            mfr_md += (
                "The baseline forwarded nearly all of the highest offered load: its maximum may "
                "be the sender's limit, and the ratio then flatters icpn.\n"
            )
    staged = [program for program in programs if program.source == "icpn"]
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
        key = f"{p}slice_{program.name.replace('-', '_')}"
        report[f"{key}_forwarding_pps_median"] = round(med[program.name], 1)
        report[f"{key}_ratio_over_baseline"] = round(med[program.name] / base, 3)
        report[f"{key}_bmv2_cpu_us_per_packet_median"] = round(cpu[program.name], 2)
        report[f"{key}_cpu_ratio_baseline_over_slice"] = round(base_cpu / cpu[program.name], 3)
        stage = None
        if previous is not None:
            stage = med[program.name] / med[previous]
            report[f"{key}_stage_ratio_over_previous_slice"] = round(stage, 3)
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
    report[f"{p}rounds"] = [r.__dict__ | {"pps": round(r.pps, 1)} for r in results]
    report[f"{p}cpu_rounds"] = [
        r.__dict__ | {"cpu_us_per_packet": round(us_per_packet(r), 2)} for r in cpu_results
    ]
    macros = {True: "compiled in", False: "compiled out", None: "unknown"}[bmv2.logging_macros]
    config = bmv2.config or {}
    elog, trace = (
        "unknown" if name not in config else ("on" if config[name] else "off")
        for name in ("BM_ELOG_ON", "BM_PACKET_TRACE_ON")
    )
    patches = (
        "unknown (no record)"
        if bmv2.patches is None
        else (", ".join(f"`{name}`" for name in bmv2.patches) or "none")
    )
    warning = (
        "**This performance build has its logging macros compiled in**: it is no faster "
        "than the stock build.\n\n"
        if bmv2.label != "stock" and bmv2.logging_macros
        else ""
    )
    offer_bound = (
        f"The baseline forwarded {base_fraction:.0%} of what was sent: its rate is about the "
        "offer, not its capacity, so the rate ratio overstates icpn (raise --rate).\n\n"
        if base_fraction >= OFFER_BOUND_FRACTION
        else ""
    )
    md = (
        f"## {bmv2.label} build\n\n"
        f"`{bmv2.executable}` ({bmv2.version or 'version unknown'}); logging macros {macros}, "
        f"event logger {elog}, packet tracing {trace}; patches to BMv2: {patches}.\n\n"
        f"{warning}"
        "| program | median forwarded packets/s | BMv2 CPU per packet (us) |\n|---|---|---|\n"
        f"| port_forward (baseline) | {base:,.0f} | {base_cpu:.1f} |\n"
        f"| icpn | {med['icpn']:,.0f} | {cpu['icpn']:.1f} |\n\n"
        f"{offer_bound}"
        f"icpn / baseline = **{ratio:.3f}** (forwarding rate); **{cpu_ratio:.3f}** by CPU time "
        f"per packet (baseline's / icpn's). Goal {GOAL_RATIO}: "
        f"{'met' if ratio >= GOAL_RATIO else 'not met'} by rate, "
        f"{'met' if cpu_ratio >= GOAL_RATIO else 'not met'} by CPU.\n"
        f"{mfr_md}"
    )
    if rows:
        md += (
            "\nCost per feature: slices of icpn.p4, the path every packet takes (parser, "
            "sanity, my-station, routing), then one feature more each (`-DWITHOUT_...` for the "
            "rest). A stage ratio below 1 is what that feature costs a plain routed packet.\n\n"
            "| slice | features | packets/s | / baseline | stage ratio | CPU us/packet "
            "| baseline CPU / slice CPU |\n|---|---|---|---|---|---|---|\n"
        )
        for name, added, pps, slice_ratio, stage, us in rows:
            shown = f"{stage:.3f}" if stage is not None else "-"
            md += (
                f"| {name} | {added} | {pps:,.0f} | {slice_ratio:.3f} | {shown} | {us:.1f} "
                f"| {base_cpu / us:.3f} |\n"
            )
    return report, md


def summarize(
    builds: list[Bmv2Build],
    programs: list[Program],
    measured: Measured,
    offer: Offer,
    out_dir: Path,
    perf_note: str,
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    sections = []
    for bmv2 in builds:
        figures, md = build_figures(bmv2, programs, measured)
        report |= figures
        sections.append(md)
    labels = [b.label for b in builds]
    if "perf" in labels:
        # The same program on the two builds, the same rounds: what the build itself buys.
        for key in ("icpn", "baseline_port_forward"):
            report[f"perf_build_over_stock_{key}_forwarding_rate_ratio"] = round(
                report[f"perf_build_{key}_forwarding_pps_median"]
                / report[f"{key}_forwarding_pps_median"],
                3,
            )
    else:
        report["perf_build_skipped_reason"] = perf_note
    report |= {
        "offered_load_pps": offer.rate,
        "cpu_rounds_offered_load_pps": offer.cpu_rate,
        "offered_seconds_per_round": offer.seconds,
        "frame_size_bytes": offer.frame_size,
        "rounds_per_program": len(measured.rate) // (len(programs) * len(builds)),
        "mfr_offered_loads_pps": list(MFR_LADDER),
        "mfr_seconds_per_load": MFR_TRIAL_S,
        "bmv2": toolchain.bmv2().version,
        "bmv2_builds": {b.label: b.describe() for b in builds},
        "p4c": toolchain.p4c().version,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "forwarding.json").write_text(json.dumps(report, indent=2) + "\n")
    summary = (
        "# BMv2 forwarding rate: icpn.p4 vs port_forward.p4\n\n"
        f"Offered {offer.rate:,.0f} packets/s of {offer.frame_size}-byte IPv6/UDP frames for "
        f"{offer.seconds} s per round, {report['rounds_per_program']} rounds each, every "
        f"switch interleaved, BMv2 logging off; CPU rounds at {offer.cpu_rate:,.0f} packets/s "
        "(below every capacity).\n\n"
    )
    if "perf" not in labels:
        summary += f"Performance build: skipped ({perf_note}).\n\n"
    else:
        summary += (
            "perf build / stock build, forwarding rate: icpn "
            f"**{report['perf_build_over_stock_icpn_forwarding_rate_ratio']}**, baseline "
            f"**{report['perf_build_over_stock_baseline_port_forward_forwarding_rate_ratio']}**"
            ".\n\n"
        )
    summary += "\n".join(sections)
    (out_dir / "forwarding.md").write_text(summary)
    print("\n" + summary)
    print(f"written: {out_dir / 'forwarding.json'} and forwarding.md")
    return report


def builds_to_run(no_perf: bool) -> tuple[list[Bmv2Build], str]:
    """The stock build, and the perf build when there is one; and what was decided about it."""
    stock = toolchain.bmv2().path
    assert stock is not None  # main() checked
    builds = [Bmv2Build.of("stock", stock)]
    if no_perf:
        return builds, "--no-perf-build given"
    perf, note = toolchain.choose_bmv2_perf(
        os.environ.get(toolchain.BMV2_PERF_ENV), toolchain.BMV2_PERF_DEFAULT, stock
    )
    if perf is not None:
        builds.append(Bmv2Build.of("perf", perf))
    return builds, note


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
    parser.add_argument(
        "--no-perf-build",
        action="store_true",
        help=f"only the stock BMv2, not the performance build (${toolchain.BMV2_PERF_ENV}, "
        f"default {toolchain.BMV2_PERF_DEFAULT})",
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 20 or not 0 < args.seconds <= 30 or args.rate <= 0:
        parser.error("need 1 <= rounds <= 20, 0 < seconds <= 30, rate > 0")
    reason = toolchain.bmv2_unavailable_reason()
    if reason is not None:
        parser.exit(2, f"bench: cannot run: {reason}\n")
    try:
        builds, perf_note = builds_to_run(args.no_perf_build)
    except ValueError as exc:
        parser.exit(2, f"bench: {exc}\n")
    print(f"performance build: {perf_note}", flush=True)
    programs = [BASELINE, ICPN] if args.no_slices else [BASELINE, *slices(), ICPN]
    offer = Offer(args.rate, args.cpu_rate, args.seconds, args.frame_size)
    run(builds, programs, args.rounds, offer, args.out, perf_note)


if __name__ == "__main__":
    main()
